"""The workflow's vocabulary in one torch-free place: what runs, under which names, and where it writes.

rules/*.smk build every input and output path, every wildcard constraint and `rule all` from a `Plan`;
the library and the scripts name tasks, representations and modes from the constants here. Reading the
Snakefile imports this module (and the torch-free `configuration`), never torch.

Path grammar: a probe result is `results/probes/{task}/{representation}.json` for the study's rows (the frozen
features, and the CL rows of `probe.configuration`) and `results/probes/{task}/{representation}@{name}.json`
for the CL rows of any other configuration or ablation entry; `probe_key` and `parse_probe_key` are the two
directions of that grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath

import numpy as np

from mvcl.configuration import deep_merge, load_schema, resolve_configuration, with_defaults
from mvcl.features.encoders.registry import (
    STUDY_PAIR,
    EncoderSpec,
    check_pair,
    resolve_encoders,
    start_problem,
)
from mvcl.validate import check_sweep

RESULTS = "results"
# The six configurations of the study's Table 1, listed first and marked in Table 1 when present.
STUDY_CONFIGURATIONS = ("base", "emb512", "deep4", "single_head", "tau03", "ae_init")
PROBE_TASKS = ("genre", "tagging")
# Table 2's rows as the study has them: frozen features, both concatenated, and the contrastive embeddings
# (audio, video, mean). With other encoders, their frozen rows join these (`Plan.frozen_rows`).
PROBE_REPRESENTATIONS = ("musicnn", "r2plus1d", "both", "cl_a", "cl_v", "cl_agg")
CL_REPRESENTATIONS = ("cl_a", "cl_v", "cl_agg")
# Table 2 adds these CL rows of each configuration beyond the study's six (add cl_a, cl_v for more rows).
TABLE2_EXTRA_REPRESENTATIONS = ("cl_agg",)
# The frozen row that concatenates the study's pair; any other pair's is "<audio>+<video>".
STUDY_BOTH = "both"
# Recall cut-offs of Table 1 (recall@k: the positive ranks k or better).
RECALL_AT = (1, 5, 10)
NEIGHBOUR_MODES = ("agg", "audio", "video")
NEIGHBOUR_LEVELS = ("videos", "segments")
# Per-configuration records under results/metrics/{configuration}/ that gather_diagnostics merges.
DIAGNOSTICS_PARTS = ("diagnostics.json", "loss_floor.json")
# Every ablation entry is a change of this configuration.
ABLATION_REFERENCE = "base"
NAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9_-]*"


def results_path(*parts: object) -> str:
    """A path under the results folder from computed parts (log and benchmark files, per-video files); the
    rules and the plan write fixed paths out ("results/table1.csv") so that a grep for a path finds them."""
    return "/".join([RESULTS, *map(str, parts)])


def log_path(rule_name: str, *parts: object) -> str:
    """A job's log file; the job records its resource use beside it (`mvcl.logs.usage_path`)."""
    return results_path("logs", rule_name, *parts) + ".log"


def model_path(configuration: str, name: str) -> str:
    """A file of one configuration shared by its replicates (autoencoders.pt)."""
    return f"results/models/{configuration}/{name}"


def replicate_path(configuration: str, name: str, replicate: object = 0) -> str:
    """A file of one training replicate (heads.pt, history.csv, embeddings.npz); single-model consumers
    (neighbours, embeddings, cold start, RQ2, diagnostics) read replicate 0."""
    return f"results/models/{configuration}/replicate_{replicate}/{name}"


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of training replicate `replicate`: `seed` itself for replicate 0 (the single-model runs
    before replicates existed), otherwise a 31-bit seed drawn from SeedSequence([seed, replicate])."""
    if replicate == 0:
        return seed
    return int(np.random.SeedSequence([seed, replicate]).generate_state(1)[0] >> 1)


def train_state_root() -> str:
    """Where train jobs keep per-epoch state to resume from (outside every declared output)."""
    return "results/.state/train"


def features_state_root() -> str:
    """Where feature jobs keep what the run's other feature jobs reuse: the checked int8 R(2+1)D model."""
    return "results/.state/features"


def probe_key(representation: str, configuration: str = "") -> str:
    """'cl_agg' for a study row, 'cl_agg@clip_style' for configuration clip_style's row."""
    return f"{representation}@{configuration}" if configuration else representation


def parse_probe_key(key: str) -> tuple[str, str]:
    """(representation, configuration) of a Table 2 row key; '' is the study's rows (no '@')."""
    representation, _, configuration = key.partition("@")
    return representation, configuration


def describe_override(override: dict | None, prefix: str = "") -> str:
    """An override as one line of its leaves, e.g. 'model.output_activation=none, loss.temperature=0.07'."""
    parts = []
    for key, value in (override or {}).items():
        if isinstance(value, dict):
            nested = describe_override(value, f"{prefix}{key}.")
            parts += [nested] if nested else []
        else:
            parts.append(f"{prefix}{key}={str(value).lower() if isinstance(value, bool) else value}")
    return ", ".join(parts)


def ablation_overrides(
    configurations: dict[str, dict], entries: dict[str, dict], reference: str = ABLATION_REFERENCE
) -> dict[str, dict]:
    """{entry: reference's override with the entry's changes on top}, for `resolve_configuration`.

    Raises ValueError when an entry is named like a configuration (they share results/models/{name}/) or
    when the reference configuration is missing.
    """
    if not entries:
        return {}
    clashes = sorted(set(entries) & set(configurations))
    if clashes:
        raise ValueError(
            f"ablation.entries: {', '.join(clashes)} also named in configurations; rename the entry "
            "(both would write results/models/<name>/)"
        )
    if reference not in configurations:
        raise ValueError(
            f"ablation.entries: every entry is a change of configuration '{reference}', which is not a key "
            f"of configurations ({', '.join(configurations)}); add it or empty ablation.entries"
        )
    base = configurations[reference] or {}
    return {name: deep_merge(base, override or {}) for name, override in entries.items()}


@dataclass(frozen=True)
class Plan:
    """Everything the rules derive from one config: names, resolved settings, targets.

    The config is completed with the schema's defaults on construction (already done by the Snakefile's
    `validate`), so every member reads a key directly.
    """

    config: dict
    schema: dict = field(default_factory=load_schema, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", with_defaults(self.config, self.schema))

    # --- configurations ---------------------------------------------------------------------------------

    @property
    def configurations(self) -> list[str]:
        """Table 1's rows, in config order."""
        return list(self.config["configurations"])

    @cached_property
    def ablation(self) -> dict[str, dict]:
        """Ablation entry -> its full override (the reference's override with the entry's change)."""
        return ablation_overrides(self.config["configurations"], self.config["ablation"]["entries"])

    @property
    def trained(self) -> list[str]:
        """Every name with a results/models/{name}/: configurations, then ablation entries."""
        return [*self.configurations, *self.ablation]

    @property
    def replicates(self) -> list[int]:
        """Training replicates of every configuration and ablation entry (training.replicates)."""
        return list(range(self.config["training"]["replicates"]))

    def replicate_files(self, name: str, file: str) -> list[str]:
        """`file` of every replicate of configuration or ablation entry `name`, replicate order."""
        return [replicate_path(name, file, replicate) for replicate in self.replicates]

    def resolved(self, name: str) -> dict:
        """Model/loss/training settings of a configuration or ablation entry (schema < base < override)."""
        overrides = {**self.config["configurations"], **self.ablation}
        return resolve_configuration({**self.config, "configurations": overrides}, name, self.schema)

    # --- encoders -------------------------------------------------------------------------------------------

    @cached_property
    def encoders(self) -> dict[str, EncoderSpec]:
        """Every encoder name of the run, resolved; raises ValueError (naming the key) when a configuration or
        ablation entry names an encoder that does not exist or is of the other modality."""
        specs = resolve_encoders(self.config, self.schema)
        for name in self.trained:
            check_pair(name, self.resolved(name)["encoders"], specs)
        return specs

    def check_encoders(self) -> None:
        """Raise ValueError (one line naming the key) for a bad encoder entry, a configuration's bad pair, or
        an encoder in use that cannot run here (a model not on this machine, remote code, a missing file)."""
        for name in self.used_encoders:
            if problem := start_problem(self.encoders[name]):
                raise ValueError(problem)

    def encoder_pair(self, configuration: str) -> tuple[str, str]:
        """(audio, video) encoder names that `configuration` trains on."""
        pair = self.resolved(configuration)["encoders"]
        return pair["audio"], pair["video"]

    @property
    def used_encoders(self) -> list[str]:
        """Encoders some configuration or ablation entry trains on: each is extracted once, shared by all."""
        return list(dict.fromkeys(name for trained in self.trained for name in self.encoder_pair(trained)))

    @property
    def unused_encoders(self) -> list[str]:
        """Names of `encoders:` that no configuration or ablation entry trains on (never extracted)."""
        return [name for name in self.config.get("encoders") or {} if name not in self.used_encoders]

    def encoders_of_rule(self, rule: str) -> list[str]:
        """Names of the encoders that `rule` extracts (audio_features: musicnn's kind, and so on)."""
        return [name for name, spec in self.encoders.items() if spec.rule == rule]

    def encoder_pattern(self, rule: str) -> str:
        """A wildcard constraint matching exactly the encoder names of `rule` (never anything when none)."""
        names = self.encoders_of_rule(rule)
        return "|".join(map(re.escape, names)) if names else "(?!)"

    def feature_path(self, configuration: str, modality: str) -> str:
        """results/features/{encoder}.npy of the `modality` encoder `configuration` trains on."""
        audio, video = self.encoder_pair(configuration)
        return f"results/features/{audio if modality == 'audio' else video}.npy"

    # --- probes and Table 2 -----------------------------------------------------------------------------

    @staticmethod
    def pair_key(audio: str, video: str) -> str:
        """The frozen row that concatenates two encoders: 'both' for the study's pair, else 'mir+style'."""
        return (
            STUDY_BOTH if (audio, video) == (STUDY_PAIR["audio"], STUDY_PAIR["video"]) else f"{audio}+{video}"
        )

    @cached_property
    def frozen_rows(self) -> dict[str, tuple[str | None, str | None]]:
        """Table 2's frozen rows -> (audio encoder, video encoder) they read (None: that modality unused).

        Every encoder the Table 2 configurations train on, and each pair concatenated; probe.configuration's
        first, so the study's config has exactly the study's three (musicnn, r2plus1d, both).
        """
        rows: dict[str, tuple[str | None, str | None]] = {}
        for configuration in [self.config["probe"]["configuration"], *self.table2_configurations]:
            audio, video = self.encoder_pair(configuration)
            rows.update(
                {audio: (audio, None), video: (None, video), self.pair_key(audio, video): (audio, video)}
            )
        return rows

    @property
    def probe_representations(self) -> list[str]:
        """The row keys the probe rule makes (file names): frozen rows, then the CL rows."""
        return [*self.frozen_rows, *CL_REPRESENTATIONS]

    def probe_role(self, key: str) -> str:
        """How a probe reads its inputs (`mvcl.probe.data.REPRESENTATIONS`): audio, video, both or a CL row."""
        if key in CL_REPRESENTATIONS:
            return key
        audio, video = self.frozen_rows[key]
        return "both" if audio and video else "audio" if audio else "video"

    def frozen_baseline(self, key: str) -> str:
        """RQ1's baseline of a CL row key: the frozen row of the encoder(s) its configuration trained on."""
        representation, configuration = parse_probe_key(key)
        audio, video = self.encoder_pair(configuration or self.config["probe"]["configuration"])
        return {"cl_a": audio, "cl_v": video, "cl_agg": self.pair_key(audio, video)}[representation]

    @property
    def probe_tasks(self) -> list[str]:
        """Tagging needs MSD tags (dataset.msd_tags); without them Table 2 has the genre task only."""
        return list(PROBE_TASKS) if self.config["dataset"]["msd_tags"] else ["genre"]

    def probe_files(self, key: str) -> list[str]:
        """The results of one probe job, one per task: every Table 2 cell of representation `key` (a
        `probe_key`, or a pattern with wildcards)."""
        return [f"results/probes/{task}/{key}.json" for task in self.probe_tasks]

    def probe_path(self, task: str, representation: str, configuration: str) -> str:
        """A CL representation's probe result: Table 2's own file for probe.configuration, else `cl_x@name`."""
        own = configuration == self.config["probe"]["configuration"]
        return f"results/probes/{task}/{probe_key(representation, '' if own else configuration)}.json"

    @property
    def table2_configurations(self) -> list[str]:
        """Configurations beyond the study's six (other than probe.configuration) whose CL rows Table 2 adds."""
        return [
            name
            for name in self.configurations
            if name not in STUDY_CONFIGURATIONS and name != self.config["probe"]["configuration"]
        ]

    def table2_inputs(self) -> list[str]:
        """Table 2's cells: the study's six rows, then CL rows of each configuration beyond the study's six."""
        study = [
            f"results/probes/{task}/{representation}.json"
            for task in self.probe_tasks
            for representation in self.probe_representations
        ]
        extra = [
            self.probe_path(task, representation, configuration)
            for configuration in self.table2_configurations
            for task in self.probe_tasks
            for representation in TABLE2_EXTRA_REPRESENTATIONS
        ]
        return study + extra

    def rq1_pairs(self) -> list[tuple[str, str, str]]:
        """(task, CL row key, frozen baseline) for every CL row of Table 2, study's rows first; the baseline is
        the frozen row of the encoder(s) that row's configuration trained on (`frozen_baseline`)."""
        keys = [*CL_REPRESENTATIONS] + [
            probe_key(representation, configuration)
            for configuration in self.table2_configurations
            for representation in TABLE2_EXTRA_REPRESENTATIONS
        ]
        return [(task, key, self.frozen_baseline(key)) for task in self.probe_tasks for key in keys]

    def rq1_inputs(self) -> list[str]:
        """The probe results RQ1 compares (each once), a subset of Table 2's cells."""
        paths = [f"results/probes/{task}/{key}.json" for task, *keys in self.rq1_pairs() for key in keys]
        return list(dict.fromkeys(paths))

    @property
    def rq1_configurations(self) -> list[str]:
        """The configurations whose CL rows RQ1 compares: probe.configuration, then Table 2's others."""
        return [self.config["probe"]["configuration"], *self.table2_configurations]

    def probe_section_for(self, configuration: str | None) -> dict:
        """The `probe` section a configuration's probes run with: as configured, except that the probes of an
        ablation entry run `ablation.probe_repeats` seeds."""
        if configuration in self.ablation:
            return {**self.config["probe"], "repeats": self.config["ablation"]["probe_repeats"]}
        return self.config["probe"]

    # --- ablation ---------------------------------------------------------------------------------------

    @property
    def ablation_rows(self) -> list[str]:
        """Rows of results/ablation.csv: the reference configuration, then every entry in config order."""
        return [ABLATION_REFERENCE, *self.ablation] if self.ablation else []

    @property
    def ablation_changes(self) -> dict[str, str]:
        entries = self.config["ablation"]["entries"]
        return {
            ABLATION_REFERENCE: "the study's choices",
            **{name: describe_override(entries[name]) for name in self.ablation},
        }

    def ablation_probes(self) -> list[str]:
        """Name-major, task-minor: the order workflow_scripts/ablation_table.py reads them in."""
        return [
            self.probe_path(task, "cl_agg", name) for name in self.ablation_rows for task in self.probe_tasks
        ]

    # --- qualitative figures, diagnostics, sweep ----------------------------------------------------------

    def neighbour_tables(self) -> list[str]:
        return [
            f"results/qualitative/neighbours_{level}_{mode}.csv"
            for level in NEIGHBOUR_LEVELS
            for mode in NEIGHBOUR_MODES
        ]

    def diagnostics_inputs(self, loss_floor: bool = True) -> list[str]:
        """The records gather_diagnostics merges; the loss floor's only where the workflow has its rule."""
        parts = [part for part in DIAGNOSTICS_PARTS if loss_floor or part != "loss_floor.json"]
        return [f"results/metrics/{name}/{part}" for name in self.configurations for part in parts]

    @property
    def sweep_configurations(self) -> list[str]:
        """The configurations of the coupling sweep (`sweep.configurations`), one curve each."""
        return list(self.config["sweep"]["configurations"])

    def sweep_config(self, coupling: float) -> dict:
        """The configuration of one coupling-sweep run: this run's settings, `sweep.overrides` on top, on the
        sweep's own demo corpus at `coupling`, training the sweep's configurations."""
        check_sweep(self.config)
        names = self.sweep_configurations
        settings = deep_merge(self.config, self.config["sweep"]["overrides"])
        settings["demo"].update(av_coupling=coupling, videos=self.config["sweep"]["videos"])
        settings["configurations"] = {name: self.config["configurations"][name] for name in names}
        settings["ablation"] = {}  # the sweep stops at retrieval of its configurations
        settings["probe"]["configuration"] = settings["qualitative"]["configuration"] = names[0]
        settings["recommend"]["configuration"] = settings["rq2"]["configurations"] = None  # = its own names
        settings["outputs"] = {"ablation": False, "qualitative": False, "diagnostics": False}
        return settings

    def sweep_retrieval(self, coupling: object, configuration: str) -> str:
        return f"results/sweep/coupling_{coupling}/{configuration}.json"

    def coupling_outputs(self) -> list[str]:
        return ["results/figures/coupling.png", "results/sweep/coupling.csv"]

    def figure_targets(self, qualitative: bool = True, diagnostics: bool = True) -> list[str]:
        """The outputs of rules/qualitative.smk that `rule all` asks for: neighbours and diagnostics."""
        targets = []
        if qualitative:
            targets += [
                f"results/figures/neighbours_{level}_{mode}.png"
                for level in NEIGHBOUR_LEVELS
                for mode in NEIGHBOUR_MODES
            ]
            targets += [*self.neighbour_tables(), "results/neighbours.html"]
        if diagnostics:
            targets += [
                "results/diagnostics.csv",
                "results/figures/diagnostics.png",
                "results/figures/similarities.png",
                *(f"results/figures/embedding_map_{name}.png" for name in self.configurations),
            ]
        return targets

    # --- embeddings of every video, cold-start recommendations, RQ2 ------------------------------------------

    def embedding_tables(self, name: str) -> list[str]:
        """results/embeddings/{name}.parquet (one row per video) and its per-segment companion."""
        return [f"results/embeddings/{name}.parquet", f"results/embeddings/{name}_segments.parquet"]

    @property
    def new_videos(self) -> str | None:
        """The metadata CSV of new videos to recommend for (dataset.new_videos), or None."""
        return self.config["dataset"]["new_videos"] or None

    def demo_file(self, name: str) -> str:
        """A file of the demo corpus: beside dataset.metadata_csv, where rule demo_dataset writes."""
        return str(PurePosixPath(self.config["dataset"]["metadata_csv"]).parent / name)

    @property
    def demo_makes_new_videos(self) -> bool:
        """The demo writes its own new videos (re-encodes) when dataset.new_videos is its demo path."""
        return bool(self.config["demo"]["enabled"]) and self.new_videos == self.demo_file("new/metadata.csv")

    @property
    def recommend(self) -> dict:
        """The `recommend` section; configuration null = qualitative.configuration."""
        settings = dict(self.config["recommend"])
        settings["configuration"] = settings["configuration"] or self.config["qualitative"]["configuration"]
        return settings

    @property
    def rq2(self) -> dict:
        """The `rq2` section; configurations null = every configuration."""
        settings = dict(self.config["rq2"])
        settings["configurations"] = settings["configurations"] or self.configurations
        return settings

    @property
    def rq2_judgements(self) -> list[str]:
        """Judgement CSVs that rq2.csv scores: rq2.judgements, else the demo's simulated annotators."""
        chosen = self.rq2["judgements"]
        if chosen:
            return [chosen] if isinstance(chosen, str) else list(chosen)
        return [self.demo_file("judgements.csv")] if self.config["demo"]["enabled"] else []

    def recommend_targets(self) -> list[str]:
        if not self.new_videos:
            return []
        return [
            "results/new/data/rejected.csv",
            *(
                f"results/recommendations/{name}.csv"
                for name in self.configurations
                if self.embeds_new_videos(name)
            ),
            "results/recommendations.html",
        ]

    def embeds_new_videos(self, configuration: str) -> bool:
        """Whether new videos can be embedded by `configuration`: not when an encoder is precomputed features,
        which exist only for the catalog's segments."""
        return all(self.encoders[name].kind != "precomputed" for name in self.encoder_pair(configuration))

    def rq2_targets(self) -> list[str]:
        """The judge page always; rq2.csv/.md once there are judgements to score."""
        targets = ["results/judge.html", "results/rq2/triplets.csv"]
        if self.rq2_judgements:
            targets += ["results/rq2.csv", "results/rq2.md", "results/rq2_annotators.csv"]
        return targets

    # --- rule all -----------------------------------------------------------------------------------------

    def final_targets(self) -> list[str]:
        """What `snakemake` builds with no target: the tables and figures, and the groups `outputs` switches on."""
        outputs = self.config["outputs"]
        targets = [
            "results/data/manifest.parquet",
            "results/data/segments.parquet",
            "results/data/rejected.csv",
            "results/figures/segments.png",
            *(f"results/features/{encoder}.npy" for encoder in self.used_encoders),
            "results/provenance.json",
            "results/table1.csv",
            "results/figures/training.png",
            "results/table2.csv",
            "results/rq1.csv",
            "results/figures/probes.png",
        ]
        targets += self.figure_targets(qualitative=outputs["qualitative"], diagnostics=outputs["diagnostics"])
        if outputs["ablation"] and self.ablation:
            targets += ["results/ablation.csv", "results/figures/ablation.png"]
        if outputs["coupling_sweep"]:
            targets += self.coupling_outputs()
        targets += [path for name in self.configurations for path in self.embedding_tables(name)]
        if outputs["recommend"]:
            targets += self.recommend_targets()
        if outputs["rq2"]:
            targets += self.rq2_targets()
        return targets
