"""Projection heads, the single-head variant, the temperature and the temporal (MVPt-like) heads."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mvcl.configuration import resolve_configuration
from mvcl.learn.model import Autoencoder, ContrastiveModel, ProjectionHead, video_embedding


def cfg(**model):
    return resolve_configuration({"configurations": {"x": {"model": model}}}, "x")


def count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("layers", [1, 2, 4])
def test_layers_counts_dense_layers_and_outputs_are_unit_norm(layers):
    settings = cfg(layers=layers, hidden_dim=16, embedding_dim=8)
    model = ContrastiveModel(30, 12, settings["model"], settings["loss"]).eval()
    for head in model.heads.values():
        assert count(head, nn.Linear) == layers
        assert count(head, nn.BatchNorm1d) == layers - 1
    audio, video = model(torch.randn(5, 30), torch.randn(5, 12))
    assert audio.shape == video.shape == (5, 8)
    torch.testing.assert_close(audio.norm(dim=1), torch.ones(5))
    assert (audio >= 0).all() and (video >= 0).all()  # sigmoid output: every cosine in [0, 1]


def test_study_head_is_linear_batchnorm_relu_dropout_linear_sigmoid():
    head = ProjectionHead(1506, 256, 512, 2, 0.3, True, "sigmoid")
    kinds = [type(m) for m in [*head.hidden, head.output, head.activation]]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout, nn.Linear, nn.Sigmoid]
    assert head.hidden[3].p == 0.3 and head.output.in_features == 512 and head.output.out_features == 256


def test_no_batch_norm_and_no_activation_allow_negative_cosines():
    head = ProjectionHead(10, 4, 8, 3, 0.0, False, "none").eval()
    assert count(head, nn.BatchNorm1d) == 0
    assert (head(torch.randn(50, 10)) < 0).any()


def test_single_head_passes_audio_through_and_projects_video_into_its_space():
    settings = cfg(single_head=True, hidden_dim=16)
    model = ContrastiveModel(30, 12, settings["model"], settings["loss"]).eval()
    audio_features = torch.randn(4, 30)
    audio, video = model(audio_features, torch.randn(4, 12))
    torch.testing.assert_close(audio, F.normalize(audio_features, dim=1))
    assert video.shape == (4, 30) and model.embedding_dim == 30
    assert not list(model.heads["audio"].parameters())


def test_fixed_temperature_is_a_buffer_and_learnable_one_is_clamped():
    fixed = resolve_configuration({"loss": {"temperature": 0.3}}, "base")
    model = ContrastiveModel(6, 4, fixed["model"], fixed["loss"])
    assert model.temperature().item() == pytest.approx(0.3) and "log_tau" not in dict(
        model.named_parameters()
    )
    learnable = resolve_configuration({"loss": {"temperature": 0.3, "learnable_temperature": True}}, "base")
    model = ContrastiveModel(6, 4, learnable["model"], learnable["loss"])
    assert "log_tau" in dict(model.named_parameters())
    with torch.no_grad():
        model.log_tau.fill_(math.log(1e-5))
    model.clamp_temperature_()
    assert model.temperature().item() == pytest.approx(0.01)


def temporal_model(**temporal):
    settings = cfg(
        hidden_dim=16, embedding_dim=8, temporal={"enabled": True, "width": 16, "heads": 2, **temporal}
    )
    return ContrastiveModel(10, 6, settings["model"], settings["loss"], segments_per_video=4).eval()


def test_temporal_segment_embeddings_see_their_videos_other_segments():
    model = temporal_model(depth=1)
    audio, video = torch.randn(3, 4, 10), torch.randn(3, 4, 6)
    present = torch.ones(3, 4, dtype=torch.bool)
    audio_emb, video_emb = model(audio, video, present)
    assert audio_emb.shape == (3, 4, 8) and video_emb.shape == (3, 4, 8)
    changed = audio.clone()
    changed[0, 3] += 1.0  # another segment of video 0
    again, _ = model(changed, video, present)
    assert not torch.allclose(again[0, 0], audio_emb[0, 0])  # context reaches segment 0
    torch.testing.assert_close(again[1:], audio_emb[1:])  # other videos are untouched


def test_temporal_missing_segments_are_ignored():
    model = temporal_model(depth=2)
    audio, video = torch.randn(2, 4, 10), torch.randn(2, 4, 6)
    present = torch.tensor([[True, True, False, True], [True, True, True, True]])
    audio_emb, _ = model(audio, video, present)
    noisy = audio.clone()
    noisy[0, 2] = 1e3  # the missing slot's content must not matter
    again, _ = model(noisy, video, present)
    torch.testing.assert_close(again[present], audio_emb[present])
    torch.testing.assert_close(video_embedding(audio_emb, present).norm(dim=1), torch.ones(2))


def test_temporal_cannot_be_combined_with_single_head():
    settings = cfg(single_head=True, temporal={"enabled": True})
    with pytest.raises(ValueError, match="single_head"):
        ContrastiveModel(10, 6, settings["model"], settings["loss"])


def test_autoencoder_mirrors_the_head_and_its_encoder_loads_into_a_head():
    head = {
        "in_dim": 20,
        "out_dim": 4,
        "hidden_dim": 8,
        "layers": 3,
        "dropout": 0.1,
        "batch_norm": True,
        "output_activation": "sigmoid",
    }
    autoencoder = Autoencoder(head).eval()
    assert autoencoder(torch.randn(3, 20)).shape == (3, 20)
    dims = [(m.in_features, m.out_features) for m in autoencoder.decoder if isinstance(m, nn.Linear)]
    assert dims == [(4, 8), (8, 8), (8, 20)]
    ProjectionHead(**head).load_state_dict(autoencoder.encoder.state_dict())


def test_batch_norm_without_affine_is_their_untrained_batch_norm():
    """affine=False computes what their head computed: BatchNorm parameters left at 1 and 0, never trained."""
    settings = cfg(batch_norm_affine=False, hidden_dim=16, embedding_dim=8, layers=3)
    model = ContrastiveModel(30, 12, settings["model"], settings["loss"])
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(norms) == 4 and not any(m.affine for m in norms)
    dense = sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())
    assert sum(p.numel() for p in model.parameters()) == dense  # nothing else for an optimiser to move
    theirs = ProjectionHead(30, 8, 16, 3, 0.0, True, "sigmoid")  # affine, as their nn.BatchNorm1d
    ours = ProjectionHead(30, 8, 16, 3, 0.0, True, "sigmoid", batch_norm_affine=False)
    ours.load_state_dict(theirs.state_dict(), strict=False)  # the dense layers; their BN weight 1, bias 0
    features = torch.randn(20, 30)
    torch.testing.assert_close(ours(features), theirs(features), rtol=0, atol=0)
    head = {**model.head_kwargs["audio"], "dropout": 0.0}
    autoencoder = Autoencoder(head)
    assert not any(m.affine for m in autoencoder.modules() if isinstance(m, nn.BatchNorm1d))
    ProjectionHead(**head).load_state_dict(autoencoder.encoder.state_dict())


def test_a_fixed_temperature_is_not_clamped():
    fixed = resolve_configuration({"loss": {"temperature": 0.004}}, "base")
    model = ContrastiveModel(6, 4, fixed["model"], fixed["loss"])
    model.clamp_temperature_()
    assert model.temperature().item() == pytest.approx(0.004)
