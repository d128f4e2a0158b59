"""Hugging Face `transformers` models as encoders, loaded offline (a local folder or the HF cache only).

- `hf_audio` (wav2vec2, HuBERT, AST, MERT: models whose forward takes the feature extractor's output; not
  CLAP, whose audio tower needs its own call): each window is resampled by the decoder to the feature
  extractor's `sampling_rate`, repeated to `min_seconds` when shorter (the documented padding
  for windows below a model's receptive field), run through the model with `output_hidden_states`, and
  hidden state `layer` (0 = the embeddings, -1 = the last layer) is pooled over time (`pooling`).
- `hf_image` (CLIP, SigLIP, ViT, ...): `frames` frames of the clip window go through the image processor and
  the model (the vision tower of a two-tower model); a clip's vector is the mean of its frames' vectors: the
  model's image embedding (`get_image_features`, else the pooled output) or, with `layer`, that hidden
  state's mean over patches.

`transformers` is imported here only, when a job builds such an encoder. `from_pretrained` runs with
`local_files_only=True` (never a download) and `trust_remote_code` only when the encoder entry sets it.
The provenance record names the model, its folder, revision and config hash, the layer and pooling, the
processor's settings and the library versions, so that published features can say how they were made.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from mvcl.features.encoders.contract import AudioWindowEncoder, VideoClipEncoder
from mvcl.features.encoders.hub import check_layer, model_folder, model_problem, remote_code_problem


def _load(spec, loader_names: tuple[str, ...], spec_device: str = "cpu"):
    """(model, processor, folder) of `spec`, offline, the model on `spec_device`; a problem is one ValueError
    line naming the key."""
    import transformers

    if problem := model_problem(spec):
        raise ValueError(problem)
    folder = model_folder(spec.options["model"], spec.options.get("revision"))
    kwargs = {"local_files_only": True, "trust_remote_code": spec.trust_remote_code}
    try:
        processor = None
        for loader in loader_names:
            try:
                processor = getattr(transformers, loader).from_pretrained(folder, **kwargs)
                break
            except (OSError, ValueError, KeyError):
                continue
        if processor is None:
            raise ValueError(
                f"encoders.{spec.name}.model: {folder} has no preprocessor_config.json that "
                f"{' or '.join(loader_names)} can read; save the model's processor there too"
            )
        model = transformers.AutoModel.from_pretrained(folder, **kwargs).eval()
    except ValueError as error:
        if "trust_remote_code" in str(error):
            raise ValueError(remote_code_problem(spec.name, spec.options["model"])) from None
        raise
    from mvcl.device import pick_device

    device = pick_device(spec_device) if isinstance(spec_device, str) else spec_device
    return model.to(device), processor, folder


def _record(spec, folder, processor) -> dict:
    import torch
    import transformers

    config = (folder / "config.json").read_bytes()
    return {
        "encoder": spec.name,
        "kind": spec.kind,
        "options": spec.options,
        "folder": str(folder),
        "config_sha256": hashlib.sha256(config).hexdigest(),
        "processor": json.loads(processor.to_json_string()),
        "trust_remote_code": spec.trust_remote_code,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }


def _pool(hidden, pooling: str):
    if pooling == "mean":
        return hidden.mean(dim=1)
    if pooling == "max":
        return hidden.amax(dim=1)
    return hidden[:, 0]


def _open(encoder: AudioWindowEncoder | VideoClipEncoder, loader_names: tuple[str, ...]) -> None:
    """Load `encoder`'s model and processor (`_load`) on the job's torch threads and device."""
    import torch

    torch.set_num_threads(encoder.context.threads)
    encoder.model, encoder.processor, encoder.folder = _load(
        encoder.spec, loader_names, encoder.context.device
    )
    encoder.device = encoder.model.device
    encoder.batch_size = encoder.options["batch_size"]


class HfAudioEncoder(AudioWindowEncoder):
    def __init__(self, spec, context=None) -> None:
        super().__init__(spec, context)
        _open(self, ("AutoFeatureExtractor", "AutoProcessor"))
        self.window = self.options["window"]
        extractor = getattr(self.processor, "feature_extractor", self.processor)
        self.rate = int(extractor.sampling_rate)
        layers = getattr(self.model.config, "num_hidden_layers", None)
        if problem := check_layer(spec.name, self.options["layer"], layers):
            raise ValueError(problem)
        self._width = int(self.embed([np.zeros(self.rate, dtype=np.float32)]).shape[1])

    @property
    def sample_rate(self) -> int:
        return self.rate

    @property
    def width(self) -> int:
        return self._width

    def provenance(self) -> dict:
        return {
            **_record(self.spec, self.folder, self.processor),
            "sample_rate": self.rate,
            "width": self.width,
        }

    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        import torch

        minimum = round(self.options["min_seconds"] * self.rate)
        waveforms = [np.resize(w, minimum) if len(w) < minimum else w for w in inputs]  # repeat-pad
        out = np.empty((len(waveforms), 0), np.float32)
        rows: dict[int, np.ndarray] = {}
        for length in sorted({len(w) for w in waveforms}):  # one batch per window length: no padding inside
            group = [i for i, w in enumerate(waveforms) if len(w) == length]
            features = self.processor(
                [waveforms[i] for i in group], sampling_rate=self.rate, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = self.model(**features, output_hidden_states=True).hidden_states[
                    self.options["layer"]
                ]
                pooled = _pool(hidden.float(), self.options["pooling"]).cpu().numpy()
            rows.update(zip(group, pooled, strict=True))
        out = np.stack([rows[i] for i in range(len(waveforms))]) if rows else out
        return out.astype(np.float32)


class HfImageEncoder(VideoClipEncoder):
    def __init__(self, spec, context=None) -> None:
        super().__init__(spec, context)
        _open(self, ("AutoImageProcessor", "AutoProcessor"))
        self.vision = getattr(self.model, "vision_model", self.model)
        config = getattr(self.vision, "config", self.model.config)
        if problem := check_layer(
            spec.name, self.options["layer"], getattr(config, "num_hidden_layers", None)
        ):
            raise ValueError(problem)
        self._width = int(self.embed([np.zeros((1, 32, 32, 3), dtype=np.uint8)]).shape[1])

    @property
    def frames(self) -> int:
        return self.options["frames"]

    @property
    def width(self) -> int:
        return self._width

    def provenance(self) -> dict:
        return {**_record(self.spec, self.folder, self.processor), "width": self.width}

    def frame_vectors(self, pixel_values):
        import torch

        layer = self.options["layer"]
        if layer is not None:
            return (
                self.vision(pixel_values=pixel_values, output_hidden_states=True)
                .hidden_states[layer]
                .mean(dim=1)
            )
        if hasattr(self.model, "get_image_features"):
            output = self.model.get_image_features(pixel_values=pixel_values)
        else:
            output = self.model(pixel_values=pixel_values)
        if isinstance(output, torch.Tensor):
            return output
        pooled = getattr(output, "image_embeds", None)
        pooled = pooled if pooled is not None else getattr(output, "pooler_output", None)
        return pooled if pooled is not None else output.last_hidden_state.mean(dim=1)

    def embed(self, inputs: list[np.ndarray]) -> np.ndarray:
        import torch

        frames = [frame for clip in inputs for frame in clip]
        pixels = self.processor(images=frames, return_tensors="pt")["pixel_values"].to(self.device)
        with torch.inference_mode():
            vectors = self.frame_vectors(pixels).float().cpu()
        counts = [len(clip) for clip in inputs]
        return np.stack([part.mean(dim=0).numpy() for part in torch.split(vectors, counts)]).astype(
            np.float32
        )
