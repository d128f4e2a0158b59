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


def footnote(provenance: dict) -> str:
    """One line naming the weights behind a table, e.g. for its Markdown rendering."""
    audio = provenance.get("audio", {})
    video = provenance.get("video", {})
    video_text = video.get("description") or video.get("name") or json.dumps(video, sort_keys=True)
    audio_text = f"{audio.get('name')} (sha256 {str(audio.get('sha256'))[:12]})"
    text = f"Audio encoder: musicnn {audio_text}. Video encoder: R(2+1)D-18, {video_text}."
    if str(audio.get("name", "")).startswith("MSD_"):
        text += f" Caution: {MSD_LEAK_NOTE}."
    return text
