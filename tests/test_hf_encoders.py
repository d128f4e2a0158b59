"""Hugging Face encoders: tiny randomly initialised models saved with save_pretrained load through the real
offline code path; a missing model, remote code and a bad layer are one-line errors before any job."""

import json

import numpy as np
import pytest

from mvcl.configuration import load_schema
from mvcl.features.encoders.contract import ExtractionContext
from mvcl.features.encoders.registry import load_encoder, resolve_encoders, start_problem
from tests.test_encoders import HEIGHT, WIDTH, clips  # noqa: F401  (the shared fixture of demo-like clips)

transformers = pytest.importorskip("transformers")
SCHEMA = load_schema()


def spec(name: str, entry: dict):
    return resolve_encoders({"encoders": {name: entry}}, SCHEMA)[name]


@pytest.fixture(scope="module")
def wav2vec2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wav2vec2")
    config = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )  # fmt: skip
    transformers.Wav2Vec2Model(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vit")
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=31,
    )
    transformers.ViTModel(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_a_tiny_audio_model_embeds_a_demo_clip_at_its_own_rate(clips, wav2vec2):  # noqa: F811
    encoder = load_encoder(spec("w2v", {"kind": "hf_audio", "model": str(wav2vec2), "options": {"layer": 1}}))
    assert encoder.sample_rate == 16000 and encoder.width == 32
    features, provenance = encoder.extract(clips.head(3))
    assert features.shape == (3, 32) and np.isfinite(features).all()
    assert provenance["options"]["layer"] == 1 and provenance["processor"]["sampling_rate"] == 16000
    again, _ = encoder.extract(clips.head(3))
    assert again.tobytes() == features.tobytes()


def test_a_window_shorter_than_the_receptive_field_is_repeat_padded(wav2vec2):
    encoder = load_encoder(spec("w2v", {"kind": "hf_audio", "model": str(wav2vec2)}))
    short = np.random.default_rng(0).standard_normal(50).astype(np.float32)  # 3 ms: less than one conv frame
    assert np.isfinite(encoder.embed([short])).all()


def test_a_tiny_image_model_embeds_every_frame_and_pools_the_clip(clips, vit):  # noqa: F811
    context = ExtractionContext(frame_size=(WIDTH, HEIGHT))
    pooled = load_encoder(
        spec("vit", {"kind": "hf_image", "model": str(vit), "options": {"frames": 3}}), context
    )
    layered = load_encoder(
        spec("vit1", {"kind": "hf_image", "model": str(vit), "options": {"layer": 1}}), context
    )
    assert pooled.width == 24 and layered.width == 24
    features, provenance = pooled.extract(clips.head(2))
    assert features.shape == (2, 24) and np.isfinite(features).all()
    assert provenance["folder"] == str(vit)
    frames = np.random.default_rng(0).integers(0, 255, (2, HEIGHT, WIDTH, 3), dtype=np.uint8)
    one = pooled.embed([frames[:1]])[0]
    np.testing.assert_allclose(
        pooled.embed([frames])[0], (one + pooled.embed([frames[1:]])[0]) / 2, atol=1e-5
    )


def test_a_model_not_on_this_machine_is_one_line_saying_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    problem = start_problem(spec("mert", {"kind": "hf_audio", "model": "m-a-p/MERT-v1-95M"}))
    assert problem.startswith(
        "encoders.mert.model: 'm-a-p/MERT-v1-95M' is neither a folder nor in the Hugging"
    )
    assert "hf download m-a-p/MERT-v1-95M" in problem and "\n" not in problem
    with pytest.raises(ValueError, match="is neither a folder nor in the Hugging Face cache"):
        load_encoder(spec("mert", {"kind": "hf_audio", "model": "m-a-p/MERT-v1-95M"}))


def test_a_model_id_in_the_cache_is_found_at_its_revision(tmp_path, monkeypatch, vit):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    snapshot = tmp_path / "models--org--tiny-vit" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for path in vit.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())
    (tmp_path / "models--org--tiny-vit" / "refs").mkdir()
    (tmp_path / "models--org--tiny-vit" / "refs" / "main").write_text("abc123")
    assert start_problem(spec("v", {"kind": "hf_image", "model": "org/tiny-vit"})) is None
    wrong = spec("v", {"kind": "hf_image", "model": "org/tiny-vit", "options": {"revision": "fff"}})
    assert "at revision fff is neither a folder" in start_problem(wrong)
    assert load_encoder(spec("v", {"kind": "hf_image", "model": "org/tiny-vit"})).width == 24


def test_remote_code_stays_off_unless_the_encoder_allows_it(tmp_path, wav2vec2):
    folder = tmp_path / "remote"
    folder.mkdir()
    for path in wav2vec2.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_mert.MERTModel"}
    (folder / "config.json").write_text(json.dumps(config))
    problem = start_problem(spec("mert", {"kind": "hf_audio", "model": str(folder)}))
    assert problem.startswith(f"encoders.mert: {folder} runs its own Python code (trust_remote_code")
    assert "\n" not in problem
    with pytest.raises(ValueError, match="set encoders.mert.trust_remote_code: true only if you trust"):
        load_encoder(spec("mert", {"kind": "hf_audio", "model": str(folder)}))
    assert (
        start_problem(spec("mert", {"kind": "hf_audio", "model": str(folder), "trust_remote_code": True}))
        is None
    )


def test_a_layer_out_of_range_is_one_line_before_any_job(wav2vec2):
    problem = start_problem(
        spec("w2v", {"kind": "hf_audio", "model": str(wav2vec2), "options": {"layer": 5}})
    )
    assert problem == (
        "encoders.w2v.options.layer: 5 is out of range; the model has 2 layers, so choose 0 (its embeddings) "
        "to 2, or -1 for the last"
    )
    assert start_problem(spec("w2v", {"kind": "hf_audio", "model": str(wav2vec2), "options": {"layer": -4}}))
    assert (
        start_problem(spec("w2v", {"kind": "hf_audio", "model": str(wav2vec2), "options": {"layer": -3}}))
        is None
    )


def test_a_tiny_clip_model_gives_its_image_embedding_per_clip(clips, tmp_path):  # noqa: F811
    config = transformers.CLIPConfig(
        text_config={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 20},
        vision_config={"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 20,
                       "image_size": 32, "patch_size": 8},
        projection_dim=12,
    )  # fmt: skip
    transformers.CLIPModel(config).save_pretrained(tmp_path / "clip")
    processor = transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    processor.save_pretrained(tmp_path / "clip")
    entry = {"kind": "hf_image", "model": str(tmp_path / "clip"), "options": {"frames": 2}}
    encoder = load_encoder(spec("clip", entry), ExtractionContext(frame_size=(WIDTH, HEIGHT)))
    assert encoder.width == 12  # the projection, not the tower's width
    features, _ = encoder.extract(clips.head(2))
    assert features.shape == (2, 12) and np.isfinite(features).all()
    layered = {**entry, "options": {"frames": 2, "layer": 3}}
    assert "layer: 3 is out of range; the model has 2 layers" in start_problem(spec("clip", layered))
