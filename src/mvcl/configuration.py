"""Named configurations (Table 1) resolved into complete model/loss/training settings (torch-free).

A configuration is an override of the base `model`, `loss` and `training` sections of config.yaml
(`configurations.<name>`). `resolve_configuration` deep-merges, in this order: the schema's defaults
(schemas/config.schema.yaml, `$defs/model|loss|training`), the base sections, the named override. The schema
is the one source of defaults, so the library works on a partial config (tests, notebooks) exactly as on one
that Snakemake validated. It is found at `$MVCL_SCHEMA` when set, else by walking up from this file to a
`schemas/config.schema.yaml` (a source checkout or an editable install).

Overrides are validated here, against `$defs/model|loss|training` without their defaults: the schema's
`configurations` entries are plain objects, so `snakemake.utils.validate` (which writes defaults into what it
validates) leaves them as the user wrote them, and `emb512: {model: {embedding_dim: 512}}` never carries a
`hidden_dim` that would silently undo a base `hidden_dim` the user changed.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

SECTIONS = ("model", "loss", "training")
# Which encoders a configuration trains on: its own choice only (no base section; default the study's pair).
ENCODER_PAIR = "encoders"
SCHEMA_ENV = "MVCL_SCHEMA"
_SCHEMA_RELPATH = Path("schemas") / "config.schema.yaml"


def find_schema() -> Path:
    """Path of config.schema.yaml: `$MVCL_SCHEMA`, else the first `schemas/` above this module."""
    if os.environ.get(SCHEMA_ENV):
        path = Path(os.environ[SCHEMA_ENV])
        if not path.is_file():
            raise FileNotFoundError(f"{SCHEMA_ENV}={path}: no such file")
        return path
    for folder in Path(__file__).resolve().parents:
        if (folder / _SCHEMA_RELPATH).is_file():
            return folder / _SCHEMA_RELPATH
    raise FileNotFoundError(
        f"no {_SCHEMA_RELPATH} above {Path(__file__).parent}; set {SCHEMA_ENV} to the repository's schema"
    )


def load_schema(path: str | Path | None = None) -> dict:
    """The workflow's config schema (parsed YAML)."""
    with open(path or find_schema()) as f:
        return yaml.safe_load(f)


def schema_defaults(properties: dict) -> dict:
    """Defaults of a schema `properties` block; nested objects with their own properties recurse."""
    out = {}
    for key, spec in properties.items():
        if "properties" in spec:
            out[key] = deep_merge(spec.get("default", {}), schema_defaults(spec["properties"]))
        elif "default" in spec:
            out[key] = copy.deepcopy(spec["default"])
    return out


def _check_keys(values: dict, properties: dict, where: str) -> None:
    """Raise on a key the schema does not know (a typo would otherwise be silently ignored)."""
    for key, value in values.items():
        if key not in properties:
            raise ValueError(f"{where}.{key}: unknown key; known: {', '.join(sorted(properties))}")
        if isinstance(value, dict) and "properties" in properties[key]:
            _check_keys(value, properties[key]["properties"], f"{where}.{key}")


def _check_values(values: dict, schema: dict, section: str, where: str) -> None:
    """Raise on a value of the wrong type or range, naming its key (the schema's checks, without defaults)."""
    import jsonschema  # here: most jobs import this module and never validate (~0.2 CPU-s to import)

    definition = {"$defs": schema["$defs"], "$ref": f"#/$defs/{section}"}
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(definition).iter_errors(values))
    if error is not None:
        key = ".".join(map(str, [where, *error.absolute_path]))
        raise ValueError(f"{key}: {error.message}")


def with_defaults(config: dict, schema: dict | None = None) -> dict:
    """A copy of `config`, checked against the schema, with every key it leaves out set to the schema's default.

    What `snakemake.utils.validate` does to the workflow's config (the same recipe: a default is set where
    its key is missing, then the value below it is checked, which sets its own defaults in turn). The Snakefile's
    config is already complete; the library and tests call this on a partial one. Raises ValueError naming the key.
    """
    import jsonschema  # see _check_values

    schema = schema if schema is not None else load_schema()
    check_properties = jsonschema.Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):  # noqa: ANN001, ANN202 (jsonschema's signature)
        if isinstance(instance, dict):
            for key, spec in properties.items():
                if "default" in spec:
                    instance.setdefault(key, copy.deepcopy(spec["default"]))
        yield from check_properties(validator, properties, instance, subschema)

    filling = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": set_defaults})
    complete = copy.deepcopy(config)
    error = jsonschema.exceptions.best_match(filling(schema).iter_errors(complete))
    if error is not None:
        raise ValueError(f"{'.'.join(map(str, error.absolute_path)) or 'config'}: {error.message}")
    return complete


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: `override` over `base`, merging nested dicts key by key (neither input is changed)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# Sections whose entries a later --configfile may remove by setting them to null.
REMOVABLE = (("configurations",), ("ablation", "entries"))


def drop_removed(config: dict) -> list[str]:
    """Remove the entries set to null in `configurations` and `ablation.entries`, in place, and return their
    dotted names. Snakemake merges every `--configfile` key by key over config.yaml, so a file can add and
    change entries but not remove one; `configurations: {temporal: null}` removes it (configs/study.yaml
    drops the demo's configurations beyond the study this way)."""
    removed = []
    for path in REMOVABLE:
        section = config
        for key in path:
            section = section.get(key) if isinstance(section, dict) else None
        if not isinstance(section, dict):
            continue
        for name in [name for name, value in section.items() if value is None]:
            del section[name]
            removed.append(".".join([*path, name]))
    return removed


def resolve_configuration(config: dict, name: str, schema: dict | None = None) -> dict:
    """Complete settings of configuration `name`: {"name", "model", "loss", "training", "encoders"}.

    Schema defaults < base sections of `config` < `config["configurations"][name]`; `encoders` (the audio and
    video encoder it trains on) is the schema's pair (musicnn, r2plus1d) < the configuration's own choice.
    Raises ValueError for an unknown configuration (naming the available ones) or an unknown key.
    """
    schema = schema if schema is not None else load_schema()
    configurations = config.get("configurations", schema["properties"]["configurations"]["default"])
    if name not in configurations:
        raise ValueError(f"configuration {name!r} not in config; available: {', '.join(configurations)}")
    override = configurations[name] or {}
    unknown = set(override) - {*SECTIONS, ENCODER_PAIR}
    if unknown:
        raise ValueError(
            f"configurations.{name}: unknown sections {sorted(unknown)}; known: {[*SECTIONS, ENCODER_PAIR]}"
        )
    resolved: dict[str, Any] = {"name": name}
    for section in SECTIONS:
        properties = schema["$defs"][section]["properties"]
        base = config.get(section) or {}
        _check_keys(base, properties, section)
        _check_keys(override.get(section) or {}, properties, f"configurations.{name}.{section}")
        _check_values(override.get(section) or {}, schema, section, f"configurations.{name}.{section}")
        if "replicates" in (override.get(section) or {}) and section == "training":
            raise ValueError(
                f"configurations.{name}.training.replicates: the replicate count is global (every configuration "
                "is compared over the same seeds); set training.replicates instead"
            )
        resolved[section] = deep_merge(deep_merge(schema_defaults(properties), base), override.get(section) or {})
    pair = override.get(ENCODER_PAIR) or {}
    _check_values(pair, schema, "encoder_pair", f"configurations.{name}.{ENCODER_PAIR}")
    resolved[ENCODER_PAIR] = deep_merge(schema_defaults(schema["$defs"]["encoder_pair"]["properties"]), pair)
    return resolved
