"""The metadata CSV (video_id, path[, genre, msd_id, artist, title]): read and checked as a whole.

Torch- and PyAV-free, so the workflow checks the CSV when it starts (`check_metadata`, from rules/common.smk,
as the Snakemake catalog workflows check their sample sheets) and a bad CSV stops the run with one line that
names the file, the line and what to do, before any job. No media file is opened here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("video_id", "path")
OPTIONAL_COLUMNS = ("genre", "msd_id", "artist", "title")
SPLITS = ("train", "val", "test")
# dataset.split.group_by: videos with the same value in this column share a split.
DEFAULT_GROUP_BY = "msd_id"

_SHOWN = 5  # lines or ids a message lists before "..."


class MetadataError(ValueError):
    """The metadata CSV cannot be used as a whole; the message names the file and what to fix."""


def check_metadata(config: dict) -> None:
    """Read dataset.metadata_csv as ingest will and raise MetadataError (one line) on anything wrong.

    With demo.enabled the demo writes the CSV in a job, so there is nothing to check yet.
    """
    if config["demo"]["enabled"]:
        return
    table = read_metadata(config["dataset"]["metadata_csv"])
    group_by = group_column(config["dataset"]["split"])
    if group_by != "video_id" and group_by not in table.attrs["csv_columns"]:
        raise MetadataError(
            f"{config['dataset']['metadata_csv']}: dataset.split.group_by is '{group_by}', which is not a "
            f"column of the CSV ({', '.join(table.attrs['csv_columns'])}); add the column, name another one, "
            "or set group_by: video_id to give every video its own split"
        )


def metadata_problem(config: dict) -> str:
    """`check_metadata`'s message, or '' when the CSV is fine: the workflow prints it as its one line and stops."""
    try:
        check_metadata(config)
    except MetadataError as error:
        return str(error)
    return ""


def read_metadata(csv_path: str | Path) -> pd.DataFrame:
    """Read and check the metadata CSV; `path` comes back absolute (relative paths are relative to the CSV).

    Columns beyond the known ones are kept (after them), so `dataset.split.group_by` can name any column. Known
    columns the CSV lacks come back empty; `attrs["csv_columns"]` lists the CSV's own columns.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise MetadataError(f"{csv_path}: metadata CSV not found (config key dataset.metadata_csv)")
    raw = csv_path.read_bytes()
    text = _decode(csv_path, raw)
    if not text.strip():
        raise MetadataError(
            f"{csv_path}: the metadata CSV is empty; write a header line video_id,path"
            "[,genre,msd_id,artist,title] and one line per video"
        )
    try:
        table = pd.read_csv(
            csv_path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig"
        )
    except pd.errors.ParserError as error:
        raise MetadataError(
            f"{csv_path}: not a readable CSV ({' '.join(str(error).split())}); quote fields that hold commas"
        ) from error
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise MetadataError(
            f"{csv_path}: missing required column(s) {', '.join(missing)}; found {', '.join(table.columns)}. "
            "The CSV needs at least video_id,path (optional: genre,msd_id,artist,title)."
        )
    if table.empty:
        raise MetadataError(
            f"{csv_path}: the metadata CSV has a header but no videos; add one line per video"
        )
    for column in table.columns:
        table[column] = table[column].str.strip()
    # pandas skips blank lines, so a row's line in the file is found by counting the non-blank ones.
    lines = _data_lines(text)
    empty_ids = np.flatnonzero(table["video_id"] == "")
    if empty_ids.size:
        raise MetadataError(
            f"{csv_path}: empty video_id on line(s) {_lines(lines, empty_ids)}; give every video an id"
        )
    duplicated = table["video_id"][table["video_id"].duplicated(keep=False)]
    if not duplicated.empty:
        first = duplicated.iloc[0]
        where = _lines(lines, np.flatnonzero(table["video_id"] == first))
        repeated = ", ".join(map(str, duplicated.unique()[:_SHOWN]))
        raise MetadataError(
            f"{csv_path}: video_id must be unique; repeated: {repeated} ('{first}' on lines {where}); "
            "give every video its own id"
        )
    empty_paths = np.flatnonzero(table["path"] == "")
    if empty_paths.size:
        first = table["video_id"].iloc[empty_paths[0]]
        raise MetadataError(
            f"{csv_path}: empty path on line(s) {_lines(lines, empty_paths)} (video_id {first}); give the "
            "video's file (relative to the CSV's folder, or absolute) or remove the line"
        )
    csv_columns = list(table.columns)
    for column in OPTIONAL_COLUMNS:
        if column not in table.columns:
            table[column] = ""
    base = csv_path.resolve().parent
    table["path"] = [_resolve(base, path) for path in table["path"]]
    known = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS]
    table = table[known + [column for column in table.columns if column not in known]].reset_index(drop=True)
    table.attrs["csv_columns"] = csv_columns
    return table


def group_column(split: dict) -> str:
    """The column whose equal values share a split (dataset.split.group_by; msd_id when not given)."""
    return split.get("group_by") or DEFAULT_GROUP_BY


def is_missing(values: pd.Series, missing_values: Iterable[str]) -> pd.Series:
    """True where a value is empty or one of `missing_values` (dataset.missing_values), both sides stripped and
    compared case-insensitively: placeholders such as "NA" or "unknown" are no value, not a shared one."""
    placeholders = {str(value).strip().casefold() for value in missing_values} | {""}
    return values.astype(str).str.strip().str.casefold().isin(placeholders)


def fractions_of(split: dict) -> dict[str, float]:
    """train/val/test fractions of dataset.split, without its other keys."""
    return {name: float(split[name]) for name in SPLITS}


def _decode(csv_path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise MetadataError(
            f"{csv_path}: line {line} is not UTF-8 (byte 0x{raw[error.start]:02x} at column {column}); "
            "save the CSV as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def _data_lines(text: str) -> list[int]:
    """1-based file line of each data row: the non-blank lines after the header (quoted newlines aside)."""
    numbered = [number for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return numbered[1:]


def _lines(lines: list[int], rows: np.ndarray) -> str:
    shown = [str(lines[row]) if row < len(lines) else f"row {row + 1}" for row in rows[:_SHOWN]]
    return ", ".join(shown) + (", ..." if rows.size > _SHOWN else "")


def _resolve(base: Path, path: str) -> str:
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else (base / candidate).resolve())
