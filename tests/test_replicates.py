"""Training replicates through the rules: one train job per configuration, Table 1 over replicates."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
import torch
import yaml

from mvcl.retrieval import RetrievalRecord
from tests.helpers import REPO, snakemake_command
from tests.test_ablation import write_inputs

pytestmark = pytest.mark.slow


def test_table1_rests_on_every_replicate_of_every_configuration(tmp_path):
    write_inputs(tmp_path)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["configurations"] = {"base": {}, "tau03": {"loss": {"temperature": 0.3}}}
    config["training"].update(max_epochs=4, min_epochs=2, batch_size=64, replicates=3)
    config["model"].update(hidden_dim=32, embedding_dim=16)
    config["evaluation"].update(bootstrap=100, permutations=50)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n\n'
        + "".join(f'include: "{REPO}/rules/{stage}.smk"\n' for stage in ("common", "train", "retrieval"))
    )
    command = [*snakemake_command(tmp_path, tmp_path / "Snakefile"), "--cores", "2", "results/table1.md"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert result.stderr.count("rule train:") == 2  # one job per configuration trains its 3 replicates

    results = tmp_path / "results"
    seeds = []
    for replicate in range(3):
        heads = torch.load(results / f"models/base/replicate_{replicate}/heads.pt", weights_only=True)
        seeds.append(heads["extra"]["seed"])
        history = pd.read_csv(results / f"models/base/replicate_{replicate}/history.csv")
        assert len(history) >= 2 and (history["replicate"] == replicate).all()
    assert seeds[0] == config["seed"] and len(set(seeds)) == 3
    assert not any((results / ".state/train").iterdir())  # finished jobs leave no resume state behind
    record = RetrievalRecord.load(results / "metrics/base/retrieval.json")
    assert [replicate.seed for replicate in record.replicates] == seeds
    assert record.intervals["median_rank_a2v"].n_replicates == 3
    table = pd.read_csv(results / "table1.csv").set_index("configuration")
    assert table.loc["base", "n_replicates"] == 3 and "median_rank_a2v_vs_base_p_holm" in table
    assert table.loc["tau03", "median_rank_a2v_replicates"].count(";") == 2
    text = (results / "table1.md").read_text()
    assert "median over 3 training replicates" in text and "8 test videos" in text
    assert "≤ 0.001" in text or "p 0." in text
