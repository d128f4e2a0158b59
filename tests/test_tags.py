import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mvcl.data.tags import read_msd_tags, tag_matrix, write_lastfm_db

TAGS = pd.DataFrame(
    {
        "msd_id": ["TRA", "TRA", "TRB", "TRC", "TRC", "TRD"],
        "tag": ["rock", "pop", "rock", "jazz", "rock", "pop"],
        "count": [100.0, 20.0, 55.0, 0.0, 10.0, 80.0],
    }
)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def lastfm_db(path: Path, *, tids: dict[int, str], tags: dict[int, str], rows: list[tuple]) -> Path:
    """A database laid out as MSD's lastfm_tags.db, with explicit ROWIDs."""
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE tids (tid TEXT PRIMARY KEY);"
            "CREATE TABLE tags (tag TEXT PRIMARY KEY);"
            "CREATE TABLE tid_tag (tid INT, tag INT, val FLOAT);"
        )
        connection.executemany("INSERT INTO tids (ROWID, tid) VALUES (?, ?)", tids.items())
        connection.executemany("INSERT INTO tags (ROWID, tag) VALUES (?, ?)", tags.items())
        connection.executemany("INSERT INTO tid_tag VALUES (?, ?, ?)", rows)
    connection.close()
    return path


def test_csv_with_counts_is_read_sorted_and_stripped(tmp_path):
    path = write_csv(tmp_path / "tags.csv", "msd_id,tag,count\nTRB, rock ,55\nTRA,pop,20\nTRA,rock,100\n")
    tags = read_msd_tags(path)
    assert list(tags.columns) == ["msd_id", "tag", "count"]
    assert tags.values.tolist() == [["TRA", "pop", 20.0], ["TRA", "rock", 100.0], ["TRB", "rock", 55.0]]


def test_csv_without_count_column_defaults_to_100(tmp_path):
    tags = read_msd_tags(write_csv(tmp_path / "tags.csv", "tag,msd_id\nrock,TRA\nNA,TRB\n"))
    assert tags["count"].tolist() == [100.0, 100.0]
    assert tags["tag"].tolist() == ["rock", "NA"]  # a tag spelled "NA" is a tag, not a missing value


def test_repeated_pairs_keep_their_largest_count(tmp_path):
    tags = read_msd_tags(write_csv(tmp_path / "tags.csv", "msd_id,tag,count\nTRA,rock,10\nTRA,rock,70\n"))
    assert tags.values.tolist() == [["TRA", "rock", 70.0]]


def test_lastfm_db_is_joined_through_rowids(tmp_path):
    path = lastfm_db(
        tmp_path / "lastfm_tags.db",
        tids={7: "TRB", 3: "TRA"},
        tags={2: "rock", 9: "pop"},
        rows=[(3, 2, 100.0), (3, 9, 20), (7, 2, 55.5)],
    )
    tags = read_msd_tags(path)
    assert tags.values.tolist() == [["TRA", "pop", 20.0], ["TRA", "rock", 100.0], ["TRB", "rock", 55.5]]
    assert read_msd_tags(path, msd_ids=["TRB", "TRZ"]).values.tolist() == [["TRB", "rock", 55.5]]
    assert read_msd_tags(path, msd_ids=[]).empty


def test_written_db_reads_back_as_the_same_table(tmp_path):
    path = tmp_path / "demo" / "lastfm_tags.db"
    write_lastfm_db(TAGS, path)
    write_lastfm_db(TAGS, path)  # overwriting is fine
    back = read_msd_tags(path)
    expected = TAGS.sort_values(["msd_id", "tag"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    connection.close()
    assert tables == {"tids", "tags", "tid_tag"}


def test_format_is_told_by_content_not_by_name(tmp_path):
    csv_named_db = write_csv(tmp_path / "tags.db", "msd_id,tag\nTRA,rock\n")
    db_named_csv = tmp_path / "tags.csv"
    write_lastfm_db(TAGS, db_named_csv)
    assert read_msd_tags(csv_named_db)["tag"].tolist() == ["rock"]
    assert len(read_msd_tags(db_named_csv)) == len(TAGS)


def test_csv_filter_by_msd_ids(tmp_path):
    path = tmp_path / "tags.csv"
    TAGS.to_csv(path, index=False)
    assert set(read_msd_tags(path, msd_ids={"TRA"})["msd_id"]) == {"TRA"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("msd_id,label\nTRA,rock\n", r"lacks column\(s\) \['tag'\]"),
        (
            "msd_id,tag,count\nTRA,rock,10\nTRB,pop,lots\n",
            r"count must be a non-negative number.*'lots'.*line\(s\) 3",
        ),
        ("msd_id,tag,count\nTRA,rock,-1\n", r"line\(s\) 2"),
        ("msd_id,tag\nTRA,\n", r"empty msd_id or tag on line\(s\) 2"),
        ("", "is empty"),
    ],
)
def test_malformed_csv_names_file_and_problem(tmp_path, text, message):
    path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=message) as error:
        read_msd_tags(path)
    assert "bad.csv" in str(error.value)


def test_missing_file_says_which_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.msd_tags"):
        read_msd_tags(tmp_path / "nowhere.db")


def test_db_without_a_table_is_refused(tmp_path):
    path = tmp_path / "bad.db"
    with sqlite3.connect(path) as connection:
        connection.executescript("CREATE TABLE tids (tid TEXT); CREATE TABLE tags (tag TEXT);")
    connection.close()
    with pytest.raises(ValueError, match=r"bad\.db has no table 'tid_tag'"):
        read_msd_tags(path)


def test_db_without_a_column_is_refused(tmp_path):
    path = tmp_path / "bad.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE tids (tid TEXT); CREATE TABLE tags (tag TEXT); CREATE TABLE tid_tag (tid INT, tag INT);"
        )
    connection.close()
    with pytest.raises(ValueError, match=r"bad\.db: table 'tid_tag' lacks column\(s\) \['val'\]"):
        read_msd_tags(path)


def test_db_with_non_numeric_weight_is_refused(tmp_path):
    path = lastfm_db(tmp_path / "bad.db", tids={1: "TRA"}, tags={1: "rock"}, rows=[(1, 1, "high")])
    with pytest.raises(ValueError, match=r"bad\.db: tid_tag\.val must be numeric.*'high'"):
        read_msd_tags(path)


def test_db_with_dangling_rowid_is_refused(tmp_path):
    path = lastfm_db(tmp_path / "bad.db", tids={1: "TRA"}, tags={1: "rock"}, rows=[(1, 4, 50.0)])
    with pytest.raises(ValueError, match=r"bad\.db: 1 tid_tag row\(s\) point at no row"):
        read_msd_tags(path)


def test_damaged_db_is_refused(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    with pytest.raises(ValueError, match=r"bad\.db cannot be read"):
        read_msd_tags(path)


VIDEOS = pd.DataFrame(
    {
        "video_id": ["v1", "v2", "v3", "v4", "v5", "v6"],
        "msd_id": ["TRA", "TRB", None, "TRC", "", "TRD"],
    }
)


def test_tag_matrix_keeps_overlap_videos_and_top_tags():
    matrix = tag_matrix(VIDEOS, TAGS, top_k=2)
    # rock: v1, v2, v4 (3 videos); pop: v1, v6 (2); jazz: v4 (1) is cut by top_k.
    assert matrix.tag_names == ["rock", "pop"]
    assert matrix.video_ids.tolist() == ["v1", "v2", "v4", "v6"]
    assert matrix.labels.tolist() == [[1, 1], [1, 0], [1, 0], [0, 1]]
    assert matrix.labels.dtype == np.uint8


def test_min_count_removes_weak_tags_and_the_videos_left_without_tags():
    matrix = tag_matrix(VIDEOS, TAGS, top_k=2, min_count=50)
    # TRA's pop (20) and both of TRC's tags (0, 10) fall below 50: v4 has no tag left.
    assert matrix.tag_names == ["rock", "pop"]
    assert matrix.video_ids.tolist() == ["v1", "v2", "v6"]
    assert matrix.labels.tolist() == [[1, 0], [1, 0], [0, 1]]


def test_equally_frequent_tags_are_ranked_by_name():
    tags = pd.DataFrame({"msd_id": ["TRA", "TRB", "TRD"], "tag": ["soul", "blues", "funk"], "count": 100.0})
    assert tag_matrix(VIDEOS, tags, top_k=2).tag_names == ["blues", "funk"]


def test_video_with_only_rare_tags_stays_with_an_all_zero_row():
    matrix = tag_matrix(VIDEOS, TAGS[TAGS["tag"] != "rock"], top_k=1)
    assert matrix.tag_names == ["pop"]
    assert dict(zip(matrix.video_ids, matrix.labels[:, 0], strict=True)) == {"v1": 1, "v4": 0, "v6": 1}


def test_the_vocabulary_is_counted_over_the_given_videos_only():
    # over every video rock (v1, v2, v4) leads; over v1 and v6 alone pop is on both, rock on one
    matrix = tag_matrix(VIDEOS, TAGS, top_k=1, vocabulary_videos=["v1", "v6"])
    assert matrix.tag_names == ["pop"]
    assert matrix.video_ids.tolist() == ["v1", "v2", "v4", "v6"]  # every overlap video keeps its labels


def test_fewer_tags_than_top_k_warns():
    with pytest.warns(UserWarning, match="only 3 distinct tags"):
        matrix = tag_matrix(VIDEOS, TAGS, top_k=10)
    assert len(matrix.tag_names) == 3


def test_tag_matrix_refuses_duplicate_videos_and_missing_columns():
    with pytest.raises(ValueError, match="video_id 'v1' appears more than once"):
        tag_matrix(pd.concat([VIDEOS, VIDEOS.head(1)]), TAGS, top_k=2)
    with pytest.raises(ValueError, match=r"videos table lacks column\(s\) \['msd_id'\]"):
        tag_matrix(VIDEOS[["video_id"]], TAGS, top_k=2)
