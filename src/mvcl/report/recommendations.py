"""results/recommendations.html: each new video beside the catalog videos recommended for it.

Same page style as neighbours.html (mvcl.report.pages): self-contained, players read the videos by relative
path, show a poster frame, load when scrolled into view, and one plays at a time.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from mvcl.io import atomic_path
from mvcl.report.pages import SCRIPT, STYLE, Posters, media_source


def render_recommendations(table: pd.DataFrame, page_dir: str | Path, configuration: str) -> str:
    """The page's HTML for a recommendations table (mvcl.beyond.recommend.RECOMMENDATION_COLUMNS)."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Recommendations for new videos, configuration {html.escape(configuration)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Recommendations for new videos, configuration <code>{html.escape(configuration)}</code></h1>",
        "<p>Each row is a new video (grey), embedded by the heads trained on the catalog (no retraining), and "
        "its most similar catalog videos by cosine similarity of the aggregated audio+video embedding. "
        "Keep this page inside the results folder: the players read the videos from their own folders.</p>",
    ]
    posters = Posters()
    if table.empty:
        parts.append("<p>No new video could be embedded (see results/new/data/rejected.csv).</p>")
    for number, (video_id, rows) in enumerate(table.groupby("new_video_id", sort=False), start=1):
        first = rows.iloc[0]
        parts.append(
            f'<div class="seed" data-seed="{number}" data-new-video-id="{html.escape(str(video_id))}">'
        )
        parts.append(
            _figure(
                0,
                video_id,
                first["new_path"],
                page_dir,
                posters,
                "<b>new video</b>",
                first["new_artist"],
                first["new_title"],
                "",
            )
        )
        for row in rows.sort_values("rank").itertuples():
            heading = f"<b>#{int(row.rank)}</b> cos {row.cosine:.3f}"
            parts.append(
                _figure(
                    int(row.rank),
                    row.video_id,
                    row.path,
                    page_dir,
                    posters,
                    heading,
                    row.artist,
                    row.title,
                    row.genre,
                )
            )
        parts.append("</div>")
    parts.append(f"{posters.script()}<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _figure(
    rank: int,
    video_id: str,
    path: str,
    page_dir: str | Path,
    posters: Posters,
    heading: str,
    artist,
    title,
    genre,
) -> str:
    about = " - ".join(html.escape(str(part)) for part in (artist, title) if isinstance(part, str) and part)
    genre = genre if isinstance(genre, str) else ""
    return (
        f'<figure class="rank-{rank}" data-rank="{rank}" data-video-id="{html.escape(str(video_id))}">'
        f'<video controls preload="none" data-poster="{posters.id_for(path)}" '
        f'src="{html.escape(media_source(path, page_dir))}"></video>'
        f"<figcaption>{heading} {html.escape(str(video_id))}"
        + (f" <span>{html.escape(genre)}</span>" if genre else "")
        + (f"<br>{about}" if about else "")
        + "</figcaption></figure>"
    )


def write_recommendations_page(table: pd.DataFrame, out: str | Path, configuration: str) -> None:
    page = render_recommendations(table, Path(out).parent, configuration)
    with atomic_path(out) as temporary:
        temporary.write_text(page, encoding="utf-8")
