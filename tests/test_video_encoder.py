import io
import logging
import types
import urllib.error
import urllib.request
import urllib.response

import numpy as np
import pytest
import torch
from torchvision.models.video import r2plus1d_18

from mvcl.features import r2plus1d as video
from mvcl.features.r2plus1d import (
    FEATURE_DIM,
    WeightsUnavailable,
    build_video_encoder,
    centre_box,
    crop_clips,
    random_boxes,
)
from mvcl.provenance import sha256_file
from tests.helpers import save_random_r2plus1d

SCALE = (0.5, 1.0)


def clip(batch=2, frames=4, side=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, frames, side, side), dtype=torch.uint8, generator=generator)


def parameters_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


# --- crops ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "width"), [(432, 768), (128, 224), (100, 100), (64, 40)])
def test_random_boxes_lie_inside_the_frame_with_areas_from_the_scale_range(height, width):
    boxes = random_boxes(np.random.default_rng(0), height, width, 500, SCALE)
    tops, lefts, sides = np.array(boxes).T
    assert (tops >= 0).all() and (lefts >= 0).all()
    assert (tops + sides <= height).all() and (lefts + sides <= width).all()
    areas = sides**2 / (height * width)
    largest_square = min(height, width) ** 2 / (height * width)
    assert areas.min() >= SCALE[0] - 2 * max(height, width) / (height * width)  # within flooring of the side
    assert areas.max() <= min(SCALE[1], largest_square) + 1e-9
    # Boxes spread over sizes and positions, not piled up at the centre (torchvision's fallback).
    assert len(set(sides)) > 3 and len({(t, left) for t, left in zip(tops, lefts, strict=True)}) > 100


def test_random_boxes_are_reproducible_from_the_generator_seed():
    first = random_boxes(np.random.default_rng(7), 128, 224, 4, SCALE)
    again = random_boxes(np.random.default_rng(7), 128, 224, 4, SCALE)
    other = random_boxes(np.random.default_rng(8), 128, 224, 4, SCALE)
    assert first == again and first != other


def test_crop_takes_exactly_its_box_from_every_frame():
    height, width, frames = 60, 90, 3
    for box in random_boxes(np.random.default_rng(1), height, width, 20, SCALE):
        video_frames = np.zeros((frames, height, width, 3), dtype=np.uint8)
        video_frames[:, box.top : box.top + box.side, box.left : box.left + box.side] = 255
        out = crop_clips(video_frames, [box], 16)
        assert out.shape == (1, 3, frames, 16, 16) and out.dtype == torch.uint8
        # A box one pixel off would pull black edge pixels into the resized crop.
        assert (out == 255).all(), box


def test_centre_crop_is_centred_on_a_marked_frame_centre():
    height, width, size = 64, 112, 32
    frame = np.zeros((1, height, width, 3), dtype=np.uint8)
    frame[:, height // 2 - 4 : height // 2 + 4, width // 2 - 4 : width // 2 + 4] = 255  # mark the centre
    box = centre_box(height, width, SCALE)
    out = crop_clips(frame, [box], size)[0, 0, 0].double()  # first channel of the only frame
    assert out[15:17, 15:17].min() == 255  # the mark sits in the middle of the crop
    assert out[:4].max() == 0 and out[-4:].max() == 0 and out[:, :4].max() == 0 and out[:, -4:].max() == 0
    # Its centroid is the crop's centre, up to the half pixel an odd box side leaves in an even frame.
    rows, columns = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centroid = [float((out * grid).sum() / out.sum()) for grid in (rows, columns)]
    assert centroid == pytest.approx([(size - 1) / 2] * 2, abs=0.5 * size / box.side + 0.05)


def test_centre_box_has_the_mean_area_of_the_random_boxes_that_fit():
    # 16:9 at the study's size: squares fit up to scale 0.5625, so the centre box has scale ~0.53.
    box = centre_box(432, 768, SCALE)
    assert box.side == int(np.sqrt((0.5 + 432 / 768) / 2 * 432 * 768))
    assert (box.top, box.left) == ((432 - box.side) // 2, (768 - box.side) // 2)
    assert centre_box(100, 100, SCALE).side == int(np.sqrt(0.75 * 100 * 100))


# --- model ----------------------------------------------------------------------------------------------


def test_encoder_gives_the_pooled_512d_feature_of_torchvision_r2plus1d_18():
    encoder, _ = build_video_encoder("none", allow_random=False, seed=0, normalize=False)
    full = r2plus1d_18(weights=None).eval()
    full.load_state_dict(encoder.backbone.state_dict(), strict=False)  # same weights, random fc kept
    pooled = {}
    full.fc.register_forward_hook(lambda module, inputs, output: pooled.setdefault("x", inputs[0]))
    clips = clip()
    with torch.inference_mode():
        features = encoder(clips)
        full(clips.float() / 255)
    assert features.shape == (2, FEATURE_DIM) and features.dtype == torch.float32
    torch.testing.assert_close(features, pooled["x"])
    assert not any(p.requires_grad for p in encoder.parameters()) and not encoder.training


def test_normalize_applies_the_kinetics_mean_and_std():
    encoder, _ = build_video_encoder("none", allow_random=False, seed=0, normalize=True)
    clips = clip()
    mean = torch.tensor(video.KINETICS_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(video.KINETICS_STD).view(1, 3, 1, 1, 1)
    with torch.inference_mode():
        torch.testing.assert_close(encoder(clips), encoder.backbone((clips / 255 - mean) / std))
    assert video.KINETICS_MEAN == pytest.approx((0.43216, 0.394666, 0.37645))


# --- weights --------------------------------------------------------------------------------------------


def test_random_weights_are_seeded_and_recorded_as_random():
    first, record = build_video_encoder("none", allow_random=False, seed=0)
    again, _ = build_video_encoder("none", allow_random=False, seed=0)
    other, _ = build_video_encoder("none", allow_random=False, seed=1)
    assert parameters_equal(first, again) and not parameters_equal(first, other)
    assert record["weights"] == "random" and record["source"] == "random, seed 0" and record["sha256"] is None


def test_building_the_encoder_leaves_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    build_video_encoder("none", allow_random=False, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.fixture(scope="module")
def kinetics_like_file(tmp_path_factory):
    """A full r2plus1d_18 state dict (classifier included, like torchvision's file) and its sha256."""
    path = save_random_r2plus1d(tmp_path_factory.mktemp("weights") / "r2plus1d_18_test.pth", seed=5)
    return path, sha256_file(path)


def test_weights_from_a_path_are_loaded_and_recorded_with_their_sha256(kinetics_like_file):
    path, digest = kinetics_like_file
    encoder, record = build_video_encoder(str(path), allow_random=False, seed=0)
    saved = torch.load(path, weights_only=True)
    for key, value in encoder.backbone.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert record == {
        "name": "r2plus1d_18",
        "weights": "file",
        "source": str(path.resolve()),
        "sha256": digest,
        "description": f"weights from {path.name} (sha256 {digest[:12]})",
    }


def test_a_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"video_encoder.weights: .*nope.pth does not exist"):
        build_video_encoder(str(tmp_path / "nope.pth"), allow_random=False, seed=0)


def test_a_state_dict_of_another_model_is_refused_naming_the_file(tmp_path, kinetics_like_file):
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(
        ValueError, match=r"other.pth is not a state dict of torchvision's r2plus1d_18: \d+ missing"
    ):
        build_video_encoder(str(path), allow_random=False, seed=0)
    state = torch.load(kinetics_like_file[0], weights_only=True)
    state["stem.0.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(ValueError, match="other.pth does not fit r2plus1d_18"):
        build_video_encoder(str(path), allow_random=False, seed=0)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch hub cache and a network that refuses every download; records the timeouts asked."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    timeouts = []

    def refuse(url, timeout=None):
        timeouts.append(timeout)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return timeouts


def test_auto_offline_stops_and_says_exactly_how_to_provide_the_weights(offline):
    with pytest.raises(WeightsUnavailable) as error:
        build_video_encoder("auto", allow_random=False, seed=0)
    message = str(error.value)
    cache = video.kinetics_cache_path()
    assert str(cache.parent).startswith(torch.hub.get_dir()) and cache.name == "r2plus1d_18-91a641e6.pth"
    assert "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth" in message
    assert f"copy it to {cache}" in message
    assert "video_encoder.weights: /path/to/file.pth" in message
    assert "video_encoder.allow_random: true" in message
    assert "Temporary failure in name resolution" in message
    # One attempt with a short timeout, and no partial file left behind in the cache.
    assert offline == [video.DOWNLOAD_TIMEOUT_S] and video.DOWNLOAD_TIMEOUT_S <= 30
    assert not cache.parent.exists() or not any(cache.parent.iterdir())


def test_auto_offline_with_allow_random_goes_on_with_random_weights_loudly(offline, caplog):
    with caplog.at_level(logging.WARNING, logger="mvcl"):
        encoder, record = build_video_encoder("auto", allow_random=True, seed=4)
    reference, _ = build_video_encoder("none", allow_random=False, seed=4)
    assert parameters_equal(encoder, reference)
    assert record["weights"] == "random" and "downloading" in record["fallback_reason"]
    assert "RANDOMLY INITIALISED" in caplog.text and "r2plus1d_18-91a641e6.pth" in caplog.text


@pytest.fixture
def fake_kinetics(kinetics_like_file, monkeypatch):
    """Point `auto` at a URL whose file name carries the test file's hash, as torchvision's does."""
    path, digest = kinetics_like_file
    url = f"https://download.invalid/models/r2plus1d_18-{digest[:8]}.pth"
    monkeypatch.setattr(video, "KINETICS", types.SimpleNamespace(url=url))
    return path, digest


def test_auto_uses_the_checkpoint_in_the_torch_hub_cache(offline, fake_kinetics):
    path, digest = fake_kinetics
    cache = video.kinetics_cache_path()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(path.read_bytes())
    encoder, record = build_video_encoder("auto", allow_random=False, seed=0)
    assert offline == []  # no download attempted
    assert record["source"] == str(cache) and record["sha256"] == digest
    file_encoder, _ = build_video_encoder(str(path), allow_random=False, seed=0)
    assert parameters_equal(encoder, file_encoder)


def test_auto_downloads_into_the_cache_when_the_network_allows(tmp_path, monkeypatch, fake_kinetics):
    path, digest = fake_kinetics
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    data = path.read_bytes()
    response = lambda url, timeout=None: urllib.response.addinfourl(io.BytesIO(data), {}, url)  # noqa: E731
    monkeypatch.setattr(urllib.request, "urlopen", response)
    _, record = build_video_encoder("auto", allow_random=False, seed=0)
    assert video.kinetics_cache_path().is_file() and record["sha256"] == digest


def test_a_corrupt_cached_checkpoint_is_refused(offline, fake_kinetics):
    path, _ = fake_kinetics
    cache = video.kinetics_cache_path()
    cache.parent.mkdir(parents=True)
    cache.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="corrupt or not torchvision's checkpoint; delete it"):
        build_video_encoder("auto", allow_random=False, seed=0)
