"""The RQ2 judge page in a real headless browser: click through judgements, export them, score them.

Uses tests/test_browser.py's browser fixture (Debian's chromium driven by playwright; skipped when missing
on a developer's machine, a failure under CI).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest

from mvcl.beyond.rq2 import RANDOM, agreement_table, make_space, random_space, read_judgements
from mvcl.report.judge import write_judge_page
from tests.helpers import watch_page
from tests.test_browser import browser  # noqa: F401 - the fixture
from tests.test_neighbours import write_tiny_corpus


@pytest.fixture(scope="module")
def judge_page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("judge")
    manifest, _ = write_tiny_corpus(folder)
    ids = manifest["video_id"].tolist()
    triplets = pd.DataFrame(
        {
            "seed": [ids[0], ids[1], ids[2], ids[0]],
            "candidate_a": [ids[1], ids[2], ids[3], ids[2]],
            "candidate_b": [ids[2], ids[3], ids[0], ids[3]],
        }
    )
    page = folder / "results" / "judge.html"
    write_judge_page(triplets, manifest.set_index("video_id")["path"].to_dict(), page, "test-page")
    return page, triplets, manifest


@pytest.fixture
def tab(browser, judge_page):  # noqa: F811 - the fixture
    page, _, _ = judge_page
    context = browser.new_context(accept_downloads=True)
    yield from watch_page(context.new_page(), page.as_uri())
    context.close()


def test_players_show_the_first_triplet_from_files_next_to_the_page(tab, judge_page):
    _, triplets, manifest = judge_page
    paths = manifest.set_index("video_id")["path"]
    sources = tab.evaluate("['seed', 'a', 'b'].map(id => document.getElementById(id).src)")
    first = triplets.iloc[0]
    for source, video_id in zip(sources, [first.seed, first.candidate_a, first.candidate_b], strict=True):
        assert Path(unquote(urlparse(source).path)) == Path(paths[video_id])
    assert "Triplet 1 of 4" in tab.text_content("#status")


def test_a_choice_needs_a_name_and_answers_survive_a_reload_and_export_as_the_rule_reads_them(
    tab, judge_page, tmp_path
):
    _, triplets, manifest = judge_page
    tab.click("#choose-a")
    assert "Enter your name" in tab.text_content("#status")
    tab.fill("#annotator", "ann, the first")  # a comma: the export must quote it
    tab.dispatch_event("#annotator", "change")
    tab.click("#choose-a")
    tab.click("#choose-b")
    tab.click("#next")  # skip triplet 3
    tab.click("#choose-a")
    assert "3 answered by ann, the first" in tab.text_content("#status")
    tab.reload()
    assert "3 answered" in tab.text_content("#status")
    with tab.expect_download() as download:
        tab.click("#export")
    exported = tmp_path / "judgements.csv"
    download.value.save_as(exported)

    judgements = read_judgements(exported)
    assert judgements["choice"].tolist() == ["a", "b", "a"]
    assert (judgements["annotator"] == "ann, the first").all()
    answered = triplets.iloc[[0, 1, 3]].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        judgements[["seed", "candidate_a", "candidate_b"]], answered, check_dtype=False
    )
    assert pd.to_datetime(judgements["time"]).notna().all()
    ids = manifest["video_id"].tolist()
    spaces = {"line": make_space(ids, np.arange(len(ids), dtype=float)[:, None] * [1.0, 0.2] + [0.0, 1.0]),
              RANDOM: random_space(ids, seed=0)}  # fmt: skip
    table = agreement_table(judgements, spaces, replicates=100, seed=0)
    assert (table["judgements"] == 3).all() and (table["annotators"] == 1).all()
