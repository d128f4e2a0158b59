"""Frozen R(2+1)D-18 video encoder (study section 3.2) and its frame handling.

torchvision's `r2plus1d_18` with the classifier (`fc`) removed: a clip maps to the 512-d globally pooled
feature, as in their code. The encoder is frozen (eval mode, no gradients); augmentation is done by cropping
the frames differently, not by the model.

Frame handling follows their code: the clip window's frames are cut with one square box per clip (the same box
on every frame) and resized to `crop` x `crop` (their RandomResizedCrop: 112, scale 0.5-1, aspect 1). Training
segments get random boxes (`random_boxes`), validation and test segments one centred box (`centre_box`).

Weights never change silently: `build_video_encoder` returns, beside the model, a provenance record naming
the checkpoint file, the URL it came from and its sha256, or saying loudly that the weights are random.
Downloaded weights are verified, not trusted: a file takes its place in the cache only when it arrived whole
(as many bytes as the server announced) and its sha256 starts with the hash prefix its name carries, as
torch.hub's `check_hash` does (`r2plus1d_18-91a641e6.pth`); anything else is deleted and the reason said.
"""

from __future__ import annotations

import http.client
import logging
import math
import re
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

from mvcl.features.precision import int8_engine
from mvcl.io import atomic_path
from mvcl.provenance import sha256_file

log = logging.getLogger(__name__)

MODEL_NAME = "r2plus1d_18"
FEATURE_DIM = 512
KINETICS = R2Plus1D_18_Weights.KINETICS400_V1
# Kinetics-400 mean/std of torchvision's preset (the statistics the weights were trained with).
KINETICS_MEAN = tuple(KINETICS.transforms().mean)
KINETICS_STD = tuple(KINETICS.transforms().std)
# Per socket operation: an offline machine fails within this, a slow connection keeps going.
DOWNLOAD_TIMEOUT_S = 15.0
# torch hub names a checkpoint <name>-<first hex digits of its sha256>.<ext>; torch.hub.HASH_REGEX accepts
# any number of digits, we want at least 8 (torchvision's files carry 8) so that a name like `a-b.pth`
# is not read as a hash.
HASH_PREFIX = re.compile(r"-([a-f0-9]{8,64})\.")
_DOWNLOAD_BLOCK = 1 << 20
_RETRY = "run again, or set video_encoder.weights_url to a mirror"


class WeightsUnavailable(RuntimeError):
    """`weights: auto` found no Kinetics-400 checkpoint and random weights were not allowed."""


class DownloadFailed(OSError):
    """A checkpoint download broke off, came short or did not match its hash; nothing was cached."""


class CropBox(NamedTuple):
    """A square box in frame pixels: rows top..top+side, columns left..left+side."""

    top: int
    left: int
    side: int


def _fitting_scale(height: int, width: int, scale: tuple[float, float]) -> tuple[float, float]:
    """The part of the area-scale range whose square box fits the frame (a square is at most short side²)."""
    largest = min(height, width) ** 2 / (height * width)
    high = min(scale[1], largest)
    return min(scale[0], high), high


def _side(area_scale: float, height: int, width: int) -> int:
    return max(1, min(int(math.sqrt(area_scale * height * width)), height, width))


def random_boxes(
    rng: np.random.Generator, height: int, width: int, count: int, scale: tuple[float, float]
) -> list[CropBox]:
    """`count` square boxes of RandomResizedCrop(scale=scale, ratio=(1, 1)) on a height x width frame.

    The area fraction is uniform over the part of `scale` whose square fits the frame, the position uniform.
    (torchvision retries 10 times and then falls back to a centre crop: on a 16:9 frame with scale 0.5-1 a
    quarter of its boxes would pile up in the centre.)
    """
    low, high = _fitting_scale(height, width, scale)
    boxes = []
    for _ in range(count):
        side = _side(rng.uniform(low, high), height, width)
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        boxes.append(CropBox(top, left, side))
    return boxes


def centre_box(height: int, width: int, scale: tuple[float, float]) -> CropBox:
    """The deterministic box for validation and test: centred, with the mean area of the random boxes."""
    side = _side(sum(_fitting_scale(height, width, scale)) / 2, height, width)
    return CropBox((height - side) // 2, (width - side) // 2, side)


def crop_clips(frames: np.ndarray, boxes: list[CropBox], size: int) -> torch.Tensor:
    """uint8 frames [T, H, W, 3] -> uint8 clips [len(boxes), 3, T, size, size], one per box.

    Each box is cut from every frame and resized with antialiased bilinear interpolation (a 432-pixel box
    shrinks about 4x to 112; without antialiasing fine texture would alias).
    """
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)  # [T, 3, H, W]
    clips = []
    for top, left, side in boxes:
        patch = video[:, :, top : top + side, left : left + side]
        resized = F.interpolate(
            patch, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        clips.append(resized.permute(1, 0, 2, 3))  # [3, T, size, size], the layout R(2+1)D expects
    return torch.stack(clips)


class VideoEncoder(nn.Module):
    """uint8 clips [B, 3, T, h, w] -> float32 features [B, 512].

    Pixels are scaled to [0, 1] and, when `normalize`, standardised with the Kinetics mean/std the weights
    were trained with (their extraction skipped this).
    """

    def __init__(self, backbone: nn.Module, normalize: bool) -> None:
        super().__init__()
        self.backbone = backbone
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1), persistent=False)

    def compute_in(self, dtype: torch.dtype) -> VideoEncoder:
        """Run the backbone in `dtype` (float32, or bfloat16 / float16 for `features.precision`).

        Reduced precision casts the backbone's weights once and lays them, and the clips, out channels-last
        (NDHWC), the layout oneDNN's and cuDNN's reduced-precision 3-D convolutions run fastest in; this beats
        autocast, which re-casts every weight on every call (README, Speed). Pixels are scaled and standardised
        in float32 before the cast; features come back as float32. float32 keeps the default layout, so its
        features do not change.
        """
        layout = torch.contiguous_format if dtype == torch.float32 else torch.channels_last_3d
        self.backbone.to(dtype=dtype, memory_format=layout)
        return self

    @property
    def compute_dtype(self) -> torch.dtype:
        """The type the backbone takes its input in: its weights' (see `compute_in`); float32 for int8, whose
        model quantises its float32 input itself (see `quantize_int8`)."""
        weights = next(self.backbone.parameters(), None)
        return torch.float32 if weights is None else weights.dtype

    def quantize_int8(
        self, calibration: torch.Tensor, check: torch.Tensor, engine: str | None = None
    ) -> float:
        """Replace the float32 backbone by an int8 one and return its fidelity: the smallest cosine between
        int8 and float32 features over the uint8 clips `check`.

        Static post-training quantisation for x86 CPUs (torch.ao FX, run by `precision.int8_engine`: oneDNN,
        else fbgemm, both in AVX2 as well as AVX-512): convolutions, batch norms and ReLUs fused, weights int8
        per output channel, activations uint8 with ranges observed on the uint8 clips `calibration` and
        reduced to 7 bits (torch's x86 setting: an int8 product pair then fits AVX2's 16-bit sums, which CPUs
        without VNNI would otherwise saturate). The pooled 512-d features
        come back as float32. The same weights and clips give the same model, so every shard that calibrates
        on the same clips computes the same features (README, Speed).
        """
        with torch.inference_mode():
            reference = self(check)
        self._to_int8(self.pixels(calibration), engine=engine)
        with torch.inference_mode():
            cosines = F.cosine_similarity(self(check), reference, dim=1)
        return float(cosines.min())

    def load_int8(self, state: dict[str, torch.Tensor], example: torch.Tensor) -> None:
        """Replace the float32 backbone by the int8 one of `state`, the backbone's state dict after
        `quantize_int8` (its weights and every observed range), without observing anything again: the same
        model, as the checked cache of `mvcl.features.video` keeps it. `example`: uint8 clips of the shape
        extraction feeds [B, 3, T, h, w] (the graph is traced on it)."""
        self._to_int8(self.pixels(example), observe=False)
        self.backbone.load_state_dict(state)

    def _to_int8(self, pixels: torch.Tensor, observe: bool = True, engine: str | None = None) -> None:
        """Fuse, observe `pixels` (when `observe`) and convert the backbone to int8 (see `quantize_int8`) for
        `engine` (default `int8_engine()`; another one to compare them, benchmarks/video_features.py)."""
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        torch.backends.quantized.engine = engine or int8_engine()
        with warnings.catch_warnings():  # torch.ao's notice that torchao will take this API over, and an
            # unobserved observer's notice when `load_int8` fills the ranges from a state dict instead
            warnings.simplefilter("ignore", DeprecationWarning)
            if not observe:
                warnings.simplefilter("ignore", UserWarning)
            observed = prepare_fx(self.backbone, get_default_qconfig_mapping("x86"), (pixels[:1],))
            if observe:
                with torch.no_grad():
                    observed(pixels)
            self.backbone = convert_fx(observed)

    def pixels(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 clips -> float32 pixels in [0, 1], standardised when `normalize`."""
        pixels = clips.float() / 255.0
        return (pixels - self.mean) / self.std if self.normalize else pixels

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        pixels = self.pixels(clips)
        dtype = self.compute_dtype
        if dtype != torch.float32:
            pixels = pixels.to(dtype, memory_format=torch.channels_last_3d)
        return self.backbone(pixels).float()


def build_video_encoder(
    weights: str, *, allow_random: bool, seed: int, normalize: bool = True, weights_url: str = ""
) -> tuple[VideoEncoder, dict]:
    """The frozen encoder (CPU, eval mode) and the provenance record of its weights.

    `weights`: `auto` = torchvision's Kinetics-400 checkpoint from the torch hub cache, downloaded there when
    the network allows (from `weights_url` when given, e.g. a mirror; else torchvision's URL) and verified
    against its hash prefix; a path = a state dict of `r2plus1d_18` (with or without `fc.*`), checked
    against its name's hash prefix when it has one; `none` = random initialisation seeded by `seed`. When
    `auto` gets nothing, random weights are used only with `allow_random` (and a loud warning); otherwise
    `WeightsUnavailable` says how to provide the file.
    """
    if weights == "none":
        backbone, record = _random_backbone(seed), _random_record(seed)
    elif weights == "auto":
        url = weights_url or KINETICS.url
        checkpoint, reason = _kinetics_checkpoint(url)
        if checkpoint is not None:
            record = _kinetics_record(checkpoint, url)  # checks the hash before loading
            backbone = _load_backbone(checkpoint, seed)
        elif allow_random:
            log.warning(
                "\n%s\nR(2+1)D-18 IS RANDOMLY INITIALISED (seed %d): video features carry no Kinetics "
                "knowledge.\n%s\n%s",
                "*" * 100,
                seed,
                _missing_weights_message(reason, url),
                "*" * 100,
            )
            backbone, record = _random_backbone(seed), _random_record(seed, reason=reason)
        else:
            raise WeightsUnavailable(_missing_weights_message(reason, url))
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"video_encoder.weights: {path} does not exist; give a state dict of torchvision's "
                f"r2plus1d_18 (e.g. {KINETICS.url}), or `auto` or `none`"
            )
        record = _file_record(path)  # checks a hash prefix in the name before loading
        backbone = _load_backbone(path, seed)
    encoder = VideoEncoder(backbone, normalize).eval().requires_grad_(False)
    return encoder, record


def kinetics_cache_path(url: str = "") -> Path:
    """Where the checkpoint of `url` (default torchvision's) is cached: <torch hub dir>/checkpoints/<name>.

    The name is the URL's file name when it carries a hash prefix (torchvision's and a faithful mirror's do),
    else torchvision's own name, so that a mirror's file is still checked against torchvision's hash.
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / _checkpoint_name(url or KINETICS.url)


def _checkpoint_name(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    return name if HASH_PREFIX.search(name) else Path(KINETICS.url).name


def _kinetics_checkpoint(url: str) -> tuple[Path | None, str]:
    """The cached checkpoint (downloaded from `url` first if absent), or None and why not."""
    path = kinetics_cache_path(url)
    if path.is_file():
        return path, ""
    log.info("downloading %s to %s", url, path)
    try:
        _download(url, path, DOWNLOAD_TIMEOUT_S)
    except DownloadFailed as error:
        log.warning("%s", error)
        return None, str(error)
    except OSError as error:  # URLError, HTTP errors, refused connections, timeouts, a full disk
        return None, f"{path} does not exist and downloading {url} failed: {error}; nothing was cached"
    log.info("downloaded %s (%d bytes), sha256 verified", path.name, path.stat().st_size)
    return path, ""


def _download(url: str, destination: Path, timeout: float) -> None:
    """Fetch `url` to `destination`, which it takes only when whole and matching its name's hash prefix.

    Raises DownloadFailed (the partial file deleted) when the transfer breaks off or comes short of the
    announced Content-Length, or when the sha256 does not match; other OSErrors when no transfer began.
    """
    with atomic_path(destination) as temporary:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(temporary, "wb") as out:
            announced = response.headers.get("Content-Length")
            received = 0
            try:
                while block := response.read(_DOWNLOAD_BLOCK):
                    out.write(block)
                    received += len(block)
            except (OSError, http.client.HTTPException) as error:
                raise DownloadFailed(
                    f"downloading {url} broke off after {received} bytes ({error!r}): the partial file was "
                    f"deleted, nothing was cached at {destination}; {_RETRY}"
                ) from error
        # http.client returns b"" (no error) when the server closes early, so compare with what it announced.
        if announced is not None and received != int(announced):
            raise DownloadFailed(
                f"downloading {url} came short: {received} of {announced} bytes: the partial file was "
                f"deleted, nothing was cached at {destination}; {_RETRY}"
            )
        try:
            _check_hash(temporary, destination.name)
        except ValueError as error:
            raise DownloadFailed(
                f"downloaded {url} but {error.args[0]}: the file was deleted, nothing was cached at "
                f"{destination} (a corrupted transfer, or a mirror serving another file)"
            ) from None


def _check_hash(path: Path, name: str) -> str:
    """sha256 of `path`, checked against the hash prefix of `name` (`r2plus1d_18-91a641e6.pth`) if any."""
    digest = sha256_file(path)
    match = HASH_PREFIX.search(name)
    if match and not digest.startswith(match.group(1)):
        raise ValueError(
            f"its sha256 {digest[:12]}... does not start with {match.group(1)} as the name {name} says"
        )
    return digest


def _check_file_hash(path: Path) -> str:
    try:
        return _check_hash(path, path.name)
    except ValueError as error:
        raise ValueError(
            f"{path}: {error}: the file is corrupt or not torchvision's checkpoint; delete it and provide it "
            "again"
        ) from None


def _missing_weights_message(reason: str, url: str) -> str:
    return (
        f"video_encoder.weights: auto found no Kinetics-400 weights for R(2+1)D-18 ({reason}).\n"
        "Provide them in one of these ways:\n"
        f"  1. download {url} on a machine with network access and copy it to {kinetics_cache_path(url)}\n"
        "  2. or put the downloaded file anywhere and set video_encoder.weights: /path/to/file.pth\n"
        "  3. or download from a mirror: video_encoder.weights_url: <URL of r2plus1d_18-91a641e6.pth>\n"
        "  4. or accept random weights: video_encoder.allow_random: true (features then mean little)"
    )


def _random_backbone(seed: int) -> nn.Module:
    """r2plus1d_18 without its classifier, initialised from `seed` (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = r2plus1d_18(weights=None)
    backbone.fc = nn.Identity()
    return backbone


def _load_backbone(path: Path, seed: int) -> nn.Module:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(
            f"video_encoder.weights: cannot read {path} as a PyTorch state dict: {error}"
        ) from error
    if not isinstance(state, dict):
        raise ValueError(f"video_encoder.weights: {path} holds a {type(state).__name__}, not a state dict")
    backbone = _random_backbone(seed)
    # The Kinetics classifier is dropped: the feature is the pooled 512-d input of `fc`.
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    try:
        missing, unexpected = backbone.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise ValueError(f"video_encoder.weights: {path} does not fit r2plus1d_18: {error}") from error
    if missing or unexpected:
        raise ValueError(
            f"video_encoder.weights: {path} is not a state dict of torchvision's r2plus1d_18: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected keys "
            f"(e.g. {unexpected[:3]}); save it with torch.save(model.state_dict(), path)"
        )
    return backbone


def _kinetics_record(path: Path, url: str) -> dict:
    digest = _check_file_hash(path)
    return {
        "name": MODEL_NAME,
        "weights": "R2Plus1D_18_Weights.KINETICS400_V1",
        "source": str(path),
        "url": url,
        "sha256": digest,
        "description": f"torchvision Kinetics-400 weights (sha256 {digest[:12]})",
    }


def _file_record(path: Path) -> dict:
    digest = _check_file_hash(path)
    return {
        "name": MODEL_NAME,
        "weights": "file",
        "source": str(path.resolve()),
        "sha256": digest,
        "description": f"weights from {path.name} (sha256 {digest[:12]})",
    }


def _random_record(seed: int, reason: str = "") -> dict:
    record = {
        "name": MODEL_NAME,
        "weights": "random",
        "source": f"random, seed {seed}",
        "sha256": None,
        "seed": seed,
        "description": f"RANDOM weights (seed {seed}), not Kinetics-pretrained",
    }
    if reason:
        record["fallback_reason"] = reason
    return record
