"""Encoders as plugins: the registry, the study's two encoders unchanged under it, the weight-free
baselines on signals with known answers, and precomputed features."""

import json
import logging
import subprocess
import sys

import av
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mvcl.configuration import load_schema
from mvcl.features.audio import extract_audio_features
from mvcl.features.encoders import mir, registry, style
from mvcl.features.encoders.contract import AudioWindowEncoder, ExtractionContext
from mvcl.features.encoders.precomputed import read_precomputed
from mvcl.features.encoders.registry import load_encoder, resolve_encoders
from mvcl.features.video import extract_video_features
from mvcl.plan import Plan
from tests.helpers import REPO, encode_into, mono_frames, run_snakemake, segment_row

SCHEMA = load_schema()
WIDTH, HEIGHT, FPS, RATE = 64, 48, 10, 22050


def write_video(path, seconds: float, colour: bool, moving: bool, frequency: float = 440.0) -> None:
    """An MP4 with H.264 pictures (a coloured or grey pattern, moving or still) and an AAC sine tone."""

    def pictures():
        for index in range(round(FPS * seconds)):
            shift = index * 4 if moving else 0
            x = (np.arange(WIDTH)[None, :] + shift) % WIDTH
            ramp = np.broadcast_to((x * 4).astype(np.uint8), (HEIGHT, WIDTH))
            frame = np.stack([ramp, ramp, ramp], axis=-1).copy()
            if colour:
                frame[..., 0], frame[..., 2] = 255 - ramp, 40
            yield av.VideoFrame.from_ndarray(frame, format="rgb24")

    t = np.arange(round(seconds * RATE)) / RATE
    sound = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        video.options = {"preset": "ultrafast", "qp": "0"}
        audio = container.add_stream("aac", rate=RATE)
        audio.layout = "mono"
        encode_into(container, video, pictures())
        encode_into(container, audio, mono_frames(sound, RATE))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three 4 s videos: colour + moving, black-and-white + moving, colour + static; two segments each."""
    folder = tmp_path_factory.mktemp("encoders")
    rows = []
    for number, (colour, moving) in enumerate([(True, True), (False, True), (True, False)]):
        path = folder / f"v{number}.mp4"
        write_video(path, 4.0, colour, moving)
        for segment, start in enumerate([0.0, 2.0]):
            rows.append(
                segment_row(f"v{number}", segment, path, (start, start + 2.0), (start, start + 2.0), "train")
            )
    return pd.DataFrame(rows).assign(shard=0)


def spec(name: str, config: dict | None = None):
    return resolve_encoders(config or {}, SCHEMA)[name]


# --- the registry --------------------------------------------------------------------------------------------


def test_every_run_knows_the_built_in_encoders_with_their_modality():
    specs = resolve_encoders({}, SCHEMA)
    assert {name: (s.kind, s.modality) for name, s in specs.items()} == {
        "musicnn": ("musicnn", "audio"),
        "r2plus1d": ("r2plus1d", "video"),
        "mir": ("mir", "audio"),
        "style": ("style", "video"),
    }


def test_the_study_encoders_take_their_options_from_their_sections():
    config = {
        "audio_encoder": {"layer": "taggram"},
        "encoders": {"msd": {"kind": "musicnn", "model": "MSD_musicnn"}},
    }
    specs = resolve_encoders(config, SCHEMA)
    assert (
        specs["musicnn"].options["layer"] == "taggram" and specs["musicnn"].options["model"] == "MTT_musicnn"
    )
    assert specs["msd"].options["model"] == "MSD_musicnn" and specs["msd"].options["layer"] == "taggram"
    assert specs["r2plus1d"].options["clip_frames"] == 30  # the schema's default, as before


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"kind": "clap"}, r"encoders.x.kind: 'clap' is not one of"),
        ({"kind": "mir", "options": {"n_mfcc": 0}}, r"encoders.x.options.n_mfcc: 0 is less than"),
        ({"kind": "mir", "options": {"n_mffc": 13}}, r"encoders.x.options: Additional properties"),
        ({"kind": "precomputed", "options": {"path": "x.npz"}}, r"encoders.x.modality: set audio or video"),
        ({"kind": "style", "modality": "audio"}, r"encoders.x.modality: a style encoder is a video encoder"),
    ],
)
def test_a_bad_encoder_entry_is_one_line_naming_its_key(entry, message):
    with pytest.raises(ValueError, match=message) as error:
        resolve_encoders({"encoders": {"x": entry}}, SCHEMA)
    assert "\n" not in str(error.value)


def weightfree_config() -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["configurations"] = {"base": {}, "weightfree": {"encoders": {"audio": "mir", "video": "style"}}}
    config["ablation"]["entries"] = {}
    return config


def test_a_configuration_trains_on_its_encoders_and_each_is_extracted_once():
    plan = Plan(weightfree_config())
    assert plan.encoder_pair("base") == ("musicnn", "r2plus1d")
    assert plan.encoder_pair("weightfree") == ("mir", "style")
    assert plan.feature_path("weightfree", "video") == "results/features/style.npy"
    assert plan.used_encoders == ["musicnn", "r2plus1d", "mir", "style"]
    targets = plan.final_targets()
    assert {f"results/features/{name}.npy" for name in plan.used_encoders} <= set(targets)


def test_table2_has_frozen_rows_of_every_encoder_and_rq1_compares_each_cl_row_with_its_own():
    config = weightfree_config()
    config["probe"]["configuration"] = "base"
    plan = Plan(config)
    assert list(plan.frozen_rows) == ["musicnn", "r2plus1d", "both", "mir", "style", "mir+style"]
    assert plan.probe_role("mir+style") == "both" and plan.probe_role("style") == "video"
    assert plan.probe_role("musicnn") == "audio"
    pairs = {(key, baseline) for task, key, baseline in plan.rq1_pairs()}
    assert {
        ("cl_a", "musicnn"),
        ("cl_v", "r2plus1d"),
        ("cl_agg", "both"),
        ("cl_agg@weightfree", "mir+style"),
    } == pairs


def test_an_encoder_no_configuration_names_is_listed_as_unused():
    config = weightfree_config()
    config["encoders"] = {"clip": {"kind": "hf_image", "model": "/nowhere"}, "mir": {"kind": "mir"}}
    assert Plan(config).unused_encoders == ["clip"]
    Plan(config).check_encoders()  # an unused encoder's missing model stops nothing


def test_the_study_config_keeps_the_study_rows():
    config = weightfree_config()
    del config["configurations"]["weightfree"]
    plan = Plan(config)
    assert list(plan.frozen_rows) == ["musicnn", "r2plus1d", "both"]
    assert plan.used_encoders == ["musicnn", "r2plus1d"]


@pytest.mark.parametrize(
    "pair, message",
    [
        (
            {"audio": "style"},
            "configurations.weightfree.encoders.audio: 'style' is a video encoder; audio encoders: musicnn, mir",
        ),
        ({"video": "clip"}, "configurations.weightfree.encoders.video: no encoder named 'clip'"),
    ],
)
def test_a_configuration_naming_an_encoder_it_cannot_use_stops_the_plan(pair, message):
    config = weightfree_config()
    config["configurations"]["weightfree"]["encoders"] = pair
    with pytest.raises(ValueError, match=message):
        Plan(config).check_encoders()


def test_the_plan_stays_torch_free():
    code = (
        "import sys, mvcl.plan, mvcl.features.encoders.registry; "
        "sys.exit(any(m.split('.')[0] in ('torch', 'transformers', 'librosa') for m in sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --- the study's encoders, unchanged --------------------------------------------------------------------------


def test_musicnn_through_the_registry_gives_exactly_the_study_features(clips):
    options = {
        "model": "MTT_musicnn",
        "layer": "taggram",
        "window": "clip",
        "batch_size": 4,
        "decode_workers": 1,
    }
    direct = extract_audio_features(clips, sample_rate=16000, device="cpu", progress=False, **options)
    encoder = load_encoder(spec("musicnn", {"audio_encoder": options}), ExtractionContext(device="cpu"))
    features, provenance = encoder.extract(clips)
    assert features.tobytes() == direct.tobytes() and encoder.width == 50
    assert provenance["encoder"] == "musicnn" and provenance["weights"]["name"] == "MTT_musicnn"


def test_r2plus1d_through_the_registry_gives_exactly_the_study_features(clips):
    options = {"weights": "none", "allow_random": False, "clip_frames": 4, "crop": 32, "train_views": 2,
               "batch_size": 4, "decode_workers": 1}  # fmt: skip
    torch.set_num_threads(1)
    context = ExtractionContext(frame_size=(WIDTH, HEIGHT), seed=3, device="cpu", precision="fp32")
    encoder = load_encoder(spec("r2plus1d", {"video_encoder": options}), context)
    features, provenance = encoder.extract(clips)
    settings = spec("r2plus1d", {"video_encoder": options}).options
    direct, _ = extract_video_features(
        clips, **settings, frame_size=(WIDTH, HEIGHT), seed=3, device="cpu", precision="fp32", progress=False
    )
    assert features.tobytes() == direct.tobytes() and features.shape == (6, 2, 512)
    assert provenance["weights"] == "random"


# --- weight-free audio: MIR descriptors ---------------------------------------------------------------------


def test_a_440_hz_tone_peaks_at_chroma_a():
    encoder = load_encoder(spec("mir"))
    t = np.arange(3 * 22050) / 22050
    vector = encoder.embed([(0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)])[0]
    names = mir.feature_names()
    chroma = [vector[names.index(f"chroma_{pitch}_mean")] for pitch in mir.CHROMA]
    assert mir.CHROMA[int(np.argmax(chroma))] == "A"
    assert len(vector) == encoder.width == 133 and np.isfinite(vector).all()


def test_the_rhythm_statistics_find_the_tempo_of_a_click_track():
    t = np.arange(6 * 22050) / 22050
    clicks = np.zeros_like(t)
    clicks[(np.arange(0, 6, 0.5) * 22050).astype(int)] = 1.0  # 120 BPM
    waveform = np.convolve(clicks, np.hanning(200), mode="same").astype(np.float32)
    vector = load_encoder(spec("mir")).embed([waveform])[0]
    tempo, clarity, rate = vector[-3:]
    assert abs(tempo - 2.0) < 0.1 and clarity > 0.5  # 120 BPM = 2 beats per second and 1.5 <= rate <= 2.5


def test_mir_features_of_the_same_window_are_identical_and_a_tiny_window_still_embeds():
    encoder = load_encoder(spec("mir"))
    window = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    first, second = encoder.embed([window]), encoder.embed([window])
    assert first.tobytes() == second.tobytes()
    short = encoder.embed([window[:300]])  # shorter than n_fft: zero-padded by librosa's centred frames
    assert short.shape == (1, encoder.width) and np.isfinite(short).all()


def test_mir_extracts_every_segment_of_a_shard_and_a_broken_file_is_a_nan_row(clips, tmp_path, caplog):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    table = pd.concat(
        [clips.head(2), clips.head(1).assign(video_id="bad", path=str(broken))], ignore_index=True
    )
    with caplog.at_level(logging.WARNING, logger="mvcl"):
        features, provenance = load_encoder(spec("mir")).extract(table)
    assert features.shape == (3, 133) and np.isfinite(features[:2]).all() and np.isnan(features[2]).all()
    assert str(broken) in caplog.text and provenance["librosa"]


# --- weight-free video: style -------------------------------------------------------------------------------


def test_a_black_and_white_clip_has_near_zero_saturation_features(clips):
    features, _ = load_encoder(spec("style"), ExtractionContext(frame_size=(WIDTH, HEIGHT))).extract(clips)
    names = style.feature_names()
    colourless = [i for i, name in enumerate(names) if name.startswith(("hue", "colourfulness", "saturation"))
                  and not name.startswith("saturation_bin0")]  # fmt: skip
    grey, colour = features[clips["video_id"] == "v1"], features[clips["video_id"] == "v0"]
    assert np.abs(grey[:, colourless]).max() < 0.02
    assert colour[:, names.index("saturation_mean")].min() > 0.3


def test_a_static_clip_has_near_zero_motion_and_a_moving_one_does_not(clips):
    features, _ = load_encoder(spec("style"), ExtractionContext(frame_size=(WIDTH, HEIGHT))).extract(clips)
    motion = features[:, style.feature_names().index("motion_mean")]
    static, moving = (
        motion[(clips["video_id"] == "v2").to_numpy()],
        motion[(clips["video_id"] == "v0").to_numpy()],
    )
    assert static.max() < 0.005 and moving.min() > 0.05


def test_a_cut_between_frames_is_counted():
    dark, light = np.full((4, 16, 16, 3), 10, np.uint8), np.full((4, 16, 16, 3), 240, np.uint8)
    cut = style.clip_style(np.concatenate([dark, light]))
    still = style.clip_style(np.concatenate([dark, dark]))
    names = style.feature_names()
    assert cut[names.index("cut_rate")] == pytest.approx(1 / 7) and still[names.index("cut_rate")] == 0
    assert style.clip_style(dark[:1])[names.index("motion_mean")] == 0  # one frame: no motion, by definition


# --- precomputed features -------------------------------------------------------------------------------------


@pytest.fixture
def segment_keys():
    return pd.DataFrame({"video_id": ["a", "a", "b"], "segment": [0, 1, 0]})


def test_precomputed_features_round_trip_exactly(segment_keys, tmp_path):
    vectors = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    shuffled = [2, 0, 1]
    np.savez(tmp_path / "f.npz", video_id=segment_keys["video_id"].to_numpy(str)[shuffled],
             segment=segment_keys["segment"].to_numpy()[shuffled], features=vectors[shuffled])  # fmt: skip
    wide = segment_keys.iloc[shuffled].assign(**{f"d{i}": vectors[shuffled, i] for i in range(5)})
    wide.to_parquet(tmp_path / "wide.parquet")
    lists = segment_keys.assign(features=list(vectors))
    lists.to_parquet(tmp_path / "lists.parquet")
    for name in ("f.npz", "wide.parquet", "lists.parquet"):
        assert read_precomputed(tmp_path / name, segment_keys, width=5).tobytes() == vectors.tobytes(), name


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda v, k: (v[:2], k.head(2)),
            r"misses 1 of the run's 3 segments \(first: segment 0 of video b\)",
        ),
        (lambda v, k: (v[:, :4], k), r"vectors are 4-d, options.width says 5"),
        (lambda v, k: (np.where(np.arange(5) == 2, np.nan, v), k), r"3 vectors have NaN or infinite values"),
    ],
)
def test_a_bad_precomputed_file_is_one_line_naming_it(segment_keys, tmp_path, change, message):
    vectors, keys = change(np.ones((3, 5), np.float32), segment_keys)
    path = tmp_path / "mine.npz"
    np.savez(
        path, video_id=keys["video_id"].to_numpy(str), segment=keys["segment"].to_numpy(), features=vectors
    )
    with pytest.raises(ValueError, match=message) as error:
        read_precomputed(path, segment_keys, width=5)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


class LoudnessEncoder(AudioWindowEncoder):
    """The README's example of a new kind."""

    sample_rate, width = 16000, 2

    def embed(self, inputs):
        return np.stack([[np.sqrt(np.mean(w**2)), np.abs(w).max()] for w in inputs])


def test_a_registered_kind_runs_through_the_contract(clips, monkeypatch):
    monkeypatch.setitem(registry.KINDS, "loudness", registry.EncoderKind(
        "loudness", "audio", "tests.test_encoders:LoudnessEncoder", "encoder_features"))  # fmt: skip
    loud = resolve_encoders({"encoders": {"loud": {"kind": "loudness"}}}, SCHEMA)["loud"]
    features, provenance = load_encoder(loud).extract(clips)
    assert features.shape == (6, 2) and provenance["kind"] == "loudness"
    assert features[0, 0] == pytest.approx(
        0.5 / np.sqrt(2), rel=0.05
    )  # the 440 Hz sine's RMS (amplitude 0.5)


def test_provenance_names_every_encoder_with_the_records_of_its_own_jobs(tmp_path):
    from mvcl.provenance import encoders_provenance, footnote, records_by_encoder

    for name, record in (
        ("r2plus1d", {"weights": "random", "name": "r2plus1d_18"}),
        ("kinetics", {"weights": "k400"}),
    ):
        (tmp_path / "features" / name).mkdir(parents=True)
        for shard in (0, 1):
            (tmp_path / "features" / name / f"shard_{shard}.json").write_text(json.dumps(record))
    (tmp_path / "features" / "mine.json").write_text(json.dumps({"width": 3}))
    records = records_by_encoder(sorted((tmp_path / "features").rglob("*.json")))
    assert {name: len(found) for name, found in records.items()} == {"kinetics": 2, "mine": 1, "r2plus1d": 2}
    specs = resolve_encoders({"encoders": {"kinetics": {"kind": "r2plus1d"}}}, SCHEMA)
    used = {name: specs[name].record() for name in ("r2plus1d", "kinetics")}
    provenance = encoders_provenance(used, records, {}, {"weights": "auto"})
    assert (
        provenance["video"]["weights"] == "random"
        and provenance["encoders"]["kinetics"]["extraction"]["weights"] == "k400"
    )
    assert "audio" not in provenance  # musicnn not used
    assert (
        footnote(provenance)
        == "Video encoder: R(2+1)D-18, r2plus1d_18. Other encoders: kinetics (r2plus1d, video)."
    )


# --- the workflow --------------------------------------------------------------------------------------------


def write_workdir_config(workdir, changes: dict) -> None:
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config.update(changes)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.mark.slow  # two weight-free extractions on (a copy of) the session's tiny corpus and segments
def test_the_workflow_extracts_weight_free_features_and_reads_your_own(tiny_data_workdir):
    tiny_workdir = tiny_data_workdir
    run_snakemake(
        tiny_workdir,
        "results/data/segments.parquet",
        "results/features/mir.npy",
        "results/features/style.npy",
    )
    segments = pd.read_parquet(tiny_workdir / "results/data/segments.parquet")
    mir_features = np.load(tiny_workdir / "results/features/mir.npy")
    assert mir_features.shape == (len(segments), 133) and np.isfinite(mir_features).all()
    style_features = np.load(tiny_workdir / "results/features/style.npy")
    assert style_features.shape == (len(segments), 45) and np.isfinite(style_features).all()

    mine = tiny_workdir / "mine.npz"
    own = {
        "encoders": {
            "mine": {"kind": "precomputed", "modality": "audio", "options": {"path": str(mine), "width": 3}}
        },
        "configurations": {"base": {}, "own": {"encoders": {"audio": "mine", "video": "style"}}},
    }
    write_workdir_config(tiny_workdir, own)
    missing = run_snakemake(tiny_workdir, "-n", "results/features/mine.npy", check=False)
    assert missing.returncode != 0 and f"encoders.mine.options.path: '{mine}' is not a file" in missing.stderr

    vectors = np.random.default_rng(0).standard_normal((len(segments), 3)).astype(np.float32)
    order = np.random.default_rng(1).permutation(len(segments))
    np.savez(mine, video_id=segments["video_id"].to_numpy(str)[order], segment=segments["segment"].to_numpy()[order],
             features=vectors[order])  # fmt: skip
    run_snakemake(tiny_workdir, "results/features/mine.npy", "results/provenance.json")
    assert np.load(tiny_workdir / "results/features/mine.npy").tobytes() == vectors.tobytes()
    provenance = json.loads((tiny_workdir / "results/provenance.json").read_text())
    assert provenance["encoders"]["mine"]["extraction"]["width"] == 3
    assert provenance["encoders"]["style"]["extraction"]["width"] == 45


@pytest.mark.slow
def test_a_configuration_naming_an_encoder_it_cannot_use_stops_the_dry_run_in_one_line(tiny_workdir):
    write_workdir_config(
        tiny_workdir, {"configurations": {"base": {}, "odd": {"encoders": {"video": "mir"}}}}
    )
    result = run_snakemake(tiny_workdir, "-n", check=False)
    assert result.returncode != 0
    assert (
        "configurations.odd.encoders.video: 'mir' is an audio encoder; video encoders: r2plus1d, style"
        in result.stderr
    )
