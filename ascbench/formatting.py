"""How the command line shows tables and numbers: one place, so every command fits a terminal and a log alike.

Tables fit the terminal's width (``$COLUMNS``, else the terminal's size, else ``DEFAULT_WIDTH`` when the output is
not a terminal): the widest columns are narrowed and their cells wrapped onto more lines (at most
``MAX_CELL_LINES``, the rest abbreviated with "…"); ``wide=True`` (``--wide``) shows every cell whole on one line.
Numbers are formatted here once: no raw floats (0.07608695652173914) reach a user, percentages have fixed decimals.

Deliberately light (standard library only): ``ascbench --help`` and ``ascbench list`` import it.
"""

from __future__ import annotations

import math
import os
import re
import sys
import textwrap
from typing import Any, Iterable, Sequence

DEFAULT_WIDTH = 100  # columns when the output is not a terminal (a log, a pipe, CI)
MIN_COLUMN = 8  # a column is never narrowed below this (nor below its longest word, up to MAX_WORD)
MAX_WORD = 24
MAX_CELL_LINES = 4  # a wrapped cell shows at most this many lines; the rest is abbreviated
GAP = "  "  # between columns
ELLIPSIS = "…"

_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( ?%| [kMG]| s| ms| kB)?$", re.IGNORECASE)


def terminal_width(width: int | None = None) -> int:
    """The width to fit: ``width`` if given, else ``$COLUMNS``, else that of the terminal standard output is,
    else (a file, a pipe, CI, captured output) ``DEFAULT_WIDTH``."""
    if width is not None:
        return max(20, int(width))
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(20, int(columns))
    try:  # sys.stdout, not the process's first stdout (shutil's choice): output redirected in-process is no terminal
        if sys.stdout.isatty():
            return max(20, os.get_terminal_size(sys.stdout.fileno()).columns)
    except (AttributeError, OSError, ValueError):
        pass
    return DEFAULT_WIDTH


# ---- numbers ---------------------------------------------------------------------------------------------------

def format_percent(fraction: float | None, decimals: int = 2) -> str:
    """A fraction (0.0761) as a percentage with fixed decimals ("7.61 %"); None or NaN as "n/a"."""
    if fraction is None or _is_nan(fraction):
        return "n/a"
    return f"{100 * fraction:.{decimals}f} %"


def format_float(value: float | None, digits: int = 4) -> str:
    """A float with ``digits`` significant digits (0.07608695652173914 -> "0.07609"); None or NaN as "n/a"."""
    if value is None or _is_nan(value):
        return "n/a"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 1e-4:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def format_int(value: int) -> str:
    """An integer with thousands separators (376,330)."""
    return f"{value:,}"


def format_seconds(seconds: float) -> str:
    """A duration: "0.4 s", "12.3 s", "4 min 05 s", "1 h 02 min"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_value(value: Any) -> str:
    """Any table cell as text: numbers once and alike, None as "-", mappings and sequences compactly."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return format_int(value) if abs(value) >= 10_000 else str(value)
    if _is_numpy_number(value) and value.dtype.kind in "iu":
        return format_value(int(value))
    if isinstance(value, float) or _is_numpy_number(value):
        return format_float(float(value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(format_value(v) for v in value) or "-"
    return str(value)


def _is_nan(value: Any) -> bool:
    try:
        return math.isnan(value)
    except TypeError:
        return False


def _is_numpy_number(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0


# ---- tables ----------------------------------------------------------------------------------------------------

def render_table(frame_or_rows: Any, headers: Sequence[str] | None = None, *, wide: bool = False,
                 width: int | None = None, key_columns: int = 1) -> str:
    """A plain-text table of a DataFrame, a list of dicts or a list of sequences, fitted to ``width``.

    ``headers``: the column titles (default: the frame's columns or the dicts' keys; none for bare sequences).
    Cells go through :func:`format_value`; numeric columns are right-aligned. Unless ``wide``, the widest
    columns are narrowed until the table fits ``terminal_width(width)``, their cells wrapped at spaces; a table
    with more columns than fit even then is shown in blocks of columns, one under the other, each repeating the
    first ``key_columns`` columns so that its rows can be told apart.
    """
    header, rows = _cells(frame_or_rows, headers)
    if not rows and not header:
        return ""
    ncols = max([len(header)] + [len(r) for r in rows])
    header = list(header) + [""] * (ncols - len(header)) if header else []
    rows = [list(r) + [""] * (ncols - len(r)) for r in rows]
    columns = [([header[i]] if header else []) + [r[i] for r in rows] for i in range(ncols)]
    natural = [max(_longest_line(c) for c in column) for column in columns]
    if wide:
        return _render(header, rows, natural)
    total = terminal_width(width)
    floors = [_floor(column) for column in columns]
    blocks = _column_blocks(natural, floors, total, min(key_columns, ncols - 1))
    if len(blocks) == 1:
        # Prose wraps at spaces first; only then are long words (identifiers, paths) broken.
        words = [max(_longest_word(column), f) for column, f in zip(columns, floors)]
        return _render(header, rows, _fit(_fit(natural, words, total), floors, total))
    return "\n\n".join(render_table([[r[i] for i in block] for r in rows], [header[i] for i in block] if header else None,
                                      width=total, key_columns=0) for block in blocks)


def _render(header: list[str], rows: list[list[str]], widths: list[int]) -> str:
    numeric = [any(_NUMBER.match(r[i]) for r in rows) and all(_NUMBER.match(r[i]) or r[i] in ("", "-", "n/a") for r in rows)
               for i in range(len(widths))]
    lines = []
    if header:
        lines += _render_row(header, widths, numeric)
        lines.append(GAP.join("-" * w for w in widths).rstrip())
    for row in rows:
        lines += _render_row(row, widths, numeric)
    return "\n".join(lines)


def wrap_text(text: str, width: int | None = None) -> str:
    """A paragraph of prose wrapped to ``terminal_width(width)``."""
    return "\n".join(textwrap.wrap(text, terminal_width(width), break_on_hyphens=False))


def render_pairs(pairs: Iterable[tuple[str, Any]], *, wide: bool = False, width: int | None = None) -> str:
    """A two-column "label  value" table (a summary), fitted like :func:`render_table`."""
    return render_table([(label, value) for label, value in pairs], wide=wide, width=width)


def _cells(data: Any, headers: Sequence[str] | None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) as text, from a DataFrame, dicts or sequences."""
    if hasattr(data, "columns") and hasattr(data, "itertuples"):  # a pandas DataFrame (not imported here)
        header = list(headers) if headers is not None else [str(c) for c in data.columns]
        rows = [[format_value(_plain(v)) for v in row] for row in data.itertuples(index=False, name=None)]
        return header, rows
    data = list(data)
    if data and isinstance(data[0], dict):
        keys = list(headers) if headers is not None else list(dict.fromkeys(k for row in data for k in row))
        return [str(k) for k in keys], [[format_value(row.get(k)) for k in keys] for row in data]
    return list(headers or []), [[format_value(v) for v in row] for row in data]


def _plain(value: Any) -> Any:
    """A pandas missing value as None, so it shows as "-"."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _longest_line(text: str) -> int:
    return max((len(line) for line in text.split("\n")), default=0)


def _longest_word(column: list[str]) -> int:
    return max((len(w) for c in column for w in c.split()), default=0)


def _floor(column: list[str]) -> int:
    """The narrowest a column gets: its longest word (names are not broken), at least MIN_COLUMN, at most
    MAX_WORD (a longer word, such as a run id or a path, is broken), never wider than the column itself."""
    natural = max(_longest_line(c) for c in column)
    return min(natural, max(MIN_COLUMN, min(_longest_word(column), MAX_WORD)))


def _fit(natural: list[int], floors: list[int], total: int) -> list[int]:
    """Column widths that fit ``total`` columns: narrow the widest column, one character at a time, until the
    table fits or every column is at its floor."""
    widths = list(natural)
    budget = total - len(GAP) * (len(widths) - 1)
    while sum(widths) > budget:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _column_blocks(natural: list[int], floors: list[int], total: int, keys: int) -> list[list[int]]:
    """Columns in blocks that each fit ``total``, every block led by the ``keys`` first columns: packed at their
    natural widths, a wide (prose) column counted at a third of the width at most, never below its floor."""
    floors = [max(f, min(n, total // 3)) for n, f in zip(natural, floors)]
    key_width = sum(floors[:keys]) + len(GAP) * keys
    blocks: list[list[int]] = []
    current: list[int] = []
    used = key_width
    for i in range(keys, len(floors)):
        need = floors[i] + (len(GAP) if current else 0)
        if current and used + need > total:
            blocks.append(current)
            current, used, need = [], key_width, floors[i]
        current.append(i)
        used += need
    blocks.append(current)
    return [list(range(keys)) + block for block in blocks]


def _wrap(text: str, width: int) -> list[str]:
    """A cell's lines within ``width``: wrapped at spaces (long words broken), at most ``MAX_CELL_LINES``."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += textwrap.wrap(paragraph, width, break_on_hyphens=False) or [""]
    if len(lines) > MAX_CELL_LINES:
        last = lines[MAX_CELL_LINES - 1]
        lines = lines[:MAX_CELL_LINES - 1] + [last[:width - 1] + ELLIPSIS]
    return lines


def _render_row(cells: list[str], widths: list[int], numeric: list[bool]) -> list[str]:
    wrapped = [_wrap(c, w) if w < _longest_line(c) else c.split("\n") for c, w in zip(cells, widths)]
    height = max(len(w) for w in wrapped)
    out = []
    for k in range(height):
        parts = []
        for lines, w, right in zip(wrapped, widths, numeric):
            text = lines[k] if k < len(lines) else ""
            parts.append(text.rjust(w) if right else text.ljust(w))
        out.append(GAP.join(parts).rstrip())
    return out


def columns_of_plain_table(text: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of a plain table as tabulate's "simple" format prints it: the line of dashes under the
    headers marks each column's extent, so cells holding spaces (or "|") are read back whole."""
    lines = text.splitlines()
    rule = next((k for k, line in enumerate(lines) if line.strip() and set(line.strip()) <= {"-", " "}), None)
    if rule is None or rule == 0:
        return [], [[cell] for cell in lines]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[rule])]

    def split(line: str) -> list[str]:
        # A cell may start a little left of its dashes when right-aligned: each column ends where the next starts.
        bounds = [(spans[i][0] if i == 0 else spans[i - 1][1], spans[i][1]) for i in range(len(spans))]
        return [line[a:b].strip() for a, b in bounds]

    header = [" ".join(h) for h in zip(*(split(line) for line in lines[:rule]))]
    return [h.strip() for h in header], [split(line) for line in lines[rule + 1:] if line.strip()]
