"""Checks on the configuration that a JSON schema cannot express (relations between keys, duplicate keys).

Every cross-key check lives here: `check_config` runs when the workflow starts (rules/common.smk), and
`check_sweep` when the coupling sweep, which only some runs ask for, builds its nested configs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

import yaml


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a mapping with the same key twice (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may repeat and override
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):  # unhashable: SafeLoader reports it itself
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{key_node.start_mark.name}, line {line}: key '{key}' is defined twice (first at line "
                    f"{seen[key]}); YAML would silently keep only the last one. Merge the two into one."
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def load_strict(path: str | Path) -> object:
    """Parse the YAML file at `path` like yaml.safe_load, but raise ConfigError on a duplicate key."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def check_unique_keys(paths: Iterable[str | Path]) -> None:
    """Raise ConfigError naming the file and line of a key defined twice in any of the config files `paths`.

    Snakemake reads config files itself and keeps the last of two equal keys; the workflow calls this on
    `workflow.configfiles` (rules/common.smk) so a duplicated section stops the run instead.
    """
    for path in paths:
        load_strict(path)


def check_config(config: dict, configfiles: Iterable[str | Path] = ()) -> None:
    """Raise ConfigError naming the key when values that are valid alone do not fit together.

    `configfiles` (the files the config was read from) are first checked for keys defined twice.
    """
    check_unique_keys(configfiles)
    segments = config["segments"]
    if segments["clip_seconds"] > segments["seconds"]:
        raise ConfigError(
            f"segments.clip_seconds ({segments['clip_seconds']}) must not exceed segments.seconds "
            f"({segments['seconds']}): the clip is a window inside the segment"
        )
    split = {name: config["dataset"]["split"][name] for name in ("train", "val", "test")}
    if not math.isclose(sum(split.values()), 1.0, abs_tol=1e-6):
        raise ConfigError(f"dataset.split fractions must sum to 1, got {split} (sum {sum(split.values())})")
    if config["demo"]["enabled"]:
        expected = str(PurePosixPath(config["dataset"]["metadata_csv"]).parent / "videos")
        if str(PurePosixPath(config["dataset"]["videos_dir"])) != expected:
            raise ConfigError(
                f"dataset.videos_dir is '{config['dataset']['videos_dir']}', but with demo.enabled the corpus "
                f"is written to '{expected}' (the folder 'videos' beside dataset.metadata_csv)"
            )
        needed = segments["count"] * segments["seconds"]
        if config["demo"]["duration_s"] <= needed:
            raise ConfigError(
                f"demo.duration_s ({config['demo']['duration_s']}) must exceed segments.count x "
                f"segments.seconds ({needed}) so every video can hold its segments"
            )
    _check_names(config, "recommend.configuration", [config["recommend"]["configuration"]])
    _check_names(config, "rq2.configurations", config["rq2"]["configurations"] or [])
    names = set(config["configurations"])
    for section in ("probe", "qualitative"):
        chosen = config[section]["configuration"]
        if chosen not in names:
            raise ConfigError(
                f"{section}.configuration is '{chosen}', which is not a key of configurations "
                f"({', '.join(sorted(names))})"
            )


def check_sweep(config: dict) -> None:
    """Raise ConfigError when the coupling sweep cannot run: it needs the demo corpus and known configurations."""
    if not config["demo"]["enabled"]:
        raise ConfigError(
            "the coupling sweep re-generates the synthetic demo corpus: it needs demo.enabled: true"
        )
    missing = [name for name in config["sweep"]["configurations"] if name not in config["configurations"]]
    if missing:
        raise ConfigError(
            f"sweep.configurations: {', '.join(missing)} not a key of configurations "
            f"({', '.join(config['configurations'])})"
        )


def _check_names(config: dict, key: str, names: list) -> None:
    """Raise ConfigError when `names` (the value of `key`; None = a default) are not all configurations."""
    unknown = [name for name in names if name is not None and name not in config["configurations"]]
    if unknown:
        raise ConfigError(
            f"{key}: {', '.join(unknown)} not a key of configurations ({', '.join(config['configurations'])})"
        )
