"""Reading a collection's tags from a full-size Last.fm `lastfm_tags.db`.

Issue "Real collections at the study's scale".

Builds a synthetic database of the release's size (505,216 tracks, 522,366 tags, 8,598,630 track-tag rows, the
schema and indexes of `mvcl.data.tags.write_lastfm_db`; tags drawn Zipf-like, 1-100 weights) and times
`mvcl.data.tags.read_msd_tags(db, msd_ids)` for collections of 94,000 and 1,000 tracks of the database (the
worst case: every id has tags). Each read runs in its own subprocess, which reports its wall and CPU time and
its peak RSS beside the RSS of the same process before the read (Python + pandas). The peak is VmHWM of
/proc/self/status: `ru_maxrss` survives execve, so a child would report its parent's peak (the database
builder's). `--compare` also times the reader it replaced: chunked `IN (...)` lists of 500 ids.

    python benchmarks/tags.py [--folder /tmp] [--keep] [--out results/benchmarks/tags.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
from scratch import clean_up, write_rows

from mvcl.data.tags import read_msd_tags

REPO = Path(__file__).resolve().parents[1]
# The MSD Last.fm dataset's own counts.
TRACKS = 505_216
TAGS = 522_366
ROWS = 8_598_630
BATCH = 1_000_000


def track_ids(count: int, seed: int) -> list[str]:
    """MSD-like track ids (TR + 16 upper-case hex digits), unique, in random order."""
    numbers = np.random.default_rng(seed).choice(16**8, size=count, replace=False)
    return [f"TR{number:08X}{number * 2654435761 % 16**8:08X}" for number in numbers.tolist()]


def build_database(path: Path, tracks: int, tags: int, rows: int, seed: int = 0) -> list[str]:
    """A `lastfm_tags.db` of the given size in one transaction; returns its track ids (ROWID order)."""
    rng = np.random.default_rng(seed)
    tids = track_ids(tracks, seed)
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE tids (tid TEXT PRIMARY KEY);"
            "CREATE TABLE tags (tag TEXT PRIMARY KEY);"
            "CREATE TABLE tid_tag (tid INT, tag INT, val FLOAT);"
        )
        connection.executemany("INSERT INTO tids (ROWID, tid) VALUES (?, ?)", enumerate(tids, start=1))
        connection.executemany(
            "INSERT INTO tags (ROWID, tag) VALUES (?, ?)", ((i, f"tag {i:06d}") for i in range(1, tags + 1))
        )
        # Rows grouped by track, as the release stores them; a track's tags are Zipf-distributed (few
        # frequent tags such as "rock", a long tail).
        per_track = rng.multinomial(rows - tracks, np.full(tracks, 1 / tracks)) + 1
        owner = np.repeat(np.arange(1, tracks + 1), per_track)
        for start in range(0, rows, BATCH):
            stop = min(start + BATCH, rows)
            tag = np.minimum(rng.zipf(1.3, stop - start), tags)
            val = rng.integers(1, 101, stop - start).astype(float)
            connection.executemany(
                "INSERT INTO tid_tag VALUES (?, ?, ?)",
                zip(owner[start:stop].tolist(), tag.tolist(), val.tolist(), strict=True),
            )
        connection.executescript(
            "CREATE INDEX idx_tid_tag_tid ON tid_tag(tid); CREATE INDEX idx_tid_tag_tag ON tid_tag(tag);"
        )
    return tids


def chunked_in_read(path: Path, msd_ids: list[str], chunk: int = 500) -> pd.DataFrame:
    """The reader `read_msd_tags` replaced: IN lists of 500 ids, names joined per row, grouped on strings."""
    query = (
        "SELECT tids.tid AS msd_id, tags.tag AS tag, tid_tag.val AS count, typeof(tid_tag.val) AS val_type, "
        "tid_tag.tid AS tid_index, tid_tag.tag AS tag_index "
        "FROM tid_tag LEFT JOIN tids ON tids.ROWID = tid_tag.tid LEFT JOIN tags ON tags.ROWID = tid_tag.tag"
        " WHERE tids.tid IN ({})"
    )
    wanted = sorted(set(msd_ids))
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
        rows = pd.concat(
            [
                pd.read_sql_query(query.format(",".join("?" * len(part))), connection, params=part)
                for part in (wanted[i : i + chunk] for i in range(0, len(wanted), chunk))
            ],
            ignore_index=True,
        )
    rows["count"] = rows["count"].astype(float)
    return rows.groupby(["msd_id", "tag"], as_index=False, sort=True)["count"].max()


def measure(database: Path, ids_file: Path, reader: str) -> dict:
    """Run in a subprocess: one read, its wall time and the process's RSS before and at its peak."""
    msd_ids = ids_file.read_text().split()
    before_mb = _status_mb("VmRSS")
    start, cpu = time.perf_counter(), _cpu_seconds()
    tags = (
        read_msd_tags(database, msd_ids) if reader == "read_msd_tags" else chunked_in_read(database, msd_ids)
    )
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    peak_mb = _status_mb("VmHWM")
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "rows": len(tags),
        "tracks_found": int(tags["msd_id"].nunique()),
        "rss_before_mb": round(before_mb, 1),
        "peak_rss_mb": round(peak_mb, 1),
    }


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_measurement(database: Path, ids_file: Path, reader: str) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, __file__, "--measure", str(database), str(ids_file), reader]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="keep the database (default: deleted)")
    parser.add_argument("--collections", type=int, nargs="+", default=[94_000, 1_000])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the release's size")
    parser.add_argument("--compare", action="store_true", help="also time the replaced chunked IN reader")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "tags.csv")
    parser.add_argument("--measure", nargs=3, metavar=("DB", "IDS", "READER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]), args.measure[2])))
        return

    tracks, tags, rows = (max(1, int(n * args.scale)) for n in (TRACKS, TAGS, ROWS))
    work = Path(tempfile.mkdtemp(prefix="mvcl-tags-", dir=args.folder))
    database = work / "lastfm_tags.db"
    try:
        start = time.perf_counter()
        tids = build_database(database, tracks, tags, rows)
        built_s = time.perf_counter() - start
        print(f"built {database} ({database.stat().st_size / 1e9:.2f} GB) in {built_s:.0f} s", flush=True)
        rng = np.random.default_rng(1)
        results = []
        readers = ["read_msd_tags", "chunked_in"] if args.compare else ["read_msd_tags"]
        for size in args.collections:
            ids_file = work / f"ids_{size}.txt"
            ids_file.write_text("\n".join(rng.choice(tids, size=min(size, len(tids)), replace=False)))
            for reader in readers:
                result = run_measurement(database, ids_file, reader)
                results.append(
                    {
                        "reader": reader,
                        "collection_ids": size,
                        "db_tracks": tracks,
                        "db_rows": rows,
                        "db_tags": tags,
                        "db_build_seconds": round(built_s, 1),
                        **result,
                    }
                )
                print(results[-1], flush=True)
        write_rows(args.out, results)
    finally:
        clean_up(work, args.keep)


if __name__ == "__main__":
    main()
