"""The study's own settings (configs/study.yaml: 768x432 frames, 30-frame clips, 4 training crop views, six 5 s
segments, no random weights) end to end on real media, with `video_encoder.weights: auto` downloading a
checkpoint from a local HTTP server (as tests/test_video_weights_download.py does, but through the workflow).

The collection: six accepted files built as tests/test_realmedia.py builds its own (Debian footage and music
from tests/realmedia/fetch.sh's cache): sintel's trailer as it is (H.264 + AAC in MP4) and five muxes in
Matroska, MPEG-PS, AVI, MOV and MP4, long enough for the study's 6 x 5 s segments. Six, not three: contrastive
training needs batches of two or more videos in both train and validation (a batch never holds two segments
of one video), so three videos (one per split) cannot train at all."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torchvision.models.video import r2plus1d_18

from mvcl.data.ingest import assign_splits
from tests.helpers import REPO, deep_update, run_snakemake, write_config
from tests.test_realmedia import AS_IS, MUXED, mux_copy, real_media  # noqa: F401 (real_media: a fixture)
from tests.test_video_weights_download import Checkpoints

pytestmark = pytest.mark.slow

SECONDS = 33.0  # each mux: past the study's 6 segments x 5 s = 30 s
# With sintel: two videos per split under SPLIT's hash (checked below). train: H.264 + Opus in Matroska;
# val: MPEG-2 + MP3 in MPEG-PS, MS-MPEG4v2 + MP3 in AVI; test: H.264 + MP3 in MOV, H.264 + Opus in MP4.
CHOSEN = ("traffic_game", "city_strike", "street_strike", "traffic_strike", "run_snow")
# The study's 80/10/10 by msd_id cannot split six videos into train, validation and test.
SPLIT = {"train": 0.4, "val": 0.3, "test": 0.3, "group_by": "video_id"}


def build_study_collection(media: Path, folder: Path) -> pd.DataFrame:
    videos = folder / "videos"
    videos.mkdir(parents=True)
    source, genre, _ = AS_IS["sintel"]
    shutil.copy(media / source, videos / "sintel.mp4")
    rows = [{"video_id": "sintel", "path": "videos/sintel.mp4", "genre": genre}]
    for video_id in CHOSEN:
        footage, music, container, suffix, genre = MUXED[video_id]
        mux_copy(media / footage, media / music, videos / f"{video_id}{suffix}", container, SECONDS)
        rows.append({"video_id": video_id, "path": f"videos/{video_id}{suffix}", "genre": genre})
    metadata = pd.DataFrame(rows)
    metadata.to_csv(folder / "videos.csv", index=False)
    return metadata


@pytest.fixture
def weights_server(tmp_path_factory):
    """A local server with a seeded random r2plus1d_18 state dict, named as torchvision names its files."""
    path = tmp_path_factory.mktemp("weights") / "state.pth"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(13)
        torch.save(r2plus1d_18(weights=None).state_dict(), path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    server = Checkpoints()
    server.files[f"/mirror/r2plus1d_18-{digest[:8]}.pth"] = data
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, server.url(f"/mirror/r2plus1d_18-{digest[:8]}.pth"), digest
    server.shutdown()
    server.server_close()
    thread.join()


def study_config(url: str) -> dict:
    """config.yaml under configs/study.yaml, pointed at the collection and the local weights server."""
    changes = yaml.safe_load((REPO / "configs/study.yaml").read_text())
    deep_update(
        changes,
        {
            "demo": {"enabled": False},
            "dataset": {
                "videos_dir": "videos",
                "metadata_csv": "videos.csv",
                "msd_tags": None,
                "new_videos": None,
                "split": SPLIT,
            },
            "video_encoder": {"weights_url": url},
            # Lowered for time on 2 CPU cores: one probe seed instead of five, and (below) Table 1's `base`
            # row only, no ablation entries and no optional output groups. Frames, clips, views, segments and
            # training (the study's 100 epochs, patience 3) stay as configs/study.yaml has them.
            "probe": {"repeats": 1},
            "outputs": {
                group: False for group in ("qualitative", "diagnostics", "ablation", "recommend", "rq2")
            },
        },
    )
    return changes


def test_the_study_settings_run_end_to_end_on_real_media_with_downloaded_weights(
    real_media,  # noqa: F811 (the fixture imported above)
    weights_server,
    tmp_path,
    monkeypatch,
):
    started = time.monotonic()
    server, url, digest = weights_server
    torch_home = tmp_path / "torch"
    # The workflow's jobs inherit it: the user's torch hub cache is never read or written.
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    metadata = build_study_collection(real_media, tmp_path)
    splits = assign_splits(metadata, SPLIT)["split"]
    assert splits.value_counts().to_dict() == {"train": 2, "val": 2, "test": 2}
    write_config(tmp_path, study_config(url))
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    # Table 1's `base` row only (each configuration trains in seconds, but each adds its probes), no ablation.
    config["configurations"] = {"base": config["configurations"]["base"]}
    config["ablation"]["entries"] = {}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    study = config["segments"]
    assert (study["count"], study["seconds"], study["clip_seconds"], study["size"]) == (6, 5, 3, [768, 432])
    assert (config["video_encoder"]["clip_frames"], config["video_encoder"]["train_views"]) == (30, 4)
    assert config["video_encoder"]["weights"] == "auto" and config["video_encoder"]["allow_random"] is False

    run_snakemake(
        tmp_path, "results/table1.csv", "results/table2.csv", "results/provenance.json", timeout=900
    )
    manifest = pd.read_parquet(tmp_path / "results/data/manifest.parquet")
    assert sorted(manifest["video_id"]) == sorted(metadata["video_id"])  # all six accepted
    segments = pd.read_parquet(tmp_path / "results/data/segments.parquet")
    assert len(segments) == 6 * 6 and set(segments["split"]) == {"train", "val", "test"}
    audio = np.load(tmp_path / "results/features/musicnn.npy")
    video = np.load(tmp_path / "results/features/r2plus1d.npy")
    assert audio.shape == (36, 1506) and video.shape == (36, 4, 512)
    assert np.isfinite(audio).all() and np.isfinite(video).all()
    train = (segments["split"] == "train").to_numpy()
    # Training rows hold four different crops; validation and test rows one centre crop in every slot.
    assert all(len({view.tobytes() for view in row}) == 4 for row in video[train])
    assert all(len({view.tobytes() for view in row}) == 1 for row in video[~train])

    provenance = json.loads((tmp_path / "results/provenance.json").read_text())
    assert provenance["video"]["url"] == url and provenance["video"]["sha256"] == digest
    assert provenance["video"]["weights"] != "random" and "fallback_reason" not in provenance["video"]
    assert provenance["video"]["extraction"]["frame_size"] == [768, 432]
    name = url.rsplit("/", 1)[1]
    assert server.requests == [f"/mirror/{name}"]  # one download, cached for every later job
    assert [path.name for path in torch_home.rglob("*.pth")] == [name]

    table1 = pd.read_csv(tmp_path / "results/table1.csv")
    table2 = pd.read_csv(tmp_path / "results/table2.csv")
    assert table1["configuration"].tolist() == ["base", "chance"]
    # Table 2's study rows (no configuration named) are the probed configuration's, probe.configuration: base.
    assert config["probe"]["configuration"] == "base" and table2["configuration"].isna().all()
    assert table2["representation"].tolist() == ["musicnn", "r2plus1d", "both", "cl_a", "cl_v", "cl_agg"]
    assert (table2["task"] == "genre").all() and (table2["n_test_videos"] == 2).all()
    print(f"study settings on real media: {len(manifest)} videos, {time.monotonic() - started:.0f} s")
