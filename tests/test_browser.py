"""The neighbours page in a real headless browser (Debian's chromium, driven by playwright).

Skipped when chromium or playwright is missing on a developer's machine; a failure under CI (env CI set),
which installs both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from mvcl.qualitative.neighbours import LEVELS, MODES, neighbours_for
from mvcl.report.pages import write_neighbours_page
from tests.helpers import watch_page
from tests.test_neighbours import ANGLES, segment_embeddings, write_tiny_corpus

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No network, no first-run or sync machinery, no GPU: a bare browser for a local file.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SEEDS = {"videos": 4, "segments": 3}


def _missing_browser() -> str | None:
    if not Path(CHROMIUM).exists():
        return "chromium is not installed (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r envs/requirements.txt)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _missing_browser()
    if reason and os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install it")
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def neighbours_page(tmp_path_factory):
    """A neighbours page in <tmp>/results/ for a tiny corpus in <tmp>/videos/, and its tables."""
    folder = tmp_path_factory.mktemp("page")
    manifest, segments = write_tiny_corpus(folder)
    audio, video = segment_embeddings(ANGLES, ANGLES[::-1])
    tables = {
        (level, mode): neighbours_for(
            level, mode, manifest, segments, audio, video, seeds=SEEDS[level], k=2, seed=0
        )[0]
        for level in LEVELS
        for mode in MODES
    }
    page = folder / "results" / "neighbours.html"
    write_neighbours_page(tables, page, "base")
    return page, tables


@pytest.fixture
def page(browser, neighbours_page):
    path, _ = neighbours_page
    tab = browser.new_page(viewport={"width": 1200, "height": 900})
    yield from watch_page(tab, path.as_uri())
    tab.close()


def test_the_page_loads_and_lists_every_seed_of_every_section(page, neighbours_page):
    _, tables = neighbours_page
    sections = page.evaluate(
        """Array.from(document.querySelectorAll('section')).map(section => ({
            id: section.id,
            seeds: Array.from(section.querySelectorAll('.seed')).map(row => Number(row.dataset.seed)),
            players: section.querySelectorAll('video').length,
            posters: Array.from(section.querySelectorAll('video'))
                .filter(player => player.poster.startsWith('data:image/jpeg;base64,')).length,
        }))"""
    )
    assert [section["id"] for section in sections] == [
        f"{level}-{mode}" for level in LEVELS for mode in MODES
    ]
    for section in sections:
        level, mode = section["id"].split("-")
        table = tables[(level, mode)]
        assert section["seeds"] == sorted(table["seed"].unique())
        assert len(section["seeds"]) == SEEDS[level]
        assert section["players"] == section["posters"] == len(table)  # none is a black box before it plays
    assert page.title() == "Nearest neighbours, configuration base"


def test_every_player_points_at_an_existing_file_and_segments_at_their_window(page, neighbours_page):
    _, tables = neighbours_page
    players = page.evaluate(
        """Array.from(document.querySelectorAll('video')).map(player => ({
            section: player.closest('section').id, src: player.src,
        }))"""
    )
    for section_id in {player["section"] for player in players}:
        level, mode = section_id.split("-")
        table = tables[(level, mode)].sort_values(["seed", "rank"])
        sources = [urlparse(player["src"]) for player in players if player["section"] == section_id]
        for url, row in zip(sources, table.itertuples(), strict=True):
            assert url.scheme == "file"
            assert Path(unquote(url.path)) == Path(row.path)
            assert Path(row.path).is_file()
            if level == "segments":
                start, end = (float(value) for value in url.fragment.removeprefix("t=").split(","))
                assert start == pytest.approx(row.start_s, abs=1e-3)
                assert end == pytest.approx(row.end_s, abs=1e-3)
            else:
                assert url.fragment == ""


def test_a_segment_player_scrolled_into_view_opens_at_its_window(page, neighbours_page):
    _, tables = neighbours_page
    seed = tables[("segments", "audio")].query("rank == 0").iloc[0]
    selector = "#segments-audio [data-seed='1'] video"
    page.locator(selector).first.scroll_into_view_if_needed()
    page.wait_for_function(f'document.querySelector("{selector}").readyState >= 1', timeout=15_000)
    duration, position, error = page.evaluate(
        f'(player => [player.duration, player.currentTime, player.error])(document.querySelector("{selector}"))'
    )
    assert error is None
    assert duration == pytest.approx(4.0, abs=0.2)
    assert position == pytest.approx(seed["start_s"], abs=0.05)


def test_starting_one_player_pauses_the_others(page):
    paused = page.evaluate(
        """async () => {
            const [first, second] = document.querySelectorAll('#videos-agg video');
            for (const player of [first, second]) { player.muted = true; player.preload = 'auto'; }
            await first.play();
            await second.play();
            return [first.paused, second.paused];
        }"""
    )
    assert paused == [True, False]


def test_the_page_keeps_working_when_the_results_folder_is_moved_with_the_videos(
    browser, neighbours_page, tmp_path
):
    path, tables = neighbours_page
    moved = tmp_path / "copy"
    shutil.copytree(path.parent.parent, moved)
    tab = browser.new_page()
    tab.goto((moved / "results" / path.name).as_uri())
    sources = tab.evaluate("Array.from(document.querySelectorAll('video')).map(player => player.src)")
    tab.close()
    assert all(Path(unquote(urlparse(source).path)).is_relative_to(moved) for source in sources)
    assert all(Path(unquote(urlparse(source).path)).is_file() for source in sources)
    assert len(sources) == sum(len(table) for table in tables.values())
