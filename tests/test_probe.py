import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from mvcl.data.tags import tag_matrix
from mvcl.probe.data import ProbeWarning, task_labels, video_level, video_representation
from mvcl.probe.metrics import f1_thresholds, genre_metrics, tagging_metrics
from mvcl.probe.train import probe_task, repeat_seeds, run_probe, run_probe_seeds, summarise_repeats

# Small probe so that each test stays within seconds on one CPU thread.
SMALL = {"hidden": [32, 16], "lr": 1e-2, "batch_size": 64, "max_epochs": 100, "patience": 5, "repeats": 2}


def synthetic_videos(seed: int, n: int = 600, dim: int = 16):
    """Features, a genre that is the argmax of a linear map of them, 3 tags thresholded from it, and a split."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    W = rng.normal(size=(dim, 4))
    genre = np.array(["blues", "funk", "jazz", "rock"])[(X @ W).argmax(axis=1)]
    tags = (X @ W[:, :3] > 0.3).astype(np.uint8)
    split = rng.choice(["train", "val", "test"], size=n, p=[0.5, 0.25, 0.25])
    return X, genre, tags, split


def segments_table(video_ids: list[str], splits: list[str], per_video: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "video_id": np.repeat(video_ids, per_video),
            "segment": np.tile(np.arange(per_video), len(video_ids)),
            "split": np.repeat(splits, per_video),
        }
    )


# --- video_level ---------------------------------------------------------------------------------------------


def test_video_vector_is_the_mean_of_its_segments():
    segments = segments_table(["b", "a"], ["train", "test"], per_video=3)
    features = np.arange(12, dtype=np.float32).reshape(6, 2)
    videos = video_level(features, segments, chunk_rows=4)  # a chunk boundary inside video "a"
    assert videos.video_ids.tolist() == ["b", "a"]
    np.testing.assert_allclose(videos.X, [[2, 3], [8, 9]])
    assert videos.split.tolist() == ["train", "test"]
    assert videos.X.dtype == np.float32


def test_view_zero_is_read_before_segments_are_averaged():
    segments = segments_table(["a"], ["train"], per_video=2)
    features = np.array([[[0.0, 0.0], [2.0, 4.0]], [[4.0, 4.0], [6.0, 8.0]]])  # [segments, views, D]
    np.testing.assert_allclose(video_level(features, segments).X, [[2.0, 2.0]])


def test_frozen_and_contrastive_rows_see_the_same_crops():
    """R(2+1)D and CL video rows must both read view 0 (what learn/embed.py embeds), not an average of views."""
    segments = segments_table(["a", "b"], ["train", "test"], per_video=2)
    rng = np.random.default_rng(0)
    views = rng.normal(size=(4, 3, 5)).astype(np.float32)  # three different crops per segment
    # Stand-in heads that pass view 0 through: a CL embedding of what the heads saw.
    embeddings = views[:, 0].copy()
    for level in ("video", "segment"):
        frozen = video_representation("r2plus1d", segments, level=level, video_features=views)
        contrastive = video_representation("cl_v", segments, level=level, video_embeddings=embeddings)
        np.testing.assert_allclose(frozen.X, contrastive.X)
        both = video_representation(
            "both", segments, level=level, audio_features=np.zeros((4, 2)), video_features=views
        )
        np.testing.assert_allclose(both.X[:, 2:], contrastive.X)


def test_segment_level_rows_are_segments_labelled_by_their_video():
    segments = segments_table(["b", "a"], ["train", "test"], per_video=3)
    features = np.arange(12, dtype=np.float32).reshape(6, 2)
    features[4] = np.nan
    with pytest.warns(ProbeWarning, match="dropped 1 of 6 segments"):
        rows = video_representation("musicnn", segments, level="segment", audio_features=features)
    assert rows.video_ids.tolist() == ["b", "b", "b", "a", "a"]
    assert rows.split.tolist() == ["train"] * 3 + ["test"] * 2
    np.testing.assert_allclose(rows.X, features[[0, 1, 2, 3, 5]])
    with pytest.raises(ValueError, match="probe.level"):
        video_representation("musicnn", segments, level="clip", audio_features=features)


def test_non_finite_segments_are_dropped_with_a_warning():
    segments = segments_table(["a", "b"], ["train", "val"], per_video=2)
    features = np.array([[1.0], [np.nan], [np.inf], [-np.inf]])
    with pytest.warns(ProbeWarning, match=r"dropped 3 of 4 segments.*1 video\(s\) lost all segments.*'b'"):
        videos = video_level(features, segments)
    assert videos.video_ids.tolist() == ["a"]
    np.testing.assert_allclose(videos.X, [[1.0]])


def test_video_level_refuses_misaligned_features_and_mixed_splits():
    segments = segments_table(["a", "b"], ["train", "val"], per_video=2)
    with pytest.raises(ValueError, match=r"expected \[4, D\]"):
        video_level(np.zeros((3, 2)), segments)
    segments.loc[1, "split"] = "test"
    with pytest.raises(ValueError, match="video 'a' has segments in several splits"):
        video_level(np.zeros((4, 2)), segments)


def test_representations_concatenate_or_average_modalities():
    segments = segments_table(["a"], ["train"], per_video=2)
    audio = np.array([[1.0, 3.0], [3.0, 5.0]])
    video = np.array([[[0.0, 0.0], [2.0, 2.0]], [[4.0, 4.0], [6.0, 6.0]]])  # two crop views
    both = video_representation("both", segments, audio_features=audio, video_features=video)
    np.testing.assert_allclose(both.X, [[2.0, 4.0, 2.0, 2.0]])  # video: view 0 of each segment
    agg = video_representation("cl_agg", segments, audio_embeddings=audio, video_embeddings=video)
    np.testing.assert_allclose(agg.X, [[2.0, 3.0]])
    with pytest.raises(ValueError, match=r"'cl_v' needs \['video_embeddings'\]"):
        video_representation("cl_v", segments, video_features=video)
    with pytest.raises(ValueError, match="must have the same size"):
        video_representation("cl_agg", segments, audio_embeddings=audio, video_embeddings=np.zeros((2, 3)))


# --- labels --------------------------------------------------------------------------------------------------


def test_genre_labels_leave_out_videos_without_genre():
    videos = pd.DataFrame({"video_id": ["a", "b", "c", "d"], "genre": ["rock", None, " ", "pop"]})
    labels = task_labels("genre", np.array(["d", "c", "b", "a"]), videos)
    assert labels.mask.tolist() == [True, False, False, True]
    assert labels.y.tolist() == ["pop", "rock"]
    with pytest.raises(ValueError, match="no 'genre' column"):
        task_labels("genre", np.array(["a"]), videos[["video_id"]])


def test_tagging_labels_follow_the_feature_rows():
    videos = pd.DataFrame({"video_id": ["a", "b", "c"], "msd_id": ["TRA", None, "TRC"]})
    tags = pd.DataFrame({"msd_id": ["TRA", "TRC", "TRC"], "tag": ["rock", "rock", "pop"], "count": 100.0})
    labels = task_labels("tagging", np.array(["c", "b", "a"]), videos, tags, top_k=2)
    assert labels.mask.tolist() == [True, False, True]
    assert labels.label_names == ["rock", "pop"]
    assert labels.y.tolist() == [[1, 1], [1, 0]]


# --- metrics against scikit-learn ----------------------------------------------------------------------------

PROBA = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.3, 0.6],
        [0.4, 0.4, 0.2],
        [0.3, 0.3, 0.4],
        [0.5, 0.1, 0.4],
        [0.2, 0.6, 0.2],
    ]
)


def test_genre_metrics_match_scikit_learn():
    y = np.array([0, 1, 2, 1, 0, 2, 1])
    metrics = genre_metrics(y, PROBA, ["a", "b", "c"])
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, PROBA, multi_class="ovr", average="macro"))
    assert metrics["f1"] == pytest.approx(f1_score(y, PROBA.argmax(axis=1), average="macro"))
    assert metrics["accuracy"] == pytest.approx(np.mean(y == PROBA.argmax(axis=1)))
    assert metrics["excluded"] == {} and metrics["warnings"] == []


def test_genre_class_absent_from_test_is_excluded_and_reported():
    y = np.array([0, 1, 0, 1, 0, 1, 1])  # class "c" never in the test split
    with pytest.warns(ProbeWarning, match="'c' is absent from the test split"):
        metrics = genre_metrics(y, PROBA, ["a", "b", "c"])
    expected_auc = np.mean([roc_auc_score(y == c, PROBA[:, c]) for c in (0, 1)])
    expected_f1 = f1_score(y, PROBA.argmax(axis=1), labels=[0, 1], average="macro", zero_division=0)
    assert metrics["roc_auc"] == pytest.approx(expected_auc)
    assert metrics["f1"] == pytest.approx(expected_f1)
    assert metrics["excluded"] == {"c": "absent from the test split"}
    assert set(metrics["per_label"]) == {"a", "b"}


def test_single_class_test_split_gives_nan_auc_with_reason():
    with pytest.warns(ProbeWarning, match="single class"):
        metrics = genre_metrics(np.zeros(7, dtype=int), PROBA, ["a", "b", "c"])
    assert math.isnan(metrics["roc_auc"])
    assert "single class ('a')" in metrics["nan_reasons"]["roc_auc"]
    assert not math.isnan(metrics["f1"])


Y_TAGS = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1]])
SCORES = np.array(
    [[0.9, 0.2, 0.6], [0.3, 0.7, 0.4], [0.6, 0.4, 0.3], [0.5, 0.1, 0.8], [0.2, 0.3, 0.2], [0.1, 0.9, 0.5]]
)


def test_tagging_metrics_match_scikit_learn():
    thresholds = np.array([0.5, 0.35, 0.45])
    metrics = tagging_metrics(Y_TAGS, SCORES, thresholds, ["x", "y", "z"])
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(Y_TAGS, SCORES, average="macro"))
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(Y_TAGS, SCORES, average="macro"))
    assert metrics["f1"] == pytest.approx(f1_score(Y_TAGS, SCORES >= thresholds, average="macro"))


def test_tag_without_positive_test_video_is_excluded_and_reported():
    y = Y_TAGS.copy()
    y[:, 1] = 0
    with pytest.warns(ProbeWarning, match="tag 'y': no positive video"):
        metrics = tagging_metrics(y, SCORES, np.full(3, 0.5), ["x", "y", "z"])
    kept = [0, 2]
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y[:, kept], SCORES[:, kept], average="macro"))
    assert metrics["excluded"] == {"y": "no positive video in the test split"}


def test_no_usable_tag_gives_nan_with_reason():
    with pytest.warns(ProbeWarning, match="no tag has both"):
        metrics = tagging_metrics(np.ones((4, 2)), np.full((4, 2), 0.5), np.full(2, 0.5), ["x", "y"])
    for metric in ("roc_auc", "f1", "pr_auc"):
        assert math.isnan(metrics[metric]) and metrics["nan_reasons"][metric]


def test_f1_thresholds_maximise_validation_f1():
    rng = np.random.default_rng(1)
    y = (rng.random((40, 2)) < 0.4).astype(int)
    scores = np.clip(y * 0.3 + rng.random((40, 2)) * 0.7, 0, 1)
    thresholds, notes = f1_thresholds(y, scores, ["x", "y"])
    assert notes == []
    for j in range(2):
        best = max(f1_score(y[:, j], scores[:, j] >= t) for t in np.unique(scores[:, j]))
        assert f1_score(y[:, j], scores[:, j] >= thresholds[j]) == pytest.approx(best)


def test_tag_without_positive_validation_video_keeps_half():
    with pytest.warns(ProbeWarning, match="no positive video in the validation split"):
        thresholds, notes = f1_thresholds(np.zeros((5, 1)), np.linspace(0, 1, 5)[:, None], ["x"])
    assert thresholds.tolist() == [0.5] and len(notes) == 1


# --- the probe -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["genre", "tagging"])
def test_probe_learns_labels_that_are_a_function_of_the_features(task):
    X, genre, tags, split = synthetic_videos(seed=0)
    y = genre if task == "genre" else tags
    result = summarise_repeats(task, run_probe_seeds(X, y, split, task, SMALL, repeat_seeds(SMALL, 0), "cpu"))
    assert result["mean"]["roc_auc"] > 0.9
    assert result["mean"]["f1"] > 0.7
    assert result["n_train"] + result["n_val"] + result["n_test"] == len(X)
    assert result["n_classes"] == (4 if task == "genre" else 3)


@pytest.mark.parametrize("task", ["genre", "tagging"])
def test_probe_is_at_chance_on_shuffled_labels(task):
    X, genre, tags, split = synthetic_videos(seed=0)
    y = np.random.default_rng(5).permutation(genre if task == "genre" else tags)
    cfg = {**SMALL, "repeats": 3}
    result = summarise_repeats(task, run_probe_seeds(X, y, split, task, cfg, repeat_seeds(cfg, 0), "cpu"))
    assert 0.4 < result["mean"]["roc_auc"] < 0.6
    assert result["seeds"] == [0, 1, 2] and len(result["runs"]) == 3


def test_same_seed_same_numbers_and_global_rng_untouched():
    X, genre, _, split = synthetic_videos(seed=2, n=200)
    cfg = {**SMALL, "max_epochs": 20}
    state = torch.random.get_rng_state()
    first = run_probe(X, genre, split, "genre", cfg, seed=7, device="cpu")
    assert torch.equal(state, torch.random.get_rng_state())
    assert run_probe(X, genre, split, "genre", cfg, seed=7, device="cpu") == first
    assert run_probe(X, genre, split, "genre", cfg, seed=8, device="cpu")["roc_auc"] != first["roc_auc"]


def test_a_single_class_gives_nan_with_reason_instead_of_a_crash():
    X, _, _, split = synthetic_videos(seed=0, n=50)
    with pytest.warns(ProbeWarning, match="fewer than 2 genre classes"):
        result = run_probe(X, np.full(50, "rock"), split, "genre", SMALL, seed=0, device="cpu")
    assert math.isnan(result["roc_auc"]) and math.isnan(result["f1"])
    assert "fewer than 2 genre classes" in result["nan_reasons"]["roc_auc"]
    assert result["n_classes"] == 1 and result["n_test"] == int((split == "test").sum())


def test_empty_test_split_gives_nan_with_reason():
    X, genre, _, _ = synthetic_videos(seed=0, n=40)
    split = np.array(["train", "val"] * 20)
    with pytest.warns(ProbeWarning, match="test split holds no labelled video"):
        result = run_probe(X, genre, split, "genre", SMALL, seed=0, device="cpu")
    assert math.isnan(result["roc_auc"]) and result["n_test"] == 0


def test_rare_classes_and_tags_warn_but_run():
    X, genre, tags, split = synthetic_videos(seed=0, n=120)
    genre = genre.copy()
    genre[np.flatnonzero(split == "test")[0]] = "polka"  # one video, only in test
    cfg = {**SMALL, "max_epochs": 5}
    with pytest.warns(ProbeWarning) as caught:
        result = run_probe(X, genre, split, "genre", cfg, seed=0, device="cpu")
    assert any("'polka' has no training video; left out" in str(w.message) for w in caught)
    assert result["n_classes"] == 5 and not math.isnan(result["roc_auc"])
    assert result["excluded"]["polka"] == "no training video" and "polka" not in result["per_label"]
    tags = tags.copy()
    tags[split == "train", 2] = 0
    with pytest.warns(ProbeWarning, match="tag 'tag2' has no positive training video"):
        tagged = run_probe(X, tags, split, "tagging", cfg, seed=0, device="cpu")
    assert tagged["excluded"]["tag2"] == "no positive training video"
    assert set(tagged["per_label"]) == {"tag0", "tag1"}
    trained_auc = [tagged["per_label"][tag]["roc_auc"] for tag in ("tag0", "tag1")]
    assert tagged["roc_auc"] == pytest.approx(np.mean(trained_auc))


def test_a_class_without_training_videos_is_left_out_of_the_macro_averages():
    # issue 22's toy case: classes a and b ranked perfectly, c never trained on (its column constant)
    targets = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]] + [[0.45, 0.45, 0.1]] * 2)
    assert genre_metrics(targets, proba, list("abc"))["roc_auc"] == pytest.approx(5 / 6)  # c's AUC is 0.5
    metrics = genre_metrics(targets, proba, list("abc"), {"c": "no training video"})
    assert metrics["roc_auc"] == 1.0 and metrics["excluded"] == {"c": "no training video"}


def test_tags_whose_f1_threshold_fell_back_to_one_half_are_named():
    X, _, tags, split = synthetic_videos(seed=0, n=200)
    tags = tags.copy()
    tags[split == "val", 1] = 0  # tag1: no positive validation video
    with pytest.warns(ProbeWarning, match="tag 'tag1' has no positive video in the validation split"):
        result = run_probe(X, tags, split, "tagging", {**SMALL, "max_epochs": 5}, seed=0, device="cpu")
    assert result["threshold_fallbacks"] == ["tag1"] and result["predictions"]["thresholds"][1] == 0.5
    fixed = run_probe(X, tags, split, "tagging", {**SMALL, "max_epochs": 5, "f1_threshold": 0.5}, 0, "cpu")
    assert fixed["threshold_fallbacks"] == []  # 0.5 chosen, not fallen back to


def test_empty_validation_split_trains_without_early_stopping():
    X, genre, _, _ = synthetic_videos(seed=0, n=60)
    split = np.array(["train", "train", "test"] * 20)
    with pytest.warns(ProbeWarning, match="validation split is empty"):
        result = run_probe(X, genre, split, "genre", {**SMALL, "max_epochs": 4}, seed=0, device="cpu")
    assert result["epochs"] == 4 and math.isnan(result["best_val_loss"])


def test_bad_inputs_are_refused_with_a_clear_message():
    X, genre, tags, split = synthetic_videos(seed=0, n=20)
    with pytest.raises(ValueError, match="unknown probe task 'mood'"):
        run_probe(X, genre, split, "mood", SMALL, seed=0, device="cpu")
    with pytest.raises(ValueError, match="must be row-aligned"):
        run_probe(X[:10], genre, split, "genre", SMALL, seed=0, device="cpu")
    with pytest.raises(ValueError, match="0/1 matrix"):
        run_probe(X, tags * 2, split, "tagging", SMALL, seed=0, device="cpu")
    with pytest.raises(ValueError, match="probe.patience: 0 is less than the minimum of 1"):
        run_probe(X, genre, split, "genre", {**SMALL, "patience": 0}, seed=0, device="cpu")


def test_probe_task_runs_from_segments_to_metrics():
    X, genre, _, split = synthetic_videos(seed=3, n=200)
    ids = [f"v{i}" for i in range(len(X))]
    segments = segments_table(ids, split.tolist(), per_video=2)
    features = np.repeat(X, 2, axis=0) + np.tile([[0.1], [-0.1]], (len(X), 1)).astype(np.float32)
    videos = pd.DataFrame({"video_id": ids, "genre": genre})
    videos.loc[0, "genre"] = None
    representation = video_representation("musicnn", segments, audio_features=features)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing degenerate here
        result = probe_task("genre", representation, videos, {**SMALL, "repeats": 1}, seed=0, device="cpu")
    assert result["n_videos"] == 200 and result["n_labelled"] == 199
    assert result["mean"]["roc_auc"] > 0.85 and result["std"]["roc_auc"] == 0.0


def test_default_probe_settings_learn_on_cpu():
    X, genre, _, split = synthetic_videos(seed=0, n=1000, dim=64)
    result = run_probe(X, genre, split, "genre", {"max_epochs": 60}, seed=0, device="cpu")
    assert result["roc_auc"] > 0.9


# --- the test split never shapes the probe ---------------------------------------------------------------


def _training_and_choices(result: dict) -> tuple:
    """What the train and validation splits decide: the training curve and the F1 thresholds."""
    return (
        result["epochs"],
        result["best_epoch"],
        result["best_val_loss"],
        result["predictions"]["thresholds"],
    )


def test_test_rows_do_not_move_the_scaler_or_the_training():
    """A scaler fitted on train+test would standardise the train rows differently once test rows change."""
    X, _, tags, split = synthetic_videos(seed=4, n=200)
    cfg = {**SMALL, "max_epochs": 15}
    reference = run_probe(X, tags, split, "tagging", cfg, seed=0, device="cpu")
    shifted = X.copy()
    shifted[split == "test"] = shifted[split == "test"] * 5 + 3  # only the test rows change
    moved = run_probe(shifted, tags, split, "tagging", cfg, seed=0, device="cpu")
    assert _training_and_choices(moved) == _training_and_choices(reference)
    assert moved["predictions"]["scores"] != reference["predictions"]["scores"]  # the test rows did change


def test_test_labels_do_not_choose_the_f1_thresholds():
    X, _, tags, split = synthetic_videos(seed=5, n=200)
    cfg = {**SMALL, "max_epochs": 15}
    reference = run_probe(X, tags, split, "tagging", cfg, seed=0, device="cpu")
    flipped = tags.copy()
    flipped[split == "test"] = 1 - flipped[split == "test"]  # only the test labels change
    moved = run_probe(X, flipped, split, "tagging", cfg, seed=0, device="cpu")
    assert _training_and_choices(moved) == _training_and_choices(reference)
    assert moved["f1"] != reference["f1"]  # the test labels did change
    fixed = run_probe(X, tags, split, "tagging", {**cfg, "f1_threshold": 0.5}, seed=0, device="cpu")
    assert fixed["predictions"]["thresholds"] == [0.5] * tags.shape[1]


def test_the_tag_vocabulary_is_chosen_on_training_videos_only():
    n = 60
    ids = [f"v{i}" for i in range(n)]
    split = ["train"] * 30 + ["val"] * 10 + ["test"] * 20
    videos = pd.DataFrame({"video_id": ids, "msd_id": [f"TR{i}" for i in range(n)]})
    # pop is on every validation and test video (35 videos in all) but only 5 training ones;
    # among the training videos rock (30) and jazz (10) lead
    tags = pd.DataFrame(
        [(f"TR{i}", "rock", 100.0) for i in range(30)]
        + [(f"TR{i}", "jazz", 100.0) for i in range(10)]
        + [(f"TR{i}", "pop", 100.0) for i in range(25, n)],
        columns=["msd_id", "tag", "count"],
    )
    rng = np.random.default_rng(1)
    representation = video_representation(
        "musicnn", segments_table(ids, split, 1), audio_features=rng.normal(size=(n, 4)).astype(np.float32)
    )
    cfg = {**SMALL, "repeats": 1, "max_epochs": 2, "top_tags": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbeWarning)
        result = probe_task("tagging", representation, videos, cfg, 0, "cpu", tags)
    assert result["labels"] == ["rock", "jazz"]


def test_min_tag_count_reaches_the_tag_matrix():
    """probe.min_tag_count goes from the probe settings through probe_task and task_labels to tag_matrix."""
    n = 60
    ids = [f"v{i}" for i in range(n)]
    rng = np.random.default_rng(0)
    videos = pd.DataFrame({"video_id": ids, "msd_id": [f"TR{i}" for i in range(n)]})
    # "rock" is on every track but weakly (count 10) on most; "pop" and "jazz" strongly on fewer tracks.
    tags = pd.DataFrame(
        [(f"TR{i}", "rock", 90.0 if i < 10 else 10.0) for i in range(n)]
        + [(f"TR{i}", "pop", 80.0) for i in range(0, n, 2)]
        + [(f"TR{i}", "jazz", 70.0) for i in range(0, n, 3)],
        columns=["msd_id", "tag", "count"],
    )
    segments = segments_table(ids, rng.choice(["train", "val", "test"], n, p=[0.6, 0.2, 0.2]).tolist(), 1)
    representation = video_representation(
        "musicnn", segments, audio_features=rng.normal(size=(n, 4)).astype(np.float32)
    )
    cfg = {**SMALL, "repeats": 1, "max_epochs": 2, "top_tags": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProbeWarning)
        loose = probe_task("tagging", representation, videos, {**cfg, "min_tag_count": 0}, 0, "cpu", tags)
        strict = probe_task("tagging", representation, videos, {**cfg, "min_tag_count": 50}, 0, "cpu", tags)
    assert loose["labels"] == ["rock", "pop"]  # rock counts on all 60 tracks
    assert strict["labels"] == ["pop", "jazz"]  # at >= 50, rock is on 10 tracks only
    assert strict["n_labelled"] == len(tag_matrix(videos, tags, top_k=2, min_count=50).video_ids)


def test_a_segment_level_probe_is_scored_per_test_video():
    X, genre, _, split = synthetic_videos(seed=3, n=150)
    ids = [f"v{i}" for i in range(len(X))]
    segments = segments_table(ids, split.tolist(), per_video=3)
    features = np.repeat(X, 3, axis=0) + np.random.default_rng(0).normal(scale=0.1, size=(450, X.shape[1]))
    videos = pd.DataFrame({"video_id": ids, "genre": genre})
    rows = video_representation(
        "musicnn", segments, level="segment", audio_features=features.astype(np.float32)
    )
    result = probe_task(
        "genre", rows, videos, {**SMALL, "repeats": 1, "level": "segment"}, seed=0, device="cpu"
    )
    n_test = int((split == "test").sum())
    assert result["n_test"] == 3 * n_test and result["n_test_videos"] == n_test
    assert result["predictions"]["video_ids"] == [i for i, s in zip(ids, split, strict=True) if s == "test"]
    assert len(result["predictions"]["scores"][0]) == n_test and result["level"] == "segment"
    assert result["mean"]["roc_auc"] > 0.85


# --- seeds trained together ------------------------------------------------------------------------------


def test_each_seed_trained_with_others_equals_it_trained_alone():
    """Seeds share only the data: a seed's result does not depend on which seeds train beside it, even when
    the others stop early at other epochs (patience 2 makes them stop apart)."""
    X, genre, _, split = synthetic_videos(seed=6, n=300)
    cfg = {**SMALL, "patience": 2, "max_epochs": 40}
    together = run_probe_seeds(X, genre, split, "genre", cfg, [3, 4, 5], device="cpu")
    assert len({run["epochs"] for run in together}) > 1  # they did stop at different epochs
    for run in together:
        alone = run_probe(X, genre, split, "genre", cfg, seed=run["seed"], device="cpu")
        assert (run["epochs"], run["best_epoch"]) == (alone["epochs"], alone["best_epoch"])
        np.testing.assert_allclose(run["predictions"]["scores"], alone["predictions"]["scores"], atol=1e-6)
        assert run["best_val_loss"] == pytest.approx(alone["best_val_loss"], abs=1e-6)


@pytest.mark.parametrize("task", ["genre", "tagging"])
def test_batched_probe_does_the_math_of_one_torch_mlp_per_seed(task):
    """Reference: the study's probe as nn.Sequential, torch.manual_seed(seed) before it (init, then dropout),
    Adam, batches from a generator seeded with seed, no early stopping; the same seed must reach the same
    weights up to float rounding (batched matmuls and fused Adam add order differently)."""
    X, genre, tags, split = synthetic_videos(seed=7, n=240)
    y = genre if task == "genre" else tags
    cfg = {**SMALL, "max_epochs": 3}
    batched = run_probe(X, y, split, task, {**cfg, "patience": 100}, seed=11, device="cpu")

    train = split == "train"
    mean, std = X[train].mean(axis=0, dtype=np.float64), X[train].std(axis=0, dtype=np.float64)
    x = torch.as_tensor((X - mean.astype(np.float32)) / std.astype(np.float32))
    if task == "genre":
        targets, out = torch.as_tensor(np.unique(genre, return_inverse=True)[1]), 4
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        targets, out = torch.as_tensor(tags, dtype=torch.float32), 3
        loss_fn = torch.nn.BCEWithLogitsLoss()
    x_train, t_train = x[train], targets[train]
    state = torch.random.get_rng_state()
    torch.manual_seed(11)
    layers, width = [], X.shape[1]
    for size in SMALL["hidden"]:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU(), torch.nn.Dropout(0.3)]
        width = size
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, out))
    optimizer = torch.optim.Adam(model.parameters(), lr=SMALL["lr"])
    order = torch.Generator().manual_seed(11)
    for _ in range(cfg["max_epochs"]):
        for batch in torch.randperm(len(x_train), generator=order).split(SMALL["batch_size"]):
            loss = loss_fn(model(x_train[batch]), t_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    torch.random.set_rng_state(state)
    model.eval()
    with torch.no_grad():
        logits = model(x[split == "test"])
    reference = logits.softmax(dim=1) if task == "genre" else logits.sigmoid()
    # The batched run keeps its best validation epoch: these data's validation loss falls for 3 epochs.
    assert (batched["epochs"], batched["best_epoch"]) == (3, 3)
    np.testing.assert_allclose(batched["predictions"]["scores"], reference.double().numpy(), atol=2e-5)
