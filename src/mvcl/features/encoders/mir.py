"""A weight-free audio baseline: the classic MIR descriptors of a window, with librosa.

Per STFT frame (`n_fft`, `hop_length` at `sample_rate`): `n_mfcc` MFCCs and their deltas, 12 chroma bins
(C, C#, ..., B; A440 tuning), spectral contrast (`contrast_bands` + 1 values), centroid, bandwidth, roll-off (85%) and
flatness, RMS and onset strength. The window's vector is the mean and then the standard deviation over its
frames of each, followed by three rhythm statistics: the tempo (beats per second; librosa's onset-autocorrelation
estimate), the pulse clarity (the autocorrelation of the onset envelope at that tempo's lag over its value at
lag 0, in [0, 1]) and the onset rate (detected onsets per second). Frequencies are in kHz and the tempo in
beats per second, so that no descriptor dwarfs the others by three orders of magnitude (the contrastive heads
see raw features; the probes standardise theirs); MFCCs keep librosa's dB-based scale. Many MIR papers report these as their baseline; they need no
weights, run anywhere, and give the same numbers on every machine.

A window shorter than `n_fft` is zero-padded by librosa's centred framing (one frame); an empty window is a
NaN row with a warning (see `contract.WindowEncoder.extract`).
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np

from mvcl.features.encoders.contract import AudioWindowEncoder, per_input

CHROMA = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SPECTRAL = ("centroid", "bandwidth", "rolloff", "flatness", "rms", "onset_strength")
RHYTHM = ("tempo_bps", "pulse_clarity", "onset_rate")


def frame_names(n_mfcc: int, contrast_bands: int) -> list[str]:
    """Names of the per-frame descriptors, in the order of the vector's mean and spread halves."""
    return [
        *(f"mfcc{i}" for i in range(n_mfcc)),
        *(f"mfcc{i}_delta" for i in range(n_mfcc)),
        *(f"chroma_{pitch}" for pitch in CHROMA),
        *(f"contrast{i}" for i in range(contrast_bands + 1)),
        *SPECTRAL,
    ]


def feature_names(n_mfcc: int = 20, contrast_bands: int = 6) -> list[str]:
    """Names of the vector's entries: means, then standard deviations, then the rhythm statistics."""
    names = frame_names(n_mfcc, contrast_bands)
    return [*(f"{name}_mean" for name in names), *(f"{name}_std" for name in names), *RHYTHM]


class MirEncoder(AudioWindowEncoder):
    batch_size = 8

    def __init__(self, spec, context=None) -> None:
        super().__init__(spec, context)
        o = self.options
        # Filterbanks once per encoder, not once per window (librosa builds them on every call: ~60 ms each).
        self.mel_basis = librosa.filters.mel(sr=o["sample_rate"], n_fft=o["n_fft"], n_mels=o["n_mels"])
        # Chroma at A440 tuning (tuning=0): librosa's default estimates the tuning of every window, which
        # costs more than everything else here and makes a window's chroma depend on its own pitch drift.
        self.chroma_basis = librosa.filters.chroma(sr=o["sample_rate"], n_fft=o["n_fft"], tuning=0.0)
        self.frequencies = librosa.fft_frequencies(sr=o["sample_rate"], n_fft=o["n_fft"])[:, None]

    @property
    def sample_rate(self) -> int:
        return self.options["sample_rate"]

    @property
    def window(self) -> str:  # type: ignore[override]
        return self.options["window"]

    @property
    def width(self) -> int:
        return len(feature_names(self.options["n_mfcc"], self.options["contrast_bands"]))

    def provenance(self) -> dict:
        return {**super().provenance(), "librosa": librosa.__version__, "width": self.width}

    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        return per_input(self.describe, inputs, self.name, self.width)

    def describe(self, waveform: np.ndarray) -> np.ndarray:
        """The MIR vector of one mono window."""
        o = self.options
        rate, n_fft, hop = o["sample_rate"], o["n_fft"], o["hop_length"]
        y = np.asarray(waveform, dtype=np.float32)
        if len(y) == 0:
            raise ValueError("empty window")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns when a short window is shorter than n_fft
            magnitude = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop))
        power = magnitude**2
        log_mel = librosa.power_to_db(self.mel_basis @ power)
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=o["n_mfcc"])
        # deltas need at least 3 frames; a shorter window's MFCCs do not change, by definition
        frames = mfcc.shape[1]
        delta = (
            librosa.feature.delta(mfcc, width=min(9, _odd(frames))) if frames >= 3 else np.zeros_like(mfcc)
        )
        chroma = librosa.util.normalize(self.chroma_basis @ power, norm=np.inf, axis=0)
        contrast = librosa.feature.spectral_contrast(S=magnitude, sr=rate, n_bands=o["contrast_bands"])
        shape = spectral_shape(magnitude, self.frequencies)
        flatness = librosa.feature.spectral_flatness(S=magnitude)
        rms = librosa.feature.rms(S=magnitude, frame_length=n_fft)
        onset = librosa.onset.onset_strength(S=log_mel, sr=rate)
        per_frame = np.concatenate(
            [mfcc, delta, chroma, contrast, shape, flatness, rms, onset[None, :frames]]
        )
        rhythm = self.rhythm(onset, rate, hop, len(y))
        return np.concatenate([per_frame.mean(axis=1), per_frame.std(axis=1), rhythm]).astype(np.float32)

    @staticmethod
    def rhythm(envelope: np.ndarray, rate: int, hop: int, samples: int) -> np.ndarray:
        """[tempo (beats per second), pulse clarity, onsets per second] of an onset envelope."""
        tempo = float(librosa.feature.tempo(onset_envelope=envelope, sr=rate, hop_length=hop)[0])
        centred = envelope - envelope.mean()
        autocorrelation = np.correlate(centred, centred, mode="full")[len(centred) - 1 :]
        lag = round(60.0 * rate / hop / tempo) if tempo > 0 else 0
        clarity = (
            autocorrelation[lag] / autocorrelation[0]
            if 0 < lag < len(autocorrelation) and autocorrelation[0] > 0
            else 0.0
        )
        onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=rate, hop_length=hop)
        return np.array([tempo / 60.0, max(0.0, clarity), len(onsets) / (samples / rate)], dtype=np.float64)


def spectral_shape(magnitude: np.ndarray, frequencies: np.ndarray, roll_percent: float = 0.85) -> np.ndarray:
    """[3, frames]: spectral centroid, bandwidth (p = 2) and roll-off frequency (kHz), as librosa defines them.

    librosa's functions recompute the centroid and the frequencies for each of the three; this does it once.
    A silent frame has centroid, bandwidth and roll-off 0.
    """
    total = magnitude.sum(axis=0, keepdims=True)
    weights = np.divide(magnitude, total, out=np.zeros_like(magnitude), where=total > 0)
    centroid = (frequencies * weights).sum(axis=0)
    bandwidth = np.sqrt((weights * (frequencies - centroid) ** 2).sum(axis=0))
    cumulative = np.cumsum(magnitude, axis=0)
    reached = cumulative >= roll_percent * cumulative[-1:]
    rolloff = np.where(total[0] > 0, frequencies[np.argmax(reached, axis=0), 0], 0.0)
    return np.stack([centroid, bandwidth, rolloff]) / 1000.0


def _odd(n: int) -> int:
    return n if n % 2 else n - 1
