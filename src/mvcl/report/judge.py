"""results/judge.html: people judge "which candidate is more similar to the seed?" (RQ2, mvcl.beyond.rq2).

One self-contained page (no scripts or styles fetched from anywhere; videos by relative path, as
neighbours.html, with the same embedded poster frames). It shows one triplet at a time: the seed video and candidates A and B, with no genre or
title that would tell the answer. Answers stay in the browser (localStorage, per page and annotator name),
survive a reload, and "Download judgements CSV" exports them as seed,candidate_a,candidate_b,choice,
annotator,time: the format `rq2.judgements` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mvcl.io import atomic_path
from mvcl.report.pages import STYLE, Posters, media_source

_JUDGE_STYLE = """
.triplet { display: flex; gap: 1.2em; align-items: flex-start; }
.triplet figure { width: 320px; }
button { font-size: 1em; margin: 0.3em 0.4em 0.3em 0; padding: 0.4em 0.9em; }
button.chosen { outline: 3px solid #1a7f37; }
#status { margin: 0.6em 0; }
"""

_JUDGE_SCRIPT = """
const data = JSON.parse(document.getElementById('triplets').textContent);
const storageKey = 'mvcl-judge:' + data.page;
const state = Object.assign({annotator: '', position: 0, answers: {}},
                            JSON.parse(localStorage.getItem(storageKey) || '{}'));
const players = {seed: document.getElementById('seed'), a: document.getElementById('a'),
                 b: document.getElementById('b')};
const posters = JSON.parse(document.getElementById('posters').textContent);
const nameInput = document.getElementById('annotator');
nameInput.value = state.annotator;
function save() { localStorage.setItem(storageKey, JSON.stringify(state)); }
function answerKey(index) { return state.annotator + '\\u0000' + index; }
function answered() {
  return Object.keys(state.answers).filter((key) => key.startsWith(state.annotator + '\\u0000')).length;
}
function show(position) {
  state.position = Math.max(0, Math.min(position, data.triplets.length - 1));
  save();
  const triplet = data.triplets[state.position];
  for (const [slot, player] of Object.entries(players)) {
    player.pause();
    player.poster = posters[triplet[slot + '_poster']];
    player.src = triplet[slot + '_src'];
    player.dataset.videoId = triplet[slot];
  }
  const answer = state.answers[answerKey(state.position)];
  for (const slot of ['a', 'b']) {
    document.getElementById('choose-' + slot).classList.toggle('chosen', !!answer && answer.choice === slot);
  }
  document.getElementById('status').textContent =
    `Triplet ${state.position + 1} of ${data.triplets.length}; ${answered()} answered by ` +
    `${state.annotator || '(enter your name)'}.`;
}
function choose(slot) {
  if (!state.annotator) {
    document.getElementById('status').textContent = 'Enter your name first: answers are kept per annotator.';
    nameInput.focus();
    return;
  }
  state.answers[answerKey(state.position)] = {choice: slot, time: new Date().toISOString()};
  show(state.position + 1 < data.triplets.length ? state.position + 1 : state.position);
}
function csvField(value) {
  const text = String(value);
  return /[",\\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}
function judgementsCsv() {
  const lines = ['seed,candidate_a,candidate_b,choice,annotator,time'];
  for (const [key, answer] of Object.entries(state.answers)) {
    const [annotator, index] = key.split('\\u0000');
    const triplet = data.triplets[Number(index)];
    lines.push([triplet.seed, triplet.a, triplet.b, answer.choice, annotator, answer.time].map(csvField).join(','));
  }
  return lines.join('\\n') + '\\n';
}
nameInput.addEventListener('change', () => { state.annotator = nameInput.value.trim(); show(state.position); });
document.getElementById('choose-a').addEventListener('click', () => choose('a'));
document.getElementById('choose-b').addEventListener('click', () => choose('b'));
document.getElementById('previous').addEventListener('click', () => show(state.position - 1));
document.getElementById('next').addEventListener('click', () => show(state.position + 1));
document.getElementById('export').addEventListener('click', () => {
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([judgementsCsv()], {type: 'text/csv'}));
  link.download = 'judgements.csv';
  document.body.appendChild(link);
  link.click();
  link.remove();
});
// One sound at a time.
Object.values(players).forEach((player) => player.addEventListener('play', () => {
  Object.values(players).forEach((other) => { if (other !== player) other.pause(); });
}));
show(state.position);
"""


def render_judge_page(
    triplets: pd.DataFrame, paths: dict[str, str], page_dir: str | Path, page_id: str
) -> str:
    """The page for `triplets` (seed, candidate_a, candidate_b, in order); `paths` maps video_id -> file."""
    posters = Posters()
    records = [
        {
            "seed": str(row.seed),
            "a": str(row.candidate_a),
            "b": str(row.candidate_b),
            "seed_src": media_source(paths[row.seed], page_dir),
            "a_src": media_source(paths[row.candidate_a], page_dir),
            "b_src": media_source(paths[row.candidate_b], page_dir),
            "seed_poster": posters.id_for(paths[row.seed]),
            "a_poster": posters.id_for(paths[row.candidate_a]),
            "b_poster": posters.id_for(paths[row.candidate_b]),
        }
        for row in triplets.itertuples()
    ]
    data = json.dumps({"page": page_id, "triplets": records}).replace("</", "<\\/")
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>Which is more similar to the seed?</title>",
            f"<style>{STYLE}{_JUDGE_STYLE}</style></head><body>",
            "<h1>Which candidate is more similar to the seed?</h1>",
            "<p>Watch and listen to the seed, then to candidates A and B, and choose the one more similar to the "
            "seed as a music video: sound and picture together, as you would judge a recommendation. Your "
            "answers stay in this browser; when done, download them and send the CSV. Keep this page inside the "
            f"results folder: the players read the videos from their own folders. {len(records)} triplets.</p>",
            '<p><label>Your name: <input id="annotator" autocomplete="off"></label></p>',
            '<div class="triplet">',
            '<figure class="rank-0"><video id="seed" controls preload="metadata"></video>'
            "<figcaption><b>seed</b></figcaption></figure>",
            '<figure><video id="a" controls preload="metadata"></video><figcaption><b>A</b></figcaption></figure>',
            '<figure><video id="b" controls preload="metadata"></video><figcaption><b>B</b></figcaption></figure>',
            "</div>",
            '<p><button id="choose-a">A is more similar</button><button id="choose-b">B is more similar</button>'
            '<button id="previous">previous</button><button id="next">next (skip)</button>'
            '<button id="export">Download judgements CSV</button></p>',
            '<p id="status"></p>',
            f'<script id="triplets" type="application/json">{data}</script>',
            posters.script(),
            f"<script>{_JUDGE_SCRIPT}</script></body></html>",
        ]
    )


def write_judge_page(triplets: pd.DataFrame, paths: dict[str, str], out: str | Path, page_id: str) -> None:
    page = render_judge_page(triplets, paths, Path(out).parent, page_id)
    with atomic_path(out) as temporary:
        temporary.write_text(page, encoding="utf-8")
