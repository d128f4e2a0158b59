"""mvcl.learn.optim: bit-identical to torch.optim's Adam and schedulers, and no torch._dynamo on the way."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import mvcl.probe.train as probe_train
from mvcl.learn.optim import Adam, scheduled_lr
from tests.test_probe import SMALL, synthetic_videos


def mlp() -> torch.nn.Module:
    """Frozen weights and a parameter outside the loss (grad None), as the contrastive model can have."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        torch.nn.BatchNorm1d(16, affine=False),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 3),
    )
    model[0].bias.requires_grad_(False)
    model.register_parameter("unused", torch.nn.Parameter(torch.ones(2)))
    return model


def train(model: torch.nn.Module, optimizer, steps: int = 20) -> None:
    rng = torch.Generator().manual_seed(1)
    for step in range(steps):
        x = torch.randn(8, 6, generator=rng)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 9:
            optimizer.lr = 0.003  # a schedule's new rate


class TorchAdam(torch.optim.Adam):
    """torch.optim.Adam with the `lr` attribute the loop above sets."""

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.param_groups[0]["lr"] = value


@pytest.mark.parametrize("fused", [False, True])
def test_adam_steps_are_bit_identical_to_torch(fused):
    ours, theirs = mlp(), mlp()
    train(ours, Adam(ours.parameters(), 0.01, fused=fused))
    train(theirs, TorchAdam(theirs.parameters(), lr=0.01, fused=fused))
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), theirs.parameters(), strict=True))
    assert torch.equal(ours.unused, torch.ones(2)) and torch.equal(ours[0].bias, theirs[0].bias)


def test_probes_dropping_stopped_seeds_match_torch_fused_adam(monkeypatch):
    """Seeds stop at different epochs, so the optimiser is rebuilt with the moments of the remaining rows."""
    X, genre, _, split = synthetic_videos(seed=2, n=300)
    cfg = {**SMALL, "max_epochs": 40, "patience": 2, "repeats": 4}
    args = (X, genre, split, "genre", cfg, [0, 1, 2, 3], "cpu")
    ours = probe_train.run_probe_seeds(*args)
    monkeypatch.setattr(probe_train, "Adam", lambda params, lr, fused: TorchAdam(params, lr=lr, fused=fused))
    theirs = probe_train.run_probe_seeds(*args)
    assert len({run["epochs"] for run in ours}) > 1  # the carry-over was exercised
    for a, b in zip(ours, theirs, strict=True):
        for key in ("epochs", "best_epoch", "best_val_loss"):
            assert a[key] == b[key]
        assert np.array_equal(a["predictions"]["scores"], b["predictions"]["scores"])


@pytest.mark.parametrize(
    ("schedule", "scheduler"),
    [
        ("constant", lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0)),
        ("exponential", lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, 0.95)),
        ("cosine", lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, 30, 1e-4)),
    ],
)
def test_schedules_give_torchs_rates(schedule, scheduler):
    training = {"schedule": schedule, "gamma": 0.95, "max_epochs": 30, "min_lr": 1e-4}
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.01)
    torch_scheduler = scheduler(optimizer)
    ours, theirs, lr = [], [], 0.01
    for epoch in range(30):
        ours.append(lr)
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        torch_scheduler.step()
        lr = scheduled_lr(training, lr, epoch + 1)
    assert ours == theirs


def test_train_and_probe_jobs_never_import_torch_dynamo():
    """torch.optim's Optimizer imports torch._dynamo (~1.3 CPU-s a job); these jobs must not."""
    script = textwrap.dedent(
        """
        import sys
        from tests.test_train import CPU, corpus, quiet, settings
        from tests.test_probe import SMALL, synthetic_videos
        from mvcl.learn.batches import TrainingRun
        from mvcl.learn.train import train_heads
        from mvcl.probe.train import run_probe_seeds

        audio, video, segments = corpus(videos=20)
        cfg = settings(training={"max_epochs": 2}, model={"init": "autoencoder"})
        train_heads(TrainingRun(audio, video, segments, cfg, seed=0, device=CPU, log=quiet))
        X, genre, _, split = synthetic_videos(seed=2, n=100)
        run_probe_seeds(X, genre, split, "genre", {**SMALL, "max_epochs": 3}, [0, 1], "cpu")
        print("torch._dynamo" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert result.stdout.strip() == "False"
