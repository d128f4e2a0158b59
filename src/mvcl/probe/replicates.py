"""A CL row of Table 2 probed on every training replicate's embeddings, as one probe result.

`probe.repeats` seeds are spread over the replicates (`replicate_repeats` each, at least one), so the probes
of a CL row cost about what one model's did. The merged result keeps every seed's test predictions with the
replicate they came from (`replicate_of_seed`), which Table 2's and RQ1's two-level intervals resample
(mvcl.probe.intervals); its `mean` and `std` are over all seeds of all replicates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mvcl.probe.metrics import METRICS


def replicate_repeats(repeats: int, replicates: int) -> int:
    """Probe seeds per replicate: `probe.repeats` spread over the replicates, at least one each."""
    return max(1, math.ceil(repeats / replicates))


def merge_replicates(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One probe result from one `probe_task` result per replicate (replicate order), on the same videos."""
    first = results[0]
    merged = {key: value for key, value in first.items() if key not in ("runs", "predictions")}
    runs = [run for result in results for run in result["runs"]]
    task = first["task"]
    merged.update(
        repeats=len(runs),
        seeds=[seed for result in results for seed in result["seeds"]],
        replicates=len(results),
        replicate_of_seed=[r for r, result in enumerate(results) for _ in result["runs"]],
        mean={metric: float(np.mean([run[metric] for run in runs])) for metric in METRICS[task]},
        std={metric: float(np.std([run[metric] for run in runs])) for metric in METRICS[task]},
        warnings=list(dict.fromkeys(w for result in results for w in result.get("warnings", []))),
        runs=runs,
    )
    stored = [result["predictions"] for result in results]
    if any(predictions is None for predictions in stored):
        merged["predictions"] = None
        return merged
    for r, predictions in enumerate(stored[1:], start=1):
        if predictions["video_ids"] != stored[0]["video_ids"]:
            raise ValueError(
                f"probe of replicate {r} scored other test videos than replicate 0; the replicates' embeddings "
                "must cover the same videos (rerun the train rule)"
            )
    merged["predictions"] = {
        "video_ids": stored[0]["video_ids"],
        "targets": stored[0]["targets"],
        "scores": [scores for predictions in stored for scores in predictions["scores"]],
        "thresholds": [thresholds for predictions in stored for thresholds in predictions["thresholds"]],
    }
    return merged
