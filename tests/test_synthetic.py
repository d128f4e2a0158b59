"""The synthetic corpus: real MP4s, deterministic, and with the audio-visual statistics it promises."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from mvcl.demo.synthetic import (
    GENRE_NAMES,
    TAG_NAMES,
    generate_corpus,
    write_mp4,
)
from tests.patterns import read_frame_index, tone_frequency_at, write_test_pattern_video

SAMPLE_RATE = 22050
TINY = {
    "videos": 12,
    "duration_s": 8.0,
    "fps": 8,
    "size": (64, 48),
    "genres": 3,
    "tags": 6,
    "msd_fraction": 0.5,
    "seed": 3,
}


def _generate(out_dir: Path, coupling: float) -> tuple[pd.DataFrame, list[int]]:
    done: list[int] = []
    metadata = generate_corpus(out_dir, **TINY, av_coupling=coupling, progress=done.append)
    return metadata, done


@pytest.fixture(scope="module")
def coupled(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("coupled")
    metadata, done = _generate(out_dir, 1.0)
    assert done == list(range(1, TINY["videos"] + 1))
    return out_dir


@pytest.fixture(scope="module")
def uncoupled(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("uncoupled")
    _generate(out_dir, 0.0)
    return out_dir


@cache
def _decode(path: Path) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Frame times, RGB frames and mono audio of an MP4 (cached: several tests read the same corpus)."""
    with av.open(str(path)) as container:
        decoded = [(frame.time, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        audio = np.concatenate([frame.to_ndarray().ravel() for frame in container.decode(audio=0)])
    return np.array([time for time, _ in decoded]), [frame for _, frame in decoded], audio


def _section_table(corpus: Path, stream: str = "sound") -> pd.DataFrame:
    """Per section of `stream`: its loudness latent, the picture's background value, the decoded audio level.

    Frames within 0.15 s of a section boundary are left out (the picture cuts there).
    """
    metadata = pd.read_csv(corpus / "metadata.csv", dtype=str, keep_default_na=False)
    latents = pd.read_parquet(corpus / "latents.parquet")
    rows = []
    for video in metadata.itertuples():
        times, frames, audio = _decode(corpus / video.path)
        # HSV value of the background: the median over pixels of the brightest channel.
        value = np.array([np.median(frame.max(axis=2)) for frame in frames])
        sections = latents[(latents.video_id == video.video_id) & (latents.stream == stream)]
        for section in sections.itertuples():
            inside = (times > section.start_s + 0.15) & (times < section.end_s - 0.15)
            samples = audio[round(section.start_s * SAMPLE_RATE) : round(section.end_s * SAMPLE_RATE)]
            if inside.sum() >= 2:
                rows.append(
                    {
                        "video_id": video.video_id,
                        "loudness_db": section.loudness_db,
                        "picture_value": value[inside].mean(),
                        "audio_db": 10 * np.log10(np.mean(samples**2)),
                    }
                )
    return pd.DataFrame(rows)


def _grouping_p_value(features: np.ndarray, labels: np.ndarray, permutations: int = 500) -> float:
    """Permutation p-value that videos with the same label lie closer together than chance would put them."""
    distance = np.sqrt(((features[:, None] - features[None]) ** 2).sum(-1))
    others = ~np.eye(len(labels), dtype=bool)

    def within(grouping: np.ndarray) -> float:
        return distance[(grouping[:, None] == grouping[None]) & others].mean()

    rng = np.random.default_rng(0)
    null = np.array([within(rng.permutation(labels)) for _ in range(permutations)])
    return float((1 + (null <= within(labels)).sum()) / (1 + permutations))


def test_videos_are_h264_and_aac_mp4s_of_the_requested_duration(coupled):
    metadata = pd.read_csv(coupled / "metadata.csv", dtype=str, keep_default_na=False)
    width, height = TINY["size"]
    for path in metadata.path:
        with av.open(str(coupled / path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name == "h264"
            assert video.codec_context.pix_fmt == "yuv420p"
            assert (video.width, video.height) == (width, height)
            assert audio.codec_context.name == "aac"
            assert audio.rate == SAMPLE_RATE
            assert container.duration / 1e6 == pytest.approx(TINY["duration_s"], abs=0.05)
        times, _, samples = _decode(coupled / path)
        np.testing.assert_allclose(times, np.arange(TINY["duration_s"] * TINY["fps"]) / TINY["fps"])
        expected = TINY["duration_s"] * SAMPLE_RATE
        assert expected <= samples.size <= expected + 1024  # AAC pads its last frame
        assert 0.5 < np.abs(samples).max() <= 1.0


def test_same_seed_writes_identical_files_whatever_the_workers_and_another_seed_does_not(tmp_path):
    settings = {**TINY, "videos": 2, "duration_s": 3.0, "av_coupling": 0.5}
    for name, seed, workers in (("a", 7, 1), ("b", 7, 2), ("c", 8, 1)):
        generate_corpus(tmp_path / name, **{**settings, "seed": seed}, workers=workers)
    files = ["metadata.csv", "msd_tags.csv", "latents.parquet", "videos/v0001.mp4", "videos/v0002.mp4"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in ["metadata.csv", "videos/v0001.mp4"]:
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name
    assert not list(tmp_path.rglob("*.partial"))


def test_metadata_has_ids_paths_genres_and_the_requested_msd_fraction(coupled):
    metadata = pd.read_csv(coupled / "metadata.csv", dtype=str, keep_default_na=False)
    latents = pd.read_parquet(coupled / "latents.parquet")
    assert list(metadata.columns) == ["video_id", "path", "genre", "msd_id", "artist", "title"]
    assert metadata.video_id.is_unique
    assert all((coupled / path).is_file() for path in metadata.path)
    assert set(metadata.genre) <= set(GENRE_NAMES[: TINY["genres"]])
    sound_genre = latents[latents.stream == "sound"].groupby("video_id").genre.first()
    assert (metadata.set_index("video_id").genre == sound_genre).all()
    msd_ids = metadata.msd_id[metadata.msd_id != ""]
    assert len(msd_ids) == round(TINY["msd_fraction"] * TINY["videos"])
    assert all(re.fullmatch(r"TR[A-Z0-9]{16}", msd_id) for msd_id in msd_ids)
    assert msd_ids.is_unique
    assert (metadata.artist != "").all() and (metadata.title != "").all()


def test_msd_tags_list_each_tracks_latent_tags_with_lastfm_weights(coupled):
    metadata = pd.read_csv(coupled / "metadata.csv", dtype=str, keep_default_na=False)
    tags = pd.read_csv(coupled / "msd_tags.csv")
    latents = pd.read_parquet(coupled / "latents.parquet")
    assert list(tags.columns) == ["msd_id", "tag", "count"]
    assert set(tags.msd_id) == set(metadata.msd_id[metadata.msd_id != ""])
    assert set(tags.tag) <= set(TAG_NAMES[: TINY["tags"]])
    assert tags["count"].between(1, 100).all()
    assert (tags.groupby("msd_id")["count"].max() == 100).all()
    latent_tags = latents[latents.stream == "sound"].groupby("video_id").tags.first().str.split("|")
    for video in metadata[metadata.msd_id != ""].itertuples():
        listed = tags[tags.msd_id == video.msd_id].set_index("tag")["count"]
        assert set(latent_tags[video.video_id]) <= set(listed.index)
        strays = listed.drop(latent_tags[video.video_id])
        assert (strays < 25).all()  # a stray tag is weak, as on Last.fm


def test_picture_follows_section_loudness_when_coupled_and_an_unheard_song_when_not(coupled, uncoupled):
    latents = [pd.read_parquet(corpus / "latents.parquet") for corpus in (coupled, uncoupled)]
    pd.testing.assert_frame_equal(*(table.drop(columns="av_coupling") for table in latents))  # same songs
    with_sound = _section_table(coupled)
    without = _section_table(uncoupled)
    assert spearmanr(with_sound.picture_value, with_sound.loudness_db)[0] > 0.9
    assert abs(spearmanr(without.picture_value, without.loudness_db)[0]) < 0.3
    unheard = _section_table(uncoupled, "independent")
    assert spearmanr(unheard.picture_value, unheard.loudness_db)[0] > 0.9


def test_picture_brightness_follows_the_decoded_audio_level_only_when_coupled(coupled, uncoupled):
    def within_video(table: pd.DataFrame, column: str) -> pd.Series:
        return table[column] - table.groupby("video_id")[column].transform("mean")

    correlations = {}
    for name, corpus in (("coupled", coupled), ("uncoupled", uncoupled)):
        table = _section_table(corpus)
        correlations[name] = spearmanr(within_video(table, "picture_value"), within_video(table, "audio_db"))[
            0
        ]
    assert correlations["coupled"] > 0.8
    assert abs(correlations["uncoupled"]) < 0.3


def _audio_fingerprint(audio: np.ndarray) -> np.ndarray:
    """Timbre and key (mean log energy in 16 log-spaced bands) beside rhythm (autocorrelation of onsets)."""
    frames = audio[: audio.size // 1024 * 1024].reshape(-1, 1024)
    power = np.abs(np.fft.rfft(frames * np.hanning(1024), axis=1)) ** 2
    hertz = np.fft.rfftfreq(1024, 1 / SAMPLE_RATE)
    edges = np.geomspace(80, 11000, 17)
    bands = [
        power[:, (hertz >= lo) & (hertz < hi)].sum(axis=1).mean()
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    timbre = np.log(np.array(bands) + 1e-9)
    timbre -= timbre.mean()
    onsets = np.maximum(np.diff(np.log(np.mean(frames**2, axis=1) + 1e-9)), 0)
    onsets -= onsets.mean()
    rhythm = np.correlate(onsets, onsets, "full")[onsets.size - 1 :][2:27]  # lags of 0.1-1.2 s
    return np.concatenate([timbre / np.linalg.norm(timbre), rhythm / np.linalg.norm(rhythm)])


def test_genre_is_audible(coupled):
    metadata = pd.read_csv(coupled / "metadata.csv", dtype=str, keep_default_na=False)
    fingerprints = np.array([_audio_fingerprint(_decode(coupled / path)[2]) for path in metadata.path])
    assert _grouping_p_value(fingerprints, metadata.genre.to_numpy()) < 0.05


def test_genre_is_visible_when_coupled_and_invisible_when_not(coupled, uncoupled):
    def mean_colours(corpus: Path) -> np.ndarray:
        metadata = pd.read_csv(corpus / "metadata.csv", dtype=str, keep_default_na=False)
        return np.array([np.mean(_decode(corpus / path)[1], axis=(0, 1, 2)) for path in metadata.path])

    latents = pd.read_parquet(coupled / "latents.parquet")
    genre = latents.groupby(["stream", "video_id"]).genre.first()
    sound, unheard = genre["sound"].to_numpy(), genre["independent"].to_numpy()
    assert _grouping_p_value(mean_colours(coupled), sound) < 0.01
    colours = mean_colours(uncoupled)
    assert _grouping_p_value(colours, unheard) < 0.01
    assert _grouping_p_value(colours, sound) > 0.05


def test_test_pattern_frames_read_back_their_index_even_after_resizing(tmp_path):
    path = tmp_path / "pattern.mp4"
    write_test_pattern_video(path, duration_s=10, fps=12, size=(64, 48))
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 120
    for index, frame in enumerate(frames):
        assert round(frame.time * 12) == index
        assert read_frame_index(frame.to_ndarray(format="rgb24")) == index
        assert read_frame_index(frame.to_ndarray(format="rgb24", width=40, height=30)) == index


@pytest.mark.parametrize("sample_rate", [22050, 16000])
def test_test_pattern_tone_frequency_tells_the_time(tmp_path, sample_rate):
    path = tmp_path / "pattern.mp4"
    write_test_pattern_video(path, duration_s=6, fps=8, size=(32, 32), sample_rate=sample_rate)
    with av.open(str(path)) as container:
        assert container.streams.audio[0].rate == sample_rate
        audio = np.concatenate([frame.to_ndarray().ravel() for frame in container.decode(audio=0)])
    window = round(0.1 * sample_rate)
    for t in (0.3, 1.0, 2.55, 4.0, 5.8):
        start = round(t * sample_rate) - window // 2
        spectrum = np.abs(np.fft.rfft(audio[start : start + window] * np.hanning(window), 1 << 16))
        peak_hz = np.fft.rfftfreq(1 << 16, 1 / sample_rate)[spectrum.argmax()]
        assert peak_hz == pytest.approx(tone_frequency_at(t), abs=2.0)


def test_test_pattern_without_audio_has_no_audio_stream_and_without_tone_is_silent(tmp_path):
    write_test_pattern_video(tmp_path / "mute.mp4", duration_s=2, fps=8, size=(32, 32), audio=False)
    write_test_pattern_video(tmp_path / "silent.mp4", duration_s=2, fps=8, size=(32, 32), tone=False)
    with av.open(str(tmp_path / "mute.mp4")) as container:
        assert len(container.streams.audio) == 0 and len(container.streams.video) == 1
    with av.open(str(tmp_path / "silent.mp4")) as container:
        audio = np.concatenate([frame.to_ndarray().ravel() for frame in container.decode(audio=0)])
    assert audio.size >= 2 * 22050 and np.abs(audio).max() < 1e-3


def test_an_interrupted_video_write_leaves_no_file(tmp_path):
    def frames_then_failure():
        yield np.zeros((32, 32, 3), dtype=np.uint8)
        raise KeyboardInterrupt

    path = tmp_path / "v.mp4"
    with pytest.raises(KeyboardInterrupt):
        write_mp4(path, frames_then_failure(), None, fps=8, size=(32, 32), sample_rate=SAMPLE_RATE)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [({"size": (63, 48)}, "size"), ({"av_coupling": 1.5}, "av_coupling"), ({"genres": 99}, "genres"),
     ({"tags": 0}, "tags"), ({"msd_fraction": -0.1}, "msd_fraction")],
)  # fmt: skip
def test_invalid_settings_are_refused_naming_the_setting(tmp_path, change, named):
    with pytest.raises(ValueError, match=named):
        generate_corpus(tmp_path, **{**TINY, "av_coupling": 0.5, **change})
    assert not (tmp_path / "metadata.csv").exists()
