"""RQ2 measured: triplets, simulated annotators, agreement with bootstrap intervals, inter-annotator kappas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mvcl.beyond.rq2 import (
    JUDGEMENT_COLUMNS,
    RANDOM,
    SOURCE_RANDOM,
    agreement_of,
    agreement_table,
    annotator_agreement,
    cohen_kappa,
    common,
    draw_triplets,
    fleiss_kappa,
    make_space,
    markdown,
    random_space,
    read_judgements,
    simulate_judgements,
)

GENRES = 3
VIDEOS = 60


def corpus(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Latents of a corpus (one row per video, heard stream) and each video's genre index."""
    rng = np.random.default_rng(seed)
    genre = np.arange(VIDEOS) % GENRES
    tags = ["|".join(f"t{k}" for k in np.flatnonzero(rng.random(4) < 0.5)) for _ in range(VIDEOS)]
    latents = pd.DataFrame(
        {
            "video_id": [f"v{i:03d}" for i in range(VIDEOS)],
            "stream": "sound",
            "genre": [f"g{g}" for g in genre],
            "tags": tags,
        }
    )
    return latents, genre


def spaces_of(latents: pd.DataFrame, genre: np.ndarray) -> dict:
    """A space that encodes genre (one-hot + small noise), one that encodes nothing, and the random control."""
    ids = latents["video_id"].tolist()
    rng = np.random.default_rng(1)
    genre_space = np.eye(GENRES)[genre] + 0.05 * rng.standard_normal((VIDEOS, GENRES))
    return common(
        {
            "genre_space": make_space(ids, genre_space),
            "noise_space": make_space(ids, rng.standard_normal((VIDEOS, 8))),
            RANDOM: random_space(ids, seed=0),
        }
    )


@pytest.fixture(scope="module")
def study():
    latents, genre = corpus()
    spaces = spaces_of(latents, genre)
    triplets = draw_triplets(
        spaces, latents["video_id"].tolist(), seeds=40, pairs_per_seed=6, neighbours=3, seed=0
    )
    judgements = simulate_judgements(triplets, latents, noise=[0.05, 0.2, 0.5], seed=0)
    return latents, spaces, triplets, judgements


def test_triplets_pair_two_distinct_candidates_from_two_sources_never_the_seed(study):
    _, spaces, triplets, _ = study
    assert len(triplets) > 150
    assert (triplets["candidate_a"] != triplets["candidate_b"]).all()
    assert (triplets["seed"] != triplets["candidate_a"]).all() and (
        triplets["seed"] != triplets["candidate_b"]
    ).all()
    assert (triplets["source_a"] != triplets["source_b"]).all()
    assert set(triplets["source_a"]) | set(triplets["source_b"]) == {
        "genre_space",
        "noise_space",
        SOURCE_RANDOM,
    }
    assert not triplets.duplicated(["seed", "candidate_a", "candidate_b"]).any()
    again = draw_triplets(
        spaces, sorted(spaces[RANDOM].video_ids), seeds=40, pairs_per_seed=6, neighbours=3, seed=0
    )
    pd.testing.assert_frame_equal(triplets, again)


def test_a_space_that_encodes_genre_agrees_with_genre_minded_people_and_random_sits_at_chance(study):
    _, spaces, _, judgements = study
    table = agreement_table(judgements, spaces, replicates=500, seed=0).set_index("representation")
    assert table.loc["genre_space", "agreement"] > 0.7
    assert table.loc["genre_space", "ci_low"] > 0.6
    # An uninformative space that supplies candidates loses where its neighbour meets a genre neighbour.
    assert table.loc["noise_space", "agreement"] < 0.5
    ids = sorted(spaces[RANDOM].video_ids)
    controls = [
        agreement_table(judgements, {RANDOM: random_space(ids, seed)}, replicates=100, seed=0)["agreement"][0]
        for seed in range(10)
    ]
    assert abs(np.mean(controls) - 0.5) < 0.03
    assert (table["ci_low"] <= table["agreement"]).all() and (table["agreement"] <= table["ci_high"]).all()
    assert (table["judgements"] == len(judgements)).all()
    assert (table["annotators"] == 3).all() and (table["seeds"] == 40).all()


def test_noisier_simulated_annotators_agree_less_with_the_latent_truth(study):
    latents, spaces, triplets, _ = study
    judgements = simulate_judgements(triplets, latents, noise=[0.02, 5.0], seed=1)
    agree = pd.Series(agreement_of(judgements, spaces["genre_space"])).groupby(judgements["annotator"]).mean()
    assert agree["simulated-1"] > agree["simulated-2"] + 0.15


def test_the_representation_choice_is_the_candidate_with_the_higher_cosine():
    space = make_space(["s", "near", "far"], np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    judgements = pd.DataFrame(
        {
            "seed": ["s", "s"],
            "candidate_a": ["near", "far"],
            "candidate_b": ["far", "near"],
            "choice": ["a", "a"],
        }
    )
    assert agreement_of(judgements, space).tolist() == [1.0, 0.0]
    tie = make_space(["s", "x", "y"], np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]))
    assert agreement_of(judgements.assign(candidate_a="x", candidate_b="y"), tie).tolist() == [0.5, 0.5]


def test_kappas_are_one_for_perfect_agreement_and_zero_at_chance():
    ratings = np.array([[1, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]])
    assert fleiss_kappa(ratings) == pytest.approx(1.0)
    assert cohen_kappa(ratings[:, 0], ratings[:, 1]) == pytest.approx(1.0)
    # Observed agreement 50% with balanced marginals = chance agreement: kappa 0.
    assert cohen_kappa(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])) == pytest.approx(0.0)
    # Fleiss' worked example shape: 2 raters always disagreeing on balanced items -> -1.
    assert fleiss_kappa(np.array([[1, 0], [0, 1], [1, 0], [0, 1]])) == pytest.approx(-1.0)


def test_inter_annotator_agreement_matches_candidates_even_when_a_and_b_are_swapped():
    one = pd.DataFrame(
        {"seed": ["s", "s"], "candidate_a": ["x", "y"], "candidate_b": ["y", "z"], "choice": ["a", "b"]}
    ).assign(annotator="one", time="")
    # The same choices (x, then z) with a and b swapped.
    two = pd.DataFrame(
        {"seed": ["s", "s"], "candidate_a": ["y", "z"], "candidate_b": ["x", "y"], "choice": ["b", "a"]}
    ).assign(annotator="two", time="")
    pairs, fleiss, complete = annotator_agreement(pd.concat([one, two], ignore_index=True))
    assert pairs["agreement"].tolist() == [1.0] and pairs["common"].tolist() == [2]
    assert complete == 2
    single_pairs, single_fleiss, _ = annotator_agreement(one)
    assert single_pairs.empty and np.isnan(single_fleiss)
    assert "One annotator" in markdown(
        pd.DataFrame(columns=["representation"]), single_pairs, single_fleiss, 0
    )


def test_judgement_files_are_read_and_checked_naming_file_and_line(tmp_path):
    good = tmp_path / "good.csv"
    pd.DataFrame(
        [
            ["s", "x", "y", "A", "ann", "t1"],
            ["s", "x", "y", "b", "ann", "t2"],
            ["s", "x", "z", "a", "", "t3"],
        ],
        columns=JUDGEMENT_COLUMNS,
    ).to_csv(good, index=False)
    judgements = read_judgements([good])
    # The later answer of the same person to the same triplet wins; a nameless one is 'anonymous'.
    assert judgements["choice"].tolist() == ["b", "a"]
    assert judgements["annotator"].tolist() == ["ann", "anonymous"]
    bad = tmp_path / "bad.csv"
    pd.DataFrame([["s", "x", "y", "maybe", "ann", "t"]], columns=JUDGEMENT_COLUMNS).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad.csv: line 2: choice must be 'a' or 'b'"):
        read_judgements(bad)
    (tmp_path / "short.csv").write_text("seed,choice\ns,a\n")
    with pytest.raises(ValueError, match="short.csv: missing column"):
        read_judgements(tmp_path / "short.csv")
    with pytest.raises(FileNotFoundError, match="rq2.judgements"):
        read_judgements(tmp_path / "none.csv")


def test_a_judgement_of_a_video_outside_the_catalog_names_it(study):
    _, spaces, _, judgements = study
    stray = judgements.head(1).assign(candidate_a="nobody")
    with pytest.raises(KeyError, match="nobody"):
        agreement_table(stray, spaces, replicates=100, seed=0)
