import numpy as np
import pandas as pd
import pytest

from mvcl.data.segments import build_segments, sample_windows, shard_count, video_rng


def manifest(durations):
    return pd.DataFrame(
        {
            "video_id": [f"v{i:03d}" for i in range(len(durations))],
            "path": [f"/videos/v{i:03d}.mp4" for i in range(len(durations))],
            "duration_s": durations,
            "split": ["train"] * len(durations),
        }
    )


@pytest.mark.parametrize("duration", [30.0, 30.5, 61.0, 600.0])
def test_segments_never_overlap_and_each_lies_in_its_part(duration):
    windows = sample_windows(duration, 6, 5.0, 3.0, np.random.default_rng(1))
    part = duration / 6
    for k, (start, end, clip_start, clip_end) in enumerate(windows):
        assert end - start == pytest.approx(5.0)
        assert k * part - 1e-9 <= start and end <= (k + 1) * part + 1e-9
        assert start <= clip_start and clip_end <= end + 1e-9
        assert clip_end - clip_start == pytest.approx(3.0)
    assert np.all(windows[1:, 0] >= windows[:-1, 1] - 1e-9)


def test_windows_are_spread_over_each_part():
    rng = np.random.default_rng(0)
    starts = np.array([sample_windows(60.0, 6, 5.0, 3.0, rng)[2, 0] for _ in range(2000)])
    # Part 3 of a 60 s track is [20, 30): starts are uniform in [20, 25].
    assert starts.min() == pytest.approx(20.0, abs=0.05) and starts.max() == pytest.approx(25.0, abs=0.05)
    assert np.mean(starts) == pytest.approx(22.5, abs=0.15)


def test_too_short_track_is_refused_with_the_needed_length():
    with pytest.raises(ValueError, match="needs at least 30.00 s"):
        sample_windows(29.0, 6, 5.0, 3.0, np.random.default_rng(0))


def test_segments_of_a_video_do_not_depend_on_other_videos():
    alone = build_segments(manifest([40.0]), count=6, seconds=5, clip_seconds=3, shard_videos=10, seed=3)
    many = build_segments(
        manifest([40.0, 50.0, 70.0]), count=6, seconds=5, clip_seconds=3, shard_videos=10, seed=3
    )
    pd.testing.assert_frame_equal(alone, many[many.video_id == "v000"].reset_index(drop=True))


def test_seed_changes_windows_and_same_seed_repeats_them():
    first = build_segments(manifest([40.0, 50.0]), count=6, seconds=5, clip_seconds=3, shard_videos=1, seed=0)
    again = build_segments(manifest([40.0, 50.0]), count=6, seconds=5, clip_seconds=3, shard_videos=1, seed=0)
    other = build_segments(manifest([40.0, 50.0]), count=6, seconds=5, clip_seconds=3, shard_videos=1, seed=1)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first.start_s, other.start_s)


def test_shards_group_whole_videos_in_order():
    table = build_segments(manifest([35.0] * 7), count=6, seconds=5, clip_seconds=3, shard_videos=3, seed=0)
    assert shard_count(table) == 3
    assert table.groupby("video_id")["shard"].nunique().max() == 1
    assert table["shard"].is_monotonic_increasing
    assert table.groupby("shard")["video_id"].nunique().tolist() == [3, 3, 1]
    assert list(table.columns[:6]) == [
        "video_id",
        "segment",
        "start_s",
        "end_s",
        "clip_start_s",
        "clip_end_s",
    ]


def test_video_rng_depends_on_purpose_and_id():
    draw = lambda *args: video_rng(*args).random()  # noqa: E731
    assert draw(0, "a") == draw(0, "a")
    assert draw(0, "a") != draw(0, "b")
    assert draw(0, "a", "segments") != draw(0, "a", "crops")
