"""The encoders a run can use, by name: what kind each is, its options, and which rule extracts it (torch-free).

An encoder turns a segment's window into one vector: "window of audio -> vector" or "clip of frames ->
vector" (the contract in `mvcl.features.encoders.contract`, after the HEAR 2021 API). A *kind* is an
implementation (musicnn, R(2+1)D-18, the weight-free `mir` and `style` baselines, Hugging Face models,
precomputed features); an *encoder* is a name in the config's `encoders:` section bound to a kind and its
options (as MARBLE registers its encoders by name in YAML). The names `musicnn`, `r2plus1d`, `mir` and
`style` always exist, with their kind's default options; `encoders:` adds names or changes them.

Each configuration trains on one audio and one video encoder (`configurations.<name>.encoders`, default the
study's pair). Each encoder used is extracted once, to results/features/{name}.npy, and shared by every
configuration that names it.

This module only reads the config and imports nothing heavy: the Snakefile reads it on every dry run. A
kind's implementation (`EncoderKind.loader`, "module:Class") is imported by the job that runs it.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from pathlib import Path

from mvcl.configuration import deep_merge, schema_defaults

MODALITIES = ("audio", "video")
# The study's pair: what every configuration trains on unless it names others (Table 1's rows as published).
STUDY_PAIR = {"audio": "musicnn", "video": "r2plus1d"}
# Rules that extract a kind's features: the study's two keep their tuned rules; every other kind shares one.
STUDY_RULES = ("audio_features", "video_features")


@dataclass(frozen=True)
class EncoderKind:
    """An implementation of the encoder contract, as the registry knows it without importing it.

    `modality` None: the entry's `modality` key says (precomputed features can be either). `section`: the
    config section that holds the kind's settings (musicnn: `audio_encoder`), else `$defs/<kind>_options`
    in the schema. `rule`: the rule that extracts it (`precomputed_features` reads a file instead).
    """

    name: str
    modality: str | None
    loader: str
    rule: str
    section: str | None = None
    summary: str = ""


KINDS: dict[str, EncoderKind] = {}


def register(kind: EncoderKind) -> EncoderKind:
    """Add a kind to the registry (a plugin calls this from a module the config's loader path imports)."""
    KINDS[kind.name] = kind
    return kind


for _kind in (
    EncoderKind("musicnn", "audio", "mvcl.features.encoders.study:MusicnnEncoder", "audio_features",
                "audio_encoder", "musicnn (Pons & Serra 2019), the study's audio encoder"),
    EncoderKind("r2plus1d", "video", "mvcl.features.encoders.study:R2plus1dEncoder", "video_features",
                "video_encoder", "R(2+1)D-18 (Tran et al. 2018), the study's video encoder"),
    EncoderKind("mir", "audio", "mvcl.features.encoders.mir:MirEncoder", "encoder_features",
                summary="weight-free MIR descriptors (librosa): MFCC, chroma, spectral shape, rhythm"),
    EncoderKind("style", "video", "mvcl.features.encoders.style:StyleEncoder", "encoder_features",
                summary="weight-free video style: colour, saturation, brightness, contrast, edges, motion, cuts"),
    EncoderKind("hf_audio", "audio", "mvcl.features.encoders.hf:HfAudioEncoder", "encoder_features",
                summary="a Hugging Face transformers audio model (wav2vec2, HuBERT, AST, MERT, ...)"),
    EncoderKind("hf_image", "video", "mvcl.features.encoders.hf:HfImageEncoder", "encoder_features",
                summary="a Hugging Face transformers image model (CLIP, SigLIP, ViT) per frame, pooled"),
    EncoderKind("precomputed", None, "mvcl.features.encoders.precomputed:PrecomputedFeatures",
                "precomputed_features", summary="your own per-segment vectors (parquet or npz)"),
):  # fmt: skip
    register(_kind)
# Every run knows these names, with their kind's defaults (`encoders:` may change their options).
BUILT_IN = {"musicnn": "musicnn", "r2plus1d": "r2plus1d", "mir": "mir", "style": "style"}


@dataclass(frozen=True)
class EncoderSpec:
    """One named encoder of a run, resolved: its kind, modality and complete options."""

    name: str
    kind: str
    modality: str
    options: dict = field(default_factory=dict)
    trust_remote_code: bool = False

    @property
    def rule(self) -> str:
        return KINDS[self.kind].rule

    def record(self) -> dict:
        """Plain data for a job's params and for provenance.json."""
        return {
            "name": self.name,
            "kind": self.kind,
            "modality": self.modality,
            "options": copy.deepcopy(self.options),
            "trust_remote_code": self.trust_remote_code,
        }

    @classmethod
    def from_record(cls, record: dict) -> EncoderSpec:
        return cls(**record)


def load_encoder(spec: EncoderSpec | dict, context: object | None = None) -> object:
    """The kind's implementation of the contract for `spec`, imported now (torch or transformers, if it needs)."""
    spec = spec if isinstance(spec, EncoderSpec) else EncoderSpec.from_record(spec)
    module, _, name = KINDS[spec.kind].loader.partition(":")
    return getattr(importlib.import_module(module), name)(spec, context)


def _options_schema(kind: EncoderKind, schema: dict) -> dict:
    """The JSON schema of a kind's options (its config section's, or `$defs/<kind>_options`)."""
    if kind.section:
        return schema["properties"][kind.section]
    # a kind without options of its own takes none
    return schema["$defs"].get(
        f"{kind.name}_options", {"type": "object", "additionalProperties": False, "properties": {}}
    )


def _check(options: dict, definition: dict, schema: dict, where: str) -> None:
    """Raise ValueError naming the first bad key of `options` against `definition` (no defaults filled in)."""
    import jsonschema  # here: most jobs import this module and never check options (~0.2 CPU-s to import)

    checked = {"$defs": schema["$defs"], **definition}
    checked.pop("default", None)
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(checked).iter_errors(options))
    if error is not None:
        key = ".".join(map(str, [where, *error.absolute_path]))
        raise ValueError(f"{key}: {error.message}")


def resolve_encoders(config: dict, schema: dict) -> dict[str, EncoderSpec]:
    """Every encoder name of the run (built-in names first, then `encoders:` in config order), resolved.

    Options: the kind's schema defaults < its config section (musicnn: `audio_encoder`, r2plus1d:
    `video_encoder`) < the entry's `model` (the checkpoint, model id or folder) < the entry's `options`.
    Raises ValueError naming the key (`encoders.<name>.options.<key>`) for an unknown kind, an unknown or
    bad option, or a missing modality.
    """
    entries = {name: {"kind": kind} for name, kind in BUILT_IN.items()}
    for name, entry in (config.get("encoders") or {}).items():
        entries[name] = {**entries.get(name, {}), **(entry or {})}
    specs = {}
    for name, entry in entries.items():
        where = f"encoders.{name}"
        kind_name = entry.get("kind")
        if kind_name not in KINDS:
            raise ValueError(f"{where}.kind: {kind_name!r} is not one of {', '.join(KINDS)}")
        kind = KINDS[kind_name]
        modality = kind.modality or entry.get("modality")
        if modality not in MODALITIES:
            raise ValueError(f"{where}.modality: set audio or video for a {kind_name} encoder")
        if kind.modality and entry.get("modality") not in (None, kind.modality):
            raise ValueError(f"{where}.modality: a {kind_name} encoder is {_an(kind.modality)} encoder")
        definition = _options_schema(kind, schema)
        options = dict(entry.get("options") or {})
        if entry.get("model") is not None:
            options["model" if kind_name != "r2plus1d" else "weights"] = entry["model"]
        _check(options, definition, schema, f"{where}.options")
        section = (config.get(kind.section) or {}) if kind.section else {}
        resolved = deep_merge(deep_merge(schema_defaults(definition["properties"]), section), options)
        trust = bool(entry.get("trust_remote_code", False))
        specs[name] = EncoderSpec(name, kind_name, modality, resolved, trust)
    return specs


def start_problem(spec: EncoderSpec) -> str | None:
    """What stops `spec` before any job, in one line (a missing model or file, remote code, a bad layer)."""
    if spec.kind in ("hf_audio", "hf_image"):
        from mvcl.features.encoders.hub import model_problem

        return model_problem(spec)
    if spec.kind == "precomputed" and not Path(spec.options["path"]).is_file():
        return (
            f"encoders.{spec.name}.options.path: {spec.options['path']!r} is not a file; point it at your "
            "per-segment vectors (.parquet or .npz, README: bring your own features)"
        )
    return None


def check_pair(configuration: str, pair: dict, encoders: dict[str, EncoderSpec]) -> None:
    """Raise ValueError when a configuration names an unknown encoder or one of the other modality."""
    for modality in MODALITIES:
        name = pair[modality]
        fitting = [spec.name for spec in encoders.values() if spec.modality == modality]
        where = f"configurations.{configuration}.encoders.{modality}"
        if name not in encoders:
            raise ValueError(f"{where}: no encoder named {name!r}; {modality} encoders: {', '.join(fitting)}")
        if encoders[name].modality != modality:
            raise ValueError(
                f"{where}: {name!r} is {_an(encoders[name].modality)} encoder; {modality} encoders: {', '.join(fitting)}"
            )


def _an(modality: str) -> str:
    return f"an {modality}" if modality == "audio" else f"a {modality}"
