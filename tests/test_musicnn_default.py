"""load_musicnn defaults to the workflow's MTT_musicnn, and an MSD-trained model warns of the tag leak."""

from __future__ import annotations

import inspect
import logging

import pytest

from mvcl.configuration import load_schema
from mvcl.features import musicnn
from mvcl.features.musicnn import MSD_LEAK_NOTE, load_musicnn


def test_the_library_default_is_the_workflows():
    schema_default = load_schema()["properties"]["audio_encoder"]["properties"]["model"]["default"]
    assert inspect.signature(load_musicnn).parameters["name"].default == schema_default == "MTT_musicnn"


@pytest.mark.parametrize(
    ("name", "warns"), [("MSD_musicnn", True), ("MSD_vgg", True), ("MTT_musicnn", False)]
)
def test_an_msd_model_logs_the_tagging_leak(monkeypatch, caplog, name, warns):
    monkeypatch.setattr(musicnn, "musicnn_state_dict", lambda model: musicnn.build_model(model).state_dict())
    with caplog.at_level(logging.WARNING, logger=musicnn.__name__):
        load_musicnn(name)
    leaks = [r.getMessage() for r in caplog.records if MSD_LEAK_NOTE in r.getMessage()]
    assert bool(leaks) == warns
    assert "tagging probe" in MSD_LEAK_NOTE and "MSD" in MSD_LEAK_NOTE


def test_msd_weights_put_the_leak_caveat_in_every_table_footnote():
    from mvcl.provenance import footnote

    video = {"description": "random weights"}
    assert "Caution" not in footnote({"audio": {"name": "MTT_musicnn", "sha256": "ab"}, "video": video})
    msd = footnote({"audio": {"name": "MSD_musicnn", "sha256": "ab"}, "video": video})
    assert MSD_LEAK_NOTE in msd
