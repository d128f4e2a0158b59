"""musicnn (Pons & Serra, 2019) in PyTorch, with the trained weights of the `musicnn` wheel.

The `musicnn` package (0.1.0) ships TensorFlow-1 checkpoints of two architectures: `*_musicnn` (musically
motivated front end, dense mid end, temporal-pooling back end) and `*_vgg` (a 5-layer VGG). This module
re-implements both so that they run on CPU and CUDA without TensorFlow, and reads the checkpoints with
`mvcl.features.tf_checkpoint`. Layer for layer it follows `musicnn/models.py`; the comments name the traps
where a straightforward port differs from the original (see also docs/design.md, "musicnn port").

Input: log-mel patches [batch, 187, 96] (3 s at 16 kHz, hop 256), as made by `musicnn_mel` (exact numpy front
end) or `MelFrontEnd` (torch, batched, GPU). Output: a dict with the names of the original extractor.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mvcl.device import cpu_vendor
from mvcl.features.tf_checkpoint import CheckpointError, CheckpointReader
from mvcl.io import atomic_path
from mvcl.provenance import MSD_LEAK_NOTE

log = logging.getLogger(__name__)

# Front end, musicnn/configuration.py: SR, FFT_HOP, FFT_SIZE, N_MELS.
SAMPLE_RATE = 16000
HOP_LENGTH = 256
N_FFT = 512
N_MELS = 96
# librosa.time_to_frames(3 s, sr=16000, n_fft=512, hop_length=256) + 1: the models were trained on 3 s patches.
PATCH_FRAMES = 187
PATCH_SECONDS = 3.0

# TensorFlow's batch-norm epsilon (tf.compat.v1.layers.batch_normalization); PyTorch's default is 1e-5.
TF_BN_EPS = 1e-3

MUSICNN_MODELS = ("MTT_musicnn", "MSD_musicnn")
VGG_MODELS = ("MTT_vgg", "MSD_vgg")
MODELS = MUSICNN_MODELS + VGG_MODELS
NUM_TAGS = 50  # both tag vocabularies (MagnaTagATune and MSD top-50) have 50 tags

# Feature maps returned by each architecture's forward, besides `taggram`.
MUSICNN_OUTPUTS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3", "mean_pool", "max_pool", "penultimate")
VGG_OUTPUTS = ("pool1", "pool2", "pool3", "pool4", "pool5", "penultimate")


# --------------------------------------------------------------------------------------------- front end
def musicnn_mel(waveform_16k: np.ndarray) -> np.ndarray:
    """The original front end: log-compressed mel spectrogram [frames, 96] float32 of a 16 kHz mono waveform.

    As `musicnn.extractor.batch_data`: librosa's Slaney mel spectrogram (n_fft 512, hop 256, 96 bands, power 2,
    centred frames), rounded to float16, then log10(10000 x + 1). Two details make it equal to what the
    original computed on its pinned numpy < 1.17 and librosa 0.7:
    - centred frames are padded by reflection (librosa's default until 0.10; now zeros);
    - the log is taken in float32. Old numpy promoted `10000 * float16_array` to float32 (value-based
      casting: 10000 does not fit float16's integers); numpy >= 2 keeps float16, so 10000 x overflows to
      inf for mel power above 6.55, which is most real music.
    """
    import librosa  # imported here: loading librosa costs ~1 s and only this reference path needs it

    waveform = np.asarray(waveform_16k, dtype=np.float32)
    mel = librosa.feature.melspectrogram(
        y=waveform,
        sr=SAMPLE_RATE,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        n_mels=N_MELS,
        center=True,
        pad_mode="reflect",
    ).T
    rounded = mel.astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000) * rounded + np.float32(1)).astype(np.float32)


# Slaney's mel scale (librosa's default, htk=False): linear up to 1 kHz (15 mel), logarithmic above.
_MEL_STEP_HZ = 200.0 / 3
_LOG_START_HZ = 1000.0
_LOG_START_MEL = _LOG_START_HZ / _MEL_STEP_HZ
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    mel = hz / _MEL_STEP_HZ
    log_region = hz >= _LOG_START_HZ
    mel[log_region] = _LOG_START_MEL + np.log(hz[log_region] / _LOG_START_HZ) / _LOG_STEP
    return mel


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    hz = _MEL_STEP_HZ * mel
    log_region = mel >= _LOG_START_MEL
    hz[log_region] = _LOG_START_HZ * np.exp(_LOG_STEP * (mel[log_region] - _LOG_START_MEL))
    return hz


def mel_filterbank() -> np.ndarray:
    """The original's mel filterbank [96, 257] float32: librosa.filters.mel(sr=16000, n_fft=512, n_mels=96).

    Slaney scale from 0 to 8 kHz, triangles normalised to equal area, computed as librosa does (float64,
    each row rounded to float32, then scaled and rounded again), so it equals librosa's bit for bit without
    importing librosa (~2 s) in every feature job.
    """
    edges = _slaney_mel_to_hz(np.linspace(0.0, _hz_to_slaney_mel(np.array([SAMPLE_RATE / 2]))[0], N_MELS + 2))
    bins = np.fft.rfftfreq(n=N_FFT, d=1.0 / SAMPLE_RATE)
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bins)
    weights = np.zeros((N_MELS, len(bins)), dtype=np.float32)
    for i in range(N_MELS):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (edges[2:] - edges[:N_MELS]))[:, np.newaxis]
    return weights


class MelFrontEnd(nn.Module):
    """Batched torch version of `musicnn_mel`: waveforms [batch, samples] -> log-mel [batch, frames, 96].

    The STFT is taken in float64 and rounded to complex64, as librosa does (its float64 Hann window promotes
    the float32 frames), then power, mel projection and float16 rounding follow the original in float32. It
    differs from `musicnn_mel` only where a float32 rounding difference in the mel projection flips a float16
    rounding: rare, and at most one float16 step (< 5e-4 after the log).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer(
            "window", torch.hann_window(N_FFT, periodic=True, dtype=torch.float64), persistent=False
        )
        self.register_buffer("filterbank", torch.from_numpy(mel_filterbank()), persistent=False)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(
            waveforms.to(torch.float64),
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        ).to(torch.complex64)  # [batch, 257, frames]
        power = spectrum.abs().square()
        mel = torch.matmul(self.filterbank, power)  # [batch, 96, frames]
        rounded = mel.to(torch.float16).to(torch.float32)
        return torch.log10(10000 * rounded + 1).transpose(1, 2)


def mel_patches(mel: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Non-overlapping 187-frame patches [n, 187, 96] of a log-mel [frames, 96]; the shorter tail is dropped."""
    n_patches = mel.shape[0] // PATCH_FRAMES
    return mel[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, mel.shape[1])


# --------------------------------------------------------------------------------------------- musicnn
# The front end's convolutions have a single input channel and are followed by a max over frequency. Done as
# plain convolutions they cost 1.35 GMAC per patch, most of it in the timbral blocks; the forms below give
# the same numbers (float32 rounding aside) at a fraction of the cost, and run as GEMMs on CPU and CUDA:
# - timbral (7 x 38 and 7 x 67, valid in frequency): correlate along frequency in the DFT domain (length 96
#   suffices: the valid outputs never wrap) and return to frequency with a matrix product that computes only
#   the valid outputs; 0.44 GMAC instead of 1.14.
# - temporal (128, 64, 32 frames along time): a banded (Toeplitz) weight matrix per block of 16 output
#   frames turns each into one GEMM over all frequency rows, without an im2col copy of the input.
DFT_LENGTH = N_MELS
DFT_BINS = DFT_LENGTH // 2 + 1  # 49
CUDA_TIMBRAL_ROWS = 4096
TEMPORAL_BLOCK = 16  # output frames per temporal GEMM
CPU_TEMPORAL_PATCHES = 4  # patches per temporal GEMM on CPU (its output stays in cache)

# CPU GEMMs. torch's float32 matmul calls MKL, which runs AVX-512 code on Intel processors but only its AVX2
# code on AMD ones; there oneDNN, which torch also ships, runs AVX-512 (about twice as fast on these shapes,
# same float32 arithmetic). On Intel MKL is the faster of the two (figures: README, Speed). oneDNN's linear
# operator is internal to torch (the one torch.compile's CPU backend calls), so it is used only where it
# exists, on AMD processors, and only for inference (it has no backward).
_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None


def cpu_gemm_plan(vendor: str, onednn: bool) -> tuple[bool, int, int]:
    """(GEMMs through oneDNN, rows per timbral GEMM, filter groups per timbral GEMM) for a CPU.

    Rows are (patch, frame) pairs. Each library has its own best chunking of the timbral GEMMs, measured on
    benchmarks/musicnn.py (figures: README, Speed): oneDNN on AMD (1 MB L2 a core) with 32 rows and two
    filter groups (the 49 x 2 x 102 x 32 spectral intermediate, 1.3 MB, stays near L2); MKL on Intel with
    128 rows and all 204 filters at once. CUDA takes all filters and CUDA_TIMBRAL_ROWS at once.
    """
    if onednn and vendor == "AuthenticAMD":
        return True, 32, 2
    return False, 128, 1


ONEDNN_GEMMS, CPU_TIMBRAL_ROWS, CPU_TIMBRAL_GROUPS = cpu_gemm_plan(cpu_vendor(), _ONEDNN_LINEAR is not None)


def _linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [M, K] @ weight[N, K].T in float32: through oneDNN on a CPU where `ONEDNN_GEMMS`, at inference;
    else torch's matmul.

    `weight` may be a transposed view (strides (1, N)): both read either layout at full speed.
    """
    if (
        ONEDNN_GEMMS
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and not torch.is_grad_enabled()
    ):
        return _ONEDNN_LINEAR(x, weight, None, "none", [], "")
    return x @ weight.T


def _batch_norm(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=TF_BN_EPS)


def _pooling_sign(batch_norm: nn.BatchNorm1d) -> torch.Tensor:
    """+1 where the eval-mode batch norm's scale is >= 0, -1 where it is negative, per channel.

    relu and the batch norm are monotonic per channel, so the max over frequency of batch_norm(relu(z))
    comes from max(z) where the scale is positive and from min(z) where it is negative. Convolving with
    sign * kernel (exact: only signs flip) and taking one max gives both: min(z) = -max(-z). Pooling before
    normalising gives exactly the number the original computes on the full map, at a fraction of the cost.
    """
    scale = batch_norm.weight / torch.sqrt(batch_norm.running_var + batch_norm.eps)
    return torch.where(scale >= 0, 1.0, -1.0).to(scale.dtype)


def _relu_bn(conv: torch.Tensor, batch_norm: nn.BatchNorm1d) -> torch.Tensor:
    """batch_norm(relu(conv)) over the last axis (channels) of a [..., channels] tensor."""
    return batch_norm(F.relu(conv).reshape(-1, conv.shape[-1])).reshape(conv.shape)


class TimbralBlock(nn.Module):
    """conv [7 x width] over (time, frequency), valid in frequency, relu, batch norm, max over frequency.

    As `timbral_block` in musicnn/models.py; the input is padded by 3 frames on each side in time (`frontend`),
    so the output keeps the patch's frames. The convolution runs in the DFT domain along frequency.
    """

    def __init__(self, width: int, filters: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, filters, kernel_size=(7, width))
        self.bn = _batch_norm(filters)
        self.outputs = N_MELS - width + 1  # valid positions in frequency

    def spectral_weights(self, sign: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectral weights [49, 2, filters, 14] of sign * kernel, and the inverse DFT [outputs, 98].

        With X the DFT of the 7 input frames (columns [Re X(t..t+6), Im X(t..t+6)]) and W the DFT of the
        kernel, the correlation's spectrum is the sum over the 7 frames of X conj(W): Re = Re X Re W + Im X Im W
        and Im = Im X Re W - Re X Im W. Per bin, rows (re/im, filter) give it for every filter at once, laid
        out as the inverse DFT's input rows (bin, re/im); the inverse real DFT of the 49 bins then gives the
        valid outputs only.
        """
        kernel = (self.conv.weight[:, 0] * sign[:, None, None]).to(torch.float64)  # [filters, 7, width]
        spectrum = torch.fft.rfft(kernel, n=DFT_LENGTH, dim=-1)  # [filters, 7, 49]
        real, imag = spectrum.real, spectrum.imag
        to_real = torch.cat([real, imag], dim=1).permute(2, 0, 1)  # [49, filters, 14]
        to_imag = torch.cat([-imag, real], dim=1).permute(2, 0, 1)
        spectral = torch.stack([to_real, to_imag], dim=1)  # [49, 2 (re/im), filters, 14]
        bins = torch.arange(DFT_BINS, dtype=torch.float64, device=kernel.device)[:, None]
        positions = torch.arange(self.outputs, dtype=torch.float64, device=kernel.device)[None, :]
        angle = 2 * torch.pi * bins * positions / DFT_LENGTH
        weight = torch.full((DFT_BINS, 1), 2.0, dtype=torch.float64, device=kernel.device)
        weight[0] = weight[-1] = 1.0  # DC and Nyquist appear once in a real signal's spectrum
        inverse = torch.stack([weight * torch.cos(angle), -weight * torch.sin(angle)], dim=1) / DFT_LENGTH
        inverse = inverse.reshape(2 * DFT_BINS, self.outputs).T  # [outputs, 98], columns (bin, re/im)
        dtype = self.conv.weight.dtype
        return spectral.to(dtype).contiguous(), inverse.to(dtype).contiguous()


def _timbral(blocks: nn.ModuleList, padded: torch.Tensor) -> list[torch.Tensor]:
    """Every timbral block on spectrogram `padded` [B, T + 6, 96]; returns [B, T, filters] per block."""
    batch, frames = padded.shape[0], padded.shape[1] - 6
    rows = batch * frames
    chunk, groups = (CUDA_TIMBRAL_ROWS, 1) if padded.is_cuda else (CPU_TIMBRAL_ROWS, CPU_TIMBRAL_GROUPS)
    chunk = min(chunk, rows)
    chunks = -(-rows // chunk)
    spectrum = torch.view_as_real(torch.fft.rfft(padded, dim=-1))  # [B, T + 6, 49, 2]
    # per row (patch, frame) and bin, the 7 frames' real then imaginary parts: [rows, 49, 14]
    taps = spectrum.unfold(1, 7, 1).reshape(rows, DFT_BINS, 14)
    taps = F.pad(taps, (0, 0, 0, 0, 0, chunks * chunk - rows))
    # [chunks, 49, 14, chunk]: each GEMM reads one contiguous block (a strided slice of [49, 14, rows] read
    # 686 rows from as many pages and ran the GEMM at a fraction of its speed)
    taps = taps.view(chunks, chunk, DFT_BINS, 14).permute(0, 2, 3, 1).contiguous()
    outputs = []
    for block in blocks:
        sign = _pooling_sign(block.bn)
        spectral, inverse = block.spectral_weights(sign)
        filters = block.conv.out_channels
        pooled = padded.new_empty(filters, chunks * chunk)
        group_size = -(-filters // groups)
        for first in range(0, filters, group_size):
            group = spectral[:, :, first : first + group_size]  # [49, 2, width, 14]
            width = group.shape[2]
            weights = group.reshape(DFT_BINS, 2 * width, 14)
            for index in range(chunks):
                # [49, 2 * width, chunk], i.e. [98 (bin, re/im), width * chunk]: the inverse DFT's input
                correlation = torch.bmm(weights, taps[index])
                # [outputs, width * chunk]: inverse @ correlation, the correlation read transposed
                maps = _linear(inverse, correlation.view(2 * DFT_BINS, width * chunk).T)
                columns = slice(index * chunk, (index + 1) * chunk)
                pooled[first : first + width, columns] = maps.view(-1, width, chunk).amax(dim=0)
        # max(z + b) = max(z) + b: the bias comes after pooling (the padded rows are dropped)
        conv = sign * pooled[:, :rows].T + block.conv.bias
        outputs.append(_relu_bn(conv, block.bn).view(batch, frames, -1))
    return outputs


class TemporalBlock(nn.Module):
    """conv [length x 1] along time with TF 'same' padding, relu, batch norm, max over frequency (tempo_block).

    TF's 'same' pads (k - 1) // 2 before and k // 2 after: asymmetric for these even lengths.
    """

    def __init__(self, length: int, filters: int) -> None:
        super().__init__()
        self.length = length
        self.padding = ((length - 1) // 2, length // 2)
        self.conv = nn.Conv2d(1, filters, kernel_size=(length, 1))
        self.bn = _batch_norm(filters)

    def banded_weights(self, sign: torch.Tensor) -> torch.Tensor:
        """[TEMPORAL_BLOCK + length - 1, TEMPORAL_BLOCK * filters]: column (t, c) holds sign[c] * kernel c
        at offset t, so one GEMM of a window of frames gives TEMPORAL_BLOCK output frames of every filter."""
        kernel = self.conv.weight[:, 0, :, 0].T * sign  # [length, filters]
        span = TEMPORAL_BLOCK + self.length - 1
        offsets = torch.arange(TEMPORAL_BLOCK, device=kernel.device)
        lag = torch.arange(span, device=kernel.device)[:, None] - offsets
        inside = (lag >= 0) & (lag < self.length)
        banded = kernel[lag.clamp(0, self.length - 1)] * inside[..., None]  # [span, block, filters]
        return banded.reshape(span, -1)

    def forward(self, rows: torch.Tensor, batch: int) -> torch.Tensor:
        """rows [B * 96, T] (one per patch and mel band) -> [B, T, filters]."""
        frames = rows.shape[1]
        blocks = -(-frames // TEMPORAL_BLOCK)
        extra = blocks * TEMPORAL_BLOCK - frames
        padded = F.pad(rows, (self.padding[0], self.padding[1] + extra))
        sign = _pooling_sign(self.bn)
        banded = self.banded_weights(sign).T.contiguous()  # [block * filters, span]: _linear's weight
        filters = self.conv.out_channels
        pooled = rows.new_empty(batch, blocks * TEMPORAL_BLOCK, filters)
        patches = batch if rows.is_cuda else CPU_TEMPORAL_PATCHES
        for first in range(0, batch, patches):
            bands = padded[first * N_MELS : (first + patches) * N_MELS]
            n = bands.shape[0] // N_MELS
            for start in range(0, blocks * TEMPORAL_BLOCK, TEMPORAL_BLOCK):
                maps = _linear(bands[:, start : start + banded.shape[1]], banded)  # [n * 96, block * filters]
                pooled[first : first + n, start : start + TEMPORAL_BLOCK] = maps.view(
                    n, N_MELS, TEMPORAL_BLOCK, filters
                ).amax(dim=1)
        return _relu_bn(sign * pooled[:, :frames] + self.conv.bias, self.bn)


class MidendLayer(nn.Module):
    """conv [7 x all features] over time (TF: conv2d on [time, features, 1], padded 3 frames), relu, batch norm.

    Computed as one GEMM of every padded frame with the 7 taps' weights side by side, then a sum of the 7
    shifted products: no im2col copy, and more accurate here than oneDNN's conv1d, whose rounding error the
    next batch norm (scales up to ~30) amplifies.
    """

    def __init__(self, in_features: int, filters: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_features, filters, kernel_size=7, padding=3)
        self.bn = _batch_norm(filters)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [B, T, in_features] -> [B, T, filters]
        batch, frames, width = features.shape
        filters, taps = self.conv.out_channels, self.conv.kernel_size[0]
        padded = F.pad(features, (0, 0, 3, 3))
        weight = self.conv.weight.permute(2, 0, 1).reshape(taps * filters, width)  # rows (tap, filter)
        products = _linear(padded.reshape(-1, width), weight).view(batch, frames + taps - 1, taps, filters)
        conv = self.conv.bias + sum(products[:, tap : tap + frames, tap] for tap in range(taps))
        return self.bn(F.relu(conv).reshape(-1, filters)).view(batch, frames, filters)


class Musicnn(nn.Module):
    """musicnn (`build_musicnn` in musicnn/models.py): front end 561 maps, mid end 3 x 64, back end 753 -> 200 -> 50.

    forward(mel [batch, 187, 96]) returns, per patch (time-major like the original's NHWC tensors):
    timbral [B, T, 408], temporal [B, T, 153], cnn1..cnn3 [B, T, 64], mean_pool and max_pool [B, 753],
    penultimate [B, 200] and taggram [B, 50] (sigmoid of the logits).
    """

    def __init__(
        self, num_classes: int = NUM_TAGS, midend_filters: int = 64, backend_units: int = 200
    ) -> None:
        super().__init__()
        # num_filt = 1.6 in build_musicnn: int(1.6 * 128) = 204 timbral and int(1.6 * 32) = 51 temporal filters;
        # timbral widths int(0.4 * 96) = 38 and int(0.7 * 96) = 67 mel bands.
        self.input_bn = nn.BatchNorm2d(1, eps=TF_BN_EPS)
        self.timbral = nn.ModuleList([TimbralBlock(38, 204), TimbralBlock(67, 204)])
        self.temporal = nn.ModuleList([TemporalBlock(128, 51), TemporalBlock(64, 51), TemporalBlock(32, 51)])
        frontend_features = 2 * 204 + 3 * 51  # 561
        self.midend = nn.ModuleList(
            [
                MidendLayer(frontend_features, midend_filters),
                MidendLayer(midend_filters, midend_filters),
                MidendLayer(midend_filters, midend_filters),
            ]
        )
        self.pooled_features = frontend_features + 3 * midend_filters  # 753
        self.pool_bn = _batch_norm(2 * self.pooled_features)
        self.dense = nn.Linear(2 * self.pooled_features, backend_units)
        self.dense_bn = _batch_norm(backend_units)
        self.output = nn.Linear(backend_units, num_classes)

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = mel.shape[0]
        spectrogram = self.input_bn(mel.unsqueeze(1)).squeeze(1)  # [B, T, 96]
        timbral = _timbral(self.timbral, F.pad(spectrogram, (0, 0, 3, 3)))  # time padded, valid in frequency
        bands = spectrogram.transpose(1, 2).reshape(batch * N_MELS, -1)  # [B * 96, T]
        temporal = [block(bands, batch) for block in self.temporal]
        frontend = torch.cat(timbral + temporal, dim=-1)  # [B, T, 561]

        cnn1 = self.midend[0](frontend)
        cnn2 = self.midend[1](cnn1) + cnn1  # residual connections, as midend()
        cnn3 = self.midend[2](cnn2) + cnn2
        midend = torch.cat([frontend, cnn1, cnn2, cnn3], dim=-1)  # [B, T, 753]

        max_pool = midend.amax(dim=1)
        mean_pool = midend.mean(dim=1)
        # TF concatenates [B, 753, 1] max and mean on the last axis and flattens: interleaved (max0, mean0, ...).
        pooled = torch.stack([max_pool, mean_pool], dim=-1).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))  # dropout is off at inference
        logits = self.output(penultimate)
        return {
            "timbral": torch.cat(timbral, dim=-1),
            "temporal": torch.cat(temporal, dim=-1),
            "cnn1": cnn1,
            "cnn2": cnn2,
            "cnn3": cnn3,
            "mean_pool": mean_pool,
            "max_pool": max_pool,
            "penultimate": penultimate,
            "taggram": torch.sigmoid(logits),
        }


# --------------------------------------------------------------------------------------------- vgg
@contextmanager
def _full_precision_convolutions() -> Iterator[None]:
    """cuDNN convolutions in float32, not TF32 (PyTorch's default for them on Ampere and later): TF32's
    10-bit mantissa would move the features ~1e-3 away from the original's. Sets a process-wide flag for
    the duration: only used on CUDA, where one thread runs the model."""
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = allowed


class VggLayer(nn.Module):
    """conv 3x3 'same' (symmetric for odd kernels), relu, batch norm, max pool (padding 'valid')."""

    def __init__(
        self, in_channels: int, filters: int, pool: tuple[int, int], stride: tuple[int, int]
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, filters, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(filters, eps=TF_BN_EPS)
        self.pool = nn.MaxPool2d(pool, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.bn(F.relu(self.conv(x))))


class Vgg(nn.Module):
    """The `*_vgg` models (`vgg` in musicnn/models.py, 128 filters): five conv layers and one dense layer.

    forward(mel [batch, 187, 96]) returns pool1..pool5 channels-last like the original ([B, 92, 48, 128] ...
    [B, 2, 1, 128]), penultimate = pool5 flattened in TF's order (the 256-d input of the output layer; the
    original extractor has no such key) and taggram [B, 50].
    """

    def __init__(self, num_classes: int = NUM_TAGS, filters: int = 128) -> None:
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=TF_BN_EPS)
        pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]
        self.layers = nn.ModuleList(
            [
                VggLayer(1 if i == 0 else filters, filters, pool, stride)
                for i, (pool, stride) in enumerate(pools)
            ]
        )
        self.output = nn.Linear(2 * 1 * filters, num_classes)

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.input_bn(mel.unsqueeze(1))
        outputs: dict[str, torch.Tensor] = {}
        with _full_precision_convolutions() if mel.is_cuda else nullcontext():
            for i, layer in enumerate(self.layers, start=1):
                x = layer(x)  # dropout between layers is off at inference
                outputs[f"pool{i}"] = x.permute(0, 2, 3, 1)
        outputs["penultimate"] = outputs["pool5"].flatten(1)
        outputs["taggram"] = torch.sigmoid(self.output(outputs["penultimate"]))
        return outputs


# --------------------------------------------------------------------------------------------- weights
Transform = Callable[[np.ndarray], np.ndarray] | None  # TF variable layout -> torch parameter layout
# Part of the cache key: bump it when the conversion changes, so stale converted weights are not reused.
CONVERSION_VERSION = 1


def _conv2d_kernel(kernel: np.ndarray) -> np.ndarray:
    """TF conv2d kernel [height, width, in, out] -> torch Conv2d weight [out, in, height, width]."""
    return kernel.transpose(3, 2, 0, 1)


def _midend_kernel(kernel: np.ndarray) -> np.ndarray:
    """TF kernel [7, features, 1, out] (conv over [time, features, 1]) -> torch Conv1d weight [out, features, 7]."""
    return kernel[:, :, 0, :].transpose(2, 1, 0)


def _dense_kernel(kernel: np.ndarray) -> np.ndarray:
    """TF dense kernel [in, out] -> torch Linear weight [out, in]."""
    return kernel.T


def _conv_variables(module: str, tf_name: str, transform: Transform) -> list[tuple[str, str, Transform]]:
    return [(f"{module}.weight", f"{tf_name}/kernel", transform), (f"{module}.bias", f"{tf_name}/bias", None)]


def _bn_variables(module: str, tf_name: str) -> list[tuple[str, str, Transform]]:
    return [
        (f"{module}.weight", f"{tf_name}/gamma", None),
        (f"{module}.bias", f"{tf_name}/beta", None),
        (f"{module}.running_mean", f"{tf_name}/moving_mean", None),
        (f"{module}.running_var", f"{tf_name}/moving_variance", None),
    ]


def _bn_name(index: int) -> str:
    return "batch_normalization" if index == 0 else f"batch_normalization_{index}"


def _conv_name(index: int) -> str:
    return "conv2d" if index == 0 else f"conv2d_{index}"


def variable_map(model: str) -> list[tuple[str, str, Transform]]:
    """(torch state-dict key, TF variable name, kernel transform or None) for every parameter and buffer.

    TF1 layers are named by creation order: musicnn creates the input batch norm, then each block's conv2d
    and its batch norm (timbral 38, 67; temporal 128, 64, 32; mid end x 3), then the back end's batch norm,
    dense, batch norm, dense.
    """
    if model in MUSICNN_MODELS:
        entries = _bn_variables("input_bn", _bn_name(0))
        blocks = [f"timbral.{i}" for i in range(2)] + [f"temporal.{i}" for i in range(3)]
        blocks += [f"midend.{i}" for i in range(3)]
        for i, block in enumerate(blocks):
            transform = _midend_kernel if block.startswith("midend") else _conv2d_kernel
            entries += _conv_variables(f"{block}.conv", _conv_name(i), transform)
            entries += _bn_variables(f"{block}.bn", _bn_name(i + 1))
        entries += _bn_variables("pool_bn", _bn_name(9))
        entries += _conv_variables("dense", "dense", _dense_kernel)
        entries += _bn_variables("dense_bn", _bn_name(10))
        entries += _conv_variables("output", "dense_1", _dense_kernel)
        return entries
    if model in VGG_MODELS:
        entries = _bn_variables("input_bn", _bn_name(0))
        for i in range(5):
            entries += _conv_variables(f"layers.{i}.conv", f"{i + 1}CNN", _conv2d_kernel)
            entries += _bn_variables(f"layers.{i}.bn", _bn_name(i + 1))
        entries += _conv_variables("output", "dense", _dense_kernel)
        return entries
    raise ValueError(f"unknown musicnn model {model!r}; choose one of {', '.join(MODELS)}")


def build_model(model: str) -> Musicnn | Vgg:
    """The architecture of `model`, randomly initialised."""
    if model in MUSICNN_MODELS:
        return Musicnn()
    if model in VGG_MODELS:
        return Vgg()
    raise ValueError(f"unknown musicnn model {model!r}; choose one of {', '.join(MODELS)}")


def checkpoint_prefix(model: str) -> Path:
    """Checkpoint prefix of `model` inside the installed `musicnn` package (files `<dir>/.index`, ...)."""
    if model not in MODELS:
        raise ValueError(f"unknown musicnn model {model!r}; choose one of {', '.join(MODELS)}")
    spec = importlib.util.find_spec("musicnn")
    if spec is None:
        raise FileNotFoundError(
            "the `musicnn` package, which holds the trained weights, is not installed: "
            "pip install --no-deps musicnn==0.1.0 (its TensorFlow code is not needed)"
        )
    if not spec.submodule_search_locations:
        raise FileNotFoundError(f"{spec.origin} shadows the `musicnn` package that holds the weights")
    folder = Path(next(iter(spec.submodule_search_locations))) / model
    if not (folder / ".index").is_file():
        raise FileNotFoundError(
            f"{folder}: no checkpoint (.index) for {model} in the installed musicnn package"
        )
    return folder


def convert_checkpoint(prefix: str | Path, model: str) -> dict[str, torch.Tensor]:
    """Read a musicnn TF checkpoint into a state dict for `build_model(model)`; checks every name and shape."""
    reader = CheckpointReader(str(prefix) + ("/" if Path(prefix).is_dir() else ""))
    expected = build_model(model).state_dict()
    state: dict[str, torch.Tensor] = {}
    problems: list[str] = []
    for key, tf_name, transform in variable_map(model):
        if tf_name not in reader:
            problems.append(f"{tf_name} (for {key}) is missing")
            continue
        value = reader.read(tf_name)
        if transform is not None:
            value = transform(value)
        if tuple(value.shape) != tuple(expected[key].shape):
            problems.append(
                f"{tf_name} has shape {reader.entries[tf_name].shape}, which gives {tuple(value.shape)} "
                f"for {key}; expected {tuple(expected[key].shape)}"
            )
            continue
        state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if problems:
        raise CheckpointError(f"{prefix}: not a {model} checkpoint: " + "; ".join(problems))
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
    return state


def cache_dir() -> Path:
    """Where converted weights are kept: $MVCL_CACHE, else $XDG_CACHE_HOME/mvcl, else ~/.cache/mvcl."""
    if os.environ.get("MVCL_CACHE"):
        return Path(os.environ["MVCL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mvcl"


def checkpoint_digest(prefix: Path) -> str:
    """sha256 over the checkpoint's index and data files: the cache key of its converted weights."""
    digest = hashlib.sha256()
    for path in sorted(prefix.glob(".index")) + sorted(prefix.glob(".data-*")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def musicnn_state_dict(model: str) -> dict[str, torch.Tensor]:
    """Converted weights of `model`, from the cache when present; converts once and caches otherwise."""
    prefix = checkpoint_prefix(model)
    cached = cache_dir() / "musicnn" / f"{model}-v{CONVERSION_VERSION}-{checkpoint_digest(prefix)[:16]}.pt"
    if cached.is_file():
        try:
            return torch.load(cached, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated or foreign file: convert again rather than fail
            log.warning("%s: unreadable cached weights (%s); converting the checkpoint again", cached, error)
    state = convert_checkpoint(prefix, model)
    try:
        with atomic_path(cached) as temporary:  # renamed into place when complete
            torch.save(state, temporary)
        log.info("converted %s weights from %s; cached at %s", model, prefix, cached)
    except OSError as error:  # a read-only cache costs a conversion per load, not a failure
        log.warning("cannot cache converted %s weights at %s: %s", model, cached, error)
    return state


def load_musicnn(name: str = "MTT_musicnn", device: str | torch.device = "cpu") -> Musicnn | Vgg:
    """A musicnn model with the trained weights of the installed `musicnn` package, in eval mode on `device`.

    `name`: MTT_musicnn, MSD_musicnn (musicnn architecture) or MTT_vgg, MSD_vgg. forward takes log-mel patches
    [batch, 187, 96] and returns the original extractor's features (see `Musicnn` and `Vgg`). An MSD_* model
    logs a warning (`MSD_LEAK_NOTE`).
    """
    if name.startswith("MSD_"):
        log.warning("%s: %s", name, MSD_LEAK_NOTE)
    model = build_model(name)
    model.load_state_dict(musicnn_state_dict(name))
    return model.eval().to(device)
