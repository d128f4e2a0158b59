"""The study's encoders under the contract: musicnn (audio) and R(2+1)D-18 (video), unchanged.

Both keep their own batched pipelines (`mvcl.features.audio`, `mvcl.features.video`: background decoding,
data-parallel workers, bf16), so their features are exactly those of the study's rules; the options are
their config sections (`audio_encoder`, `video_encoder`) with an encoder entry's changes on top. Each
sets the job's torch threads first (`start_torch_job`), as their rules always did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mvcl.features.encoders.contract import Encoder


class MusicnnEncoder(Encoder):
    modality = "audio"

    @property
    def width(self) -> int:
        from mvcl.features.audio import feature_dim

        return feature_dim(self.options["layer"], self.options["model"])

    def provenance(self) -> dict:
        from mvcl.provenance import musicnn_provenance

        return {**super().provenance(), "weights": musicnn_provenance(self.options["model"])}

    def extract(self, segments: pd.DataFrame) -> tuple[np.ndarray, dict]:
        from mvcl.device import start_torch_job
        from mvcl.features.audio import extract_audio_features

        start_torch_job(self.context.threads)
        options = self.options
        features = extract_audio_features(
            segments,
            model=options["model"],
            layer=options["layer"],
            window=options["window"],
            sample_rate=self.context.sample_rate,
            batch_size=options["batch_size"],
            device=self.context.device,
            progress=self.context.progress,
            decode_workers=options["decode_workers"],
        )
        return features, self.provenance()


class R2plus1dEncoder(Encoder):
    modality = "video"
    width = 512  # R(2+1)D-18's pooled features; rows are [views, 512] (video_encoder.train_views crops)

    def extract(self, segments: pd.DataFrame) -> tuple[np.ndarray, dict]:
        from mvcl.device import start_torch_job
        from mvcl.features.video import extract_video_features

        start_torch_job(self.context.threads)
        return extract_video_features(
            segments,
            **self.options,
            frame_size=tuple(self.context.frame_size),
            seed=self.context.seed,
            device=self.context.device,
            precision=self.context.precision,
            progress=self.context.progress,
            calibration=None if self.context.calibration is None else pd.read_parquet(self.context.calibration),
            state=self.context.state,
        )
