"""Where a Hugging Face model's files are on this machine, and what is wrong with them, without transformers.

mvcl never downloads a model at run time: `model` is a local folder (`save_pretrained`, or
`hf download <id> --local-dir <folder>`) or a model id already in the Hugging Face cache
(`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else ~/.cache/huggingface/hub), at `revision` or the cache's main.
`model_problem` reads only the folder's config.json, so the Snakefile can stop a run at start, in one line,
when a model is missing, runs its own code without `trust_remote_code`, or has no layer `layer`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mvcl.features.encoders.registry import EncoderSpec


def hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return home / "hub"


def model_folder(source: str, revision: str | None = None) -> Path | None:
    """The folder holding `source`'s files: itself when a folder, else its cached snapshot; None if neither."""
    if Path(source).is_dir():
        return Path(source)
    repo = hub_cache() / f"models--{source.replace('/', '--')}"
    if not repo.is_dir():
        return None
    ref = repo / "refs" / (revision or "main")
    commit = ref.read_text().strip() if ref.is_file() else revision
    snapshot = repo / "snapshots" / str(commit)
    return snapshot if commit and snapshot.is_dir() else None


def fetch_hint(name: str, source: str, revision: str | None) -> str:
    pinned = f" --revision {revision}" if revision else ""
    return (
        f"set encoders.{name}.model to a local folder, or fetch it once on a machine with internet: "
        f"`hf download {source or '<model id>'}{pinned}` (then copy {hub_cache()} here, or use --local-dir)"
    )


def hidden_layers(config: dict) -> int | None:
    """Transformer layers of a model's config.json (a CLIP-like model's vision tower's)."""
    for candidate in (config, config.get("vision_config") or {}, config.get("audio_config") or {}):
        if isinstance(candidate.get("num_hidden_layers"), int):
            return candidate["num_hidden_layers"]
    return None


def check_layer(name: str, layer: int | None, layers: int | None) -> str | None:
    """hidden_states has layers + 1 entries (the embeddings, then each layer): layer in [-(L+1), L]."""
    if layer is None or layers is None or -(layers + 1) <= layer <= layers:
        return None
    return (
        f"encoders.{name}.options.layer: {layer} is out of range; the model has {layers} layers, "
        f"so choose 0 (its embeddings) to {layers}, or -1 for the last"
    )


def model_problem(spec: EncoderSpec) -> str | None:
    """One line on what stops `spec`'s Hugging Face model from loading offline, or None."""
    source, revision = spec.options["model"], spec.options.get("revision")
    if not source:
        return f"encoders.{spec.name}.model: empty; {fetch_hint(spec.name, source, revision)}"
    folder = model_folder(source, revision)
    if folder is None:
        at = f" at revision {revision}" if revision else ""
        return (
            f"encoders.{spec.name}.model: {source!r}{at} is neither a folder nor in the Hugging Face cache "
            f"({hub_cache()}); {fetch_hint(spec.name, source, revision)}"
        )
    config_path = folder / "config.json"
    if not config_path.is_file():
        return f"encoders.{spec.name}.model: {folder} has no config.json; save the model there with save_pretrained"
    config = json.loads(config_path.read_text())
    if config.get("auto_map") and not spec.trust_remote_code:
        return remote_code_problem(spec.name, source)
    return check_layer(spec.name, spec.options.get("layer"), hidden_layers(config))


def remote_code_problem(name: str, source: str) -> str:
    return (
        f"encoders.{name}: {source} runs its own Python code (trust_remote_code, as MERT does); set "
        f"encoders.{name}.trust_remote_code: true only if you trust that repository (README: trust_remote_code)"
    )
