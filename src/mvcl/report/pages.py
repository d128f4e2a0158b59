"""A web page on which every seed and neighbour can be watched and heard, to judge similarity as a person.

One self-contained HTML file (no scripts or styles fetched from anywhere) with a section per level (videos,
segments) and mode (agg, audio, video). Each item is an HTML5 <video> whose `src` is the user's own file,
relative to the page's folder, so the page works wherever the results folder sits next to the videos; a
segment plays only its window through a media fragment (`#t=start,end`, W3C Media Fragments URI). Players
load their media only when scrolled into view, and starting one pauses the others, so a person hears one
item at a time. Before it plays, each player shows a poster: the frame in the middle of its window (the
whole video's middle for a video), a small JPEG embedded once per page (`Posters`), so the page stays one
offline file and a reader sees what each item looks like without playing it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from urllib.parse import quote

import av
import pandas as pd
from PIL import Image

from mvcl.data.decode import decode_frames
from mvcl.io import atomic_path
from mvcl.qualitative.neighbours import LEVELS, MODE_NAMES, MODES

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
nav a { margin-right: 1em; }
section { margin-top: 2.5em; }
.seed { display: flex; gap: 0.8em; margin: 0.8em 0; padding: 0.6em; border-top: 1px solid #ddd; }
figure { margin: 0; width: 260px; }
figure.rank-0 { background: #f3f3f3; padding: 0.3em; }
video { width: 100%; aspect-ratio: 16 / 9; object-fit: contain; background: #000; }
figcaption { font-size: 0.8em; line-height: 1.35; }
.same { color: #1a7f37; } .other { color: #c62828; }
"""

# Posters are stored at this width (pixels): the players are 260-320 CSS pixels wide.
POSTER_WIDTH = 320
POSTER_QUALITY = 80  # JPEG quality: a few kB a poster

SCRIPT = """
const players = Array.from(document.querySelectorAll('video'));
// Poster frames, embedded once each (script#posters): a player shows its own until it plays.
const posters = JSON.parse(document.getElementById('posters')?.textContent || '{}');
players.forEach((player) => { if (player.dataset.poster) player.poster = posters[player.dataset.poster]; });
// Load a player's metadata (its first frame, at the fragment's start) only once it is scrolled into view.
const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (entry.isIntersecting && entry.target.preload === 'none') {
      entry.target.preload = 'metadata';
      entry.target.load();
      observer.unobserve(entry.target);
    }
  }
}, {rootMargin: '200px'});
players.forEach((player) => observer.observe(player));
// One sound at a time: starting a player pauses every other.
players.forEach((player) => player.addEventListener('play', () => {
  players.forEach((other) => { if (other !== player) other.pause(); });
}));
"""


def media_source(
    path: str | Path, page_dir: str | Path, start_s: float | None = None, end_s: float | None = None
) -> str:
    """URL of `path` relative to `page_dir`, percent-encoded, with a `#t=start,end` fragment when given."""
    relative = Path(os.path.relpath(Path(path).resolve(), Path(page_dir).resolve())).as_posix()
    url = quote(relative)
    if start_s is not None and end_s is not None:
        url += f"#t={start_s:.3f},{end_s:.3f}"
    return url


class Posters:
    """The poster frames of one page: each (video, window) decoded once, as a JPEG data URI under a short id."""

    def __init__(self) -> None:
        self.uris: dict[str, str] = {}
        self._ids: dict[tuple[str, float | None, float | None], str] = {}

    def id_for(self, path: str | Path, start_s: float | None = None, end_s: float | None = None) -> str:
        """The id of the frame in the middle of [start_s, end_s) of `path` (of the whole video when None)."""
        key = (str(path), start_s, end_s)
        if key not in self._ids:
            self._ids[key] = f"p{len(self._ids)}"
            self.uris[self._ids[key]] = poster_uri(path, start_s, end_s)
        return self._ids[key]

    def script(self) -> str:
        """The `<script id="posters">` element that SCRIPT (or the judge page) reads the posters from."""
        data = json.dumps(self.uris).replace("</", "<\\/")  # no "</script>" inside the element
        return f'<script id="posters" type="application/json">{data}</script>'


def poster_uri(path: str | Path, start_s: float | None = None, end_s: float | None = None) -> str:
    """A `data:image/jpeg;base64,...` URI of the frame in the middle of [start_s, end_s) of the video at `path`
    (its whole duration when None), POSTER_WIDTH pixels wide at the video's aspect ratio."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if start_s is None or end_s is None:
            start_s, end_s = 0.0, container.duration / av.time_base
    middle = (start_s + end_s) / 2
    size = (POSTER_WIDTH, max(2, round(POSTER_WIDTH * height / width)))
    frame = decode_frames(path, middle, middle + 1e-3, 1, size)[0]
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=POSTER_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_page(tables: dict[tuple[str, str], pd.DataFrame], page_dir: str | Path, configuration: str) -> str:
    """The page's HTML for neighbour tables keyed by (level, mode), as written by the neighbour figure rules."""
    keys = [(level, mode) for level in LEVELS for mode in MODES if (level, mode) in tables]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Nearest neighbours, configuration {html.escape(configuration)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Nearest test neighbours, configuration <code>{html.escape(configuration)}</code></h1>",
        "<p>Each row is a random test seed (grey) and its nearest test neighbours by cosine similarity of the "
        "learned embeddings. Watch and listen: do the neighbours look and sound like the seed? A neighbour's "
        'genre is <span class="same">green</span> when it is the seed\'s and <span class="other">red</span> '
        "when not. Videos play whole; segments play only their window. Segment neighbours come from other "
        "videos. The players read the videos from their own folders: keep this page inside the results "
        "folder.</p>",
        "<nav>"
        + "".join(f'<a href="#{level}-{mode}">{level}: {MODE_NAMES[mode]}</a>' for level, mode in keys)
        + "</nav>",
    ]
    posters = Posters()
    for level, mode in keys:
        parts.append(_section(tables[(level, mode)], level, mode, page_dir, posters))
    parts.append(f"{posters.script()}<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _section(table: pd.DataFrame, level: str, mode: str, page_dir: str | Path, posters: Posters) -> str:
    neighbours = table[table["rank"] > 0]
    agreement = (
        f" Neighbours share their seed's genre in {neighbours['same_genre'].mean():.0%} of cases."
        if len(neighbours) and (table["genre"].fillna("") != "").any()
        else ""
    )
    rows = [
        f'<section id="{level}-{mode}" data-level="{level}" data-mode="{mode}">',
        f"<h2>{level.capitalize()}: {html.escape(MODE_NAMES[mode])} embedding</h2>",
        f"<p>{table['seed'].nunique()} seeds, {int(table['rank'].max())} neighbours each.{agreement}</p>",
    ]
    for seed, items in table.sort_values(["seed", "rank"]).groupby("seed", sort=True):
        rows.append(f'<div class="seed" data-seed="{int(seed)}">')
        seed_genre = items["genre"].fillna("").iloc[0]
        rows.extend(_item(item, level, seed_genre, page_dir, posters) for item in items.itertuples())
        rows.append("</div>")
    rows.append("</section>")
    return "\n".join(rows)


def _item(item: tuple, level: str, seed_genre: str, page_dir: str | Path, posters: Posters) -> str:
    genre = "" if pd.isna(item.genre) else str(item.genre)
    if level == "segments":
        source = media_source(item.path, page_dir, item.start_s, item.end_s)
        poster = posters.id_for(item.path, item.start_s, item.end_s)
        where = f"segment {int(item.segment) + 1}, {item.start_s:.1f}-{item.end_s:.1f} s"
    else:
        source = media_source(item.path, page_dir)
        poster = posters.id_for(item.path)
        where = "whole video"
    about = " - ".join(
        html.escape(str(part)) for part in (item.artist, item.title) if isinstance(part, str) and part
    )
    if item.rank == 0:
        heading = f"<b>seed {int(item.seed)}</b>"
        genre_class = ""
    else:
        heading = f"<b>#{int(item.rank)}</b> cos {item.similarity:.3f}"
        genre_class = (
            ' class="same"' if seed_genre and item.same_genre else ' class="other"' if seed_genre else ""
        )
    return (
        f'<figure class="rank-{int(item.rank)}" data-rank="{int(item.rank)}" '
        f'data-video-id="{html.escape(str(item.video_id))}">'
        f'<video controls preload="none" data-poster="{poster}" src="{html.escape(source)}"></video>'
        f"<figcaption>{heading} {html.escape(str(item.video_id))} "
        f"<span{genre_class}>{html.escape(genre or 'no genre')}</span><br>{where}"
        + (f"<br>{about}" if about else "")
        + "</figcaption></figure>"
    )


def write_neighbours_page(
    tables: dict[tuple[str, str], pd.DataFrame], out: str | Path, configuration: str
) -> None:
    """Write the page atomically; media paths are made relative to `out`'s folder."""
    page = render_page(tables, Path(out).parent, configuration)
    with atomic_path(out) as temporary:
        temporary.write_text(page, encoding="utf-8")
