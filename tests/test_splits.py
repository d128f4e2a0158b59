"""Grouped splits: videos of one group (dataset.split.group_by, msd_id by default) never straddle splits,
a video's split is a hash of its group's key alone, so neither adding videos nor reordering rows moves one."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from mvcl.data.ingest import MetadataError, assign_split, assign_splits, ingest, read_metadata
from tests.patterns import write_test_pattern_video

SPLIT = {"train": 0.6, "val": 0.2, "test": 0.2, "group_by": "msd_id"}


def corpus(videos: int, songs: int, first: int = 0) -> pd.DataFrame:
    """`videos` rows; every third has no msd_id, the others cycle through `songs` msd_ids and 7 artists."""
    rows = [
        {
            "video_id": f"vid{i:04d}",
            "path": f"{i}.mp4",
            "msd_id": "" if i % 3 == 0 else f"TRSONG{i % songs:03d}",
            "artist": f"artist{i % 7}",
        }
        for i in range(first, first + videos)
    ]
    return pd.DataFrame(rows)


def test_videos_sharing_an_msd_id_never_straddle_splits():
    table = corpus(600, songs=40)
    table[["split", "split_group"]] = assign_splits(table, SPLIT)
    with_msd = table[table["msd_id"] != ""]
    assert (with_msd.groupby("msd_id")["split"].nunique() == 1).all()
    assert set(with_msd["split"]) == {"train", "val", "test"}  # the groups do spread over all three
    # Rows without an msd_id stand alone: their split is the hash of their video_id, as before grouping.
    alone = table[table["msd_id"] == ""]
    assert (alone["split_group"] == alone["video_id"]).all()
    assert alone["split"].tolist() == [assign_split(video, SPLIT) for video in alone["video_id"]]


def test_any_column_can_group_and_video_id_keeps_every_video_alone():
    table = corpus(300, songs=40)
    by_artist = assign_splits(table, {**SPLIT, "group_by": "artist"})["split"]
    assert (by_artist.groupby(table["artist"]).nunique() == 1).all()
    by_video = assign_splits(table, {**SPLIT, "group_by": "video_id"})["split"]
    assert by_video.tolist() == [assign_split(video, SPLIT) for video in table["video_id"]]
    assert (by_video.groupby(table["msd_id"].where(table["msd_id"] != "")).nunique() > 1).any()


def test_placeholder_group_values_stand_alone_instead_of_forming_one_group():
    table = corpus(300, songs=40)
    placeholders = ["NA", "n/a", " unknown ", "-", "None", "NaN", "null"]
    table.loc[table["msd_id"] == "", "msd_id"] = [placeholders[i % 7] for i in range(100)]
    missing = ["", "NA", "N/A", "nan", "null", "none", "unknown", "-"]
    splits = assign_splits(table, SPLIT, missing)
    placeholder = table["msd_id"].str.strip().str.casefold().isin([p.casefold() for p in missing])
    assert (splits.loc[placeholder, "split_group"] == table.loc[placeholder, "video_id"]).all()
    assert set(splits.loc[placeholder, "split"]) == {"train", "val", "test"}  # not one group in one split
    with_msd = table[~placeholder]
    assert (splits.loc[~placeholder].groupby(with_msd["msd_id"])["split"].nunique() == 1).all()


def test_a_group_column_the_csv_lacks_is_an_error_not_a_split_by_video_id(tmp_path):
    (tmp_path / "meta.csv").write_text("video_id,path\na,a.mp4\nb,b.mp4\n")
    metadata = read_metadata(tmp_path / "meta.csv")  # fills msd_id with ""
    with pytest.raises(
        MetadataError, match="group_by is 'msd_id', which is not a column of the metadata CSV"
    ):
        assign_splits(metadata, SPLIT)
    assert assign_splits(metadata, {**SPLIT, "group_by": "video_id"})["split_group"].tolist() == ["a", "b"]


def test_adding_videos_never_moves_an_existing_video():
    old = corpus(200, songs=40)
    # New videos: some are new versions of songs already in the corpus, some new songs.
    new = pd.concat([old, corpus(150, songs=60, first=200)], ignore_index=True)
    before = assign_splits(old, SPLIT)["split"]
    after = assign_splits(new, SPLIT)["split"]
    assert after.iloc[: len(old)].tolist() == before.tolist()


def test_the_split_comes_from_a_hash_not_from_row_order():
    table = corpus(300, songs=40)
    shuffled = table.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert shuffled["video_id"].tolist() != table["video_id"].tolist()
    original = dict(zip(table["video_id"], assign_splits(table, SPLIT)["split"], strict=True))
    again = dict(zip(shuffled["video_id"], assign_splits(shuffled, SPLIT)["split"], strict=True))
    assert again == original


def test_ingest_reports_groups_holding_several_videos(tmp_path, caplog):
    for name in ("a", "b", "c"):
        write_test_pattern_video(tmp_path / f"{name}.mp4", duration_s=3, fps=4, size=(32, 24))
    metadata = pd.DataFrame(
        {
            "video_id": ["a", "b", "c"],
            "path": [str(tmp_path / f"{name}.mp4") for name in ("a", "b", "c")],
            "genre": "",
            "msd_id": ["TRSAME", "TRSAME", ""],
            "artist": "",
            "title": "",
        }
    )
    with caplog.at_level(logging.INFO, logger="mvcl"):
        manifest, rejected = ingest(metadata, min_duration_s=2, split_fractions=SPLIT)
    assert rejected.empty
    assert manifest["split_group"].tolist() == ["TRSAME", "TRSAME", "c"]
    assert manifest["split_group_size"].tolist() == [2, 2, 1]
    assert manifest.loc[0, "split"] == manifest.loc[1, "split"] == assign_split("TRSAME", SPLIT)
    assert "splits grouped by msd_id: 1 groups hold more than one video (2 videos in them)" in caplog.text


def test_a_split_section_without_group_by_groups_by_msd_id():
    table = corpus(60, songs=5)
    fractions = {name: SPLIT[name] for name in ("train", "val", "test")}
    plain = assign_splits(table, fractions)["split"]
    assert (plain == assign_splits(table, {**fractions, "group_by": "msd_id"})["split"]).all()
