"""Checks on the configuration that a JSON schema cannot express (relations between keys)."""

from __future__ import annotations

import math
from pathlib import PurePosixPath


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


def check_config(config: dict) -> None:
    """Raise ConfigError naming the key when values that are valid alone do not fit together."""
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
    names = set(config["configurations"])
    for section in ("probe", "qualitative"):
        chosen = config[section]["configuration"]
        if chosen not in names:
            raise ConfigError(
                f"{section}.configuration is '{chosen}', which is not a key of configurations "
                f"({', '.join(sorted(names))})"
            )
