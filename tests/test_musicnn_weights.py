"""musicnn weights: TF variable -> PyTorch parameter mapping, clear failures, and the conversion cache."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from mvcl.features import musicnn
from mvcl.features.musicnn import (
    build_model,
    cache_dir,
    checkpoint_prefix,
    convert_checkpoint,
    load_musicnn,
    musicnn_state_dict,
    variable_map,
)
from mvcl.features.tf_checkpoint import CheckpointError, CheckpointReader
from tests.test_tf_checkpoint import write_checkpoint


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MVCL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_cache_folder_is_mvcl_cache_else_xdg_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MVCL_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("MVCL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mvcl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "mvcl"


def test_weights_are_converted_once_then_read_from_the_cache(cache, monkeypatch):
    first = musicnn_state_dict("MTT_musicnn")
    [cached] = (cache / "musicnn").glob("MTT_musicnn-*.pt")

    def no_conversion(*args):
        raise AssertionError("converted again despite the cache")

    monkeypatch.setattr(musicnn, "convert_checkpoint", no_conversion)
    second = musicnn_state_dict("MTT_musicnn")
    assert second.keys() == first.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert sorted(path.name for path in cached.parent.iterdir()) == [cached.name]  # no temporary left


def test_an_unreadable_cache_file_is_converted_again(cache, caplog):
    musicnn_state_dict("MSD_musicnn")
    [cached] = (cache / "musicnn").glob("MSD_musicnn-*.pt")
    cached.write_bytes(b"half a file")
    with caplog.at_level(logging.WARNING, logger="mvcl.features.musicnn"):
        state = musicnn_state_dict("MSD_musicnn")
    assert "unreadable cached weights" in caplog.text
    assert state["output.weight"].shape == (50, 200)
    assert torch.load(cached, weights_only=True).keys() == state.keys()


def test_tf_kernels_land_on_the_matching_torch_weights(cache):
    reader = CheckpointReader(str(checkpoint_prefix("MTT_musicnn")) + "/", verify=False)
    network = load_musicnn("MTT_musicnn")
    timbral = reader.read("conv2d/kernel")  # [time 7, frequency 38, in 1, out 204]
    assert network.timbral[0].conv.weight[5, 0, 2, 30] == timbral[2, 30, 0, 5]
    temporal = reader.read("conv2d_3/kernel")  # [time 64, 1, 1, 51]
    assert network.temporal[1].conv.weight[7, 0, 40, 0] == temporal[40, 0, 0, 7]
    midend = reader.read("conv2d_5/kernel")  # [time 7, features 561, 1, out 64]
    assert network.midend[0].conv.weight[9, 500, 6] == midend[6, 500, 0, 9]
    dense = reader.read("dense/kernel")  # [in 1506, out 200]
    assert network.dense.weight[3, 1000] == dense[1000, 3]
    np.testing.assert_array_equal(
        network.pool_bn.running_var, reader.read("batch_normalization_9/moving_variance")
    )
    assert all(module.eps == 1e-3 for module in network.modules() if isinstance(module, torch.nn.BatchNorm1d))
    assert not network.training


def test_every_parameter_and_buffer_has_a_tf_variable():
    for name in musicnn.MODELS:
        mapped = {key for key, _, _ in variable_map(name)}
        expected = {key for key in build_model(name).state_dict() if not key.endswith("num_batches_tracked")}
        assert mapped == expected


def test_a_checkpoint_missing_a_variable_or_with_a_wrong_shape_is_rejected_naming_them(tmp_path):
    reader = CheckpointReader(str(checkpoint_prefix("MTT_musicnn")) + "/", verify=False)
    variables = {tf_name: reader.read(tf_name) for _, tf_name, _ in variable_map("MTT_musicnn")}
    del variables["dense_1/kernel"]
    variables["conv2d_6/kernel"] = variables["conv2d_6/kernel"][:, :32]  # 32 input features instead of 64
    write_checkpoint(tmp_path / "ckpt", variables)
    with pytest.raises(CheckpointError) as error:
        convert_checkpoint(tmp_path / "ckpt", "MTT_musicnn")
    assert "dense_1/kernel (for output.weight) is missing" in str(error.value)
    assert "conv2d_6/kernel has shape (7, 32, 1, 64)" in str(error.value)
    assert "ckpt" in str(error.value)


def test_an_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg"):
        load_musicnn("MSD_musicnn_big")
