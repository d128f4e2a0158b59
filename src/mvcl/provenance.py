"""Which encoder weights a run actually used: recorded in results/provenance.json and in table footnotes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

# Said wherever MSD-trained musicnn weights are chosen: in the extraction log and in every table's footnote.
MSD_LEAK_NOTE = (
    "MSD_* musicnn weights were trained on Million Song Dataset tags, which overlap the MSD tagging probe's "
    "labels: its musicnn scores are optimistic (the study's code used an MTAT-trained musicnn, MTT_musicnn)"
)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_stamps(paths, missing_ok: bool = False) -> list[list]:
    """[path, size, modification time in ns] of each of `paths`, sorted: what says a file changed without
    reading it. A file that cannot be read raises, or with `missing_ok` gets [path, None, None]."""
    stamps = []
    for path in sorted(map(str, paths)):
        try:
            status = Path(path).stat()
        except OSError:
            if not missing_ok:
                raise
            stamps.append([path, None, None])
            continue
        stamps.append([path, status.st_size, status.st_mtime_ns])
    return stamps


def fingerprint(facts: dict) -> str:
    """16 hex digits of the sha256 of `facts` as sorted JSON: a short name for what determines a kept state."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def musicnn_provenance(model: str) -> dict:
    """Name, checkpoint file and sha256 of the musicnn checkpoint from the installed `musicnn` package."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or spec.origin is None:
        return {"name": model, "source": "musicnn package not installed", "sha256": None}
    # The wheel stores each checkpoint with an empty prefix: <model>/.data-00000-of-00001 and <model>/.index.
    data = Path(spec.origin).parent / model / ".data-00000-of-00001"
    return {
        "name": model,
        "source": str(data),
        "sha256": sha256_file(data) if data.exists() else None,
    }


def merge_video_provenance(records: list[dict]) -> dict:
    """One record when every shard used the same weights; otherwise all distinct ones (a mixed run is flagged)."""
    distinct = {json.dumps(record, sort_keys=True) for record in records}
    if len(distinct) == 1:
        return records[0]
    return {"mixed": True, "records": [json.loads(record) for record in sorted(distinct)]}


def records_by_encoder(paths: list[str | Path]) -> dict[str, list[dict]]:
    """The provenance records of feature jobs by encoder name, from their paths:
    results/features/{encoder}/shard_{shard}.json, or results/features/{encoder}.json (precomputed)."""
    records: dict[str, list[dict]] = {}
    for path in map(Path, paths):
        name = path.stem if path.parent.name == "features" else path.parent.name
        records.setdefault(name, []).append(json.loads(path.read_text()))
    return records


def encoders_provenance(
    encoders: dict[str, dict], records: dict[str, list[dict]], audio_encoder: dict, video_encoder: dict
) -> dict:
    """results/provenance.json: `encoders` (name -> its spec and the merged record of its shards), and for
    the study's encoders, when used, the study's keys (`audio`: the musicnn checkpoint, `video`: R(2+1)D's
    weights, and their config sections).

    `records`: encoder name -> the records its jobs wrote (musicnn's jobs write none: its checkpoint is
    looked up here).
    """
    provenance: dict = {"encoders": {}}
    for name, spec in encoders.items():
        if spec["kind"] == "musicnn":
            extraction = musicnn_provenance(spec["options"]["model"])
        else:
            extraction = merge_video_provenance(records[name]) if records.get(name) else {}
        provenance["encoders"][name] = {**spec, "extraction": extraction}
    if "musicnn" in encoders:
        provenance["audio"] = provenance["encoders"]["musicnn"]["extraction"]
        provenance["audio_encoder"] = audio_encoder
    if "r2plus1d" in encoders:
        provenance["video"] = provenance["encoders"]["r2plus1d"]["extraction"]
        provenance["video_encoder"] = video_encoder
    return provenance


def footnote(provenance: dict) -> str:
    """One line naming the encoders and weights behind a table, e.g. for its Markdown rendering."""
    parts = []
    audio = provenance.get("audio")
    if audio is not None or "encoders" not in provenance:
        audio = audio or {}
        parts.append(f"Audio encoder: musicnn {audio.get('name')} (sha256 {str(audio.get('sha256'))[:12]}).")
    video = provenance.get("video")
    if video is not None or "encoders" not in provenance:
        video = video or {}
        video_text = video.get("description") or video.get("name") or json.dumps(video, sort_keys=True)
        parts.append(f"Video encoder: R(2+1)D-18, {video_text}.")
    others = []
    for name, spec in (provenance.get("encoders") or {}).items():
        if name in ("musicnn", "r2plus1d"):
            continue
        width = spec.get("extraction", {}).get("width")
        others.append(f"{name} ({spec['kind']}, {spec['modality']}{f', {width}-d' if width else ''})")
    if others:
        parts.append(f"Other encoders: {', '.join(others)}.")
    text = " ".join(parts)
    if str((audio or {}).get("name", "")).startswith("MSD_"):
        text += f" Caution: {MSD_LEAK_NOTE}."
    return text
