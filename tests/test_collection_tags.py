"""A collection's MSD tags: read in SQL once per run (rule msd_tags), then read by every tagging probe."""

import sqlite3
from contextlib import closing

import pandas as pd
import pytest

from mvcl.data import tags as tags_module
from mvcl.data.tags import collection_tags, read_msd_tags, write_lastfm_db
from mvcl.io import save_parquet
from tests.helpers import run_snakemake

TAGS = pd.DataFrame(
    {
        "msd_id": ["TRA", "TRA", "TRB", "TRC", "TRC", "TRD"],
        "tag": ["rock", "pop", "rock", "jazz", "rock", "pop"],
        "count": [100.0, 20.0, 55.0, 0.0, 10.0, 80.0],
    }
)
MANIFEST = pd.DataFrame({"video_id": ["v1", "v2", "v3", "v4"], "msd_id": [" TRA", "TRC", "", None]})


def test_collection_tags_are_those_of_the_manifests_msd_ids(tmp_path):
    database = tmp_path / "lastfm_tags.db"
    write_lastfm_db(TAGS, database)
    tags = collection_tags(MANIFEST, database)
    assert tags.values.tolist() == [
        ["TRA", "pop", 20.0],
        ["TRA", "rock", 100.0],
        ["TRC", "jazz", 0.0],
        ["TRC", "rock", 10.0],
    ]


def test_the_parquet_table_reads_back_as_the_same_tags(tmp_path):
    database = tmp_path / "lastfm_tags.db"
    write_lastfm_db(TAGS, database)
    table = tmp_path / "msd_tags.parquet"
    save_parquet(table, collection_tags(MANIFEST, database))
    pd.testing.assert_frame_equal(read_msd_tags(table), read_msd_tags(database, ["TRA", "TRC"]))
    assert set(read_msd_tags(table, msd_ids=["TRC"])["msd_id"]) == {"TRC"}


def test_a_parquet_table_without_the_tag_columns_is_refused_naming_it(tmp_path):
    path = tmp_path / "other.parquet"
    save_parquet(path, pd.DataFrame({"msd_id": ["TRA"], "label": ["rock"]}))
    with pytest.raises(ValueError, match=r"other\.parquet lacks column\(s\) \['tag', 'count'\]"):
        read_msd_tags(path)


def test_a_manifest_without_msd_id_is_refused(tmp_path):
    database = tmp_path / "lastfm_tags.db"
    write_lastfm_db(TAGS, database)
    with pytest.raises(ValueError, match="manifest has no 'msd_id' column"):
        collection_tags(MANIFEST[["video_id"]], database)


def test_rows_outside_the_collection_are_never_read(tmp_path):
    """Damage on a track outside the collection goes unnoticed: the filter runs in SQL, before any check."""
    database = tmp_path / "lastfm_tags.db"
    write_lastfm_db(TAGS, database)
    with closing(sqlite3.connect(database)) as connection, connection:
        track_d = connection.execute("SELECT ROWID FROM tids WHERE tid = 'TRD'").fetchone()[0]
        connection.execute("INSERT INTO tid_tag VALUES (?, 1, 'high')", (track_d,))
    assert len(read_msd_tags(database, ["TRA", "TRB"])) == 3
    with pytest.raises(ValueError, match="tid_tag.val must be numeric, 1 row"):
        read_msd_tags(database, ["TRA", "TRD"])


def test_the_collection_is_found_through_the_indexes_not_a_scan_of_tid_tag(tmp_path):
    database = tmp_path / "lastfm_tags.db"
    write_lastfm_db(TAGS, database)
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("CREATE TEMP TABLE wanted (tid TEXT PRIMARY KEY)")
        rows = connection.execute(f"EXPLAIN QUERY PLAN {tags_module.HITS_QUERY}")
        plan = " | ".join(row[3] for row in rows)
    assert "SCAN temp.wanted" in plan and "SCAN tid_tag" not in plan, plan
    assert "SEARCH tid_tag USING INDEX idx_tid_tag_tid (tid=?)" in plan, plan


@pytest.mark.slow
def test_tagging_probes_read_the_collections_tags_table(tiny_data_workdir):
    tiny_workdir = tiny_data_workdir  # a copy of the session's tiny corpus, segments already made
    target = "results/probes/tagging/musicnn.json"
    dry = run_snakemake(tiny_workdir, target, "--dry-run", "--printshellcmds")
    assert "rule msd_tags" in dry.stdout
    run_snakemake(tiny_workdir, target)
    manifest = pd.read_parquet(tiny_workdir / "results/data/manifest.parquet")
    table = read_msd_tags(tiny_workdir / "results/data/msd_tags.parquet")
    everything = read_msd_tags(tiny_workdir / "results/demo/lastfm_tags.db")
    linked = set(manifest["msd_id"].dropna()) - {""}
    assert set(table["msd_id"]) == linked & set(everything["msd_id"])
    expected = everything[everything["msd_id"].isin(linked)].reset_index(drop=True)
    pd.testing.assert_frame_equal(table, expected)
    # The probe job's inputs: the collection's table, not the database.
    summary = run_snakemake(tiny_workdir, target, "--forceall", "--dry-run", "--printshellcmds")
    probe_job = summary.stdout.split("rule probe:")[1].split("\n\n")[0]
    assert "results/data/msd_tags.parquet" in probe_job and "lastfm_tags.db" not in probe_job
