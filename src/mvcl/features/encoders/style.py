"""A weight-free video "style" encoder: colour, light, texture and motion statistics of a clip (numpy).

The study's qualitative analysis found neighbours that share a look (black-and-white videos, neon on dark
backgrounds, dancing) and its future work asks for features "relating to the style of the video"; these are
them. Per frame (RGB, in [0, 1]; HSV as matplotlib and OpenCV define it):
- hue histogram (`hue_bins`), each pixel weighted by its saturation, as a fraction of the pixels: a grey
  pixel has no hue, so a black-and-white frame's hue histogram is all zeros;
- saturation and value (brightness) histograms (`level_bins` each, fractions of the pixels);
- colourfulness (Hasler & Süsstrunk 2003, on [0, 1] RGB), mean saturation, mean brightness (luma, BT.601)
  and contrast (the luma's standard deviation);
- edge density: the fraction of pixels whose luma gradient (central differences) exceeds `edge_threshold`.
Between consecutive frames: motion energy (mean absolute luma difference) and cuts (a frame pair whose luma
histograms differ by more than `cut_threshold` in total variation distance). The clip's vector: mean, then
standard deviation over frames of the per-frame statistics, then mean and standard deviation of the motion
energy and the cut rate (cuts per frame pair). A one-frame clip has zero motion and no cuts.
"""

from __future__ import annotations

import numpy as np

from mvcl.features.encoders.contract import VideoClipEncoder

LUMA = np.array([0.299, 0.587, 0.114])
SCALARS = ("colourfulness", "saturation", "brightness", "contrast", "edge_density")
MOTION = ("motion_mean", "motion_std", "cut_rate")
LUMA_BINS = 32  # for the cut detector's histograms


def frame_names(hue_bins: int, level_bins: int) -> list[str]:
    return [
        *(f"hue{i}" for i in range(hue_bins)),
        *(f"saturation_bin{i}" for i in range(level_bins)),
        *(f"brightness_bin{i}" for i in range(level_bins)),
        *SCALARS,
    ]


def feature_names(hue_bins: int = 8, level_bins: int = 4) -> list[str]:
    names = frame_names(hue_bins, level_bins)
    return [*(f"{name}_mean" for name in names), *(f"{name}_std" for name in names), *MOTION]


def hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue in [0, 1), saturation and value in [0, 1] of float RGB [..., 3] in [0, 1]."""
    maximum, minimum = rgb.max(axis=-1), rgb.min(axis=-1)
    chroma = maximum - minimum
    saturation = np.divide(chroma, maximum, out=np.zeros_like(maximum), where=maximum > 0)
    safe = np.where(chroma > 0, chroma, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hue = np.where(
        maximum == r, ((g - b) / safe) % 6, np.where(maximum == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    hue = np.where(chroma > 0, hue / 6.0, 0.0)
    return hue, saturation, maximum


def histograms(values: np.ndarray, bins: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Per frame [T, bins]: the fraction of a frame's pixels (or of `weights`) in each of `bins` equal bins
    of [0, 1] (1.0 falls in the last bin, as np.histogram's)."""
    frames = len(values)
    index = np.minimum((values * bins).astype(np.int64), bins - 1) + bins * np.arange(frames)[:, None, None]
    counts = np.bincount(
        index.ravel(), weights=None if weights is None else weights.ravel(), minlength=frames * bins
    )
    return counts.reshape(frames, bins) / values[0].size


def frame_statistics(frames: np.ndarray, hue_bins: int, level_bins: int, edge_threshold: float) -> np.ndarray:
    """The per-frame statistics (see the module) [T, F] of uint8 RGB frames [T, height, width, 3]."""
    rgb = frames.astype(np.float32) / 255.0
    hue, saturation, value = hsv(rgb)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    axes = (1, 2)
    colourfulness = np.hypot(rg.std(axis=axes), yb.std(axis=axes)) + 0.3 * np.hypot(
        rg.mean(axis=axes), yb.mean(axis=axes)
    )
    luma = rgb @ LUMA.astype(np.float32)
    gy, gx = np.gradient(luma, axis=axes)
    edges = (np.hypot(gx, gy) > edge_threshold).mean(axis=axes)
    scalars = np.stack(
        [colourfulness, saturation.mean(axis=axes), luma.mean(axis=axes), luma.std(axis=axes), edges], axis=1
    )
    return np.concatenate(
        [
            histograms(hue, hue_bins, weights=saturation),
            histograms(saturation, level_bins),
            histograms(value, level_bins),
            scalars,
        ],
        axis=1,
    )


def clip_style(
    frames: np.ndarray,
    hue_bins: int = 8,
    level_bins: int = 4,
    edge_threshold: float = 0.1,
    cut_threshold: float = 0.5,
) -> np.ndarray:
    """The style vector of one clip, uint8 RGB frames [T, height, width, 3] (T >= 1)."""
    if len(frames) == 0:
        raise ValueError("a clip without frames")
    per_frame = frame_statistics(frames, hue_bins, level_bins, edge_threshold)
    if len(frames) > 1:
        luma = (frames.astype(np.float32) / 255.0) @ LUMA.astype(np.float32)
        motion = np.abs(np.diff(luma, axis=0)).mean(axis=(1, 2))
        cuts = 0.5 * np.abs(np.diff(histograms(luma, LUMA_BINS), axis=0)).sum(axis=1) > cut_threshold
        movement = [motion.mean(), motion.std(), cuts.mean()]
    else:
        movement = [0.0, 0.0, 0.0]
    return np.concatenate([per_frame.mean(axis=0), per_frame.std(axis=0), movement]).astype(np.float32)


class StyleEncoder(VideoClipEncoder):
    batch_size = 8

    @property
    def frames(self) -> int:
        return self.options["frames"]

    @property
    def width(self) -> int:
        return len(feature_names(self.options["hue_bins"], self.options["level_bins"]))

    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        o = self.options
        settings = (o["hue_bins"], o["level_bins"], o["edge_threshold"], o["cut_threshold"])
        return np.stack([clip_style(clip, *settings) for clip in inputs])

    def provenance(self) -> dict:
        return {
            **super().provenance(),
            "numpy": np.__version__,
            "width": self.width,
            "frame_size": list(self.frame_size),
        }
