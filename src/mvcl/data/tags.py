"""MSD Last.fm tags for the videos that carry an `msd_id`, and the tagging task's label matrix.

Two inputs are accepted by `read_msd_tags`, told apart by the file's first bytes:

- a CSV with columns `msd_id,tag[,count]` (`count` optional, default 100, the largest Last.fm weight);
- the Million Song Dataset's Last.fm tag database `lastfm_tags.db` (SQLite), read directly.

Assumed schema of `lastfm_tags.db`, as shipped with the MSD Last.fm dataset and used by its
`demo_tags_db.py` (written from knowledge of that release, not checked against a copy here):

    CREATE TABLE tids (tid TEXT PRIMARY KEY)      -- MSD track ids (TR...); ROWID = track index
    CREATE TABLE tags (tag TEXT PRIMARY KEY)      -- tag strings;           ROWID = tag index
    CREATE TABLE tid_tag (tid INT, tag INT, val FLOAT)
        -- tid = tids.ROWID, tag = tags.ROWID, val = Last.fm weight 0-100

So an `msd_id` in the metadata is an MSD *track* id (`TR...`), not a song id (`SO...`).
"""

import logging
import os
import sqlite3
import warnings
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from mvcl.io import atomic_path

log = logging.getLogger(__name__)

SQLITE_MAGIC = b"SQLite format 3\x00"
DEFAULT_COUNT = 100.0
TAG_COLUMNS = ["msd_id", "tag", "count"]
LASTFM_SCHEMA = {"tids": ["tid"], "tags": ["tag"], "tid_tag": ["tid", "tag", "val"]}
# Ids per `IN (...)` query: below SQLite's smallest default limit on bound parameters (999).
_QUERY_CHUNK = 500


class TagMatrix(NamedTuple):
    """Labels of the tagging task: row i of `labels` belongs to `video_ids[i]`, column j to `tag_names[j]`."""

    video_ids: np.ndarray
    labels: np.ndarray
    tag_names: list[str]


def read_msd_tags(path: str | os.PathLike, msd_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Read MSD tags as a DataFrame `[msd_id, tag, count]` from a CSV or a Last.fm SQLite database.

    `msd_ids` restricts the result to those tracks (worth it for the full 8.6M-row database).
    Repeated (msd_id, tag) pairs keep their largest count. Raises ValueError naming the file and the
    problem when the input is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MSD tag file {path} does not exist; set dataset.msd_tags to a CSV or lastfm_tags.db"
        )
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_MAGIC))
    if header == SQLITE_MAGIC:
        tags = _read_lastfm_db(path, msd_ids)
    else:
        tags = _read_tags_csv(path)
        if msd_ids is not None:
            tags = tags[tags["msd_id"].isin(set(msd_ids))]
    tags = tags.groupby(["msd_id", "tag"], as_index=False, sort=True)["count"].max()
    return tags.reset_index(drop=True)[TAG_COLUMNS]


def _read_tags_csv(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"MSD tag CSV {path} is empty; expected a header msd_id,tag[,count]") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"MSD tag file {path} is neither SQLite nor a readable CSV: {error}") from None
    missing = [column for column in ("msd_id", "tag") if column not in raw.columns]
    if missing:
        raise ValueError(
            f"MSD tag CSV {path} lacks column(s) {missing}; found {list(raw.columns)}, "
            "expected a header msd_id,tag[,count]"
        )
    tags = pd.DataFrame({"msd_id": raw["msd_id"].str.strip(), "tag": raw["tag"].str.strip()})
    # Line numbers as a text editor shows them: the header is line 1.
    lines = raw.index.to_numpy() + 2
    empty = (tags["msd_id"] == "") | (tags["tag"] == "")
    if empty.any():
        raise ValueError(
            f"MSD tag CSV {path}: empty msd_id or tag on line(s) {_first(lines[empty.to_numpy()])}"
        )
    if "count" in raw.columns:
        count = pd.to_numeric(raw["count"].str.strip(), errors="coerce").astype(float)
        bad = ~np.isfinite(count.to_numpy()) | (count.to_numpy() < 0)
        if bad.any():
            values = raw["count"].to_numpy()[bad][:5].tolist()
            raise ValueError(
                f"MSD tag CSV {path}: count must be a non-negative number, got {values} on line(s) "
                f"{_first(lines[bad])}; fix those rows or drop the count column (default {DEFAULT_COUNT:g})"
            )
        tags["count"] = count
    else:
        tags["count"] = DEFAULT_COUNT
    return tags


def _read_lastfm_db(path: Path, msd_ids: Iterable[str] | None) -> pd.DataFrame:
    query = (
        "SELECT tids.tid AS msd_id, tags.tag AS tag, tid_tag.val AS count, typeof(tid_tag.val) AS val_type, "
        "tid_tag.tid AS tid_index, tid_tag.tag AS tag_index "
        "FROM tid_tag LEFT JOIN tids ON tids.ROWID = tid_tag.tid LEFT JOIN tags ON tags.ROWID = tid_tag.tag"
    )
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            _check_lastfm_schema(connection, path)
            if msd_ids is None:
                rows = pd.read_sql_query(query, connection)
            else:
                wanted = sorted({str(msd_id) for msd_id in msd_ids})
                chunks = [wanted[i : i + _QUERY_CHUNK] for i in range(0, len(wanted), _QUERY_CHUNK)]
                where = " WHERE tids.tid IN ({})"
                rows = pd.concat(
                    [
                        pd.read_sql_query(query + where.format(",".join("?" * len(c))), connection, params=c)
                        for c in chunks
                    ]
                    or [pd.read_sql_query(query + " WHERE 0", connection)],
                    ignore_index=True,
                )
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as error:
        raise ValueError(f"Last.fm tag database {path} cannot be read: {error}") from None
    dangling = rows["msd_id"].isna() | rows["tag"].isna()
    if dangling.any():
        example = rows.loc[dangling, ["tid_index", "tag_index"]].iloc[0].tolist()
        raise ValueError(
            f"Last.fm tag database {path}: {int(dangling.sum())} tid_tag row(s) point at no row of tids/tags "
            f"(first: tid={example[0]}, tag={example[1]}); the file is damaged, re-download lastfm_tags.db"
        )
    non_numeric = ~rows["val_type"].isin(["real", "integer"])
    if non_numeric.any():
        example = rows.loc[non_numeric, ["msd_id", "tag", "count"]].iloc[0].tolist()
        raise ValueError(
            f"Last.fm tag database {path}: tid_tag.val must be numeric, {int(non_numeric.sum())} row(s) are not "
            f"(first: msd_id={example[0]!r}, tag={example[1]!r}, val={example[2]!r})"
        )
    rows["count"] = rows["count"].astype(float)
    return rows[TAG_COLUMNS]


def _check_lastfm_schema(connection: sqlite3.Connection, path: Path) -> None:
    for table, columns in LASTFM_SCHEMA.items():
        found = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        if not found:
            raise ValueError(
                f"Last.fm tag database {path} has no table {table!r}; expected tables {list(LASTFM_SCHEMA)} "
                "as in the MSD Last.fm lastfm_tags.db"
            )
        missing = [column for column in columns if column not in found]
        if missing:
            raise ValueError(
                f"Last.fm tag database {path}: table {table!r} lacks column(s) {missing} (has {found}); "
                f"expected {LASTFM_SCHEMA}"
            )


def write_lastfm_db(tags: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write `[msd_id, tag[, count]]` rows as a database with `lastfm_tags.db`'s schema (see module docstring).

    Tracks and tags get ROWIDs 1..n in sorted order; `count` defaults to 100. The file is replaced atomically.
    """
    path = Path(path)
    missing = [column for column in ("msd_id", "tag") if column not in tags.columns]
    if missing:
        raise ValueError(
            f"cannot write {path}: tag table lacks column(s) {missing}; expected msd_id,tag[,count]"
        )
    rows = tags.assign(count=tags["count"] if "count" in tags.columns else DEFAULT_COUNT)
    rows = rows.astype({"msd_id": str, "tag": str, "count": float})
    tids = sorted(rows["msd_id"].unique())
    tag_names = sorted(rows["tag"].unique())
    tid_index = {tid: i + 1 for i, tid in enumerate(tids)}
    tag_index = {tag: i + 1 for i, tag in enumerate(tag_names)}
    with atomic_path(path) as tmp, closing(sqlite3.connect(tmp)) as connection, connection:
        connection.executescript(
            "CREATE TABLE tids (tid TEXT PRIMARY KEY);"
            "CREATE TABLE tags (tag TEXT PRIMARY KEY);"
            "CREATE TABLE tid_tag (tid INT, tag INT, val FLOAT);"
        )
        connection.executemany(
            "INSERT INTO tids (ROWID, tid) VALUES (?, ?)", [(i, t) for t, i in tid_index.items()]
        )
        connection.executemany(
            "INSERT INTO tags (ROWID, tag) VALUES (?, ?)", [(i, t) for t, i in tag_index.items()]
        )
        connection.executemany(
            "INSERT INTO tid_tag (tid, tag, val) VALUES (?, ?, ?)",
            [
                (tid_index[m], tag_index[t], c)
                for m, t, c in rows[["msd_id", "tag", "count"]].itertuples(index=False)
            ],
        )
        connection.executescript(
            "CREATE INDEX idx_tid_tag_tid ON tid_tag(tid);CREATE INDEX idx_tid_tag_tag ON tid_tag(tag);"
        )


def tag_matrix(videos: pd.DataFrame, tags: pd.DataFrame, top_k: int, min_count: float = 0.0) -> TagMatrix:
    """0/1 labels of the `top_k` most frequent tags over the MSD-overlap set (study Table 2, top-10 tags).

    The overlap set is the videos whose `msd_id` has at least one tag with `count >= min_count`; other videos
    are left out. Frequency is the number of overlap videos carrying a tag, ties broken by tag name. A video
    of the overlap set that carries none of the top tags stays in, with an all-zero row.
    """
    for frame, name, columns in ((videos, "videos", ("video_id", "msd_id")), (tags, "tags", TAG_COLUMNS)):
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise ValueError(f"tag_matrix: {name} table lacks column(s) {missing}; has {list(frame.columns)}")
    if top_k < 1:
        raise ValueError(f"tag_matrix: top_k must be at least 1, got {top_k} (config key probe.top_tags)")
    duplicated = videos["video_id"][videos["video_id"].duplicated()]
    if len(duplicated):
        raise ValueError(
            f"tag_matrix: video_id {duplicated.iloc[0]!r} appears more than once in the metadata"
        )

    msd_id = videos["msd_id"].astype("string").str.strip()
    linked = pd.DataFrame({"video_id": videos["video_id"], "msd_id": msd_id})[msd_id.notna() & (msd_id != "")]
    kept_tags = tags.loc[tags["count"] >= min_count, ["msd_id", "tag"]].drop_duplicates()
    pairs = linked.merge(kept_tags, on="msd_id", how="inner")
    overlap = linked[linked["video_id"].isin(pairs["video_id"])]
    log.info(
        "MSD overlap: %d of %d videos carry an msd_id, %d of those have tags with count >= %g",
        len(linked),
        len(videos),
        len(overlap),
        min_count,
    )

    frequency = pairs.groupby("tag")["video_id"].nunique().reset_index(name="videos")
    frequency = frequency.sort_values(["videos", "tag"], ascending=[False, True], kind="stable")
    tag_names = frequency["tag"].head(top_k).tolist()
    if len(tag_names) < top_k:
        warnings.warn(
            f"only {len(tag_names)} distinct tags in the MSD overlap set, fewer than top_k={top_k} "
            "(probe.top_tags); the tagging task uses all of them",
            stacklevel=2,
        )

    video_ids = overlap["video_id"].to_numpy()
    labels = np.zeros((len(video_ids), len(tag_names)), dtype=np.uint8)
    row = pd.Series(np.arange(len(video_ids)), index=video_ids)
    column = pd.Series(np.arange(len(tag_names)), index=tag_names, dtype=int)
    top = pairs[pairs["tag"].isin(tag_names)]
    labels[row[top["video_id"]].to_numpy(), column[top["tag"]].to_numpy()] = 1
    return TagMatrix(video_ids=video_ids, labels=labels, tag_names=tag_names)


def _first(lines: np.ndarray, n: int = 5) -> str:
    shown = ", ".join(str(line) for line in lines[:n])
    return shown + (f" and {len(lines) - n} more" if len(lines) > n else "")
