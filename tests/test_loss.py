"""The contrastive loss against a loop written from the paper's formula, and its chance and floor bounds."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mvcl.learn.bounds import chance_loss, loss_floor
from mvcl.learn.loss import contrastive_loss

TEMPERATURES = [0.05, 0.3, 1.0, 3.0]


def reference_loss(audio, video, temperature, exclude_positive, reduction):
    """loss_i = -s_ii/τ + log Σ_{j (≠ i)} exp(s_ij/τ), one pair at a time, both directions (study section 3.3)."""
    batch = len(audio)

    def direction(query, keys):
        total = 0.0
        for i in range(batch):
            terms = [
                torch.exp(query[i] @ keys[j] / temperature)
                for j in range(batch)
                if j != i or not exclude_positive
            ]
            total = total - query[i] @ keys[i] / temperature + torch.log(sum(terms))
        return total / batch

    both = direction(audio, video) + direction(video, audio)
    return both if reduction == "sum" else both / 2


def embeddings(batch, dim, seed):
    generator = torch.Generator().manual_seed(seed)
    audio = F.normalize(torch.randn(batch, dim, generator=generator, dtype=torch.float64), dim=1)
    video = F.normalize(torch.randn(batch, dim, generator=generator, dtype=torch.float64), dim=1)
    return audio.requires_grad_(), video.requires_grad_()


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("exclude_positive", [True, False])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_loss_and_gradients_match_the_formula(temperature, exclude_positive, reduction):
    audio, video = embeddings(7, 5, seed=int(temperature * 100))
    fast = contrastive_loss(audio, video, temperature, exclude_positive, reduction)
    fast_grads = torch.autograd.grad(fast, (audio, video))
    slow = reference_loss(audio, video, temperature, exclude_positive, reduction)
    slow_grads = torch.autograd.grad(slow, (audio, video))
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-10)
    for got, want in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


def test_standard_infonce_is_their_codes_cross_entropy_sum():
    audio, video = embeddings(9, 4, seed=3)
    logits = audio @ video.T / 0.3
    targets = torch.arange(9)
    theirs = F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)
    torch.testing.assert_close(
        contrastive_loss(audio, video, 0.3, exclude_positive=False, reduction="sum"), theirs
    )


def test_learnable_temperature_gets_a_gradient():
    audio, video = embeddings(6, 4, seed=1)
    log_tau = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    contrastive_loss(audio.detach(), video.detach(), log_tau.exp(), True).backward()
    assert log_tau.grad is not None and log_tau.grad != 0


@pytest.mark.parametrize("exclude_positive", [True, False])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_equal_similarities_give_the_chance_loss(exclude_positive, reduction):
    same = F.normalize(torch.ones(10, 4), dim=1)
    loss = contrastive_loss(same, same, 0.2, exclude_positive, reduction)
    assert float(loss) == pytest.approx(chance_loss(10, exclude_positive, reduction), rel=1e-6)


def test_the_studys_setting_can_barely_learn():
    """docs/design.md: sigmoid outputs, τ = 1, batch 1000, summed InfoNCE: floor about 11.8 against 13.8 at chance."""
    assert loss_floor(1000, 1.0, "sigmoid", exclude_positive=False, reduction="sum") == pytest.approx(
        11.82, abs=0.01
    )
    assert chance_loss(1000, exclude_positive=False, reduction="sum") == pytest.approx(13.82, abs=0.01)


@pytest.mark.parametrize("exclude_positive", [True, False])
def test_floor_is_reached_by_its_configuration(exclude_positive):
    batch = 6
    one_hot = torch.eye(batch, dtype=torch.float64)  # non-negative, positives 1, negatives 0
    assert float(contrastive_loss(one_hot, one_hot, 0.5, exclude_positive)) == pytest.approx(
        loss_floor(batch, 0.5, "sigmoid", exclude_positive)
    )
    simplex = F.normalize(one_hot - one_hot.mean(0), dim=1)  # cosines -1/(B-1) between vertices
    assert float(contrastive_loss(simplex, simplex, 0.5, exclude_positive)) == pytest.approx(
        loss_floor(batch, 0.5, "none", exclude_positive)
    )


@pytest.mark.parametrize("activation", ["sigmoid", "none"])
@pytest.mark.parametrize("exclude_positive", [True, False])
@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_optimised_embeddings_approach_but_never_beat_the_floor(activation, exclude_positive, temperature):
    batch, dim = 6, 8
    generator = torch.Generator().manual_seed(0)
    params = [
        torch.randn(batch, dim, generator=generator, dtype=torch.float64, requires_grad=True)
        for _ in range(2)
    ]
    optimizer = torch.optim.Adam(params, lr=0.1)
    floor = loss_floor(batch, temperature, activation, exclude_positive)
    squash = torch.sigmoid if activation == "sigmoid" else (lambda x: x)
    losses = []
    for _ in range(300):
        audio, video = (F.normalize(squash(p), dim=1) for p in params)
        loss = contrastive_loss(audio, video, temperature, exclude_positive)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses) >= floor - 1e-9
    # the simplex is reached; sigmoid outputs only creep towards 0 (the one-hot test shows that floor exactly)
    assert losses[-1] - floor < (1e-2 if activation == "none" else 0.2)


def test_a_single_pair_is_rejected():
    one = F.normalize(torch.ones(1, 3), dim=1)
    with pytest.raises(ValueError, match="at least 2"):
        contrastive_loss(one, one, 1.0, True)


def test_chance_does_not_depend_on_temperature_and_floor_falls_with_it():
    assert chance_loss(100, True, "mean") == pytest.approx(math.log(99))
    assert loss_floor(100, 0.1, "sigmoid", True) < loss_floor(100, 1.0, "sigmoid", True)
