import json
import logging
import subprocess
import sys
import textwrap

import av
import numpy as np
import pandas as pd
import pytest
import torch

from mvcl.data.decode import decode_audio
from mvcl.features.audio import (
    decode_workers_for,
    extract_audio_features,
    feature_dim,
    layer_features,
    patch_starts,
)
from mvcl.features.musicnn import PATCH_FRAMES, MelFrontEnd, load_musicnn
from tests.helpers import REPO, encode_into, mono_frames, segment_row

RATE = 22050  # the synthetic corpus's AAC rate: decoding resamples it to musicnn's 16 kHz
SETTINGS = dict(model="MTT_musicnn", sample_rate=16000, batch_size=3, device="cpu", progress=False)


def write_audio(path, seconds: float, frequency: float) -> None:
    """An AAC track in MP4: a tone with harmonics and a little noise, loud enough to reach the float16 trap."""
    t = np.arange(round(seconds * RATE)) / RATE
    rng = np.random.default_rng(int(frequency))
    sound = sum(np.sin(2 * np.pi * k * frequency * t) / k for k in range(1, 5)) * (0.5 + 0.4 * np.sin(t))
    sound = (0.4 * sound + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=RATE)
        stream.layout = "mono"
        encode_into(container, stream, mono_frames(sound, RATE))


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MVCL_CACHE", str(tmp_path_factory.mktemp("mvcl-cache")))
        yield


@pytest.fixture(scope="module")
def segments(tmp_path_factory):
    """Two 12 s videos x two segments (5 s, with a 3 s clip window), like segments.parquet."""
    folder = tmp_path_factory.mktemp("audio")
    rows = []
    for number, frequency in enumerate([220.0, 330.0]):
        path = folder / f"v{number}.mp4"
        write_audio(path, 12.0, frequency)
        for segment, start in enumerate([0.5, 6.0]):
            window, clip = (start, start + 5.0), (start + 1.0, start + 4.0)
            rows.append(segment_row(f"v{number}", segment, path, window, clip, "train") | {"shard": number})
    return pd.DataFrame(rows)


def expected(segments: pd.DataFrame, layer: str, window: str) -> np.ndarray:
    """The features computed step by step: decode, torch front end, model on each patch, mean over patches."""
    model, front_end = load_musicnn("MTT_musicnn"), MelFrontEnd()
    start, end = ("clip_start_s", "clip_end_s") if window == "clip" else ("start_s", "end_s")
    rows = []
    for segment in segments.itertuples():
        waveform = decode_audio(segment.path, getattr(segment, start), getattr(segment, end), 16000)
        with torch.inference_mode():
            mel = front_end(torch.from_numpy(waveform)[None])[0]
            patches = torch.stack([mel[s : s + PATCH_FRAMES] for s in patch_starts(len(mel))])
            rows.append(layer_features(model(patches), layer).mean(0).numpy())
    return np.stack(rows)


def test_feature_dimensions():
    assert feature_dim("pool") == 1506 and feature_dim("penultimate") == 200 and feature_dim("taggram") == 50
    assert feature_dim("penultimate", "MSD_vgg") == 256
    with pytest.raises(ValueError, match="layer: pool needs a musicnn model"):
        feature_dim("pool", "MTT_vgg")
    with pytest.raises(ValueError, match="audio_encoder.layer"):
        feature_dim("logits")


def test_patches_cover_the_window():
    assert patch_starts(188) == [0]  # a 3 s window: one patch, as the original
    assert patch_starts(100) == [0]
    assert patch_starts(313) == [0, 125]  # 5 s: two overlapping patches, the last ends at the last full frame
    assert patch_starts(375) == [0, 187]  # 6 s: two patches side by side


@pytest.mark.parametrize("layer, window", [("pool", "clip"), ("penultimate", "segment"), ("taggram", "clip")])
def test_features_are_the_models_layer_averaged_over_the_windows_patches(segments, layer, window):
    features = extract_audio_features(segments, layer=layer, window=window, **SETTINGS)
    assert features.dtype == np.float32 and features.shape == (len(segments), feature_dim(layer))
    np.testing.assert_allclose(features, expected(segments, layer, window), rtol=1e-5, atol=1e-5)


def test_the_pool_feature_is_max_pool_then_mean_pool(segments):
    features = extract_audio_features(segments.head(1), layer="pool", window="clip", **SETTINGS)
    row = segments.iloc[0]
    waveform = decode_audio(row.path, row.clip_start_s, row.clip_end_s, 16000)
    with torch.inference_mode():
        outputs = load_musicnn("MTT_musicnn")(
            MelFrontEnd()(torch.from_numpy(waveform)[None])[:, :PATCH_FRAMES]
        )
    np.testing.assert_allclose(features[0, :753], outputs["max_pool"][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(features[0, 753:], outputs["mean_pool"][0], rtol=1e-5, atol=1e-5)


def test_rows_follow_the_segments_order(segments):
    forward = extract_audio_features(segments, layer="taggram", window="clip", **SETTINGS)
    backward = extract_audio_features(segments.iloc[::-1], layer="taggram", window="clip", **SETTINGS)
    np.testing.assert_allclose(backward[::-1], forward, rtol=1e-5, atol=1e-6)
    assert not np.allclose(forward[0], forward[-1])


def test_a_segment_that_fails_to_decode_gets_nan_and_a_warning_naming_the_file(segments, tmp_path, caplog):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    broken = pd.concat(
        [
            segments.head(1),
            segments.head(1).assign(video_id="gone", path=str(tmp_path / "missing.mp4")),
            segments.head(1).assign(video_id="corrupt", path=str(corrupt)),
            segments.head(1).assign(video_id="short", clip_start_s=10.0, clip_end_s=13.0),
            segments.tail(1),
        ],
        ignore_index=True,
    )
    with caplog.at_level(logging.WARNING, logger="mvcl.features.audio"):
        features = extract_audio_features(broken, layer="taggram", window="clip", **SETTINGS)
    assert np.isfinite(features[[0, 4]]).all()
    assert np.isnan(features[1:4]).all()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 3
    for message, name in zip(warnings, ["missing.mp4", "corrupt.mp4", "v0.mp4"], strict=True):
        assert name in message and "NaN" in message


def test_a_window_shorter_than_a_patch_is_repeated_to_3_s(segments):
    short = segments.head(1).assign(clip_end_s=segments.clip_start_s.iloc[0] + 1.0)
    features = extract_audio_features(short, layer="taggram", window="clip", **SETTINGS)
    assert np.isfinite(features).all()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sample_rate": 22050}, "segments.sample_rate"),
        ({"window": "video"}, "audio_encoder.window"),
        ({"layer": "cnn1"}, "audio_encoder.layer"),
        ({"model": "MTT_vgg", "layer": "pool"}, "pool needs a musicnn model"),
    ],
)
def test_settings_the_extractor_cannot_honour_are_errors_naming_the_key(segments, change, message):
    settings = {**SETTINGS, "layer": "pool", "window": "clip", **change}
    with pytest.raises(ValueError, match=message):
        extract_audio_features(segments, **settings)


@pytest.mark.slow  # a fresh interpreter imports torch, pandas and the model: ~10 s
def test_the_workflow_script_writes_its_shards_features(segments, tmp_path):
    segments_path, output = tmp_path / "segments.parquet", tmp_path / "out" / "shard_1.npy"
    output.parent.mkdir()
    segments.to_parquet(segments_path, index=False)
    snakemake = {
        "input": {"segments": str(segments_path)},
        "output": {"features": str(output), "provenance": str(output.with_suffix(".json"))},
        "log": [str(tmp_path / "audio.log")],
        "threads": 1,
        "params": {
            "shard": 1,
            "encoder": {
                "name": "musicnn", "kind": "musicnn", "modality": "audio", "trust_remote_code": False, "options": {
                    "model": "MTT_musicnn", "layer": "taggram", "window": "clip", "batch_size": 4,
                    "decode_workers": "auto",
                },
            },
            "context": {"sample_rate": 16000, "device": "cpu"},
        },
    }
    code = textwrap.dedent(f"""
        import json, runpy, types
        spec = json.loads({json.dumps(json.dumps(snakemake))})
        snakemake = types.SimpleNamespace(**{{k: types.SimpleNamespace(**v) if isinstance(v, dict) else v
                                              for k, v in spec.items()}})
        runpy.run_path({str(REPO / "workflow_scripts" / "encoder_features.py")!r}, init_globals={{"snakemake": snakemake}})
    """)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=300)
    features = np.load(output)
    assert features.dtype == np.float32 and features.shape == (2, 50)
    shard = segments[segments["shard"] == 1]
    np.testing.assert_allclose(features, expected(shard, "taggram", "clip"), rtol=1e-5, atol=1e-6)
    assert sorted(path.name for path in output.parent.iterdir()) == ["shard_1.json", "shard_1.npy"]  # no temporary
    assert json.loads(output.with_suffix(".json").read_text())["weights"]["name"] == "MTT_musicnn"
    assert "musicnn MTT_musicnn taggram features" in (tmp_path / "audio.log").read_text()


@pytest.mark.parametrize(
    ("spec", "device", "threads", "workers"),
    [
        ("auto", "cpu", 1, 1),
        ("auto", "cpu", 2, 1),  # one decoder beside two model workers ran fastest on 2 cores
        ("auto", "cpu", 8, 4),  # real 48 kHz audio costs about what the model does per window
        ("auto", "cuda", 8, 8),  # the model is cheap on a GPU: decoding is the bottleneck
        (3, "cpu", 8, 3),
    ],
)
def test_decoding_threads_follow_the_job(spec, device, threads, workers):
    assert decode_workers_for(spec, torch.device(device), threads) == workers


@pytest.mark.parametrize("spec", [0, -1, "four", 2.5, True])
def test_a_bad_decoding_thread_count_names_the_key(spec):
    with pytest.raises(ValueError, match="audio_encoder.decode_workers"):
        decode_workers_for(spec, torch.device("cpu"), 2)
