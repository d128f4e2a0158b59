"""RQ2 measured: does a representation's similarity agree with people's judgement of similarity?

The study answered its RQ2 ("do the embeddings capture what people find similar?") by looking at nearest
neighbours. Here people answer triplets instead: a seed video and two candidates, "which is more similar to
the seed?". A representation's choice is the candidate with the higher cosine similarity to the seed; its
agreement is the share of judgements where its choice is the person's (a tie counts one half).

- Representations: the frozen musicnn and R(2+1)D features, the CL aggregated embedding of chosen
  configurations (`cl_agg@name`), and `random`: one seeded Gaussian vector per video, a control whose
  agreement must sit near 50%. Every representation is a video-level vector (mean over the video's segments).
- Candidates are drawn from different sources: each representation's nearest neighbours of the seed, and
  random videos, so that representations disagree on some triplets (two neighbours of the same space would
  only test that space). Which candidate is `a` and the order of the triplets are random (seeded). A
  representation that supplies candidates is judged partly on its own neighbours: were it uninformative, it
  would lose where its neighbour meets an informative space's, so it would score below 50%, not at it; the
  `random` control supplies none and sits at 50%.
- Intervals: a 95% bootstrap over seeds and annotators (both resampled with replacement; a judgement weighs
  the product of how often its seed and its annotator were drawn), since judgements of one seed or one
  person are not independent.
- Inter-annotator agreement: per pair of annotators, the share of common triplets with the same choice and
  Cohen's kappa; Fleiss' kappa over the triplets every annotator judged.
- The demo's simulated annotators choose by the corpus's latent similarity (same genre + Jaccard of latent
  tags) with logistic noise of their own size, so the demo's answer is known: spaces that encode genre
  agree more than chance, `random` does not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mvcl.beyond.recommend import vectors_of
from mvcl.data.segments import video_rng
from mvcl.plan import probe_key
from mvcl.probe.data import video_level
from mvcl.vectors import l2_normalise

JUDGEMENT_COLUMNS = ["seed", "candidate_a", "candidate_b", "choice", "annotator", "time"]
TRIPLET_COLUMNS = ["triplet", "seed", "candidate_a", "candidate_b", "source_a", "source_b"]
RANDOM = "random"
RANDOM_DIM = 64
SOURCE_RANDOM = "random video"


@dataclass(frozen=True)
class Space:
    """Unit video vectors of one representation, rows in `video_ids` order."""

    video_ids: np.ndarray
    vectors: np.ndarray

    def rows(self, ids: Iterable[str], what: str = "video") -> np.ndarray:
        lookup = pd.Index(self.video_ids)
        ids = np.asarray(list(ids), dtype=object)
        rows = lookup.get_indexer(ids)
        if (rows < 0).any():
            unknown = sorted(set(ids[rows < 0]))
            raise KeyError(f"{what}(s) not in the catalog's embeddings: {', '.join(map(str, unknown[:10]))}")
        return rows

    def cosine(self, first: Iterable[str], second: Iterable[str]) -> np.ndarray:
        return np.einsum("nd,nd->n", self.vectors[self.rows(first)], self.vectors[self.rows(second)])


def make_space(video_ids: Sequence[str], vectors: np.ndarray) -> Space:
    """A space of finite rows only (videos whose vector is not finite cannot be compared)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    finite = np.isfinite(vectors).all(axis=1)
    return Space(np.asarray(video_ids, dtype=object)[finite], l2_normalise(vectors[finite]))


def random_space(video_ids: Sequence[str], seed: int, dim: int = RANDOM_DIM) -> Space:
    """The control: one Gaussian vector per video, seeded by (seed, video_id) so it never depends on others."""
    vectors = np.stack(
        [video_rng(seed, str(video_id), "rq2-random").standard_normal(dim) for video_id in video_ids]
    )
    return make_space(video_ids, vectors)


def common(spaces: dict[str, Space]) -> dict[str, Space]:
    """Every space restricted to the videos all of them hold, in one sorted order."""
    shared = sorted(set.intersection(*(set(space.video_ids) for space in spaces.values())))
    return {
        name: Space(np.asarray(shared, dtype=object), space.vectors[space.rows(shared)])
        for name, space in spaces.items()
    }


def representation_spaces(
    segments: pd.DataFrame,
    audio_features: np.ndarray,
    video_features: np.ndarray,
    embeddings: dict[str, pd.DataFrame],
    seed: int,
) -> dict[str, Space]:
    """musicnn, r2plus1d, cl_agg@name for each embeddings table (results/embeddings/{name}.parquet) and
    random, over the videos all of them hold."""
    spaces = {}
    for name, features in (("musicnn", audio_features), ("r2plus1d", video_features)):
        level = video_level(features, segments)
        spaces[name] = make_space(level.video_ids, level.X)
    for configuration, table in embeddings.items():
        spaces[probe_key("cl_agg", configuration)] = make_space(table["video_id"], vectors_of(table))
    spaces[RANDOM] = random_space(segments["video_id"].unique(), seed)
    return common(spaces)


def load_spaces(
    segments: str | Path, audio: str | Path, video: str | Path, embeddings: Sequence[str | Path], seed: int
) -> dict[str, Space]:
    """`representation_spaces` from the workflow's files: segments.parquet, the two feature arrays and
    results/embeddings/{configuration}.parquet tables (the configuration is the file's stem)."""
    return representation_spaces(
        pd.read_parquet(segments, columns=["video_id", "split"]),
        np.load(audio, mmap_mode="r"),
        np.load(video, mmap_mode="r"),
        {Path(path).stem: pd.read_parquet(path) for path in embeddings},
        seed,
    )


# --- triplets ------------------------------------------------------------------------------------------------


def draw_triplets(
    spaces: dict[str, Space],
    seed_ids: Sequence[str],
    *,
    seeds: int,
    pairs_per_seed: int,
    neighbours: int,
    seed: int,
) -> pd.DataFrame:
    """Triplets (`TRIPLET_COLUMNS`) for the judge page: `seeds` seed videos drawn from `seed_ids`, each with
    `pairs_per_seed` candidate pairs from two different sources (a space's `neighbours` nearest videos, or
    a random video); a and b in random order, triplets shuffled. `spaces` share their video order (`common`)."""
    rng = np.random.default_rng([seed, 2])
    ids = next(iter(spaces.values())).video_ids
    candidates = [video_id for video_id in seed_ids if video_id in set(ids)]
    if len(ids) < 3 or not candidates:
        raise ValueError(
            f"RQ2 needs at least 3 videos and one seed video; the catalog has {len(ids)} comparable videos "
            f"and {len(candidates)} in the seed splits (rq2.seed_splits)"
        )
    chosen = rng.choice(candidates, size=min(seeds, len(candidates)), replace=False)
    sources = {name: space for name, space in spaces.items() if name != RANDOM}
    source_names = [*sources, SOURCE_RANDOM]
    rows = []
    for seed_id in chosen:
        seed_row = next(iter(spaces.values())).rows([seed_id])[0]
        nearest = {}
        for name, space in sources.items():
            similarity = space.vectors @ space.vectors[seed_row]
            similarity[seed_row] = -np.inf
            nearest[name] = ids[np.argsort(-similarity, kind="stable")[:neighbours]]
        others = [video_id for video_id in ids if video_id != seed_id]
        seen: set[frozenset] = set()
        for _ in range(pairs_per_seed):
            for _attempt in range(20):
                first, second = rng.choice(len(source_names), size=2, replace=False)
                picked = [
                    (
                        source_names[s],
                        rng.choice(others if source_names[s] == SOURCE_RANDOM else nearest[source_names[s]]),
                    )
                    for s in (first, second)
                ]
                pair = frozenset(video for _, video in picked)
                if len(pair) == 2 and pair not in seen:
                    seen.add(pair)
                    (source_a, a), (source_b, b) = picked
                    rows.append((seed_id, a, b, source_a, source_b))
                    break
    triplets = pd.DataFrame(rows, columns=TRIPLET_COLUMNS[1:])
    triplets = triplets.iloc[rng.permutation(len(triplets))].reset_index(drop=True)
    triplets.insert(0, "triplet", np.arange(1, len(triplets) + 1))
    return triplets


# --- the demo's simulated annotators -------------------------------------------------------------------------


def latent_similarity(latents: pd.DataFrame) -> Callable[[str, str], float]:
    """s(x, y) = [same latent genre] + Jaccard of latent tags, from the demo's latents.parquet (heard stream)."""
    heard = latents[latents["stream"] == "sound"].drop_duplicates("video_id").set_index("video_id")
    genre = heard["genre"].astype(str).to_dict()
    tags = {video_id: set(filter(None, str(value).split("|"))) for video_id, value in heard["tags"].items()}

    def similarity(x: str, y: str) -> float:
        union = tags[x] | tags[y]
        jaccard = len(tags[x] & tags[y]) / len(union) if union else 0.0
        return float(genre[x] == genre[y]) + jaccard

    return similarity


def simulate_judgements(
    triplets: pd.DataFrame, latents: pd.DataFrame, noise: Sequence[float], seed: int
) -> pd.DataFrame:
    """One judgement per triplet and simulated annotator: P(a) = logistic((s(seed, a) - s(seed, b)) / noise)."""
    similarity = latent_similarity(latents)
    missing = sorted(
        set(triplets[["seed", "candidate_a", "candidate_b"]].to_numpy().ravel()) - set(latents["video_id"])
    )
    if missing:
        raise KeyError(f"latents.parquet has no row for video(s) {', '.join(missing[:10])}")
    margin = np.array(
        [similarity(t.seed, t.candidate_a) - similarity(t.seed, t.candidate_b) for t in triplets.itertuples()]
    )
    start = pd.Timestamp("2026-01-01T00:00:00Z")
    tables = []
    for number, scale in enumerate(noise, start=1):
        rng = np.random.default_rng([seed, 3, number])
        p_a = 1.0 / (1.0 + np.exp(-margin / scale))
        choice = np.where(rng.random(len(margin)) < p_a, "a", "b")
        tables.append(
            pd.DataFrame(
                {
                    "seed": triplets["seed"].to_numpy(),
                    "candidate_a": triplets["candidate_a"].to_numpy(),
                    "candidate_b": triplets["candidate_b"].to_numpy(),
                    "choice": choice,
                    "annotator": f"simulated-{number}",
                    "time": [
                        (start + pd.Timedelta(seconds=10 * i + number)).isoformat()
                        for i in range(len(margin))
                    ],
                }
            )
        )
    return pd.concat(tables, ignore_index=True)[JUDGEMENT_COLUMNS]


# --- reading and scoring judgements --------------------------------------------------------------------------


def read_judgements(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Judgement CSVs (as the judge page exports them) in one table; one clear error per bad file or row.

    A person's later answer to the same triplet replaces the earlier one.
    """
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if not paths:
        raise ValueError("rq2.judgements lists no file")
    tables = []
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: judgements CSV not found (config key rq2.judgements)")
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [column for column in JUDGEMENT_COLUMNS if column not in table.columns]
        if missing:
            raise ValueError(
                f"{path}: missing column(s) {', '.join(missing)}; a judgements CSV has "
                f"{','.join(JUDGEMENT_COLUMNS)} (export it from results/judge.html)"
            )
        table["choice"] = table["choice"].str.strip().str.lower()
        bad = np.flatnonzero(~table["choice"].isin(["a", "b"]))
        if bad.size:
            raise ValueError(
                f"{path}: line {bad[0] + 2}: choice must be 'a' or 'b', got {table['choice'].iloc[bad[0]]!r}"
            )
        empty = np.flatnonzero((table[["seed", "candidate_a", "candidate_b"]] == "").any(axis=1))
        if empty.size:
            raise ValueError(f"{path}: line {empty[0] + 2}: empty seed or candidate")
        table.loc[table["annotator"].str.strip() == "", "annotator"] = "anonymous"
        tables.append(table[JUDGEMENT_COLUMNS])
    judgements = pd.concat(tables, ignore_index=True)
    judgements = judgements.drop_duplicates(["annotator", "seed", "candidate_a", "candidate_b"], keep="last")
    return judgements.reset_index(drop=True)


def agreement_of(judgements: pd.DataFrame, space: Space) -> np.ndarray:
    """Per judgement 1 when the space's choice (higher cosine to the seed) is the person's, 0.5 on a tie, else 0."""
    to_a = space.cosine(judgements["seed"], judgements["candidate_a"])
    to_b = space.cosine(judgements["seed"], judgements["candidate_b"])
    person_a = judgements["choice"].to_numpy() == "a"
    return np.where(to_a == to_b, 0.5, ((to_a > to_b) == person_a).astype(float))


def bootstrap_weights(judgements: pd.DataFrame, replicates: int, seed: int) -> np.ndarray:
    """[replicates, judgements] weights: seeds and annotators each resampled with replacement."""
    rng = np.random.default_rng([seed, 4])
    seed_codes, seed_ids = pd.factorize(judgements["seed"])
    annotator_codes, annotators = pd.factorize(judgements["annotator"])
    seed_counts = rng.multinomial(len(seed_ids), np.full(len(seed_ids), 1 / len(seed_ids)), size=replicates)
    annotator_counts = rng.multinomial(
        len(annotators), np.full(len(annotators), 1 / len(annotators)), size=replicates
    )
    return (seed_counts[:, seed_codes] * annotator_counts[:, annotator_codes]).astype(float)


def agreement_table(
    judgements: pd.DataFrame, spaces: dict[str, Space], *, replicates: int, seed: int, level: float = 0.95
) -> pd.DataFrame:
    """One row per representation: agreement with the people, its bootstrap CI, and the sample sizes."""
    weights = bootstrap_weights(judgements, replicates, seed)
    totals = weights.sum(axis=1)
    valid = totals > 0
    rows = []
    for name, space in spaces.items():
        agree = agreement_of(judgements, space)
        replicate_means = (weights[valid] @ agree) / totals[valid]
        low, high = np.quantile(replicate_means, [(1 - level) / 2, (1 + level) / 2])
        rows.append(
            {
                "representation": name,
                "agreement": float(agree.mean()),
                "ci_low": float(low),
                "ci_high": float(high),
                "judgements": len(judgements),
                "seeds": judgements["seed"].nunique(),
                "annotators": judgements["annotator"].nunique(),
            }
        )
    return pd.DataFrame(rows)


def _ratings(judgements: pd.DataFrame) -> pd.DataFrame:
    """Annotator x triplet (seed and unordered pair) table: 1 when the first candidate (by id) was chosen."""
    low = np.minimum(judgements["candidate_a"], judgements["candidate_b"])
    high = np.maximum(judgements["candidate_a"], judgements["candidate_b"])
    chosen = np.where(judgements["choice"] == "a", judgements["candidate_a"], judgements["candidate_b"])
    table = pd.DataFrame(
        {
            "annotator": judgements["annotator"],
            "item": judgements["seed"] + "\0" + low + "\0" + high,
            "first": (chosen == low).astype(int),
        }
    ).drop_duplicates(["annotator", "item"], keep="last")
    return table.pivot(index="item", columns="annotator", values="first")


def annotator_agreement(judgements: pd.DataFrame) -> tuple[pd.DataFrame, float, int]:
    """(pairwise table: annotator_a, annotator_b, common, agreement, cohen_kappa; Fleiss' kappa over the
    triplets every annotator judged, NaN for fewer than two annotators; the number of those triplets)."""
    ratings = _ratings(judgements)
    rows = []
    for first, second in itertools.combinations(ratings.columns, 2):
        both = ratings[[first, second]].dropna()
        rows.append(
            {
                "annotator_a": first,
                "annotator_b": second,
                "common": len(both),
                "agreement": float((both[first] == both[second]).mean()) if len(both) else float("nan"),
                "cohen_kappa": cohen_kappa(both[first].to_numpy(), both[second].to_numpy()),
            }
        )
    pairs = pd.DataFrame(rows, columns=["annotator_a", "annotator_b", "common", "agreement", "cohen_kappa"])
    complete = ratings.dropna()
    fleiss = fleiss_kappa(complete.to_numpy()) if ratings.shape[1] > 1 else float("nan")
    return pairs, fleiss, len(complete) if ratings.shape[1] > 1 else 0


def cohen_kappa(first: np.ndarray, second: np.ndarray) -> float:
    """Cohen's kappa of two binary raters; NaN without items or when chance agreement is 1."""
    if not len(first):
        return float("nan")
    observed = float((first == second).mean())
    p1, p2 = float(first.mean()), float(second.mean())
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    return float("nan") if expected == 1 else (observed - expected) / (1 - expected)


def fleiss_kappa(ratings: np.ndarray) -> float:
    """Fleiss' kappa of [items, raters] binary ratings (every rater rates every item)."""
    if ratings.size == 0 or ratings.shape[1] < 2:
        return float("nan")
    raters = ratings.shape[1]
    ones = ratings.sum(axis=1)
    counts = np.stack([raters - ones, ones], axis=1)  # [items, categories]
    per_item = ((counts**2).sum(axis=1) - raters) / (raters * (raters - 1))
    shares = counts.sum(axis=0) / counts.sum()
    expected = float((shares**2).sum())
    return float("nan") if expected == 1 else (float(per_item.mean()) - expected) / (1 - expected)


def markdown(table: pd.DataFrame, pairs: pd.DataFrame, fleiss: float, complete: int) -> str:
    """rq2.md: the agreement table and the inter-annotator agreement."""
    lines = [
        "# RQ2: agreement of each representation's similarity with people's judgements",
        "",
        "A judgement: a seed video and two candidates, 'which is more similar to the seed?'. A representation "
        "agrees when its cosine similarity to the seed is higher for the candidate the person chose "
        "(ties count one half). 95% bootstrap intervals resample seeds and annotators. Chance is 50%; "
        "`random` (one random vector per video) is the control.",
        "",
        "| representation | agreement | 95% CI | judgements | seeds | annotators |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.representation} | {row.agreement:.1%} | {row.ci_low:.1%} - {row.ci_high:.1%} | "
            f"{row.judgements} | {row.seeds} | {row.annotators} |"
        )
    lines += ["", "## Inter-annotator agreement", ""]
    if pairs.empty:
        lines.append("One annotator: no inter-annotator agreement.")
    else:
        lines += [
            f"Fleiss' kappa over the {complete} triplets every annotator judged: {fleiss:.3f}.",
            "",
            "| annotator | annotator | common triplets | agreement | Cohen's kappa |",
            "|---|---|---|---|---|",
        ]
        for row in pairs.itertuples():
            lines.append(
                f"| {row.annotator_a} | {row.annotator_b} | {row.common} | {row.agreement:.1%} | "
                f"{row.cohen_kappa:.3f} |"
            )
    return "\n".join(lines) + "\n"
