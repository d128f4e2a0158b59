"""Projection heads on frozen musicnn (audio) and R(2+1)D-18 (video) segment features (study section 3.2).

A head has `layers` dense layers: `layers - 1` hidden blocks Linear → BatchNorm1d → ReLU → Dropout, then a
Linear to the embedding, the output activation (sigmoid in the study) and L2 normalisation, so that a dot
product is a cosine similarity. The study's heads have 2 layers: 1506 → 512 → 256 and 512 → 512 → 256.
`single_head` is their code's variant: audio passes through unchanged (only L2-normalised) and video is
projected into musicnn's 1506-d feature space (512 → 512 → 1506).

`batch_norm_affine: false` is their code's BatchNorm: they gave only the dense layers to Adam
(`proj_head_params`), so BatchNorm's scale and shift stayed at their initial 1 and 0 while the running
statistics updated. `BatchNorm1d(affine=False)` computes exactly that function (normalise, no scale or shift)
and has no parameters that any optimiser here (heads, autoencoder) could move.

`init: autoencoder` (Table 1's `ae_init`) starts each head from the encoder of an autoencoder trained with an
MSE reconstruction loss on that modality's features (`train.train_autoencoder`). The encoder is the whole
head, L2 normalisation included, so pre-training shapes the very output the contrastive loss sees; the
decoder mirrors the head back to the input size.

`temporal` goes past the study. It borrows from MVPt (Surís et al., "It's Time for Artistic
Correspondence in Music and Video", CVPR 2022): one Transformer per modality over the sequence of a video's
segment features, with learned position embeddings, so a segment's embedding sees its video's long-term
context; a segment's positive is the other modality at the same position, and the other segments of its own
video are among its negatives; retrieval is evaluated per segment and per video. It differs from MVPt in:
the inputs are the frozen per-segment musicnn / R(2+1)D features rather than MVPt's own base encoders, a
video is its fixed set of `segments.count` segments (no sampling of the temporal context), the video
embedding is the L2-normalised mean of the segment embeddings, and the video-level loss is added with weight
`video_loss_weight` (train.py). The study's projection head sits on top of the Transformer's output, so
every option of `model` still applies (except single_head and the autoencoder init, which are refused).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# CLIP clamps its logit scale 1/τ to at most 100; we clamp τ to [1/100, 100] (loss.learnable_temperature).
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0


def _hidden_block(
    in_dim: int, out_dim: int, batch_norm: bool, dropout: float, affine: bool = True
) -> list[nn.Module]:
    """Linear → BatchNorm1d (optional; without scale and shift unless `affine`) → ReLU → Dropout."""
    norm = [nn.BatchNorm1d(out_dim, affine=affine)] if batch_norm else []
    return [nn.Linear(in_dim, out_dim), *norm, nn.ReLU(), nn.Dropout(dropout)]


class ProjectionHead(nn.Module):
    """`layers` dense layers from `in_dim` to an L2-normalised `out_dim` embedding."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int,
        layers: int,
        dropout: float,
        batch_norm: bool,
        output_activation: str,
        batch_norm_affine: bool = True,
    ) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1)
        blocks = [
            m
            for d_in, d_out in zip(dims[:-1], dims[1:], strict=True)
            for m in _hidden_block(d_in, d_out, batch_norm, dropout, batch_norm_affine)
        ]
        self.hidden = nn.Sequential(*blocks)
        self.output = nn.Linear(dims[-1], out_dim)
        self.activation = nn.Sigmoid() if output_activation == "sigmoid" else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features: [B, in_dim] → [B, out_dim], unit norm
        return F.normalize(self.activation(self.output(self.hidden(features))), dim=-1)


class IdentityHead(nn.Module):
    """The single-head variant's audio side: the musicnn feature itself, L2-normalised."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features, dim=-1)


def head_kwargs(model_cfg: dict, in_dim: int, out_dim: int) -> dict:
    """ProjectionHead's arguments for one modality under `model_cfg` (the config's `model` section)."""
    return {
        "in_dim": in_dim,
        "out_dim": out_dim,
        "hidden_dim": model_cfg["hidden_dim"],
        "layers": model_cfg["layers"],
        "dropout": model_cfg["dropout"],
        "batch_norm": model_cfg["batch_norm"],
        "batch_norm_affine": model_cfg["batch_norm_affine"],
        "output_activation": model_cfg["output_activation"],
    }


def heads_kwargs(audio_dim: int, video_dim: int, model_cfg: dict) -> dict[str, dict | None]:
    """{"audio"|"video": ProjectionHead arguments}; audio is None (identity) in the single-head variant."""
    if model_cfg["single_head"]:  # their code: video projected into musicnn's feature space
        return {"audio": None, "video": head_kwargs(model_cfg, video_dim, audio_dim)}
    return {
        "audio": head_kwargs(model_cfg, audio_dim, model_cfg["embedding_dim"]),
        "video": head_kwargs(model_cfg, video_dim, model_cfg["embedding_dim"]),
    }


class TemporalHead(nn.Module):
    """Transformer over a video's segment sequence, then the projection head on every segment (MVPt-like)."""

    def __init__(self, in_dim: int, segments_per_video: int, temporal_cfg: dict, head: dict) -> None:
        super().__init__()
        width = temporal_cfg["width"]
        self.input = nn.Linear(in_dim, width)
        self.position = nn.Parameter(torch.randn(segments_per_video, width) * 0.02)  # learned, as MVPt
        layer = nn.TransformerEncoderLayer(
            width, temporal_cfg["heads"], 4 * width, head["dropout"], batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, temporal_cfg["depth"], enable_nested_tensor=False)
        self.head = ProjectionHead(**{**head, "in_dim": width})

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        # features: [N, S, in_dim] (segment s at position s); present: [N, S] bool, False = missing segment
        hidden = self.input(features) + self.position[: features.shape[1]]  # [N, S, W]
        hidden = self.transformer(hidden, src_key_padding_mask=~present)  # [N, S, W]
        embeddings = hidden.new_zeros(*present.shape, self.head.output.out_features)  # [N, S, d]
        embeddings[present] = self.head(hidden[present])  # batch norm sees present segments only
        return embeddings


class ContrastiveModel(nn.Module):
    """Both heads and the temperature τ; `heads["audio"]`, `heads["video"]` map features to embeddings."""

    def __init__(
        self,
        audio_dim: int,
        video_dim: int,
        model_cfg: dict,
        loss_cfg: dict,
        segments_per_video: int = 6,
    ) -> None:
        super().__init__()
        self.audio_dim, self.video_dim, self.segments_per_video = audio_dim, video_dim, segments_per_video
        temporal = model_cfg["temporal"]
        self.temporal = bool(temporal["enabled"])
        if self.temporal and (model_cfg["single_head"] or model_cfg["init"] == "autoencoder"):
            raise ValueError(
                "model.temporal.enabled cannot be combined with model.single_head or init: autoencoder"
            )
        self.head_kwargs = heads_kwargs(audio_dim, video_dim, model_cfg)
        self.heads = nn.ModuleDict()
        for modality, kwargs in self.head_kwargs.items():
            if kwargs is None:
                self.heads[modality] = IdentityHead()
            elif self.temporal:
                self.heads[modality] = TemporalHead(kwargs["in_dim"], segments_per_video, temporal, kwargs)
            else:
                self.heads[modality] = ProjectionHead(**kwargs)
        self.embedding_dim = self.head_kwargs["video"]["out_dim"]
        log_tau = torch.tensor(math.log(loss_cfg["temperature"]))
        if loss_cfg["learnable_temperature"]:
            self.log_tau = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_tau", log_tau)

    def temperature(self) -> torch.Tensor:
        """τ as a 0-d tensor (differentiable when learnable)."""
        return self.log_tau.exp()

    @torch.no_grad()
    def clamp_temperature_(self) -> None:
        """Keep a learnable τ in [0.01, 100] after each optimiser step, as CLIP clamps its logit scale.

        A fixed τ (a buffer) is left as configured, even outside that range: the clamp bounds what the
        optimiser may do, not what the user asked for.
        """
        if isinstance(self.log_tau, nn.Parameter):
            self.log_tau.clamp_(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE))

    def forward(
        self, audio: torch.Tensor, video: torch.Tensor, present: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-segment embeddings: [B, D] → [B, d], or with `temporal` [N, S, D] + present [N, S] → [N, S, d]."""
        if self.temporal:
            return self.heads["audio"](audio, present), self.heads["video"](video, present)
        return self.heads["audio"](audio), self.heads["video"](video)


def video_embedding(segment_emb: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """A video's embedding: the L2-normalised mean of its present segments' embeddings, [N, S, d] → [N, d]."""
    weights = present.unsqueeze(-1).to(segment_emb.dtype)  # [N, S, 1]
    return F.normalize((segment_emb * weights).sum(1) / weights.sum(1).clamp_min(1), dim=-1)


class Autoencoder(nn.Module):
    """A projection head as encoder and its mirror image as decoder, back to the input features."""

    def __init__(self, head: dict) -> None:
        super().__init__()
        self.encoder = ProjectionHead(**head)
        dims = [head["out_dim"]] + [head["hidden_dim"]] * (head["layers"] - 1)
        blocks = [
            m
            for d_in, d_out in zip(dims[:-1], dims[1:], strict=True)
            for m in _hidden_block(
                d_in, d_out, head["batch_norm"], head["dropout"], head.get("batch_norm_affine", True)
            )
        ]
        self.decoder = nn.Sequential(*blocks, nn.Linear(dims[-1], head["in_dim"]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features: [B, in_dim] → embedding [B, out_dim] → reconstruction [B, in_dim]
        return self.decoder(self.encoder(features))
