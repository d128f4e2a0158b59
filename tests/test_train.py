"""The training loop: batches, learning, determinism, early stopping, memory, embeddings, checkpoints."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import torch

from mvcl.configuration import resolve_configuration
from mvcl.learn.autoencoder import pretrain_autoencoders, train_autoencoder
from mvcl.learn.batches import Features, TrainingRun
from mvcl.learn.checkpoint import load_heads, save_heads
from mvcl.learn.embed import embed
from mvcl.learn.sampler import segment_batches
from mvcl.learn.stopping import EarlyStopping
from mvcl.learn.train import train_heads
from mvcl.plan import replicate_seed
from mvcl.retrieval import median_rank

CPU = torch.device("cpu")


def corpus(videos=60, per_video=6, audio_dim=24, video_dim=12, views=2, coupling=1.0, seed=0):
    """Segment features that share a latent per segment (strength `coupling`), and their segments table."""
    rng = np.random.default_rng(seed)
    n = videos * per_video
    latent = rng.normal(size=(n, 8))
    audio = coupling * latent @ rng.normal(size=(8, audio_dim)) + 0.3 * rng.normal(size=(n, audio_dim))
    video_map = rng.normal(size=(8, video_dim))
    video = np.stack(
        [coupling * latent @ video_map + 0.3 * rng.normal(size=(n, video_dim)) for _ in range(views)], axis=1
    )
    split = np.where(
        np.arange(videos) < 0.7 * videos, "train", np.where(np.arange(videos) < 0.85 * videos, "val", "test")
    )
    segments = pd.DataFrame(
        {
            "video_id": np.repeat([f"v{i:03d}" for i in range(videos)], per_video),
            "segment": np.tile(np.arange(per_video), videos),
            "split": np.repeat(split, per_video),
        }
    )
    return audio.astype(np.float32), video.astype(np.float32), segments


def settings(**sections):
    return resolve_configuration(
        {
            "model": {"hidden_dim": 32, "embedding_dim": 16, "output_activation": "none", "dropout": 0.1},
            "loss": {"temperature": 0.2, "exclude_positive": False},
            "training": {
                "batch_size": 64,
                "lr": 0.003,
                "max_epochs": 12,
                "patience": 3,
                "segments": "all",
                "min_epochs": 0,
            },
            "configurations": {"x": sections},
        },
        "x",
    )


def quiet(message: str) -> None:
    pass


@pytest.mark.parametrize("all_segments", [True, False])
def test_batches_never_hold_two_segments_of_one_video(all_segments):
    rng = np.random.default_rng(0)
    video_codes = np.repeat(np.arange(50), rng.integers(1, 8, size=50))  # uneven segment counts
    rows = np.arange(len(video_codes)) + 1000
    batches = segment_batches(rows, video_codes, 16, all_segments, rng)
    code_of = dict(zip(rows, video_codes, strict=True))
    for batch in batches:
        codes = [code_of[r] for r in batch]
        assert len(codes) == len(set(codes)) and 2 <= len(batch) <= 16
        assert (np.diff(batch) > 0).all()  # sorted rows: memory-mapped reads go forward
    used = np.concatenate(batches)
    if all_segments:  # every row once (bar a lone last-layer row)
        assert len(used) == len(set(used)) and len(used) >= len(rows) - 1
    else:  # one row of every video
        assert sorted(code_of[r] for r in used) == list(range(50))


def test_a_split_smaller_than_the_batch_is_one_batch_per_segment_rank():
    video_codes = np.repeat(np.arange(10), 6)
    batches = segment_batches(np.arange(60), video_codes, 1000, True, np.random.default_rng(1))
    assert [len(b) for b in batches] == [10] * 6


def test_training_learns_coupled_features_and_reports_bounds():
    audio, video, segments = corpus()
    result = train_heads(TrainingRun(audio, video, segments, settings(), seed=0, device=CPU, log=quiet))
    history = result.history
    assert list(history.columns[:5]) == ["epoch", "train_loss", "val_loss", "lr", "seconds"]
    assert history["val_loss"].min() < 0.6 * history["val_chance"].iloc[0]
    assert (history["val_floor"] < history["val_loss"]).all()
    test = (segments["split"] == "test").to_numpy()
    audio_emb, video_emb = embed(result.model, audio[test], video[test], CPU)
    metrics = median_rank(audio_emb, video_emb, pool_size=1000, seed=0)
    assert metrics["median_rank_a2v"] < 0.2 * metrics["chance_median_rank"]


def test_uncoupled_features_stay_at_chance():
    audio, video, segments = corpus(coupling=0.0)
    result = train_heads(
        TrainingRun(
            audio, video, segments, settings(training={"max_epochs": 4}), seed=0, device=CPU, log=quiet
        )
    )
    assert result.history["val_loss"].min() > 0.9 * result.history["val_chance"].iloc[0]


def test_same_seed_gives_bit_identical_weights_and_leaves_global_rng_alone():
    audio, video, segments = corpus(videos=30)
    cfg = settings(training={"max_epochs": 3, "segments": "one"})
    before = torch.random.get_rng_state()
    first = train_heads(
        TrainingRun(audio, video, segments, cfg, seed=7, device=CPU, log=quiet)
    ).model.state_dict()
    assert torch.equal(before, torch.random.get_rng_state())
    second = train_heads(
        TrainingRun(audio, video, segments, cfg, seed=7, device=CPU, log=quiet)
    ).model.state_dict()
    other = train_heads(
        TrainingRun(audio, video, segments, cfg, seed=8, device=CPU, log=quiet)
    ).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_early_stopping_restores_the_best_epochs_weights():
    audio, video, segments = corpus(videos=30)
    cfg = settings(training={"lr": 0.05, "max_epochs": 40, "patience": 2})  # overfits quickly
    stopped = train_heads(TrainingRun(audio, video, segments, cfg, seed=1, device=CPU, log=quiet))
    best = stopped.best_epoch
    assert len(stopped.history) == best + 3 < 40
    assert stopped.history["val_loss"].idxmin() == best
    cfg["training"]["max_epochs"] = best + 1  # the same run, ending at the best epoch
    ended = train_heads(TrainingRun(audio, video, segments, cfg, seed=1, device=CPU, log=quiet))
    state, want = stopped.model.state_dict(), ended.model.state_dict()
    assert all(torch.equal(state[k], want[k]) for k in state)


def test_a_run_on_a_plateau_at_chance_is_not_stopped_before_min_epochs():
    plateau = [5.0, 5.0, 5.01, 5.0, 5.02, 5.0, 4.5, 4.0, 3.5, 3.0]  # chance for 6 epochs, then learning
    model = torch.nn.Linear(2, 2)
    study, guarded = EarlyStopping(patience=3), EarlyStopping(patience=3, min_epochs=10)
    assert [study.step(e, loss, model) for e, loss in enumerate(plateau)].index(True) == 3
    assert not any(guarded.step(e, loss, model) for e, loss in enumerate(plateau))
    assert guarded.best_epoch == 9
    audio, video, segments = corpus(videos=30, coupling=0.0)  # nothing to learn: a plateau at chance
    cfg = settings(training={"max_epochs": 12, "patience": 1, "min_epochs": 8})
    result = train_heads(TrainingRun(audio, video, segments, cfg, seed=0, device=CPU, log=quiet))
    assert len(result.history) >= 8


def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path):
    audio, video, segments = corpus(videos=30)
    cfg = settings(training={"max_epochs": 8, "segments": "one", "patience": 8}, model={"dropout": 0.3})
    whole = train_heads(TrainingRun(audio, video, segments, cfg, seed=3, device=CPU, log=quiet))

    def killed_at_epoch_5(message: str) -> None:
        if message.startswith("epoch 5:"):
            raise KeyboardInterrupt("killed")

    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        train_heads(
            TrainingRun(audio, video, segments, cfg, seed=3, device=CPU, log=killed_at_epoch_5),
            state_path=state,
            state_every_s=0,
        )
    messages = []
    resumed = train_heads(
        TrainingRun(audio, video, segments, cfg, seed=3, device=CPU, log=messages.append), state_path=state
    )
    assert any("resumed" in message and "after epoch 4" in message for message in messages)
    want, got = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert resumed.best_epoch == whole.best_epoch
    pd.testing.assert_frame_equal(
        whole.history.drop(columns="seconds"), resumed.history.drop(columns="seconds")
    )


def test_validation_split_below_thirty_videos_is_warned_about():
    audio, video, segments = corpus(videos=30)
    messages = []
    train_heads(
        TrainingRun(
            audio,
            video,
            segments,
            settings(training={"max_epochs": 1}),
            seed=0,
            device=CPU,
            log=messages.append,
        )
    )
    assert any("only 5 validation videos" in message for message in messages)


def test_replicate_zero_keeps_the_master_seed_and_others_differ():
    assert replicate_seed(11, 0) == 11
    seeds = {replicate_seed(11, r) for r in range(1, 6)}
    assert len(seeds) == 5 and 11 not in seeds
    assert replicate_seed(11, 2) == replicate_seed(11, 2) != replicate_seed(12, 2)


def test_non_finite_rows_are_dropped_and_counted():
    audio, video, segments = corpus(videos=30)
    audio[3, 0] = np.nan
    video[10, 1, 2] = np.inf
    messages = []
    result = train_heads(
        TrainingRun(audio, video, segments, settings(training={"max_epochs": 1}), 0, CPU, messages.append)
    )
    assert result.dropped_rows == 2 and "dropped 2 of 180" in messages[0]
    audio_emb, video_emb = embed(result.model, audio, video, CPU)
    assert np.isnan(audio_emb[3]).all() and np.isfinite(np.delete(audio_emb, [3, 10], axis=0)).all()


def test_cosine_schedule_anneals_to_min_lr():
    audio, video, segments = corpus(videos=20)
    cfg = settings(
        training={"schedule": "cosine", "lr": 0.01, "min_lr": 0.002, "max_epochs": 4, "patience": 10}
    )
    lr = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet)).history["lr"].to_numpy()
    np.testing.assert_allclose(lr, 0.002 + 0.008 * (1 + np.cos(np.pi * np.arange(4) / 4)) / 2)


def test_training_reads_memory_mapped_features_one_batch_at_a_time(tmp_path):
    n, audio_dim, views, video_dim = 200_000, 96, 2, 64  # 154 MB of (sparse, zero) features on disk
    np.lib.format.open_memmap(tmp_path / "audio.npy", "w+", np.float32, (n, audio_dim)).flush()
    np.lib.format.open_memmap(tmp_path / "video.npy", "w+", np.float32, (n, views, video_dim)).flush()
    videos = np.arange(n) // 6
    segments = pd.DataFrame(
        {"video_id": videos, "segment": np.arange(n) % 6, "split": np.where(videos % 10 == 0, "val", "train")}
    )
    audio = np.load(tmp_path / "audio.npy", mmap_mode="r")
    video = np.load(tmp_path / "video.npy", mmap_mode="r")
    cfg = settings(training={"max_epochs": 1, "segments": "one", "batch_size": 1000})
    train_heads(
        TrainingRun(*corpus(videos=20), cfg, seed=0, device=CPU, log=quiet)
    )  # torch's lazy imports happen here
    tracemalloc.start()
    train_heads(TrainingRun(audio, video, segments, cfg, seed=0, device=CPU, log=quiet))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40e6, f"peak {peak / 1e6:.0f} MB: features were loaded whole (154 MB)"


def test_embed_uses_view_zero_and_does_not_depend_on_the_chunk_size():
    audio, video, segments = corpus(videos=20, views=3)
    result = train_heads(
        TrainingRun(audio, video, segments, settings(training={"max_epochs": 1}), 0, CPU, quiet)
    )
    scrambled = video.copy()
    scrambled[:, 1:] = 100.0  # other views must not matter outside training
    big = embed(result.model, audio, scrambled, CPU, batch=4096)
    small = embed(result.model, audio, video[:, 0], CPU, batch=7)
    for got, want in zip(big, small, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_saved_heads_load_with_their_configuration(tmp_path):
    audio, video, segments = corpus(videos=20)
    cfg = settings(loss={"learnable_temperature": True}, training={"max_epochs": 2})
    result = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet))
    save_heads(tmp_path / "heads.pt", result.model, cfg, {"best_epoch": result.best_epoch})
    model, checkpoint = load_heads(tmp_path / "heads.pt")
    assert checkpoint["config"] == cfg and checkpoint["extra"] == {"best_epoch": result.best_epoch}
    for got, want in zip(
        embed(model, audio, video, CPU), embed(result.model, audio, video, CPU), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def test_autoencoder_pretraining_lowers_reconstruction_error_and_initialises_heads():
    audio, video, segments = corpus(videos=30)
    cfg = settings(
        model={"init": "autoencoder"}, training={"autoencoder_epochs": 15, "lr": 0.01, "max_epochs": 1}
    )
    errors = []
    head = {"in_dim": 24, "out_dim": 16, "hidden_dim": 32, "layers": 2, "dropout": 0.0}
    head |= {"batch_norm": True, "output_activation": "none"}
    train_autoencoder(audio, head, 15, seed=0, device=CPU, batch_size=64, log=errors.append)
    first, last = (float(line.rsplit(" ", 1)[1]) for line in (errors[0], errors[-1]))
    assert last < 0.5 * first
    states = pretrain_autoencoders(TrainingRun(audio, video, segments, cfg, seed=0, device=CPU, log=quiet))
    assert set(states) == {"audio", "video"}
    cfg["training"]["lr"] = 1e-12  # one epoch that leaves the loaded weights as they were
    model = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet), init_states=states).model
    for modality, state in states.items():
        for name, parameter in model.heads[modality].named_parameters():
            torch.testing.assert_close(parameter.detach(), state[name], rtol=0, atol=1e-6)
    messages = []
    train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, messages.append))  # pre-trains by itself
    assert any(m.startswith("autoencoder 12→16") for m in messages)


def test_single_head_trains_into_the_audio_feature_space():
    audio, video, segments = corpus(videos=20)
    cfg = settings(model={"single_head": True}, training={"max_epochs": 1})
    result = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet))
    audio_emb, video_emb = embed(result.model, audio, video, CPU)
    assert audio_emb.shape == video_emb.shape == (120, 24)


def test_temporal_model_learns_and_embeds_every_segment():
    audio, video, segments = corpus(videos=40)
    cfg = settings(
        model={"temporal": {"enabled": True, "depth": 1, "width": 32, "heads": 2}},
        training={"batch_size": 60, "max_epochs": 8},
    )
    result = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet))
    assert result.history["val_loss"].min() < 0.7 * result.history["val_chance"].iloc[0]
    audio_emb, video_emb = embed(result.model, audio, video, CPU, segments=segments)
    assert audio_emb.shape == (240, 16) and np.isfinite(audio_emb).all() and np.isfinite(video_emb).all()


def record_rows(monkeypatch) -> list[np.ndarray]:
    """Every batch of feature rows that reaches the model during train_heads (train and validation)."""
    seen, flat = [], Features.flat

    def spy(self, rows, views):
        seen.append(np.array(rows))
        return flat(self, rows, views)

    monkeypatch.setattr(Features, "flat", spy)
    return seen


def shuffled_corpus(videos=30, seed=3):
    """`corpus` with each video's rows in a random order, so a video's first row is not its segment 0."""
    audio, video, segments = corpus(videos=videos)
    order = np.random.default_rng(seed).permutation(len(segments))
    order = order[np.argsort(segments["video_id"].to_numpy()[order], kind="stable")]
    return audio[order], video[order], segments.iloc[order].reset_index(drop=True)


def test_first_segments_trains_and_validates_on_segment_zero_only(monkeypatch):
    audio, video, segments = shuffled_corpus()
    assert (segments.groupby("video_id")["segment"].first() != 0).any()
    audio[np.flatnonzero((segments["video_id"] == "v004") & (segments["segment"] == 0))] = np.nan
    seen = record_rows(monkeypatch)
    cfg = settings(training={"segments": "first", "max_epochs": 2})
    train_heads(TrainingRun(audio, video, segments, cfg, seed=0, device=CPU, log=quiet))
    used = np.unique(np.concatenate(seen))
    usable = segments[segments["split"].isin(["train", "val"])].drop(
        index=segments.index[(segments["video_id"] == "v004") & (segments["segment"] == 0)]
    )
    want = usable.sort_values("segment").groupby("video_id").head(1).index.to_numpy()
    np.testing.assert_array_equal(used, np.sort(want))  # one row per train and val video, no other
    assert set(segments.loc[used, "segment"]) == {0, 1}  # v004's segment 0 was dropped: its 1 stands in
    assert segments.loc[used].query("video_id == 'v004'")["segment"].tolist() == [1]
    seen.clear()  # the default draws other segments: the switch is what restricts the rows
    train_heads(
        TrainingRun(
            audio, video, segments, settings(training={"segments": "one", "max_epochs": 2}), 0, CPU, quiet
        )
    )
    assert set(segments.loc[np.concatenate(seen), "segment"]) - {0, 1}


def test_no_batch_reaching_the_model_holds_two_segments_of_one_video(monkeypatch):
    audio, video, segments = shuffled_corpus(videos=20)
    seen = record_rows(monkeypatch)
    for mode in ("all", "one", "first"):
        cfg = settings(training={"segments": mode, "max_epochs": 2, "batch_size": 8})
        train_heads(TrainingRun(audio, video, segments, cfg, seed=0, device=CPU, log=quiet))
    assert len(seen) > 20
    for rows in seen:
        videos = segments["video_id"].to_numpy()[rows]
        assert len(set(videos)) == len(videos), f"a batch holds two segments of one video: {sorted(videos)}"


def test_constant_schedule_keeps_the_learning_rate():
    audio, video, segments = corpus(videos=20)
    cfg = settings(training={"schedule": "constant", "lr": 0.01, "max_epochs": 4, "patience": 10})
    lr = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet)).history["lr"].to_numpy()
    np.testing.assert_array_equal(lr, [0.01] * 4)
    cfg["training"]["schedule"] = "exponential"  # the default decays: 0.01, 0.0095, ...
    lr = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet)).history["lr"].to_numpy()
    np.testing.assert_allclose(lr, 0.01 * 0.95 ** np.arange(4))


def batch_norms(model: torch.nn.Module) -> list[torch.nn.BatchNorm1d]:
    return [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]


@pytest.mark.parametrize("init", ["random", "autoencoder"])
def test_batch_norm_without_affine_keeps_scale_one_and_shift_zero(init):
    audio, video, segments = corpus(videos=20)
    frozen = settings(
        model={"batch_norm_affine": False, "init": init}, training={"max_epochs": 3, "autoencoder_epochs": 2}
    )
    model = train_heads(TrainingRun(audio, video, segments, frozen, 0, CPU, quiet)).model
    norms = batch_norms(model)
    assert len(norms) == 2 and all(m.running_mean.abs().sum() > 0 for m in norms)  # they still normalise
    for m in norms:  # scale 1 and shift 0, as their code's untrained BatchNorm parameters
        assert m.weight is None or (torch.equal(m.weight, torch.ones_like(m.weight)) and not m.bias.any())
    trained = train_heads(
        TrainingRun(audio, video, segments, settings(training={"max_epochs": 3}), 0, CPU, quiet)
    ).model
    assert all(not torch.equal(m.weight, torch.ones_like(m.weight)) for m in batch_norms(trained))


def test_a_fixed_temperature_below_the_learnable_clamp_is_kept():
    audio, video, segments = corpus(videos=20)
    cfg = settings(loss={"temperature": 0.005}, training={"max_epochs": 2})
    result = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet))
    np.testing.assert_allclose(result.history["temperature"], 0.005, rtol=1e-6)
    assert result.model.temperature().item() == pytest.approx(0.005)
    cfg = settings(loss={"temperature": 0.005, "learnable_temperature": True}, training={"max_epochs": 2})
    learned = train_heads(TrainingRun(audio, video, segments, cfg, 0, CPU, quiet)).history["temperature"]
    assert (learned >= 0.01 - 1e-7).all()  # a learned τ is clamped as CLIP's
