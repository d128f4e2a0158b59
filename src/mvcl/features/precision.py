"""Arithmetic precision of a frozen encoder's forward pass: float32, bfloat16, float16 or int8.

Only the video encoder uses it (`features.precision`, applied by `VideoEncoder.compute_in`): R(2+1)D-18's
convolutions run several times faster in bf16 on a CPU with native bf16, and faster on a GPU (README, Speed),
and its pooled features stay within a cosine of 0.999 of the float32 ones (tests/test_video_features.py).
A CPU without native bf16 (AVX2 only) runs it in int8 instead (`VideoEncoder.quantize_int8`), several times
faster than float32 there, kept only where every job's own check finds it within that cosine.
musicnn always runs in float32: in bf16 its features fail the check against the original TF model's.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Sequence
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "fp16", "int8", "auto")
# int8 models take float32 input and quantise it themselves.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}
# The smallest cosine between a reduced-precision clip feature and its float32 one that a precision must keep.
MIN_COSINE = 0.999


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16), not by emulation (slower than
    float32). Linux only: elsewhere the CPU flags are not read and the answer is no."""
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AMX") or platform.system() != "Linux":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def int8_engine(engines: Sequence[str] | None = None) -> str | None:
    """torch's quantised engine for int8 models on this CPU, None when it has none (x86 only: AVX2 or better).

    oneDNN where torch has it: R(2+1)D-18's int8 3D convolutions cost ~25% less CPU there than in fbgemm, on
    AVX2 (0.195 against 0.26 CPU-s an 8-frame clip on one thread) as with AVX-512 VNNI (0.104 against 0.142),
    measured on an AMD EPYC Zen 4 with `benchmarks/video_features.py` (README, Speed); else fbgemm. Both
    run the same quantisation (`VideoEncoder.quantize_int8`: 7-bit activations, which cannot saturate the
    16-bit pair sums of AVX2's int8 instructions), so either passes the same fidelity check. `engines`:
    torch's supported engines (the default) or a list to choose from.
    """
    engines = torch.backends.quantized.supported_engines if engines is None else engines
    return next((engine for engine in ("onednn", "fbgemm") if engine in engines), None)


def cpu_runs_int8() -> bool:
    """Whether torch can run quantised int8 models here (`int8_engine`)."""
    return int8_engine() is not None


def resolve_precision(precision: str, device: torch.device) -> str:
    """fp32, bf16, fp16 or int8 for `precision` on `device`: `auto` = bf16 where the device computes it
    natively; else int8 on a CPU that runs it (x86: `int8_engine`), which the job keeps only if it passes its check
    (`mvcl.features.video`); else fp32. An explicit choice the device cannot run is an error naming the key."""
    if precision not in PRECISIONS:
        raise ValueError(f"features.precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    cuda = device.type == "cuda"
    if precision == "auto":
        if torch.cuda.is_bf16_supported() if cuda else cpu_has_native_bf16():
            return "bf16"
        return "int8" if not cuda and cpu_runs_int8() else "fp32"
    if precision == "int8" and (cuda or not cpu_runs_int8()):
        raise ValueError(
            "features.precision: int8 runs on x86 CPUs only (torch's oneDNN or fbgemm engine): set auto, fp32 "
            "or bf16"
        )
    if precision == "fp16" and not cuda and not torch.ops.mkldnn._is_mkldnn_fp16_supported():
        raise ValueError(
            "features.precision: fp16 on this CPU has no hardware support (AVX512-FP16 / AMX-FP16): "
            "set features.precision: auto, bf16 or fp32"
        )
    return precision
