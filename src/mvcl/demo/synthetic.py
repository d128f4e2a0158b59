"""A seeded synthetic music-video corpus: the demo's embedded dataset (docs/design.md, "The embedded default").

Every video is a song drawn from a small generative model. A song has a latent genre (base tempo, scale and
key, timbre, drum pattern, mix) and a latent set of tags, each of which adds an audible layer (a vibrato
vocal line for "female vocalists", a bright saw arpeggio for "80s", distortion for "rock", a four-on-the-floor
kick for "dance", ...). The track is cut into 6-10 sections, each with its own pitch centre (key change),
tempo factor, loudness and timbre brightness drawn around the song's genre.

The picture is a function `g` of such latents: background hue from the genre shifted by the pitch centre,
saturation from brightness, value from loudness, horizontal colour bands from the tags, shapes whose outline
follows the genre, whose number follows the lead's rhythm, whose height follows the melody and whose speed
follows the tempo, and a flash on every kick. With coupling c, the picture parameters of every frame are
`c * g(song at t) + (1 - c) * g(other song at t)`, where the other song is an independent draw from the same
model that is never heard: at c = 0 the picture says nothing about the sound (not even its genre or when its
sections change), at c = 1 it is a deterministic function of the sound.

The decoders are checked on a different video, the tests' pattern (tests/patterns.py: each frame carries its
index as a block code, the audio is a chirp), which shows off-by-one frames and resampling errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import av
import numpy as np
import pandas as pd

from mvcl.data.segments import build_segments
from mvcl.io import atomic_path, save_csv, save_parquet

GENRE_NAMES = (
    "rock", "pop", "electronic", "hip-hop", "country", "jazz", "metal", "folk", "rnb", "classical", "reggae",
    "blues", "punk", "soul", "funk", "latin", "ambient", "house", "techno", "indie", "disco", "gospel", "ska",
    "trance", "drum-and-bass", "grunge", "synthpop", "bossa-nova", "k-pop", "afrobeat", "emo", "dubstep",
)  # fmt: skip

# Last.fm tags, most frequent first: the first ten are the study's top-10 MSD tags (docs/design.md).
TAG_NAMES = (
    "rock", "pop", "alternative", "indie", "dance", "female vocalists", "80s", "alternative rock", "country",
    "RnB", "electronic", "Hip-Hop", "chillout", "jazz", "metal", "soul", "classic rock", "male vocalists",
    "acoustic", "punk", "ambient", "folk", "hard rock", "experimental", "90s", "instrumental",
    "singer-songwriter", "blues", "electronica", "indie rock", "Mellow", "Love", "beautiful", "oldies", "70s",
    "funk", "chill", "reggae", "House", "trip-hop", "heavy metal", "60s", "Progressive rock", "punk rock",
    "soundtrack", "rap", "techno", "britpop", "emo", "new wave", "psychedelic", "party", "cover",
    "easy listening", "sexy", "classical", "piano", "synthpop", "hardcore", "Awesome", "downtempo",
    "Favourite", "catchy", "lounge",
)  # fmt: skip

# The audible layer each tag adds; tags not listed take a family in turn.
_EFFECT_FAMILIES = (
    "vocal_high", "vocal_low", "synth", "distortion", "kick", "sub", "pad", "pluck", "echo", "hats", "piano",
    "tremolo",
)  # fmt: skip
_TAG_EFFECTS = {
    "rock": "distortion", "alternative rock": "distortion", "metal": "distortion", "classic rock": "distortion",
    "punk": "distortion", "hard rock": "distortion", "heavy metal": "distortion", "punk rock": "distortion",
    "hardcore": "distortion", "female vocalists": "vocal_high", "soul": "vocal_high",
    "male vocalists": "vocal_low", "singer-songwriter": "vocal_low", "80s": "synth", "electronic": "synth",
    "electronica": "synth", "techno": "synth", "synthpop": "synth", "new wave": "synth", "dance": "kick",
    "House": "kick", "party": "kick", "Hip-Hop": "sub", "rap": "sub", "trip-hop": "sub", "chillout": "pad",
    "ambient": "pad", "chill": "pad", "downtempo": "pad", "Mellow": "pad", "soundtrack": "pad",
    "country": "pluck", "acoustic": "pluck", "folk": "pluck", "indie": "echo", "alternative": "echo",
    "indie rock": "echo", "psychedelic": "echo", "experimental": "echo", "pop": "hats", "catchy": "hats",
    "funk": "hats", "jazz": "piano", "piano": "piano", "blues": "piano", "lounge": "piano",
    "easy listening": "piano", "classical": "piano", "RnB": "tremolo", "sexy": "tremolo",
}  # fmt: skip

# Major, minor, dorian, mixolydian, pentatonic major and minor, blues, harmonic minor.
_SCALES = (
    (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 3, 5, 7, 9, 10), (0, 2, 4, 5, 7, 9, 10),
    (0, 2, 4, 7, 9), (0, 3, 5, 7, 10), (0, 3, 5, 6, 7, 10), (0, 2, 3, 5, 7, 8, 11),
)  # fmt: skip
# 16-step drum patterns (one bar of 16th notes): steps on which each drum hits.
_KICKS = ((0, 4, 8, 12), (0, 8, 10), (0, 3, 8, 10), (0, 10), (0, 6, 8), (0, 3, 6, 10, 12), (8,))
_SNARES = ((4, 12), (8,), (4, 12, 14), (4, 10, 12), (12,))
_HATS = (tuple(range(0, 16, 2)), tuple(range(16)), (2, 6, 10, 14), (0, 4, 8, 12), ())

_SECTIONS = (6, 10)  # sections per song, inclusive
_SHAPES = 8  # most shapes on screen
_TABLE = 2048  # wavetable length
_HARMONICS = np.arange(1, 11)
_MSD_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
_ADJECTIVES = (
    "Velvet", "Electric", "Silver", "Midnight", "Paper", "Neon", "Golden", "Hollow", "Crimson", "Quiet",
    "Wild", "Broken", "Lunar", "Static", "Northern", "Glass",
)  # fmt: skip
_NOUNS = (
    "Foxes", "Harbour", "Engines", "Satellites", "Orchards", "Wolves", "Rivers", "Machines", "Pilots",
    "Lanterns", "Echoes", "Gardens", "Comets", "Tigers", "Waves", "Mirrors",
)  # fmt: skip
_TITLE_WORDS = (
    "Summer", "Heart", "Lights", "Dancing", "Forever", "Tonight", "Fire", "Shadows", "Running", "Home",
    "Stars", "Rain", "Gold", "Dreams", "Highway", "Blue", "Alone", "Together", "Ocean", "City",
)  # fmt: skip

# Test pattern: 16 bits as two rows of 8 black/white blocks in the top half of the frame.


@dataclass(frozen=True)
class GenreProfile:
    """What a genre fixes about a song's sound, and the picture `g` gives it."""

    name: str
    bpm: float  # centre of the base tempo
    scale: tuple[int, ...]  # semitones of the scale degrees
    root: int  # MIDI note of the typical key
    brightness: float  # mean timbre brightness in [0, 1]
    even: float  # weight of even harmonics: 0 = hollow (clarinet-like), 1 = saw-like
    kick: tuple[int, ...]
    snare: tuple[int, ...]
    hat: tuple[int, ...]
    swing: float  # delay of off-beat 16ths, as a fraction of a step
    chord_decay: float  # s: short = stabs, long = pads
    lead_density: float  # probability that an 8th-note slot of the melody sounds
    drive: float  # distortion of the harmonic instruments (1 = clean)
    hue: float  # picture: background hue (turns)
    outline: tuple[float, float, float]  # picture: weights of diamond, circle and square outlines
    heading: float  # picture: direction of motion (turns)
    mirrored: bool  # picture: every other shape moves the opposite way


@dataclass(frozen=True)
class TagLook:
    """What a tag adds: an audible layer and a visible colour band."""

    name: str
    effect: str  # one of _EFFECT_FAMILIES
    shade: float  # in [0, 1]: varies the layer within its family (register, rate, length)
    band_y: float  # picture: height of the band (fraction of the frame)
    band_hue: float


@dataclass(frozen=True)
class Song:
    """The latents of one song; arrays run over its sections."""

    genre: int
    tags: tuple[int, ...]
    root: int  # MIDI key root
    bpm: float  # base tempo
    bounds: np.ndarray  # [sections + 1] section boundaries, s
    pitch: np.ndarray  # pitch centre: transposition in semitones
    tempo: np.ndarray  # tempo factor
    loudness: np.ndarray  # gain in dB
    brightness: np.ndarray  # timbre brightness in [0, 1]
    chords: np.ndarray  # [sections, 4] scale degree of each bar's chord
    melody: np.ndarray  # [sections, 8] scale degrees of the lead motif (one per 8th note)
    rhythm: np.ndarray  # [sections, 8] which 8th notes of the motif sound


@dataclass(frozen=True)
class _Grid:
    """A song's 16th-note steps."""

    time: np.ndarray  # onset, s
    section: np.ndarray
    step: np.ndarray  # position in the bar, 0..15
    bar: np.ndarray  # bar number within the section


def generate_corpus(
    out_dir: Path,
    *,
    videos: int,
    duration_s: float,
    fps: int,
    size: tuple[int, int],
    genres: int,
    tags: int,
    msd_fraction: float,
    av_coupling: float,
    seed: int,
    sample_rate: int = 22050,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Write a synthetic corpus under `out_dir` and return its metadata.

    Files: videos/<video_id>.mp4 (H.264 + AAC), metadata.csv (video_id, path, genre, msd_id, artist, title;
    `genre` is the sound's genre, `msd_id` is empty outside the MSD overlap), msd_tags.csv (msd_id, tag,
    count: Last.fm-style weights 1-100) and latents.parquet (ground truth per video, stream and section:
    stream "sound" is what is heard, stream "independent" the unheard song mixed into the picture with weight
    1 - av_coupling). `size` is (width, height); `progress` is called with the number of videos done.
    Videos are made by `workers` processes; every video has its own seeds, so the files do not depend on it.
    """
    width, height = size
    problems = [
        (videos < 1, f"videos={videos}: need at least 1"),
        (duration_s < 1, f"duration_s={duration_s}: need at least 1 s"),
        (fps < 1, f"fps={fps}: need at least 1"),
        (
            width % 2 or height % 2 or width < 16 or height < 16,
            f"size={size}: need even sides >= 16 (yuv420p)",
        ),
        (not 1 <= genres <= len(GENRE_NAMES), f"genres={genres}: need 1..{len(GENRE_NAMES)}"),
        (not 1 <= tags <= len(TAG_NAMES), f"tags={tags}: need 1..{len(TAG_NAMES)}"),
        (not 0 <= msd_fraction <= 1, f"msd_fraction={msd_fraction}: need a fraction in [0, 1]"),
        (not 0 <= av_coupling <= 1, f"av_coupling={av_coupling}: need a fraction in [0, 1]"),
    ]
    for failed, message in problems:
        if failed:
            raise ValueError(f"synthetic corpus: {message}")
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    profiles, looks, tag_prior = _design(np.random.default_rng([seed, 0]), genres, tags)
    corpus = _Corpus(
        out_dir, seed, duration_s, fps, size, sample_rate, av_coupling,  # the settings, in _Corpus's order
        id_digits=max(4, len(str(videos))),
        profiles=profiles,
        looks=looks,
        tag_prior=tag_prior,
        kit=_drum_kit(np.random.default_rng([seed, 1]), sample_rate),
    )
    in_msd = np.zeros(videos, dtype=bool)
    in_msd[np.random.default_rng([seed, 2]).permutation(videos)[: round(msd_fraction * videos)]] = True
    make = partial(_make_video, corpus)
    pool = ProcessPoolExecutor(workers, mp_context=get_context("fork")) if workers > 1 else None
    made = []
    with pool or nullcontext():
        for result in (pool.map if pool else map)(make, range(videos), in_msd):
            made.append(result)
            if progress is not None:
                progress(len(made))
    rows, tag_rows, latent_tables = zip(*made, strict=True)
    metadata = pd.DataFrame(list(rows))
    save_csv(out_dir / "metadata.csv", metadata)
    msd_tags = pd.DataFrame([row for track in tag_rows for row in track], columns=["msd_id", "tag", "count"])
    save_csv(out_dir / "msd_tags.csv", msd_tags)
    latents = pd.concat(latent_tables, ignore_index=True)
    save_parquet(out_dir / "latents.parquet", latents)
    return metadata


def corpus_segments(
    out_dir: Path, *, videos: int, segments_per_video: int, fps: int, size: tuple[int, int]
) -> pd.DataFrame:
    """Training segments (5 s, 3 s clips) of a small synthetic corpus under `out_dir`, made if missing.

    The workload of the feature benchmarks: every video long enough for its segments, all in the train split.
    """
    seconds, clip_seconds = 5.0, 3.0
    duration = segments_per_video * seconds + 3.0
    out_dir = Path(out_dir)
    if not (out_dir / "metadata.csv").exists():
        generate_corpus(
            out_dir, videos=videos, duration_s=duration, fps=fps, size=size,
            genres=3, tags=4, msd_fraction=0.5, av_coupling=0.8, seed=0,
        )  # fmt: skip
    metadata = pd.read_csv(out_dir / "metadata.csv").head(videos)
    manifest = metadata.assign(
        path=[str((out_dir / path).resolve()) for path in metadata["path"]], duration_s=duration, split="train"
    )
    return build_segments(
        manifest, count=segments_per_video, seconds=seconds, clip_seconds=clip_seconds,
        shard_videos=videos, seed=0,
    )  # fmt: skip


@dataclass(frozen=True)
class _Corpus:
    """Everything a worker needs to make one video."""

    out_dir: Path
    seed: int
    duration_s: float
    fps: int
    size: tuple[int, int]
    sample_rate: int
    av_coupling: float
    id_digits: int
    profiles: list[GenreProfile]
    looks: list[TagLook]
    tag_prior: np.ndarray
    kit: dict[str, np.ndarray]


def _make_video(
    corpus: _Corpus, index: int, in_msd: bool
) -> tuple[dict[str, str], list[tuple[str, str, int]], pd.DataFrame]:
    """Write video `index` and return its metadata row, its MSD tag rows and its latents."""
    seed, profiles, looks = corpus.seed, corpus.profiles, corpus.looks
    video_id = f"v{index + 1:0{corpus.id_digits}d}"
    song = _draw_song(np.random.default_rng([seed, 3, index]), profiles, corpus.tag_prior, corpus.duration_s)
    unheard = _draw_song(
        np.random.default_rng([seed, 4, index]), profiles, corpus.tag_prior, corpus.duration_s
    )
    audio = _render_audio(
        song, profiles[song.genre], looks, corpus.kit, corpus.sample_rate, corpus.duration_s
    )
    frames = _render_frames(
        song, unheard, profiles, looks, corpus.av_coupling, corpus.duration_s, corpus.fps, corpus.size
    )
    path = f"videos/{video_id}.mp4"
    write_mp4(
        corpus.out_dir / path, frames, audio, fps=corpus.fps, size=corpus.size, sample_rate=corpus.sample_rate
    )
    names = np.random.default_rng([seed, 5, index])
    msd_id = "TR" + "".join(names.choice(_MSD_ALPHABET, 16)) if in_msd else ""
    row = {
        "video_id": video_id,
        "path": path,
        "genre": profiles[song.genre].name,
        "msd_id": msd_id,
        "artist": _artist_name(names),
        "title": _title(names),
    }
    track_tags = _lastfm_tags(names, msd_id, song, looks) if in_msd else []
    latents = pd.concat(
        [
            _latent_rows(video_id, stream, source, profiles, looks, corpus.av_coupling)
            for stream, source in (("sound", song), ("independent", unheard))
        ],
        ignore_index=True,
    )
    return row, track_tags, latents


# --- The generative model ------------------------------------------------------------------------------------


def _design(
    rng: np.random.Generator, genres: int, tags: int
) -> tuple[list[GenreProfile], list[TagLook], np.ndarray]:
    """Genre profiles, tag looks and P(tag | genre).

    Every genre trait is spread over its range (or cycled through its options) in its own random order, so
    that any two genres differ on most axes.
    """

    def spread(low: float, high: float) -> np.ndarray:
        return rng.permutation(np.linspace(low, high, genres))

    def cycle(options: tuple) -> list:
        return [options[i % len(options)] for i in rng.permutation(genres)]

    bpm, brightness, even = spread(75, 160), spread(0.2, 0.8), spread(0.1, 1.0)
    chord_decay, lead_density = np.exp(spread(np.log(0.25), np.log(3.0))), spread(0.35, 0.85)
    scale, kick, snare, hat = cycle(_SCALES), cycle(_KICKS), cycle(_SNARES), cycle(_HATS)
    swing = cycle((0.0, 0.25, 0.0))
    drive = cycle((1.0, 1.0, 4.0))
    root = rng.permutation(np.arange(genres) * 5 % 12 + 43)  # keys a fourth apart, in random order
    hue = (spread(0, 1 - 1 / genres) + rng.random()) % 1.0
    heading, mirrored = spread(0, 1 - 1 / genres), cycle((False, True))
    profiles = [
        GenreProfile(
            name=GENRE_NAMES[g],
            bpm=float(bpm[g]),
            scale=scale[g],
            root=int(root[g]),
            brightness=float(brightness[g]),
            even=float(even[g]),
            kick=kick[g],
            snare=snare[g],
            hat=hat[g],
            swing=swing[g],
            chord_decay=float(chord_decay[g]),
            lead_density=float(lead_density[g]),
            drive=drive[g],
            hue=float(hue[g]),
            outline=tuple(float(w) for w in rng.dirichlet(np.full(3, 0.5))),
            heading=float(heading[g]),
            mirrored=mirrored[g],
        )
        for g in range(genres)
    ]
    looks = [
        TagLook(
            name=name,
            effect=_TAG_EFFECTS.get(name, _EFFECT_FAMILIES[k % len(_EFFECT_FAMILIES)]),
            shade=float(rng.random()),
            band_y=float(rng.uniform(0.08, 0.92)),
            band_hue=float(rng.random()),
        )
        for k, name in enumerate(TAG_NAMES[:tags])
    ]
    # Each genre has two signature tags (three where a tag is named after it), likely but not certain,
    # so that tags are informative about genre without being a copy of it.
    prior = np.full((genres, tags), min(0.1, 1.5 / tags))
    for g, profile in enumerate(profiles):
        prior[g, rng.choice(tags, size=min(2, tags), replace=False)] = 0.65
        named = [
            k
            for k, look in enumerate(looks)
            if look.name.lower().replace("-", "") == profile.name.replace("-", "")
        ]
        prior[g, named] = 0.75
    return profiles, looks, prior


def _draw_song(
    rng: np.random.Generator, profiles: list[GenreProfile], tag_prior: np.ndarray, duration_s: float
) -> Song:
    genre = int(rng.integers(len(profiles)))
    profile = profiles[genre]
    tags = np.flatnonzero(rng.random(tag_prior.shape[1]) < tag_prior[genre])
    if tags.size == 0:
        tags = np.array([int(np.argmax(tag_prior[genre]))])
    n = int(rng.integers(_SECTIONS[0], _SECTIONS[1] + 1))
    shares = 0.5 / n + 0.5 * rng.dirichlet(np.full(n, 4.0))
    bounds = np.concatenate([[0.0], np.cumsum(shares)]) * duration_s
    bounds[-1] = duration_s
    chords = rng.choice([0, 3, 4, 5], size=(n, 4))
    chords[:, 0] = 0
    return Song(
        genre=genre,
        tags=tuple(int(k) for k in tags),
        root=profile.root + int(rng.integers(-2, 3)),
        bpm=profile.bpm * float(np.exp(rng.normal(0.0, 0.04))),
        bounds=bounds,
        pitch=np.clip(np.rint(rng.normal(0.0, 2.5, n)), -5, 5),
        tempo=np.exp(rng.normal(0.0, 0.08, n)),
        loudness=np.clip(rng.normal(0.0, 4.0, n), -9, 9),
        brightness=np.clip(profile.brightness + rng.normal(0.0, 0.12, n), 0.0, 1.0),
        chords=chords,
        melody=rng.integers(0, 8, size=(n, 8)),
        rhythm=rng.random((n, 8)) < profile.lead_density,
    )


def _grid(song: Song, profile: GenreProfile) -> _Grid:
    """16th-note steps; every section starts on a downbeat at its own tempo."""
    parts = []
    for j in range(len(song.pitch)):
        step_s = 60.0 / (song.bpm * song.tempo[j]) / 4
        k = np.arange(int(np.ceil((song.bounds[j + 1] - song.bounds[j]) / step_s - 1e-9)))
        time = song.bounds[j] + step_s * (k + profile.swing * (k % 2))
        keep = time < song.bounds[j + 1]
        parts.append((time[keep], np.full(keep.sum(), j), k[keep] % 16, k[keep] // 16))
    time, section, step, bar = (np.concatenate(column) for column in zip(*parts, strict=True))
    return _Grid(time=time, section=section, step=step, bar=bar)


def _kicks(song: Song, profile: GenreProfile, looks: list[TagLook], grid: _Grid) -> tuple[np.ndarray, float]:
    """Kick onsets and their level: a tag with the kick effect adds a loud four-on-the-floor."""
    on_floor = any(looks[k].effect == "kick" for k in song.tags)
    hits = np.isin(grid.step, profile.kick) | (on_floor & (grid.step % 4 == 0))
    return grid.time[hits], 1.0 if on_floor else 0.6


# --- Sound ---------------------------------------------------------------------------------------------------


def _drum_kit(rng: np.random.Generator, sample_rate: int) -> dict[str, np.ndarray]:
    t = np.arange(int(0.4 * sample_rate)) / sample_rate
    kick_phase = np.cumsum(45 + 90 * np.exp(-t / 0.03)) / sample_rate
    noise = rng.standard_normal(t.size)
    bright = np.diff(noise, prepend=0.0)
    return {
        "kick": np.sin(2 * np.pi * kick_phase) * np.exp(-t / 0.12),
        "snare": 0.5 * noise * np.exp(-t / 0.08) + 0.5 * np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05),
        "hat": 0.5 * bright * np.exp(-t / 0.015),
        "open_hat": 0.4 * bright * np.exp(-t / 0.1),
    }


def _wavetables(rolloff: np.ndarray, even: float, formant: float | None = None) -> np.ndarray:
    """One period of a harmonic tone per rolloff ([n, _TABLE]); amplitudes k**-rolloff, a formant bump."""
    amps = _HARMONICS[None, :] ** -np.asarray(rolloff, dtype=float)[:, None]
    amps[:, 1::2] *= even
    if formant is not None:
        amps *= 1 + 3 * np.exp(-0.5 * (_HARMONICS - formant) ** 2)
    phase = np.arange(_TABLE) / _TABLE
    tables = amps @ np.sin(2 * np.pi * _HARMONICS[:, None] * phase[None, :])
    return tables / np.abs(tables).max(axis=1, keepdims=True)


_SAW = _wavetables(np.array([1.0]), 1.0)


def _voice(
    n_samples: int,
    sample_rate: int,
    onsets: np.ndarray,
    midi: np.ndarray,
    tables: np.ndarray,
    table_of_note: np.ndarray,
    *,
    attack: float,
    decay: float,
    vibrato: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """A monophonic line: each note sounds from its onset (s) until the next, with an attack-decay envelope.

    `vibrato` is (rate Hz, depth semitones). Each note starts at phase 0 under a rising envelope.
    """
    starts = np.minimum(np.rint(onsets * sample_rate).astype(np.int64), n_samples)
    out = np.zeros(n_samples, dtype=np.float32)
    if starts.size == 0 or starts[0] >= n_samples:
        return out
    lengths = np.diff(np.append(starts, n_samples))  # samples from each onset to the next

    def per_sample(per_note: np.ndarray) -> np.ndarray:
        return np.repeat(per_note, lengths)

    since = np.arange(starts[0], n_samples, dtype=np.float32)
    since -= per_sample(starts.astype(np.float32))
    since /= sample_rate
    hertz = per_sample((440.0 * 2.0 ** ((midi - 69) / 12)).astype(np.float32))
    if vibrato[1]:
        bend = 2.0 ** (
            vibrato[1] / 12 * np.sin(2 * np.pi * vibrato[0] / sample_rate * np.arange(starts[0], n_samples))
        )
        cycles = np.cumsum(hertz * bend / sample_rate)
    else:
        cycles = hertz * since
    position = (cycles * _TABLE).astype(np.int32) & (_TABLE - 1)  # _TABLE is a power of two
    position += per_sample(_TABLE * table_of_note.astype(np.int32))
    envelope = np.minimum(np.float32(1.0), since / np.float32(attack))
    envelope *= np.exp(since / np.float32(-decay))
    out[starts[0] :] = tables.astype(np.float32).ravel()[position] * envelope
    return out


def _degree_semitones(degree: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
    octave, index = np.divmod(np.asarray(degree), len(scale))
    return np.asarray(scale)[index] + 12 * octave


def _place(out: np.ndarray, onsets: np.ndarray, sound: np.ndarray, gain: float, sample_rate: int) -> None:
    for start in np.rint(onsets * sample_rate).astype(np.int64):
        length = min(sound.size, out.size - start)
        out[start : start + length] += gain * sound[:length]


class _Score:
    """A song's notes on its 16th-note grid, rendered by `line` into samples."""

    def __init__(self, song: Song, profile: GenreProfile, n_samples: int, sample_rate: int) -> None:
        self.grid = _grid(song, profile)
        self.n_samples, self.sample_rate, self.scale = n_samples, sample_rate, profile.scale
        section, step = self.grid.section, self.grid.step
        self.step = step
        self.chord = song.chords[section, self.grid.bar % 4]  # scale degree of the bar's chord
        self.melody = song.melody[section, step // 2]
        self.lead = (step % 2 == 0) & song.rhythm[section, step // 2]
        self.base = song.root + song.pitch[section]  # MIDI note of degree 0, with the key change
        self.section = section
        self.main = _wavetables(2.4 - 1.8 * song.brightness, profile.even)  # one timbre per section

    def line(
        self,
        mask: np.ndarray,
        degree: np.ndarray,
        octave: int,
        tables: np.ndarray | None = None,
        **envelope: float | tuple[float, float],
    ) -> np.ndarray:
        """Notes on the steps in `mask` at scale `degree` (per step); `tables` default to the section timbre."""
        midi = self.base[mask] + 12 * octave + _degree_semitones(degree[mask], self.scale)
        table_of_note = self.section[mask] if tables is None else np.zeros(mask.sum(), dtype=np.int64)
        tables = self.main if tables is None else tables
        return _voice(
            self.n_samples, self.sample_rate, self.grid.time[mask], midi, tables, table_of_note, **envelope
        )


def _render_audio(
    song: Song,
    profile: GenreProfile,
    looks: list[TagLook],
    kit: dict[str, np.ndarray],
    sample_rate: int,
    duration_s: float,
) -> np.ndarray:
    """The song as mono float32 samples in [-1, 1]: bass, chords, lead and drums, then each tag's layer."""
    n = round(duration_s * sample_rate)
    score = _Score(song, profile, n, sample_rate)
    step, time = score.step, score.grid.time
    stab = step == 0 if profile.chord_decay > 0.5 else step % 8 == 0
    harmonic = 0.35 * score.line(
        np.isin(step, (0, 8, *profile.kick)), score.chord, -1, attack=0.005, decay=0.4
    )
    for voice in range(3):
        harmonic += 0.15 * score.line(
            stab, score.chord + 2 * voice, 0, attack=0.01, decay=profile.chord_decay
        )
    lead = 0.3 * score.line(score.lead, score.melody, 1, attack=0.01, decay=0.3)
    drums = np.zeros(n)
    kicks, kick_gain = _kicks(song, profile, looks, score.grid)
    _place(drums, kicks, kit["kick"], kick_gain, sample_rate)
    _place(drums, time[np.isin(step, profile.snare)], kit["snare"], 0.45, sample_rate)
    _place(drums, time[np.isin(step, profile.hat)], kit["hat"], 0.25, sample_rate)
    layers = np.zeros(n)
    drive = profile.drive
    for look in (looks[k] for k in song.tags):
        if look.effect == "distortion":  # power chords, and the harmonic instruments overdriven
            drive = max(drive, 4.0 + 4.0 * look.shade)
            for interval in (0, 4):
                harmonic += 0.2 * score.line(
                    step % 8 == 0, score.chord + interval, 0, _SAW, attack=0.005, decay=1.5
                )
        elif look.effect == "echo":
            delay = round((0.25 + 0.15 * look.shade) * sample_rate)
            lead[delay:] += 0.5 * lead[:-delay]
            lead[2 * delay :] += 0.25 * lead[: -2 * delay]
        elif look.effect == "hats":
            _place(drums, time, kit["hat"], 0.3, sample_rate)
            _place(drums, time[step % 4 == 2], kit["open_hat"], 0.3 + 0.2 * look.shade, sample_rate)
        elif look.effect != "kick":  # `_kicks` adds the kick effect's four-on-the-floor
            layers += _tag_layer(score, look.effect, look.shade, profile.kick)
    if drive > 1:
        level = 3 * np.sqrt(np.mean(harmonic**2)) + 1e-9
        harmonic = np.tanh(drive * harmonic / level) * level / np.tanh(drive)
    mix = (harmonic + lead + layers + drums) * _section_gain(song, n, sample_rate)
    return (0.9 * mix / (np.abs(mix).max() + 1e-9)).astype(np.float32)


def _tag_layer(score: _Score, effect: str, shade: float, kick: tuple[int, ...]) -> np.ndarray:
    """The instrument a tag's effect family adds; `shade` in [0, 1] varies register, rate and length."""
    step, chord = score.step, score.chord
    if effect in ("vocal_high", "vocal_low"):  # a sung line: formant, slow attack, vibrato
        octave, formant = (2, 3 + 2 * shade) if effect == "vocal_high" else (1, 2 + shade)
        voice = _wavetables(np.array([1.2]), 0.8, formant)
        vibrato = (5.0 + 1.5 * shade, 0.4 + 0.4 * shade)
        return 0.3 * score.line(
            step % 4 == 0, score.melody, octave, voice, attack=0.06, decay=2.0, vibrato=vibrato
        )
    if effect == "synth":  # a bright 16th-note saw arpeggio
        octave = 1 + int(shade > 0.5)
        return 0.2 * score.line(
            step >= 0, chord + 2 * (step % 3), octave, _SAW, attack=0.003, decay=0.1 + 0.1 * shade
        )
    if effect == "sub":  # an 808-like sine two octaves down on the kicks
        sine = _wavetables(np.array([50.0]), 0.0)
        return 0.5 * score.line(np.isin(step, kick), chord, -2, sine, attack=0.005, decay=0.6)
    if effect == "pad":  # a slow, soft, held chord
        soft = _wavetables(np.array([2.5]), 0.5)
        return sum(
            0.15 * score.line(step == 0, chord + 2 * v, 1, soft, attack=0.4, decay=5.0) for v in range(2)
        )
    if effect == "pluck":  # a broken chord in bright, short 8th notes
        bright = _wavetables(np.array([0.8]), 1.0)
        broken = chord + 2 * ((step // 2) % 3)
        return 0.25 * score.line(step % 2 == 0, broken, 1, bright, attack=0.002, decay=0.15 + 0.2 * shade)
    if effect == "piano":  # syncopated chord stabs with a long decay
        keys = _wavetables(np.array([1.4]), 0.7)
        hits = np.isin(step, (0, 6, 10))
        return sum(
            0.12 * score.line(hits, chord + 2 * v, 1, keys, attack=0.003, decay=0.5 + shade) for v in range(3)
        )
    if effect == "tremolo":  # an electric-piano chord under a 4-7 Hz amplitude wobble
        rhodes = _wavetables(np.array([2.0]), 0.3)
        held = sum(score.line(step == 0, chord + 2 * v, 1, rhodes, attack=0.01, decay=3.0) for v in range(2))
        wobble = np.sin(2 * np.pi * (4 + 3 * shade) * np.arange(score.n_samples) / score.sample_rate)
        return 0.2 * held * (0.6 + 0.4 * wobble)
    raise ValueError(f"unknown tag effect {effect!r}; known: {_EFFECT_FAMILIES}")


def _section_gain(song: Song, n_samples: int, sample_rate: int) -> np.ndarray:
    """Each section's loudness as a gain, with 20 ms ramps at the boundaries."""
    inner = song.bounds[1:-1]
    times = np.concatenate(
        [[0.0], np.ravel(np.column_stack([inner - 0.01, inner + 0.01])), [song.bounds[-1]]]
    )
    levels = np.repeat(10.0 ** (song.loudness / 20), 2)
    return np.interp(np.arange(n_samples) / sample_rate, times, levels)


# --- Picture -------------------------------------------------------------------------------------------------


def _hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB in [0, 1]; output has a trailing axis of 3."""
    hue, saturation, value = np.broadcast_arrays(np.asarray(hue) % 1.0, saturation, value)
    k = (np.array([5.0, 3.0, 1.0]) + 6 * hue[..., None]) % 6
    ramp = np.clip(np.minimum(k, 4 - k), 0, 1)
    return value[..., None] * (1 - saturation[..., None] * ramp)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _background(song: Song, profile: GenreProfile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-section background hue (genre + pitch centre), saturation (brightness) and value (loudness)."""
    hue = (profile.hue + 0.025 * song.pitch) % 1.0
    saturation = 0.25 + 0.6 * song.brightness
    value = 0.2 + 0.6 * _sigmoid(song.loudness / 4)
    return hue, saturation, value


def _picture(
    song: Song, profile: GenreProfile, looks: list[TagLook], size: tuple[int, int]
) -> dict[str, np.ndarray]:
    """`g`: the picture parameters of every section of `song`; each array's first axis is the section."""
    width, height = size
    hue, saturation, value = _background(song, profile)
    background = _hsv_to_rgb(hue, saturation, value)  # [n, 3]
    y = (np.arange(height) + 0.5) / height
    band_weight = np.array([np.exp(-0.5 * ((y - looks[k].band_y) / 0.03) ** 2) for k in song.tags])
    band_alpha = np.clip(0.8 * band_weight.sum(axis=0), 0, 0.8)  # [height]
    band_rgb = (band_weight.T @ _hsv_to_rgb([looks[k].band_hue for k in song.tags], 0.9, 0.9)) / (
        band_weight.sum(axis=0)[:, None] + 1e-9
    )
    rows = (
        background[:, None, :] * (1 - band_alpha[None, :, None]) + band_rgb[None] * band_alpha[None, :, None]
    )
    shape = np.arange(_SHAPES)
    count = 2 + (_SHAPES - 2) * song.rhythm.mean(axis=1)  # how busy the lead is
    alpha = np.clip(count[:, None] - shape[None, :], 0, 1)
    tag_hues = np.array([looks[song.tags[i % len(song.tags)]].band_hue for i in shape])
    colour = _hsv_to_rgb(tag_hues[None, :], 0.85, (0.95 - 0.5 * value)[:, None])  # [n, shapes, 3]
    x = np.broadcast_to((shape + 0.5) / _SHAPES, alpha.shape)
    centre = np.stack([x, 0.85 - 0.7 * song.melody / 7], axis=-1)  # higher notes sit higher
    speed = 0.3 * song.bpm * song.tempo / 120  # frame widths per second: 0.3 at 120 bpm
    turn = 2 * np.pi * profile.heading
    sign = np.where(profile.mirrored & (shape % 2 == 1), -1.0, 1.0)
    direction = np.array([np.cos(turn), np.sin(turn) * width / height])
    velocity = speed[:, None, None] * sign[None, :, None] * direction[None, None, :]
    return {
        "rows": rows,
        "colour": colour,
        "alpha": alpha,
        "centre": centre,
        "velocity": velocity,
        "radius": (0.07 + 0.07 * _sigmoid(song.loudness / 4)) * height,
        "outline": np.broadcast_to(np.array(profile.outline), (len(song.pitch), 3)),
    }


def _kick_flash(song: Song, profile: GenreProfile, looks: list[TagLook], times: np.ndarray) -> np.ndarray:
    """A flash that decays over 0.15 s after every kick, sampled at `times`."""
    kicks, gain = _kicks(song, profile, looks, _grid(song, profile))
    last = np.searchsorted(kicks, times, side="right") - 1
    if kicks.size == 0:  # a very short song whose pattern never reaches a kick
        return np.zeros(times.size)
    since = times - kicks[np.maximum(last, 0)]
    return np.where(last >= 0, gain * np.exp(-since / 0.15), 0.0)


def _render_frames(
    song: Song,
    unheard: Song,
    profiles: list[GenreProfile],
    looks: list[TagLook],
    coupling: float,
    duration_s: float,
    fps: int,
    size: tuple[int, int],
) -> Iterator[np.ndarray]:
    """RGBA uint8 frames whose parameters are coupling * g(song) + (1 - coupling) * g(unheard) at each time."""
    width, height = size
    times = np.arange(round(duration_s * fps)) / fps
    params, flash = {}, np.zeros(times.size)
    scene = np.zeros(times.size, dtype=np.int64)  # frames of one scene share every parameter but time
    for weight, source in ((coupling, song), (1 - coupling, unheard)):
        profile = profiles[source.genre]
        section = np.searchsorted(source.bounds, times, side="right") - 1
        scene = scene * len(source.pitch) + section
        for key, value in _picture(source, profile, looks, size).items():
            params[key] = params.get(key, 0.0) + weight * value[section]
        flash += weight * _kick_flash(source, profile, looks, times)
    lit = np.clip(params["rows"] * (1 + 0.3 * flash)[:, None, None], 0, 1)
    rgba = np.zeros(lit.shape[:2] + (4,), dtype=np.uint8)
    rgba[..., :3] = 255 * lit + 0.5
    background = rgba.view(np.uint32)[..., 0]  # [frames, height]: one RGBA word per row, uniform across x
    # Shapes travel on a torus one shape wider than the frame: they leave it whole before coming back.
    reach = int(np.ceil(params["radius"].max())) + 1
    position = (params["centre"] + params["velocity"] * times[:, None, None]) % 1.0
    corner = np.floor(position * [width + 2 * reach, height + 2 * reach]).astype(
        np.int64
    )  # [frames, shapes, 2]
    canvas = np.zeros((height + 4 * reach, width + 4 * reach, 4), dtype=np.uint8)
    frame = canvas[2 * reach : 2 * reach + height, 2 * reach : 2 * reach + width]
    words = frame.view(np.uint32)[..., 0]  # filling words is much faster than filling RGB triples
    for f in range(times.size):
        words[:] = background[f][:, None]
        if f == 0 or scene[f] != scene[f - 1]:
            stamps = _stamps(
                params["radius"][f], reach, params["outline"][f], params["alpha"][f], params["colour"][f]
            )
        for i, keep, paint in stamps:  # in order, so later shapes cover earlier ones
            x, y = corner[f, i]
            patch = canvas[y : y + 2 * reach + 1, x : x + 2 * reach + 1]
            patch[...] = patch * keep + paint
        yield frame.copy()


def _stamps(
    radius: float, reach: int, outline: np.ndarray, alpha: np.ndarray, colour: np.ndarray
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """A scene's shapes as (shape, keep, paint) on [2 reach + 1]^2 patches: `new = old * keep + paint`."""
    radius = max(float(radius), 1.0)
    away = np.abs(np.arange(-reach, reach + 1)) / radius
    diamond, circle, square = outline
    distance = (
        diamond * (away[:, None] + away[None, :])
        + circle * np.hypot(away[:, None], away[None, :])
        + square * np.maximum(away[:, None], away[None, :])
    )
    coverage = np.clip((1 - distance) * radius + 0.5, 0, 1)[..., None]  # anti-aliased edge one pixel wide
    return [
        (
            int(i),
            (1 - alpha[i] * coverage).astype(np.float32),
            (255 * np.append(colour[i], 0.0) * alpha[i] * coverage + 0.5).astype(np.float32),  # RGBA
        )
        for i in np.flatnonzero(alpha > 0.01)
    ]


# --- Names, tags and ground truth ----------------------------------------------------------------------------


def _artist_name(rng: np.random.Generator) -> str:
    adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
    return f"The {adjective} {noun}" if rng.random() < 0.5 else f"{adjective} {noun}"


def _title(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(_TITLE_WORDS, size=int(rng.integers(1, 4)), replace=False))


def _lastfm_tags(
    rng: np.random.Generator, msd_id: str, song: Song, looks: list[TagLook]
) -> list[tuple[str, str, int]]:
    """A song's tags as Last.fm gives them: the strongest weighs 100, the rest less; sometimes a stray tag."""
    counts = {looks[k].name: int(rng.integers(25, 100)) for k in song.tags}
    counts[looks[song.tags[int(rng.integers(len(song.tags)))]].name] = 100
    stray = [look.name for look in looks if look.name not in counts]
    if stray and rng.random() < 0.3:
        counts[stray[int(rng.integers(len(stray)))]] = int(rng.integers(1, 12))
    return [
        (msd_id, tag, count) for tag, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _latent_rows(
    video_id: str,
    stream: str,
    song: Song,
    profiles: list[GenreProfile],
    looks: list[TagLook],
    coupling: float,
) -> pd.DataFrame:
    profile = profiles[song.genre]
    hue, saturation, value = _background(song, profile)
    n = len(song.pitch)
    return pd.DataFrame(
        {
            "video_id": video_id,
            "stream": stream,
            "section": np.arange(n),
            "start_s": song.bounds[:-1],
            "end_s": song.bounds[1:],
            "genre": profile.name,
            "tags": "|".join(looks[k].name for k in song.tags),
            "key_root": song.root,
            "bpm": song.bpm * song.tempo,
            "pitch_centre": song.pitch,
            "loudness_db": song.loudness,
            "brightness": song.brightness,
            "picture_hue": hue,
            "picture_saturation": saturation,
            "picture_value": value,
            "av_coupling": coupling,
        }
    )


# --- Files ---------------------------------------------------------------------------------------------------


def write_mp4(
    path: Path,
    frames: Iterator[np.ndarray],
    audio: np.ndarray | None,
    *,
    fps: int,
    size: tuple[int, int],
    sample_rate: int,
    crf: int = 23,
) -> None:
    """Mux RGB or RGBA frames as H.264 (yuv420p) and mono float samples as AAC into an MP4, atomically.

    One encoder thread keeps the bytes reproducible.
    """
    width, height = size

    def write(target: Path) -> None:
        with av.open(str(target), "w", format="mp4") as container:
            video = container.add_stream("libx264", rate=fps)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.codec_context.thread_count = 1
            # A keyframe every 2 s, as streaming encoders do: a segment seek then decodes at most 2 s.
            video.options = {"preset": "ultrafast", "crf": str(crf), "g": str(2 * fps), "keyint_min": str(fps)}
            sound = None
            if audio is not None:
                sound = container.add_stream("aac", rate=sample_rate)
                sound.layout = "mono"
                sound.bit_rate = 96_000
                sound.options = {"aac_coder": "fast"}
            for index, picture in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(
                    picture, format="rgba" if picture.shape[2] == 4 else "rgb24"
                )
                frame.pts, frame.time_base = index, Fraction(1, fps)
                container.mux(video.encode(frame))
            container.mux(video.encode())
            if sound is not None:
                for start in range(0, audio.size, 1024):
                    chunk = av.AudioFrame.from_ndarray(
                        audio[None, start : start + 1024], format="fltp", layout="mono"
                    )
                    chunk.sample_rate, chunk.pts, chunk.time_base = (
                        sample_rate,
                        start,
                        Fraction(1, sample_rate),
                    )
                    container.mux(sound.encode(chunk))
                container.mux(sound.encode())

    with atomic_path(path) as temporary:
        write(temporary)
