"""A CL row's probes on every training replicate trained as one batched model: each replicate's result is what
probing it alone gives."""

import warnings

import numpy as np
import pandas as pd
import pytest

from mvcl.probe.data import ProbeWarning, video_representation
from mvcl.probe.train import probe_replicates, probe_task
from tests.test_probe import SMALL, segments_table, synthetic_videos


def replicate_representations(replicates: int, n: int = 240):
    """The same videos (genre from a linear map of the features) seen through `replicates` different
    embeddings: each a noisy linear transform of the features, with the three videos of a tag."""
    X, genre, _, split = synthetic_videos(seed=11, n=n, dim=12)
    ids = [f"v{i}" for i in range(n)]
    segments = segments_table(ids, split.tolist(), per_video=2)
    rng = np.random.default_rng(5)
    representations = []
    for _ in range(replicates):
        audio = np.repeat(X @ rng.normal(size=(12, 8)), 2, axis=0) + rng.normal(scale=0.3, size=(2 * n, 8))
        video = np.repeat(X @ rng.normal(size=(12, 8)), 2, axis=0) + rng.normal(scale=0.3, size=(2 * n, 8))
        representations.append(
            video_representation(
                "cl_agg",
                segments,
                audio_embeddings=audio.astype(np.float32),
                video_embeddings=video.astype(np.float32),
            )
        )
    videos = pd.DataFrame({"video_id": ids, "genre": genre, "msd_id": [f"TR{i}" for i in range(n)]})
    tags = pd.DataFrame(
        [
            (f"TR{i}", tag, 100.0)
            for i in range(n)
            for tag, g in (("a", "jazz"), ("b", "rock"))
            if genre[i] == g
        ],
        columns=["msd_id", "tag", "count"],
    )
    return representations, videos, tags


@pytest.mark.parametrize("task", ["genre", "tagging"])
def test_replicates_probed_together_equal_each_replicate_probed_alone(task):
    representations, videos, tags = replicate_representations(3)
    cfg = {**SMALL, "repeats": 1, "max_epochs": 30}
    seeds = [0, 1234, 99]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbeWarning)
        together = probe_replicates(task, representations, videos, cfg, seeds, "cpu", tags=tags)
        alone = [
            probe_task(task, representation, videos, cfg, seed, "cpu", tags=tags)
            for representation, seed in zip(representations, seeds, strict=True)
        ]
    assert len(together) == 3
    for mine, theirs in zip(together, alone, strict=True):
        assert mine["seeds"] == theirs["seeds"]
        assert [run["epochs"] for run in mine["runs"]] == [run["epochs"] for run in theirs["runs"]]
        assert mine["mean"] == pytest.approx(theirs["mean"], abs=1e-6)
        assert mine["predictions"]["video_ids"] == theirs["predictions"]["video_ids"]
        np.testing.assert_allclose(mine["predictions"]["scores"], theirs["predictions"]["scores"], atol=1e-6)
        assert {k: mine[k] for k in ("n_videos", "n_labelled", "level", "repeats")} == {
            k: theirs[k] for k in ("n_videos", "n_labelled", "level", "repeats")
        }
    # The replicates' embeddings differ, so their probes do: a batch that mixed them up would not match.
    assert together[0]["mean"] != together[1]["mean"]


def test_replicates_of_other_videos_are_refused():
    representations, videos, tags = replicate_representations(2)
    shuffled = representations[1]._replace(video_ids=representations[1].video_ids[::-1])
    with pytest.raises(ValueError, match="replicate 1: other videos"):
        probe_replicates("genre", [representations[0], shuffled], videos, SMALL, [0, 1], "cpu")


@pytest.mark.slow
def test_the_probe_rule_trains_a_cl_rows_replicates_together_as_each_alone(tmp_path):
    import json
    import subprocess

    import yaml

    from mvcl.plan import replicate_seed
    from tests.helpers import REPO, snakemake_command
    from tests.test_ablation import write_inputs

    write_inputs(tmp_path)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["configurations"] = {"base": {}}
    config["ablation"]["entries"] = {}
    config["dataset"]["msd_tags"] = None
    config["training"].update(max_epochs=3, min_epochs=2, batch_size=64, replicates=3)
    config["model"].update(hidden_dim=32, embedding_dim=16)
    config["probe"].update(hidden=[16, 8], max_epochs=20, repeats=3)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n\n'
        + "".join(f'include: "{REPO}/rules/{stage}.smk"\n' for stage in ("common", "train", "probe"))
    )
    command = [
        *snakemake_command(tmp_path, tmp_path / "Snakefile"),
        "--cores",
        "2",
        "results/probes/genre/cl_agg.json",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    merged = json.loads((tmp_path / "results/probes/genre/cl_agg.json").read_text())
    assert merged["replicates"] == 3 and merged["replicate_of_seed"] == [0, 1, 2]

    segments = pd.read_parquet(tmp_path / "results/data/segments.parquet")
    manifest = pd.read_parquet(tmp_path / "results/data/manifest.parquet")
    for replicate in range(3):
        embeddings = np.load(tmp_path / f"results/models/base/replicate_{replicate}/embeddings.npz")
        representation = video_representation(
            "cl_agg", segments, audio_embeddings=embeddings["audio"], video_embeddings=embeddings["video"]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProbeWarning)
            alone = probe_task(
                "genre",
                representation,
                manifest,
                {**config["probe"], "repeats": 1},
                replicate_seed(0, replicate),
            )
        run = merged["runs"][replicate]
        assert run["seed"] == alone["seeds"][0] and run["epochs"] == alone["runs"][0]["epochs"]
        assert run["roc_auc"] == pytest.approx(alone["runs"][0]["roc_auc"], abs=1e-6)
