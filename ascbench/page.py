"""The published leaderboard as one self-contained, offline web page: a section per dataset x protocol (chosen
from a menu or all shown), each with its sortable table (rows numbered and linked to their run records) and its
accuracy-vs-MACs figure (intervals, Pareto front, chance and metadata ceiling), then the claims tested."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from ascbench.board_table import (board_title, constants_note, data_header, dataset_documentation_links,
                                  display_frame, section_notes, section_title)
from ascbench.claims import CLAIMS_INTRO, Claim, claims_title, compare
from ascbench.plots import accuracy_vs_macs, model_colours

# The page fits a 1,280 px window without sideways scrolling: the body is capped below it and table cells
# wrap (tests/test_board_output.py measures it in a headless browser).
STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 4px;font-size:12px}th{cursor:pointer;background:#eee}
td:nth-child(n+3){white-space:nowrap}td.wrap{white-space:normal}
nav{position:sticky;top:0;background:#fff;padding:.4em 0;border-bottom:1px solid #ccc}nav a{margin-right:1em}
section{margin-top:2em}.note{color:#555;font-size:13px}svg{max-width:100%;height:auto}"""

SCRIPT = """
function sortBy(table, col) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = r => { const t = r.cells[col].textContent; const n = parseFloat(t); return isNaN(n) ? t : n; };
  const asc = body.dataset.col == col && body.dataset.dir != 'asc';
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1));
  body.dataset.col = col; body.dataset.dir = asc ? 'asc' : 'desc';
  rows.forEach(r => body.appendChild(r));
}
function show(id) {
  document.querySelectorAll('section.board').forEach(s => { s.hidden = id !== 'all' && s.id !== id; });
}
document.querySelectorAll('table.sortable').forEach(t =>
  Array.from(t.tHead.rows[0].cells).forEach((th, i) => th.addEventListener('click', () => sortBy(t, i))));
"""


def chance_and_ceiling(part: pd.DataFrame) -> tuple[float | None, float | None]:
    """A section's chance level (a uniform guess's macro accuracy: one over the classes each run scores, averaged
    over the section's runs, as unseen-city scores another number of classes per seed) and metadata ceiling (what
    city and time alone score)."""
    known = part[part["chance"].notna()]
    weights = known["seeds"].clip(lower=1)
    chance = float((known["chance"] * weights).sum() / weights.sum()) if len(known) else None
    ceiling = float(part["metadata_ceiling"].max()) if part["metadata_ceiling"].notna().any() else None
    return chance, ceiling


def section_note(part: pd.DataFrame) -> str:
    chance, ceiling = chance_and_ceiling(part)
    varies = part["chance"].nunique() > 1
    bits = ([f"chance {100 * chance:.1f} %" + (" (one over the classes each run scores, averaged over the runs: the "
                                                 "scored classes differ between seeds)" if varies else "")]
            if chance else []) + (
        [f"metadata ceiling {100 * ceiling:.1f} % (what city and time alone score on these splits)"]
        if ceiling is not None else [])
    return "; ".join(bits)


def section_id(dataset: str, protocol: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", f"{dataset}-{protocol}".lower()).strip("-")


# Cells whose text may wrap inside the table (names and labels); numbers stay on one line.
_WRAPPING = {"model", "strategy", "semi", "setting", "vs best"}


def _table(part: pd.DataFrame) -> tuple[str, str]:
    """The section's table as HTML, rows numbered (the figure's labels) and linked to each seed's record, and
    the header note naming the columns that hold one value on every row (left out of the table)."""
    shown, constants = display_frame(part)
    head = [*shown.columns, "records"]
    rows = []
    for cells, run_ids in zip(shown.itertuples(index=False), part["run_ids"]):
        links = " ".join(f'<a href="results/{html.escape(r)}.json">{k + 1}</a>' for k, r in enumerate(run_ids))
        tds = "".join(f'<td class="wrap">{html.escape(str(c))}</td>' if col in _WRAPPING else f"<td>{html.escape(str(c))}</td>"
                      for col, c in zip(shown.columns, cells))
        rows.append(f"<tr>{tds}<td>{links}</td></tr>")
    heads = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    table = f'<table class="sortable"><thead><tr>{heads}</tr></thead><tbody>\n' + "\n".join(rows) + "\n</tbody></table>"
    return table, constants_note(constants)


def _linked(text: str, links: list[str]) -> str:
    """``text`` as HTML, each documentation link in it made clickable."""
    escaped = html.escape(text)
    for link in links:
        target = html.escape(link)
        escaped = escaped.replace(target, f'<a href="{target}">{target}</a>')
    return escaped


def leaderboard_page(table: pd.DataFrame, claims: list[Claim], intro: str = "", board_dir: Path | None = None) -> str:
    """The self-contained web page of a board: its data, a section per dataset x protocol, then the claims."""
    sections, links = [], []
    doc_links = dataset_documentation_links(table, board_dir)
    colours = model_colours(table["model"])  # one colour per model in every figure of the page
    for (dataset, protocol), part in table.groupby(["dataset", "protocol"], sort=True):
        part = part.reset_index(drop=True)
        sid = section_id(dataset, protocol)
        chance, ceiling = chance_and_ceiling(part)
        note = section_note(part)
        figure = accuracy_vs_macs(part, chance, ceiling, title=f"{dataset} / {protocol}", colours=colours)
        links.append(f'<a href="#{sid}">{html.escape(dataset)} / {html.escape(protocol)}</a>')
        body, constants = _table(part)
        about = "".join(f"<p class=\"about\">{_linked(line, doc_links)}</p>" for line in section_notes(part, board_dir))
        sections.append(f'<section class="board" id="{sid}"><h2>{html.escape(section_title(dataset, protocol))}</h2>\n'
                        f"{about}\n"
                        f'<p class="note">{html.escape(note + "; " if note else "")}{len(part)} rows, ranked by macro accuracy. '
                        f"{html.escape(constants)}</p>\n"
                        f"{body}\n<figure>{figure}<figcaption class=\"note\">"
                        f"{html.escape(section_title(dataset, protocol))}: macro accuracy against MACs per "
                        "clip; numbers are the table's rows, colours its models, marker shapes its strategies."
                        "</figcaption></figure></section>")
    options = "".join(f'<option value="{section_id(d, p)}">{html.escape(d)} / {html.escape(p)}</option>'
                      for d, p in table.groupby(["dataset", "protocol"], sort=True).groups)
    claim_html = []
    for claim in claims:
        lines = compare(table, claim)
        body = lines.to_html(index=False, escape=True, border=0, classes="sortable") if len(lines) else \
            "<p>no pair of rows to compare</p>"
        claim_html.append(f"<h3>{html.escape(claim.name)}: {html.escape(claim.key)} {html.escape(claim.a)} vs "
                          f"{html.escape(claim.b)}</h3>\n{body}")
    claims_section = (f'<section id="claims"><h2>{html.escape(claims_title(table))}</h2><p class="note">'
                      f"{html.escape(CLAIMS_INTRO)}</p>\n"
                      f'<p class="data">{_linked(data_header(table, board_dir).strip(), doc_links)}</p>\n'
                      + "\n".join(claim_html) + "</section>" if claims else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(board_title(table))}</title><style>{STYLE}</style></head>
<body><h1>{html.escape(board_title(table))}</h1>
<p class="data">{_linked(data_header(table, board_dir).strip(), doc_links)}</p>
<p>{html.escape(intro)}</p>
<nav>Show <select id="pick" onchange="show(this.value)"><option value="all">every section</option>{options}</select>
{' '.join(links)}{' <a href="#claims">claims</a>' if claims else ''}</nav>
{chr(10).join(sections)}
{claims_section}
<script>{SCRIPT}</script>
</body></html>
"""
