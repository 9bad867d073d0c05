"""What a published board says beside and in each dataset x protocol table, shared by leaderboard.md, the .tex
and the web page so the three never disagree: what the data is (from its dataset plugin: synthetic or not),
what the protocol tests, which commits and dates the rows were made at, the columns that hold one value on
every row (said once, in the section's header, instead of repeated), and the table's shown columns.

leaderboard.md is read in terminals and diffs: every line of it fits ``MD_WIDTH`` columns (wide tables are
split into several, each keyed by the row number; long setting labels become footnotes)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from ascbench.leaderboard import _human_macs, _interval, _mean_std, versus_best_labels

MD_WIDTH = 100
# Columns that describe a row rather than score it: said once in the header when equal on every row.
DESCRIPTIVE = ("strategy", "semi", "labeled", "setting", "seeds", "failed runs")


def _dataset_spec(name: str):
    """The dataset's spec, or None when its plugin is not installed here."""
    from ascbench.errors import AscbenchError
    from ascbench.registry import get_registry

    try:
        return get_registry().dataset(name)
    except AscbenchError:
        return None


def _protocol_spec(name: str):
    """The protocol's spec (old names resolve), or None when its plugin is not installed here."""
    from ascbench.errors import AscbenchError
    from ascbench.registry import get_registry

    try:
        return get_registry().protocol(name)
    except AscbenchError:
        return None


def documentation_link(documentation: str, board_dir: Path | None) -> str:
    """Where a plugin's ``documentation`` (a URL, or a path from the repository root such as
    ``README.md#anchor``) is, as seen from the board's folder: a relative link when the board lies inside the
    ascbench repository (``../README.md#anchor`` from ``leaderboards/``), else the path named as the
    repository's."""
    if not documentation or "://" in documentation:
        return documentation
    root = Path(__file__).resolve().parent.parent
    path, _, anchor = documentation.partition("#")
    if board_dir is None or not (root / path).exists():
        return f"{documentation} in the ascbench repository"
    board = board_dir.resolve()
    if board != root and root not in board.parents:
        return f"{documentation} in the ascbench repository"
    relative = os.path.relpath(root / path, board).replace(os.sep, "/")
    return f"{relative}#{anchor}" if anchor else relative


def dataset_documentation_links(table: pd.DataFrame, board_dir: Path | None = None) -> list[str]:
    """The documentation links of the board's datasets as its notes write them (for the page to make clickable)."""
    specs = [_dataset_spec(n) for n in sorted(set(table["dataset"]))] if not table.empty else []
    links = [documentation_link(s.documentation, board_dir) for s in specs if s is not None and s.documentation]
    return [link for link in links if not link.endswith(" in the ascbench repository")]


def dataset_kind(name: str) -> str:
    """A dataset's nature in a few words for headings: "synthetic audio", "recorded audio" or "plugin not
    installed"."""
    spec = _dataset_spec(name)
    if spec is None:
        return "plugin not installed here"
    return "synthetic audio" if spec.synthetic else "recorded audio"


def section_title(dataset: str, protocol: str) -> str:
    """A section's heading: its data and what kind of audio it is, its protocol, and LEAKY where the protocol keeps
    no group whole, so that nobody reads a leaky or synthetic number from the heading alone as a finding."""
    spec = _protocol_spec(protocol)
    leaky = " (LEAKY split)" if spec is not None and not spec.keeps_groups_whole else ""
    return f"{dataset} ({dataset_kind(dataset)}) — {protocol}{leaky}"


def dataset_note(name: str, board_dir: Path | None = None, markdown: bool = False) -> str:
    """``name``: what its plugin says it is, leading with whether its audio is synthetic, and where what was
    planted in it is written."""
    spec = _dataset_spec(name)
    if spec is None:
        return f"{name} (its dataset plugin is not installed here, so its description is unknown)"
    kind = ("procedurally generated synthetic audio made by its plugin, not recordings: scores on it say how "
            "methods compare on this synthetic task, not how they do on real scenes" if spec.synthetic else
            "recorded audio")
    note = f"{name}: {kind}; {spec.description}" if spec.description else f"{name}: {kind}"
    if spec.documentation:
        what = "what was planted in it" if spec.synthetic else "what it is"
        link = documentation_link(spec.documentation, board_dir)
        # Markdown gets a link it can follow; the page finds the bare path and links it; LaTeX prints the path.
        clickable = markdown and not link.endswith(" in the ascbench repository")
        note += f" ([{what}]({link}))" if clickable else f" ({what}: {link})"
    return note


def protocol_note(name: str) -> str:
    """``name``: what the protocol's plugin says it tests, and why its split leaks where it does."""
    spec = _protocol_spec(name)
    if spec is None:
        return f"{name}: its protocol plugin is not installed here, so its description is unknown"
    note = f"{name}: {spec.description}" if spec.description else name
    if not spec.keeps_groups_whole:
        note += f". LEAKY: {spec.leak}"
    return note


def board_title(table: pd.DataFrame) -> str:
    """The board's title, naming its data and what kind of audio it is."""
    names = sorted(set(table["dataset"])) if not table.empty else []
    return "ascbench leaderboard" + (": " + ", ".join(f"{n} ({dataset_kind(n)})" for n in names) if names else "")


def data_header(table: pd.DataFrame, board_dir: Path | None = None, markdown: bool = False) -> str:
    """The board's opening line on its data: each dataset, whether its audio is synthetic, and where what was
    planted in it is written (the first thing a reader of any rendering sees)."""
    if table.empty:
        return ""
    names = sorted(set(table["dataset"]))
    return "\n" + wrap("Data of this board: " + "; ".join(dataset_note(n, board_dir, markdown) for n in names) + ".") + "\n"


def made_note(part: pd.DataFrame) -> str:
    """The commits and dates a section's runs were made at (from their records)."""
    commits = sorted({c for cs in part.get("commits", []) for c in cs})
    firsts = [d for d in part.get("first_made", []) if isinstance(d, str) and d]
    lasts = [d for d in part.get("last_made", []) if isinstance(d, str) and d]
    when = ""
    if firsts and lasts:
        first, last = min(firsts)[:10], max(lasts)[:10]
        when = f" on {first}" if first == last else f" from {first} to {last}"
    named = ", ".join(c[:12] for c in commits) if commits else "an unrecorded commit"
    return f"made at commit{'s' if len(commits) > 1 else ''} {named}{when}"


def section_notes(part: pd.DataFrame, board_dir: Path | None = None, markdown: bool = False) -> list[str]:
    """The sentences every rendering of a section starts with: data, protocol, when and at what commit."""
    dataset, protocol = part["dataset"].iloc[0], part["protocol"].iloc[0]
    return [f"Data: {dataset_note(dataset, board_dir, markdown)}.", f"Protocol {protocol_note(protocol)}.",
            f"Rows {made_note(part)}."]


def display_frame(part: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """A section's table as shown (strings), and the descriptive columns equal on every row (moved out of the
    table into the header). Dataset, protocol and metadata ceiling are the section's own and never shown."""
    stats = {col: part[col] if col in part else pd.Series(np.nan, index=part.index)
             for col in ("ci_low", "ci_high", "vs_best")}
    folds = part["folds"] if "folds" in part else pd.Series(0, index=part.index)
    shown = pd.DataFrame({
        "#": range(1, len(part) + 1),
        "model": part["model"], "strategy": part["strategy"], "semi": part["semi"], "labeled": part["labeled"],
        "setting": part["setting_label"],
        "seeds": [f"{s} x {f} folds" if f else str(s) for s, f in zip(part["seeds"], folds)],
        "failed runs": part["failed"].astype(int).astype(str),
        "macro acc %": [_mean_std(m, s, n) for m, s, n in zip(part["macro_accuracy"], part["macro_accuracy_std"],
                                                              part["seeds"])],
        "worst fold %": [f"{100 * w:.1f}" if f else "" for w, f in zip(part.get("worst_fold", folds * np.nan), folds)],
        "95 % CI": [_interval(lo, hi) for lo, hi in zip(stats["ci_low"], stats["ci_high"])],
        "vs best": versus_best_labels(part),
        "acc %": [_mean_std(m, s, n) for m, s, n in zip(part["accuracy"], part["accuracy_std"], part["seeds"])],
        "macro-F1 %": [f"{100 * v:.1f}" for v in part["macro_f1"]],
        "log loss": [f"{v:.3f}" for v in part["log_loss"]],
        "worst city %": [f"{100 * v:.1f}" for v in part["worst_city"]],
        "worst period %": [f"{100 * v:.1f}" for v in part["worst_period"]],
        "params": [f"{p / 1e3:.1f} k" for p in part["params"]],
        "MACs/clip": [_human_macs(m) for m in part["macs"]],
        "latency ms": [f"{v:.2f}" for v in part["latency_ms"]],
        "train s": [f"{v:.1f}" for v in part["train_s"]],
    }).replace({"nan": "n/a", "nan k": "n/a"})
    if not folds.any():
        shown = shown.drop(columns="worst fold %")
    if stats["ci_low"].isna().all() and not stats["vs_best"].fillna("").astype(bool).any():
        shown = shown.drop(columns=["95 % CI", "vs best"])  # no predictions at hand: nothing to say
    constants = {}
    for col in DESCRIPTIVE:
        values = set(shown[col])
        if len(values) == 1 and (len(shown) > 1 or col != "strategy"):
            constants[col] = values.pop()
    if constants.get("failed runs") == "0":
        del constants["failed runs"]  # the column says something only when a run failed
        shown = shown.drop(columns="failed runs")
    return shown.drop(columns=[c for c in constants if c in shown]), constants


def constants_note(constants: dict[str, str]) -> str:
    return ("Same on every row: " + "; ".join(f"{k} {v}" for k, v in constants.items()) + ".") if constants else ""


def _width(frame: pd.DataFrame) -> int:
    return max(len(line) for line in tabulate(frame, headers="keys", tablefmt="github", showindex=False).splitlines())


def narrow_tables(frame: pd.DataFrame, key: str = "#", width: int = MD_WIDTH) -> list[str]:
    """``frame`` as one or more GitHub tables of at most ``width`` columns each: columns are taken in order
    while they fit, each further table repeats the ``key`` column so its rows can be matched."""
    tables, current = [], [key]
    for col in (c for c in frame.columns if c != key):
        if len(current) > 1 and _width(frame[[*current, col]]) > width:
            tables.append(current)
            current = [key]
        current.append(col)
    tables.append(current)
    return [tabulate(frame[cols], headers="keys", tablefmt="github", showindex=False) for cols in tables]


def wrap(text: str, width: int = MD_WIDTH) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False))


def markdown_section(part: pd.DataFrame, extra_note: str = "", board_dir: Path | None = None) -> str:
    """One section of leaderboard.md: its notes, then its table(s), within ``MD_WIDTH`` columns. Setting labels
    longer than a short word become footnotes (s1, s2, ...) listed under the tables."""
    shown, constants = display_frame(part)
    footnotes = {}
    if "setting" in shown:
        labels = list(dict.fromkeys(shown["setting"]))
        long = [label for label in labels if len(label) > 12]
        footnotes = {label: f"s{i + 1}" for i, label in enumerate(long)}
        shown = shown.assign(setting=[footnotes.get(label, label) for label in shown["setting"]])
    constant_setting = constants.get("setting", "")
    if len(constant_setting) > 12:
        footnotes[constant_setting] = "s1"
        constants["setting"] = "s1"
    notes = [*section_notes(part, board_dir, markdown=True), constants_note(constants), extra_note]
    text = "\n".join(wrap(n) for n in notes if n) + "\n\n" + "\n\n".join(narrow_tables(shown))
    if footnotes:
        text += "\n\n" + "\n".join(wrap(f"{key}: {label}") for label, key in footnotes.items())
    return text + "\n"
