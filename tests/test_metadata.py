"""The metadata CSV is checked when the workflow starts: a bad one stops `snakemake -n` with one line."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from mvcl.data.metadata import MetadataError, metadata_problem, read_metadata
from mvcl.plan import Plan
from tests.helpers import REPO, run_snakemake, write_config

# Each kind of bad CSV, and what its one line must say: the file, the line, what to do.
BAD_CSVS = {
    "latin1": (
        "video_id,path,title\na,a.mp4,Caf\xe9\n".encode("latin-1"),
        r"meta\.csv: line 2 is not UTF-8 \(byte 0xe9 at column 12\); save the CSV as UTF-8",
    ),
    "empty": (b"", r"meta\.csv: the metadata CSV is empty; write a header line video_id,path"),
    "blank": (b"\n \n", r"meta\.csv: the metadata CSV is empty"),
    "no_rows": (b"video_id,path\n", r"meta\.csv: the metadata CSV has a header but no videos"),
    "missing_column": (
        b"id,path\na,a.mp4\n",
        r"meta\.csv: missing required column\(s\) video_id; found id, path\. The CSV needs at least video_id,path",
    ),
    "duplicate_ids": (
        b"video_id,path\na,a.mp4\nb,b.mp4\n\na,c.mp4\n",
        r"meta\.csv: video_id must be unique; repeated: a \('a' on lines 2, 5\); give every video its own id",
    ),
    "empty_path": (
        b"video_id,path\na,a.mp4\nb, \n",
        r"meta\.csv: empty path on line\(s\) 3 \(video_id b\); give the video's file .* or remove the line",
    ),
}


@pytest.mark.parametrize("kind", BAD_CSVS)
def test_each_kind_of_bad_csv_is_named_with_its_line_and_what_to_do(tmp_path, kind):
    content, message = BAD_CSVS[kind]
    (tmp_path / "meta.csv").write_bytes(content)
    with pytest.raises(MetadataError, match=message):
        read_metadata(tmp_path / "meta.csv")


def test_a_good_csv_passes_and_keeps_extra_columns(tmp_path):
    (tmp_path / "meta.csv").write_bytes("\ufeffvideo_id,path,label\na,a.mp4,x\n b , b.mp4 ,y\n".encode())
    table = read_metadata(tmp_path / "meta.csv")
    assert table["video_id"].tolist() == ["a", "b"]
    assert table["path"].tolist() == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    assert table.columns[-1] == "label"


def test_the_check_is_skipped_for_the_demo_and_names_an_unknown_group_column(tmp_path):
    (tmp_path / "meta.csv").write_text("video_id,path\na,a.mp4\n")
    config = {
        "demo": {"enabled": True},
        "dataset": {"metadata_csv": str(tmp_path / "absent.csv"), "split": {}},
    }
    assert metadata_problem(config) == ""  # the demo writes its CSV in a job
    config = {
        "demo": {"enabled": False},
        "dataset": {"metadata_csv": str(tmp_path / "meta.csv"), "split": {"group_by": "label"}},
    }
    assert "dataset.split.group_by is 'label', which is not a column" in metadata_problem(config)
    config["dataset"]["split"]["group_by"] = "video_id"
    assert metadata_problem(config) == ""


def test_a_group_column_the_csv_lacks_stops_the_run_unless_video_id_is_asked_for(tmp_path):
    (tmp_path / "meta.csv").write_text("video_id,path,genre\na,a.mp4,rock\n")  # no msd_id column
    config = {
        "demo": {"enabled": False},
        "dataset": {"metadata_csv": str(tmp_path / "meta.csv"), "split": {"group_by": "msd_id"}},
    }
    problem = metadata_problem(config)
    assert problem.startswith(f"{tmp_path / 'meta.csv'}: dataset.split.group_by is 'msd_id'")
    assert "not a column of the CSV (video_id, path, genre)" in problem and "\n" not in problem
    config["dataset"]["split"] = {}  # the default, msd_id, is checked the same way
    assert "group_by is 'msd_id'" in metadata_problem(config)
    config["dataset"]["split"] = {"group_by": "video_id"}
    assert metadata_problem(config) == ""


@pytest.mark.parametrize("msd_tags", [None, "absent"])
def test_no_msd_tags_means_no_tagging_task(msd_tags):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config = copy.deepcopy(config)
    if msd_tags is None:
        config["dataset"]["msd_tags"] = None
    else:
        del config["dataset"]["msd_tags"]
    assert Plan(config).probe_tasks == ["genre"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["latin1", "empty", "missing_column", "duplicate_ids", "empty_path"])
def test_a_bad_csv_stops_the_dry_run_before_any_job_with_one_line(tmp_path, kind):
    content, message = BAD_CSVS[kind]
    (tmp_path / "meta.csv").write_bytes(content)
    write_config(
        tmp_path,
        {
            "demo": {"enabled": False},
            "dataset": {"metadata_csv": "meta.csv", "videos_dir": ".", "msd_tags": None},
        },
    )
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    said = [line for line in (result.stdout + result.stderr).splitlines() if "meta.csv" in line]
    assert len(said) == 1, result.stdout + result.stderr
    assert re.search(message, said[0])
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr
    assert "rule ingest" not in result.stdout + result.stderr  # no job was scheduled


@pytest.mark.slow
@pytest.mark.parametrize("msd_tags", [None, "absent"])
def test_the_demo_runs_without_msd_tags(tmp_path, msd_tags):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if msd_tags is None:
        config["dataset"]["msd_tags"] = None
    else:
        del config["dataset"]["msd_tags"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = run_snakemake(tmp_path, "-n", "results/table2.csv")
    assert "tagging" not in result.stdout
