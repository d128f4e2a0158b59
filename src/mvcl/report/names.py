"""Display names of Table 2's representations and tasks (file names use the short keys)."""

from __future__ import annotations

from mvcl.plan import parse_probe_key

# Display names of Table 2's representations (file names use the short keys).
REPRESENTATION_NAMES = {
    "musicnn": "musicnn",
    "r2plus1d": "R(2+1)D",
    "both": "musicnn+R(2+1)D",
    "cl_a": "CL audio",
    "cl_v": "CL video",
    "cl_agg": "CL aggregated",
    "mir": "MIR descriptors",
    "style": "video style",
}
TASK_NAMES = {"tagging": "Music tagging (MSD overlap)", "genre": "Genre classification"}


def representation_name(key: str) -> str:
    """Display name of a row key: 'CL aggregated', or 'CL aggregated (clip_style)' beyond the study's rows."""
    representation, configuration = parse_probe_key(key)
    name = REPRESENTATION_NAMES.get(representation) or "+".join(
        REPRESENTATION_NAMES.get(part, part) for part in representation.split("+")
    )  # a frozen pair other than the study's, 'mir+style'
    return f"{name} ({configuration})" if configuration else name
