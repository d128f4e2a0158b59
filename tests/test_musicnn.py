"""The PyTorch musicnn against the original TensorFlow musicnn's outputs (tests/fixtures/musicnn/reference.npz).

The fixture holds what the original extractor and graph computed on two synthetic clips (see
make_reference.py): taggram, mean/max pools and penultimate per patch, and the time maps timbral, temporal,
cnn1..cnn3 at the frames in `frames`. Tolerance per layer: |port - original| <= 1e-4 + 4e-6 * max|original|.
That is 1e-4 for every layer whose values stay near 1 (taggram, penultimate, mean_pool, temporal, cnn1) and
float32 rounding at the scale of the large ones (timbral, cnn2, cnn3 and max_pool reach 50-110; TF's own
float32 result is ~2e-4 from a float64 evaluation there). Measured: taggram <= 3e-7, penultimate <= 5e-6,
mean_pool <= 8e-6, temporal <= 1e-5, cnn1 <= 7e-6, timbral <= 6e-5, cnn2 <= 5e-5, cnn3 and max_pool <= 2e-4.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from mvcl.device import cpu_vendor
from mvcl.features import musicnn
from mvcl.features.musicnn import (
    MODELS,
    MUSICNN_OUTPUTS,
    PATCH_FRAMES,
    VGG_OUTPUTS,
    MelFrontEnd,
    load_musicnn,
    mel_filterbank,
    mel_patches,
    musicnn_mel,
)

REFERENCE = Path(__file__).parent / "fixtures" / "musicnn" / "reference.npz"
CLIPS = ("tones", "drums")
MAPS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3")


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    """Converted weights go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MVCL_CACHE", str(tmp_path_factory.mktemp("mvcl-cache")))
        yield


@functools.cache
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as stored:
        return dict(stored)


@functools.cache
def model(name: str) -> torch.nn.Module:
    return load_musicnn(name)


def waveform(clip: str) -> np.ndarray:
    """The clip as librosa.load read the original's wav: int16 / 32768 in float32."""
    return reference()[f"{clip}/samples"].astype(np.float32) / 32768


def tolerance(original: np.ndarray) -> float:
    return 1e-4 + 4e-6 * float(np.abs(original).max())


def errors(outputs: dict[str, torch.Tensor], name: str, clip: str) -> dict[str, tuple[float, float]]:
    """(max abs error, tolerance) of every layer the fixture holds for `name` on `clip`."""
    prefix = f"{name}/{clip}/"
    found = {}
    for key, original in reference().items():
        if key.startswith(prefix):
            layer = key[len(prefix) :]
            port = outputs[layer].numpy()
            if layer in MAPS:
                port = port[:, reference()["frames"]]
            found[layer] = (float(np.abs(port - original).max()), tolerance(original))
    return found


def run(network: torch.nn.Module, clip: str) -> dict[str, torch.Tensor]:
    with torch.inference_mode():
        return network(torch.from_numpy(mel_patches(reference()[f"{clip}/mel"])))


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("name", MODELS)
def test_every_layer_matches_the_original_tensorflow_musicnn(name, clip):
    found = errors(run(model(name), clip), name, clip)
    expected = (
        {"taggram", "pool5"} if "vgg" in name else {"taggram", "mean_pool", "max_pool", "penultimate", *MAPS}
    )
    assert set(found) == expected
    too_far = {layer: error for layer, error in found.items() if error[0] > error[1]}
    assert not too_far, f"{name} on {clip}: (max abs error, tolerance) {too_far}"


def _swap_two_timbral_filters(network):  # 1 and 2 respond to the drums clip; many filters never do
    weight = network.timbral[0].conv.weight
    weight[[1, 2]] = weight[[2, 1]].clone()


def _flip_a_timbral_kernel(network):  # convolution where TF correlates
    weight = network.timbral[1].conv.weight
    weight.copy_(weight.flip(-1, -2))


def _transpose_a_midend_kernel(network):  # [out, in] swapped: same shape for the 64 -> 64 layers
    weight = network.midend[1].conv.weight
    weight.copy_(weight.transpose(0, 1).clone())


def _pytorch_batch_norm_epsilon(network):
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eps = 1e-5


def _drop_a_moving_mean(network):
    network.temporal[0].bn.running_mean.zero_()


def _symmetric_temporal_padding(network):  # 'same' padded 64/64 instead of TF's 63/64
    network.temporal[0].padding = (64, 63)


@pytest.mark.parametrize(
    "perturb",
    [
        _swap_two_timbral_filters,
        _flip_a_timbral_kernel,
        _transpose_a_midend_kernel,
        _pytorch_batch_norm_epsilon,
        _drop_a_moving_mean,
        _symmetric_temporal_padding,
    ],
)
def test_the_comparison_fails_when_the_port_is_wrong(perturb):
    network = load_musicnn("MTT_musicnn")
    with torch.no_grad():
        perturb(network)
    found = errors(run(network, "drums"), "MTT_musicnn", "drums")
    assert max(error / limit for error, limit in found.values()) > 10


@pytest.mark.parametrize("clip", CLIPS)
def test_the_numpy_front_end_is_the_originals(clip):
    mel = musicnn_mel(waveform(clip))
    original = reference()[f"{clip}/mel"]
    assert mel.shape == original.shape and mel.dtype == np.float32
    # Same librosa and numpy as the fixture: identical; a numpy with another float32 log10 may differ by an ulp.
    np.testing.assert_allclose(mel, original, rtol=0, atol=1e-5)


def test_loud_audio_does_not_overflow_the_float16_step():
    """Mel power above 6.55 overflows 10000 x in float16 (numpy >= 2 without the float32 promotion)."""
    import librosa

    power = librosa.feature.melspectrogram(
        y=waveform("drums"), sr=16000, n_fft=512, hop_length=256, n_mels=96
    )
    assert (10000 * power.astype(np.float16).astype(np.float32) > np.finfo(np.float16).max).any()
    assert np.isfinite(musicnn_mel(waveform("drums"))).all()


def _htk_mel(y: np.ndarray) -> np.ndarray:
    import librosa

    power = np.abs(librosa.stft(y, n_fft=512, hop_length=256, pad_mode="reflect")) ** 2
    return librosa.filters.mel(sr=16000, n_fft=512, n_mels=96, htk=True) @ power


def _zero_padded_mel(y: np.ndarray) -> np.ndarray:  # librosa >= 0.10's default padding
    import librosa

    return librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96)


@pytest.mark.parametrize("wrong_mel", [_htk_mel, _zero_padded_mel])
def test_a_wrong_mel_front_end_is_told_apart(wrong_mel):
    mel = wrong_mel(waveform("tones")).T
    log_mel = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    assert np.abs(log_mel - reference()["tones/mel"]).max() > 0.1


def test_the_filterbank_is_librosas_bit_for_bit():
    import librosa

    np.testing.assert_array_equal(mel_filterbank(), librosa.filters.mel(sr=16000, n_fft=512, n_mels=96))


@pytest.mark.parametrize("clip", CLIPS)
def test_the_batched_torch_front_end_matches_the_numpy_one(clip):
    exact = musicnn_mel(waveform(clip))
    with torch.inference_mode():
        fast = MelFrontEnd()(torch.from_numpy(waveform(clip))[None])[0].numpy()
    assert fast.shape == exact.shape
    difference = np.abs(fast - exact)
    # Where float32 rounding flips a float16 rounding, one float16 step: < 3e-4 after the log.
    assert difference.max() < 3e-4
    assert (difference > 1e-5).mean() < 1e-3


def test_patches_are_187_frames_without_overlap_and_drop_the_tail():
    mel = np.arange(407 * 96, dtype=np.float32).reshape(407, 96)
    patches = mel_patches(mel)
    assert patches.shape == (2, PATCH_FRAMES, 96)
    np.testing.assert_array_equal(patches[1], mel[187:374])


@pytest.mark.parametrize("name", ["MTT_musicnn", "MSD_vgg"])
def test_outputs_have_the_original_extractors_names_and_shapes(name):
    with torch.inference_mode():
        outputs = model(name)(torch.zeros(3, PATCH_FRAMES, 96))
    if "vgg" in name:
        assert set(outputs) == {*VGG_OUTPUTS, "taggram"}
        assert outputs["pool1"].shape == (3, 92, 48, 128) and outputs["pool5"].shape == (3, 2, 1, 128)
        assert outputs["penultimate"].shape == (3, 256)
    else:
        assert set(outputs) == {*MUSICNN_OUTPUTS, "taggram"}
        expected = {"timbral": 408, "temporal": 153, "cnn1": 64, "cnn2": 64, "cnn3": 64}
        for layer, width in expected.items():
            assert outputs[layer].shape == (3, PATCH_FRAMES, width)
        assert outputs["mean_pool"].shape == outputs["max_pool"].shape == (3, 753)
        assert outputs["penultimate"].shape == (3, 200)
    assert outputs["taggram"].shape == (3, 50)
    assert ((outputs["taggram"] > 0) & (outputs["taggram"] < 1)).all()


def test_a_patchs_outputs_do_not_depend_on_its_batch():
    patches = torch.from_numpy(mel_patches(reference()["tones/mel"]))
    mixed = torch.cat([torch.from_numpy(mel_patches(reference()["drums/mel"])), patches, patches.flip(1)])
    with torch.inference_mode():
        alone = model("MTT_musicnn")(patches[1:2])
        together = model("MTT_musicnn")(mixed)
    for layer, value in alone.items():
        assert np.abs(value[0].numpy() - together[layer][2].numpy()).max() <= tolerance(value.numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["MTT_musicnn", "MTT_vgg"])
def test_cuda_gives_the_cpu_outputs(name):
    patches = torch.from_numpy(mel_patches(reference()["tones/mel"]))
    with torch.inference_mode():
        on_cpu = model(name)(patches)
        on_cuda = load_musicnn(name, "cuda")(patches.cuda())
    for layer, value in on_cpu.items():
        assert np.abs(on_cuda[layer].cpu().numpy() - value.numpy()).max() <= tolerance(value.numpy())


@pytest.mark.parametrize(("rows", "groups"), [(16, 2), (7, 3), (4096, 1)])  # 4096 x 1: the CUDA setting
def test_timbral_outputs_do_not_depend_on_how_its_gemms_are_chunked(rows, groups, monkeypatch):
    patches = torch.from_numpy(mel_patches(reference()["drums/mel"]))[:2]
    with torch.inference_mode():
        default = model("MTT_musicnn")(patches)["timbral"]
        monkeypatch.setattr(musicnn, "CPU_TIMBRAL_ROWS", rows)
        monkeypatch.setattr(musicnn, "CPU_TIMBRAL_GROUPS", groups)
        chunked = model("MTT_musicnn")(patches)["timbral"]
    assert np.abs(chunked.numpy() - default.numpy()).max() <= 1e-5 * float(default.abs().max())


def test_float32_stays_within_float32_rounding_of_float64_on_inputs_wider_than_the_fixtures():
    """The reference rule (4e-6 x max) is calibrated on TF's own float32 error on two clips; on wider inputs
    TF's error grows past it, the port's does not: it stays ~1e-6 x max from its own float64 evaluation."""
    generator = torch.Generator().manual_seed(0)
    patches = 4 * torch.rand(4, PATCH_FRAMES, 96, generator=generator)  # log-mel values span 0-4
    double = copy.deepcopy(model("MTT_musicnn")).double()
    with torch.inference_mode():
        single, exact = model("MTT_musicnn")(patches), double(patches.double())
    for layer in ("max_pool", "mean_pool", "penultimate", "taggram", "timbral", "cnn3"):
        error = float((single[layer].double() - exact[layer]).abs().max())
        assert error <= 1e-6 + 3e-6 * float(exact[layer].abs().max()), (layer, error)


@pytest.mark.parametrize("onednn", [False, True])
@pytest.mark.parametrize("transposed", [False, True])
def test_the_cpu_gemm_equals_torch_matmul_through_either_library(transposed, onednn, monkeypatch):
    if onednn and musicnn._ONEDNN_LINEAR is None:
        pytest.skip("this torch build has no oneDNN linear")
    monkeypatch.setattr(musicnn, "ONEDNN_GEMMS", onednn)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 98, generator=generator)
    weight = torch.randn(98, 1632, generator=generator).T if transposed else torch.randn(59, 98).contiguous()
    expected = (x.double() @ weight.double().T).float()
    with torch.inference_mode():
        product = musicnn._linear(x, weight)
    assert product.shape == expected.shape
    torch.testing.assert_close(product, expected, rtol=1e-5, atol=1e-4)
    # the library chosen is the one used
    with mock.patch.object(musicnn, "_ONEDNN_LINEAR", side_effect=RuntimeError("used")):
        with torch.inference_mode():
            if onednn:
                with pytest.raises(RuntimeError, match="used"):
                    musicnn._linear(x, weight)
            else:
                musicnn._linear(x, weight)


@pytest.mark.parametrize(
    ("vendor", "onednn", "plan"),
    [
        ("AuthenticAMD", True, (True, 32, 2)),  # MKL runs AVX2 code there: oneDNN, and its chunking
        ("AuthenticAMD", False, (False, 128, 1)),  # a torch without oneDNN's linear
        ("GenuineIntel", True, (False, 128, 1)),  # MKL runs AVX-512 there and is the faster
        ("", True, (False, 128, 1)),  # unknown (not Linux, or an ARM CPU): torch's own matmul
    ],
)
def test_the_cpu_gemm_plan_follows_the_processor(vendor, onednn, plan):
    assert musicnn.cpu_gemm_plan(vendor, onednn) == plan


def test_this_machines_cpu_gemm_plan_is_the_one_in_use():
    assert (musicnn.ONEDNN_GEMMS, musicnn.CPU_TIMBRAL_ROWS, musicnn.CPU_TIMBRAL_GROUPS) == musicnn.cpu_gemm_plan(
        cpu_vendor(), musicnn._ONEDNN_LINEAR is not None
    )


def test_the_cpu_gemm_keeps_autograd_outside_inference():
    x = torch.randn(8, 14, requires_grad=True)
    weight = torch.randn(5, 14)
    with mock.patch.object(musicnn, "ONEDNN_GEMMS", musicnn._ONEDNN_LINEAR is not None):
        musicnn._linear(x, weight).sum().backward()  # oneDNN's linear has no backward: torch's matmul here
    torch.testing.assert_close(x.grad, weight.sum(0).expand(8, 14))
