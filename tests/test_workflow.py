"""Workflow tests: really run Snakemake on a tiny generated corpus."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from mvcl.logs import usage_path
from tests.conftest import TINY_DATA_TARGETS
from tests.helpers import REPO, run_snakemake, write_config

pytestmark = pytest.mark.slow


def test_data_stages_run_and_a_rerun_does_nothing(tiny_data, tiny_data_workdir):
    """The session's shared run of the data stages (conftest.tiny_data); a rerun, there and in a copy, does
    nothing (the copies other tests run more of the workflow in are up to date)."""
    manifest = pd.read_parquet(tiny_data / "results/data/manifest.parquet")
    segments = pd.read_parquet(tiny_data / "results/data/segments.parquet")
    assert len(manifest) == 8
    assert len(segments) == 8 * 3
    assert (tiny_data / "results/figures/segments.png").stat().st_size > 10_000
    logs = sorted((tiny_data / "results/logs").rglob("*.log"))
    assert len(logs) >= 4  # demo corpus, ingest, segments, their figure
    for log in logs:  # every job recorded what it used beside its log (mvcl.logs.record_usage)
        record = pd.read_csv(tiny_data / usage_path(str(log.relative_to(tiny_data))), sep="\t")
        assert record.loc[0, "s"] > 0 and record.loc[0, "cpu_time"] > 0, log
    for workdir in (tiny_data, tiny_data_workdir):
        rerun = run_snakemake(workdir, *TINY_DATA_TARGETS)
        assert "Nothing to be done" in rerun.stdout + rerun.stderr


def test_bad_videos_are_rejected_with_reasons_and_the_run_completes(tiny_data_workdir):
    from tests.patterns import write_test_pattern_video

    tiny_workdir = tiny_data_workdir  # the demo corpus is there already (results/demo/metadata.csv)
    demo = tiny_workdir / "results/demo"
    videos = demo / "videos"
    write_test_pattern_video(videos / "silent.mp4", duration_s=11, fps=8, size=(64, 48), audio=False)
    write_test_pattern_video(videos / "short.mp4", duration_s=4, fps=8, size=(64, 48))
    (videos / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    truncated = videos / "truncated.mp4"
    shutil.copy(next(videos.glob("*.mp4")), truncated)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    metadata = pd.read_csv(demo / "metadata.csv", dtype=str, keep_default_na=False)
    extra = pd.DataFrame(
        {
            "video_id": ["silent", "short", "garbage", "truncated", "missing"],
            "path": [
                "videos/silent.mp4",
                "videos/short.mp4",
                "videos/garbage.mp4",
                "videos/truncated.mp4",
                "videos/missing.mp4",
            ],
        }
    )
    user = pd.concat([metadata, extra], ignore_index=True).fillna("")
    user.to_csv(tiny_workdir / "user.csv", index=False)
    shutil.move(str(videos), tiny_workdir / "videos")
    config = yaml.safe_load((tiny_workdir / "config.yaml").read_text())
    write_config(
        tiny_workdir,
        {
            **config,
            "demo": {**config["demo"], "enabled": False},
            "dataset": {**config["dataset"], "videos_dir": "videos", "metadata_csv": "user.csv"},
        },
    )
    run_snakemake(tiny_workdir, "results/data/segments.parquet")
    rejected = pd.read_csv(tiny_workdir / "results/data/rejected.csv").set_index("video_id")["reason"]
    assert set(rejected.index) == {"silent", "short", "garbage", "truncated", "missing"}
    assert rejected["silent"] == "no audio track"
    assert rejected["short"].startswith("too short")
    assert rejected["missing"].startswith("file not found")
    assert "decoded" in rejected["garbage"] or "corrupt" in rejected["garbage"]
    assert "truncated" in rejected["truncated"] or "decoded" in rejected["truncated"]
    segments = pd.read_parquet(tiny_workdir / "results/data/segments.parquet")
    assert segments["video_id"].nunique() == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"segments": {"count": "six"}}, "count"),
        ({"video_encoder": {"clip_frames": 0}}, "clip_frames"),
        ({"no_such_key": 1}, "no_such_key"),
        ({"video_encoder": {"weigths": "auto"}}, "weigths"),
    ],
)
def test_a_bad_config_value_stops_the_run_naming_the_key(tmp_path, changes, message):
    write_config(tmp_path, changes)
    result = run_snakemake(tmp_path, "-n", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_the_repository_workflow_passes_lint():
    result = run_snakemake(REPO, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
