import json
import logging
import os
import subprocess
import sys
import textwrap
from functools import partial

import av
import numpy as np
import pandas as pd
import pytest
import torch

from mvcl.demo.synthetic import corpus_segments
from mvcl.features import precision as precision_module
from mvcl.features import video as video_module
from mvcl.features.batched import Batches
from mvcl.features.precision import cpu_has_native_bf16, int8_engine, resolve_precision
from mvcl.features.video import batch_size_for, crop_rng, decode_workers_for, extract_video_features
from tests.helpers import REPO, encode_into, segment_row

FPS, WIDTH, HEIGHT, SECONDS = 10, 64, 48, 4
# Tiny settings: the model accepts 4 frames of 32x32 (its pooling is adaptive).
SETTINGS = dict(
    weights="none",
    allow_random=False,
    clip_frames=4,
    crop=32,
    crop_scale=[0.5, 1.0],
    normalize=True,
    train_views=3,
    batch_size=4,
    frame_size=(WIDTH, HEIGHT),
    seed=0,
    device="cpu",
    progress=False,
)


def write_video(path, phase: int) -> None:
    """A short H.264 video: a bar sweeping across a background whose colour changes over time."""
    frames = []
    for index in range(FPS * SECONDS):
        frame = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        frame[..., 0] = (index * 6 + phase * 40) % 256
        frame[:, (index * 3 + phase * 11) % (WIDTH - 8) :][:, :8, 1] = 255
        frames.append(frame)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        encode_into(container, stream, map(partial(av.VideoFrame.from_ndarray, format="rgb24"), frames))


@pytest.fixture(scope="module")
def segments(tmp_path_factory):
    """Two videos x two segments, train and test, like segments.parquet (absolute paths)."""
    folder = tmp_path_factory.mktemp("videos")
    rows = []
    for number, split in enumerate(["train", "test"]):
        path = folder / f"v{number}.mp4"
        write_video(path, number)
        for segment, clip_start in enumerate([0.2, 1.7]):
            window = (clip_start, clip_start + 2.0)
            rows.append(segment_row(f"v{number}", segment, path, window, window, split) | {"shard": number})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def extracted(segments):
    # The thread count the tests run with (conftest): it sets the order of float sums in the convolutions.
    torch.set_num_threads(1)
    return extract_video_features(segments, **SETTINGS)


def test_features_have_one_row_per_segment_and_one_slot_per_view(segments, extracted):
    features, _ = extracted
    assert features.shape == (len(segments), 3, 512) and features.dtype == np.float32
    assert np.isfinite(features).all()


def test_training_segments_get_distinct_random_views_and_test_segments_one_centre_view(segments, extracted):
    features, _ = extracted
    for row, split in enumerate(segments["split"]):
        views = features[row]
        if split == "train":
            assert not np.allclose(views[0], views[1]) and not np.allclose(views[1], views[2])
        else:
            assert (views == views[0]).all()


def test_extraction_is_deterministic(segments, extracted):
    again, _ = extract_video_features(segments, **SETTINGS)
    np.testing.assert_array_equal(again, extracted[0])


def test_features_do_not_depend_on_row_order_sharding_batch_size_or_decode_workers(segments, extracted):
    order = [3, 0, 2]
    settings = {**SETTINGS, "batch_size": 2, "decode_workers": 2}
    reordered, _ = extract_video_features(segments.iloc[order], **settings)
    np.testing.assert_allclose(reordered, extracted[0][order], rtol=1e-4, atol=1e-5)


def test_crop_generator_depends_only_on_seed_video_and_segment():
    draw = lambda *key: crop_rng(*key).integers(0, 2**31, size=4).tolist()  # noqa: E731
    assert draw(0, "v1", 2) == draw(0, "v1", 2)
    assert len({tuple(draw(*key)) for key in [(0, "v1", 2), (1, "v1", 2), (0, "v2", 2), (0, "v1", 3)]}) == 4


def test_provenance_names_the_weights_and_the_extraction_settings(extracted):
    _, provenance = extracted
    assert provenance["name"] == "r2plus1d_18" and provenance["weights"] == "random"
    assert provenance["extraction"] == {
        "clip_frames": 4,
        "crop": 32,
        "crop_scale": [0.5, 1.0],
        "normalize": True,
        "train_views": 3,
        "frame_size": [WIDTH, HEIGHT],
        "seed": 0,
    }
    json.dumps(provenance)  # travels as JSON


def test_a_broken_or_missing_video_gets_a_nan_row_and_a_warning_naming_it(
    segments, extracted, tmp_path, caplog
):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    missing = tmp_path / "missing.mp4"
    bad = segments.iloc[[0, 0]].assign(video_id=["broken", "missing"], path=[str(broken), str(missing)])
    table = pd.concat([segments.iloc[[0]], bad, segments.iloc[[3]]], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="mvcl"):
        features, _ = extract_video_features(table, **SETTINGS)
    assert np.isnan(features[1:3]).all()
    np.testing.assert_allclose(features[[0, 3]], extracted[0][[0, 3]], rtol=1e-4, atol=1e-5)
    assert str(broken) in caplog.text and str(missing) in caplog.text and "NaN features" in caplog.text


@pytest.mark.slow
def test_workflow_script_writes_the_features_and_provenance_of_its_shard(segments, tmp_path):
    table = tmp_path / "segments.parquet"
    segments.to_parquet(table)
    encoder = {
        key: SETTINGS[key]
        for key in [
            "weights",
            "allow_random",
            "clip_frames",
            "crop",
            "crop_scale",
            "normalize",
            "train_views",
            "batch_size",
        ]
    }
    runner = textwrap.dedent(f"""
        import runpy, types
        snakemake = types.SimpleNamespace(
            input=types.SimpleNamespace(segments={str(table)!r}, calibration={str(table)!r}),
            output=types.SimpleNamespace(features={str(tmp_path / "shard_1.npy")!r},
                                         provenance={str(tmp_path / "shard_1.json")!r}),
            params=types.SimpleNamespace(
                shard=1,
                encoder=dict(name="r2plus1d", kind="r2plus1d", modality="video", options={encoder!r},
                             trust_remote_code=False),
                context=dict(frame_size=[{WIDTH}, {HEIGHT}], seed=0, device="cpu", precision="fp32"),
            ),
            log=[{str(tmp_path / "shard_1.log")!r}],
            threads=1,
        )
        runpy.run_path("workflow_scripts/encoder_features.py", init_globals={{"snakemake": snakemake}})
    """)
    subprocess.run([sys.executable, "-c", runner], check=True, timeout=120, cwd=REPO)
    features = np.load(tmp_path / "shard_1.npy")
    assert features.shape == (2, 3, 512) and np.isfinite(features).all()  # shard 1 = video v1's 2 segments
    assert json.loads((tmp_path / "shard_1.json").read_text())["weights"] == "random"
    assert "video features of 2 segments (0 failed)" in (tmp_path / "shard_1.log").read_text()
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "segments.parquet",
        "shard_1.json",
        "shard_1.log",
        "shard_1.npy",
    ]


def test_a_weights_error_stops_the_extraction_naming_the_file(segments, tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-weights.pth"):
        extract_video_features(segments, **{**SETTINGS, "weights": str(tmp_path / "no-such-weights.pth")})


def test_provenance_records_the_precision_the_encoder_ran_in(extracted):
    assert extracted[1]["precision"] == "fp32"


def test_auto_precision_is_bf16_where_native_else_int8_where_it_runs_else_fp32(monkeypatch):
    cpu = torch.device("cpu")
    for native, int8, expected in [(True, True, "bf16"), (False, True, "int8"), (False, False, "fp32")]:
        monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda native=native: native)
        monkeypatch.setattr(precision_module, "cpu_runs_int8", lambda int8=int8: int8)
        assert resolve_precision("auto", cpu) == expected
    with pytest.raises(ValueError, match="features.precision: int8 runs on x86"):
        resolve_precision("int8", cpu)
    assert resolve_precision("bf16", cpu) == "bf16" and resolve_precision("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match="features.precision: 'fp64'"):
        resolve_precision("fp64", cpu)


def test_int8_runs_on_onednn_where_torch_has_it_else_fbgemm():
    assert int8_engine(["qnnpack", "onednn", "x86", "fbgemm"]) == "onednn"
    assert int8_engine(["qnnpack", "fbgemm"]) == "fbgemm"
    assert int8_engine(["qnnpack"]) is None and int8_engine([]) is None


@pytest.mark.skipif(not precision_module.cpu_runs_int8(), reason="no int8 engine on this CPU")
@pytest.mark.skipif(
    not {"onednn", "fbgemm"} <= set(torch.backends.quantized.supported_engines), reason="needs both int8 engines"
)
def test_int8_on_either_engine_is_the_same_quantisation_and_the_run_records_its_engine(segments, monkeypatch):
    monkeypatch.setattr(video_module, "MIN_COSINE", -1.0)  # tiny clips: the check is not what is tested here
    features, record = extract_video_features(segments, **SETTINGS, precision="int8")
    assert record["int8_check"]["engine"] == int8_engine() == torch.backends.quantized.engine
    for name in ("video", "r2plus1d"):  # the engine is looked up where the model is quantised
        monkeypatch.setattr(f"mvcl.features.{name}.int8_engine", lambda: "fbgemm")
    other, other_record = extract_video_features(segments, **SETTINGS, precision="int8")
    assert other_record["int8_check"]["engine"] == "fbgemm" == torch.backends.quantized.engine
    # the same 7-bit activations and per-channel weights: the engines differ in rounding only, well inside the
    # fidelity bound (0.9995 at worst on these tiny random-weight clips)
    cosine = (features * other).sum(-1) / np.linalg.norm(features, axis=-1) / np.linalg.norm(other, axis=-1)
    assert cosine.min() >= precision_module.MIN_COSINE, cosine.min()


def test_fp16_on_a_cpu_without_it_is_an_error_naming_the_key(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_fp16_supported", lambda: False)
    with pytest.raises(ValueError, match="features.precision: fp16"):
        resolve_precision("fp16", torch.device("cpu"))


def test_auto_batch_size_and_decode_workers_on_a_cpu_give_the_cpu_defaults(segments, extracted, caplog):
    with caplog.at_level(logging.INFO, logger="mvcl"):
        features, _ = extract_video_features(
            segments, **{**SETTINGS, "batch_size": "auto"}, decode_workers="auto"
        )
    assert "1 decode workers, batch 16" in caplog.text
    np.testing.assert_allclose(features, extracted[0], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
def test_pinned_batches_hold_the_same_clips():
    clips = [torch.full((3, 2, 4, 4), value, dtype=torch.uint8) for value in range(3)]
    seen = []
    batches = Batches(lambda batch: seen.append(batch) or np.zeros((len(batch), 1)), 2, lambda *_: None, True)
    for clip in clips:
        batches.add(clip, None)
    batches.flush()
    assert [batch.is_pinned() for batch in seen] == [True, True]
    assert torch.equal(torch.cat(seen), torch.stack(clips))


@pytest.mark.slow  # R(2+1)D on demo-sized clips, twice
@pytest.mark.skipif(not cpu_has_native_bf16(), reason="bf16 is emulated (slow) on this CPU")
def test_bf16_features_keep_every_clips_direction_within_cosine_0999(tmp_path):
    demo = {**SETTINGS, "clip_frames": 8, "crop": 112, "train_views": 1, "frame_size": (224, 128)}
    clips = corpus_segments(tmp_path, videos=2, segments_per_video=2, fps=8, size=(224, 128))
    full, _ = extract_video_features(clips, **demo, precision="fp32")
    half, record = extract_video_features(clips, **demo, precision="bf16")
    assert record["precision"] == "bf16"
    full, half = full.reshape(-1, 512), half.reshape(-1, 512)
    cosine = (full * half).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(half, axis=1)
    assert len(cosine) == 4 and cosine.min() >= 0.999, cosine
    assert not np.array_equal(full, half)  # bf16 really ran


@pytest.mark.slow  # R(2+1)D on demo-sized clips, in float32 and int8
@pytest.mark.skipif(not precision_module.cpu_runs_int8(), reason="no int8 engine on this CPU")
def test_int8_features_keep_every_clips_direction_within_cosine_0999(tmp_path):
    demo = {**SETTINGS, "clip_frames": 8, "crop": 112, "train_views": 1, "frame_size": (224, 128)}
    clips = corpus_segments(tmp_path, videos=4, segments_per_video=3, fps=8, size=(224, 128))
    full, _ = extract_video_features(clips, **demo, precision="fp32")
    low, record = extract_video_features(clips, **demo, precision="int8")
    assert record["precision"] == "int8" and record["int8_check"]["check_clips"] == 6
    assert record["int8_check"]["min_cosine"] >= 0.999
    full, low = full.reshape(-1, 512), low.reshape(-1, 512)
    cosine = (full * low).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(low, axis=1)
    assert len(cosine) == 12 and cosine.min() >= 0.999, cosine
    assert not np.array_equal(full, low)  # int8 really ran


@pytest.mark.skipif(not precision_module.cpu_runs_int8(), reason="no int8 engine on this CPU")
def test_int8_features_of_a_segment_do_not_depend_on_its_shard(segments, monkeypatch):
    monkeypatch.setattr(video_module, "MIN_COSINE", -1.0)  # tiny clips: the check is not what is tested here
    whole, record = extract_video_features(segments, **SETTINGS, precision="int8")
    shard = segments[segments["shard"] == 1].reset_index(drop=True)
    part, part_record = extract_video_features(shard, **SETTINGS, precision="int8", calibration=segments)
    assert record["precision"] == part_record["precision"] == "int8"
    assert np.array_equal(part, whole[segments["shard"].to_numpy() == 1])
    alone, _ = extract_video_features(shard, **SETTINGS, precision="int8")  # calibrated on its own clips
    assert not np.array_equal(alone, part)


@pytest.mark.skipif(not precision_module.cpu_runs_int8(), reason="no int8 engine on this CPU")
def test_the_checked_int8_model_is_kept_for_the_runs_other_jobs_and_gives_the_same_features(
    segments, monkeypatch, tmp_path
):
    monkeypatch.setattr(video_module, "MIN_COSINE", -1.0)  # tiny clips: the check is not what is tested here
    state = tmp_path / "state"
    fresh, record = extract_video_features(segments, **SETTINGS, precision="int8")
    first, first_record = extract_video_features(segments, **SETTINGS, precision="int8", state=state)
    assert len(list(state.glob("r2plus1d-int8-*.pt"))) == 1
    calls = []
    monkeypatch.setattr(video_module, "calibration_clips", lambda *a, **k: calls.append(a) or torch.empty(0))
    shard = segments[segments["shard"] == 1].reset_index(drop=True)
    part, part_record = extract_video_features(
        shard, **SETTINGS, precision="int8", calibration=segments, state=state
    )
    assert calls == []  # loaded, not calibrated again
    assert record == first_record == part_record and part_record["precision"] == "int8"
    assert np.array_equal(first, fresh) and np.array_equal(part, fresh[segments["shard"].to_numpy() == 1])
    # a video file changed since: another key, so the job calibrates again instead of reusing the model
    os.utime(segments["path"].iloc[0], ns=(1, 1))
    with pytest.raises(ValueError):  # the stubbed calibration gives no clips: nan cosine, explicit int8 stops
        extract_video_features(shard, **SETTINGS, precision="int8", calibration=segments, state=state)
    assert len(calls) == 1


def test_int8_cache_key_names_what_the_model_depends_on(segments, monkeypatch):
    options = {"clip_frames": 16, "crop": 32, "crop_scale": (0.5, 1.0), "views": 2, "frame_size": (64, 48)}
    weights = {"weights": "random", "seed": 0}
    key = video_module.int8_cache_key(segments, 0, options, weights)
    assert key == video_module.int8_cache_key(segments.sample(frac=1.0, random_state=1), 0, options, weights)
    assert key != video_module.int8_cache_key(segments, 1, options, weights)
    assert key != video_module.int8_cache_key(segments, 0, {**options, "crop": 48}, weights)
    assert key != video_module.int8_cache_key(segments, 0, options, {**weights, "seed": 1})
    assert key != video_module.int8_cache_key(segments.iloc[1:], 0, options, weights)
    engine = video_module.int8_engine()
    monkeypatch.setattr(video_module, "int8_engine", lambda: "fbgemm" if engine == "onednn" else "onednn")
    assert key != video_module.int8_cache_key(segments, 0, options, weights)


@pytest.mark.skipif(not precision_module.cpu_runs_int8(), reason="no int8 engine on this CPU")
def test_int8_that_fails_its_check_stops_when_asked_for_and_falls_back_to_fp32_under_auto(
    segments, extracted, monkeypatch, caplog
):
    monkeypatch.setattr(video_module, "MIN_COSINE", 1.01)  # no int8 model can pass
    with pytest.raises(ValueError, match="features.precision: int8 R.2.1.D features keep a cosine"):
        extract_video_features(segments, **SETTINGS, precision="int8")
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: False)
    with caplog.at_level(logging.WARNING):
        features, record = extract_video_features(segments, **SETTINGS, precision="auto")
    assert record["precision"] == "fp32" and record["int8_check"]["min_cosine"] < 1.01
    assert np.array_equal(features, extracted[0]) and "computing in fp32 instead" in caplog.text


@pytest.mark.parametrize(
    ("batch", "workers", "device", "threads", "expected"),
    [
        ("auto", "auto", "cpu", 4, (16, 1)),  # a CPU: 16 clips (oneDNN's float32 path), one decoder
        ("auto", "auto", "cuda", 4, (64, 4)),  # a GPU: many clips, a decoder per thread
        (8, 3, "cpu", 4, (8, 3)),
    ],
)
def test_auto_batch_size_and_decoding_threads_follow_the_device(batch, workers, device, threads, expected):
    device = torch.device(device)
    assert (batch_size_for(batch, device), decode_workers_for(workers, device, threads)) == expected


def test_a_bad_decoding_thread_count_names_the_video_key():
    with pytest.raises(ValueError, match="video_encoder.decode_workers"):
        decode_workers_for(0, torch.device("cpu"), 2)
