"""MSD Last.fm tags for the videos that carry an `msd_id`, and the tagging task's label matrix.

Three inputs are accepted by `read_msd_tags`, told apart by the file's first bytes:

- a CSV with columns `msd_id,tag[,count]` (`count` optional, default 100, the largest Last.fm weight);
- the Million Song Dataset's Last.fm tag database `lastfm_tags.db` (SQLite), read directly;
- a Parquet table `msd_id,tag,count`, as `rule msd_tags` writes (results/data/msd_tags.parquet: only the
  collection's tracks, read once per run so that each probe job does not search the 8.6M-row database).

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
PARQUET_MAGIC = b"PAR1"
DEFAULT_COUNT = 100.0
TAG_COLUMNS = ["msd_id", "tag", "count"]
LASTFM_SCHEMA = {"tids": ["tid"], "tags": ["tag"], "tid_tag": ["tid", "tag", "val"]}
# The tid_tag rows of the ids in temp.wanted. CROSS JOIN keeps this order (ids -> tids through its tid index ->
# tid_tag through its tid index): without statistics SQLite's planner rather scans all 8.6M rows of tid_tag
# (3 s even for 1,000 ids, see benchmarks/tags.py). A database without an index on tid_tag.tid gets a
# transient automatic one (8 s).
HITS_QUERY = (
    "SELECT tid_tag.tid AS tid, tid_tag.tag AS tag, tid_tag.val AS val FROM temp.wanted "
    "CROSS JOIN tids ON tids.tid = wanted.tid CROSS JOIN tid_tag ON tid_tag.tid = tids.ROWID"
)


class TagMatrix(NamedTuple):
    """Labels of the tagging task: row i of `labels` belongs to `video_ids[i]`, column j to `tag_names[j]`."""

    video_ids: np.ndarray
    labels: np.ndarray
    tag_names: list[str]


def read_msd_tags(path: str | os.PathLike, msd_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Read MSD tags as a DataFrame `[msd_id, tag, count]` from a CSV or a Last.fm SQLite database.

    `msd_ids` restricts the result to those tracks; in the database that is done in SQL (a temporary table
    of the ids joined against tids and tid_tag), so a 94k-track collection reads only its own rows.
    Rows are sorted by (msd_id, tag); repeated pairs keep their largest count. Raises ValueError naming the
    file and the problem when the input is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MSD tag file {path} does not exist; set dataset.msd_tags to a CSV or lastfm_tags.db"
        )
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_MAGIC))
    if header == SQLITE_MAGIC:
        return _read_lastfm_db(path, msd_ids)
    tags = _read_tags_parquet(path) if header.startswith(PARQUET_MAGIC) else _read_tags_csv(path)
    if msd_ids is not None:
        tags = tags[tags["msd_id"].isin(set(msd_ids))]
    tags = tags.groupby(["msd_id", "tag"], as_index=False, sort=True)["count"].max()
    return tags.reset_index(drop=True)[TAG_COLUMNS]


def collection_tags(manifest: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """The tags of the manifest's tracks (its non-empty `msd_id`s) from `path`, for results/data/msd_tags.parquet."""
    if "msd_id" not in manifest.columns:
        raise ValueError(
            f"the manifest has no 'msd_id' column (has {list(manifest.columns)}); the tagging probe needs one "
            "(metadata CSV: msd_id)"
        )
    msd_ids = manifest["msd_id"].astype("string").str.strip()
    msd_ids = msd_ids[msd_ids.notna() & (msd_ids != "")].unique()
    tags = read_msd_tags(path, msd_ids.tolist())
    log.info(
        "MSD tags: %d rows for %d of the collection's %d msd_ids, from %s",
        len(tags),
        tags["msd_id"].nunique(),
        len(msd_ids),
        path,
    )
    return tags


def _read_tags_parquet(path: Path) -> pd.DataFrame:
    try:
        tags = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises its own error types for damaged files
        raise ValueError(f"MSD tag file {path} looks like Parquet but cannot be read: {error}") from None
    missing = [column for column in TAG_COLUMNS if column not in tags.columns]
    if missing:
        raise ValueError(
            f"MSD tag Parquet {path} lacks column(s) {missing}; found {list(tags.columns)}, expected {TAG_COLUMNS}"
        )
    return tags.astype({"msd_id": str, "tag": str, "count": float})[TAG_COLUMNS]


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
    """The (restricted) rows of tid_tag with their track and tag names; checks run in SQL on those rows only.

    Strings are fetched once per distinct track and tag, not once per row (a 94k-track collection has about
    1.6M rows but only 94k track ids), and repeated pairs are reduced on the integer ROWIDs.
    """
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            _check_lastfm_schema(connection, path)
            _select_hits(connection, msd_ids)
            _check_hits(connection, path)
            hits = pd.read_sql_query("SELECT tid, tag, val FROM temp.hits", connection)
            tracks = pd.read_sql_query(
                "SELECT ROWID AS tid, tid AS msd_id FROM tids WHERE ROWID IN (SELECT tid FROM temp.hits)",
                connection,
            )
            names = pd.read_sql_query(
                "SELECT ROWID AS tag, tag AS name FROM tags WHERE ROWID IN (SELECT tag FROM temp.hits)",
                connection,
            )
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as error:
        raise ValueError(f"Last.fm tag database {path} cannot be read: {error}") from None
    largest = hits.astype({"val": float}).groupby(["tid", "tag"], sort=False)["val"].max().reset_index()
    # Codes into sorted name lists, so that sorting the codes sorts the names.
    tracks = tracks.astype({"msd_id": str}).sort_values("msd_id", kind="stable")
    names = names.astype({"name": str}).sort_values("name", kind="stable")
    track_code = pd.Index(tracks["tid"]).get_indexer(largest["tid"])
    tag_code = pd.Index(names["tag"]).get_indexer(largest["tag"])
    order = np.lexsort((tag_code, track_code))
    return pd.DataFrame(
        {
            "msd_id": tracks["msd_id"].to_numpy(dtype=object)[track_code[order]],
            "tag": names["name"].to_numpy(dtype=object)[tag_code[order]],
            "count": largest["val"].to_numpy()[order],
        }
    )


def _select_hits(connection: sqlite3.Connection, msd_ids: Iterable[str] | None) -> None:
    """temp.hits = the tid_tag rows of `msd_ids` (all rows when None), joined in SQL through the tids index."""
    if msd_ids is None:
        connection.execute("CREATE TEMP TABLE hits AS SELECT tid, tag, val FROM tid_tag")
        return
    connection.execute("CREATE TEMP TABLE wanted (tid TEXT PRIMARY KEY)")
    connection.executemany(
        "INSERT OR IGNORE INTO temp.wanted VALUES (?)", ((str(msd_id),) for msd_id in msd_ids)
    )
    connection.execute(f"CREATE TEMP TABLE hits AS {HITS_QUERY}")


def _check_hits(connection: sqlite3.Connection, path: Path) -> None:
    """Every selected row names a tag (and a track) that exists and carries a numeric weight."""
    names = (
        "FROM temp.hits LEFT JOIN tids ON tids.ROWID = hits.tid LEFT JOIN tags ON tags.ROWID = hits.tag "
    )
    problems = (
        (
            "WHERE tids.ROWID IS NULL OR tags.ROWID IS NULL",
            "hits.tid, hits.tag",
            "{count} tid_tag row(s) point at no row of tids/tags (first: tid={0}, tag={1}); the file is "
            "damaged, re-download lastfm_tags.db",
        ),
        (
            "WHERE typeof(hits.val) NOT IN ('real', 'integer')",
            "tids.tid, tags.tag, hits.val",
            "tid_tag.val must be numeric, {count} row(s) are not (first: msd_id={0!r}, tag={1!r}, val={2!r})",
        ),
    )
    for where, columns, message in problems:
        (count,) = connection.execute(f"SELECT count(*) {names}{where}").fetchone()
        if count:
            example = connection.execute(f"SELECT {columns} {names}{where} LIMIT 1").fetchone()
            raise ValueError(f"Last.fm tag database {path}: {message.format(*example, count=count)}")


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


def tag_matrix(
    videos: pd.DataFrame,
    tags: pd.DataFrame,
    top_k: int,
    min_count: float = 0.0,
    vocabulary_videos: Iterable[str] | None = None,
) -> TagMatrix:
    """0/1 labels of the `top_k` most frequent tags over the MSD-overlap set (study Table 2, top-10 tags).

    The overlap set is the videos whose `msd_id` has at least one tag with `count >= min_count`; other videos
    are left out. Frequency is the number of overlap videos carrying a tag, ties broken by tag name, counted
    over `vocabulary_videos` only when given (the probes pass the training videos, so test labels never choose
    the task's tags). A video of the overlap set that carries none of the top tags stays in, with an all-zero
    row.
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

    counted = pairs if vocabulary_videos is None else pairs[pairs["video_id"].isin(set(vocabulary_videos))]
    frequency = counted.groupby("tag")["video_id"].nunique().reset_index(name="videos")
    frequency = frequency.sort_values(["videos", "tag"], ascending=[False, True], kind="stable")
    tag_names = frequency["tag"].head(top_k).tolist()
    if len(tag_names) < top_k:
        warnings.warn(
            f"only {len(tag_names)} distinct tags in the MSD overlap set"
            f"{'' if vocabulary_videos is None else ' (training videos)'}, fewer than top_k={top_k} "
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
