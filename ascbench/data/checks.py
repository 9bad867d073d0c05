"""Checks of what metadata *means*, shared by the clip table (:class:`ascbench.data.dataset.ClipDataset`) and
the dataset plugins' own readers: every value that would quietly contaminate a split is refused with the
file, row and column it came from.

* **Names** (cities, scene labels, recording ids): two spellings that are equal once Unicode-normalised
  (NFKC), case-folded, with white space collapsed, zero-width characters dropped and quotes, apostrophes
  and dashes unified (``xi'an``, ``Xi’an``, ``Xi'an ``) are one name written two ways; for cities and
  labels accents and punctuation do not count either (``Xian``, ``Xī'ān``). Keeping both would make one
  city two (and put a held-out city on the training side), so they are refused until the file writes
  it one way. A name padded the same way in every row is one spelling, and is stripped.
* **Flags** (``labeled``): only ``true/false``, ``yes/no`` and ``1/0`` (any case, surrounding spaces
  ignored), so that ``no`` reads as false and a typo is an error rather than "labeled".
* **Timestamps**: local wall-clock times in the dataset's one declared format (default
  ``YYYY-MM-DD HH:MM:SS``), without a UTC offset (the hour-of-day features and periods are local time;
  an offset would have to be dropped or converted, either a guess), inside the dataset's declared
  recording dates, or, when none are declared, between :data:`EARLIEST` and now.
* **One scene per recording**: a recording's labeled clips share one label.
* **Files** read by a loader must be regular files: a dangling link, a directory or a FIFO in place of a
  metadata file is named, never replaced by a fallback nor waited on.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ascbench.errors import DataError

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TIME_FORMAT_TEXT = {TIME_FORMAT: "YYYY-MM-DD HH:MM:SS"}
EARLIEST = pd.Timestamp("1990-01-01")  # no dataset of this kind predates digital field recorders
TRUE_WORDS, FALSE_WORDS = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})
# An offset follows a time of day: a bare date's "-01" is its day, not an offset.
_OFFSET = re.compile(r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)\s*$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")
# Characters that people (and spreadsheets) swap for one another in names.
_UNIFY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
                        "\u02bc": "'", "\u201c": '"', "\u201d": '"', "\u2010": "-", "\u2011": "-", "\u2012": "-",
                        "\u2013": "-", "\u2014": "-", "\u2212": "-"})
_SPACE = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")  # soft hyphen, zero-width characters


@dataclass(frozen=True)
class MetadataSource:
    """Where a clip table came from, so that a check names the file, its row and its own column name.

    ``path``: the metadata file (None when the table was built otherwise, e.g. from folder names);
    ``columns``: the file's name for a standard column where it differs (``{"city": "location"}``);
    ``first_row``: the file's row number of the table's first clip (2: the header is row 1). A plugin
    that sets ``path`` keeps one table row per file row, in file order.
    """

    path: Path | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    first_row: int = 2

    def locate(self, dataset: str) -> "Where":
        if self.path is None:
            return Where(f"dataset {dataset!r} metadata", dict(self.columns), 0)
        return Where(str(self.path), dict(self.columns), self.first_row)


@dataclass(frozen=True)
class Where:
    """Formats places in one clip table: ``FILE, rows 2, 7, column 'location'``."""

    label: str
    columns: Mapping[str, str]
    offset: int

    def column(self, standard: str) -> str:
        return self.columns.get(standard, standard)

    def rows(self, index: Sequence[int]) -> str:
        numbers = [int(i) + self.offset for i in index]
        shown = ", ".join(map(str, numbers[:3])) + (f" and {len(numbers) - 3} more" if len(numbers) > 3 else "")
        return f"row{'s' if len(numbers) > 1 else ''} {shown}"

    def at(self, column: str | None = None, index: Sequence[int] = ()) -> str:
        parts = [self.label] + ([self.rows(index)] if len(index) else []) + \
            ([f"column {self.column(column)!r}"] if column is not None else [])
        return ", ".join(parts)


# --- names ----------------------------------------------------------------------------------------------

def name_key(name: str, loose: bool = False) -> str:
    """The form two spellings of one name share: NFKC, case-folded, quotes and dashes unified, zero-width
    characters dropped, white space collapsed to one space and stripped. ``loose`` (for names people
    type: cities, scenes) also drops accents and everything but letters and digits, so that ``Xi'an``,
    ``Xian``, ``Xi-an`` and ``Xī'ān`` meet; recording ids keep their punctuation (``a_1`` and ``a1`` may
    well be two recordings)."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", str(name))).translate(_UNIFY).casefold()
    if loose:
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if c.isalnum())
    return _SPACE.sub(" ", text).strip()


def check_spellings(values: pd.Series, where: Where, column: str, known: Sequence[str] = (), loose: bool = True) -> None:
    """Refuse a column in which one name is written two ways, or a known name (a class) another way.

    ``values``: the column as read, one entry per table row; empty cells ("unknown") are ignored.
    ``loose``: compare as :func:`name_key` does for typed names (False: for ids).
    """
    text = values.fillna("").astype(str).reset_index(drop=True)
    rows_of = pd.Series(np.arange(len(text))).groupby(text.to_numpy(), sort=False).agg(list)
    known_by_key = {name_key(k, loose): k for k in known}
    seen: dict[str, str] = {}
    for spelling, rows in rows_of.items():
        if spelling.strip() == "":
            continue
        key = name_key(spelling, loose)
        other = seen.setdefault(key, spelling)
        if other != spelling:
            raise DataError(f"{where.at(column)}: {other!r} ({where.rows(rows_of[other])}) and {spelling!r} "
                            f"({where.rows(rows)}) are one name written two ways (case, spaces, accents or "
                            "punctuation differ); write it the same way in every row")
        exact = known_by_key.get(key)
        if exact is not None and spelling.strip() != exact:  # e.g. the class 'Bus' written 'bus'
            raise DataError(f"{where.at(column, rows)}: {spelling!r} is {exact!r} written another way; "
                            f"write it exactly {exact!r}")


# --- flags ----------------------------------------------------------------------------------------------

def _flag(value: object) -> bool | None:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer()):
        return {0: False, 1: True}.get(int(value))
    if isinstance(value, str):
        word = value.strip().lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None
    return None


def parse_flags(values: pd.Series, where: Where, column: str) -> np.ndarray:
    """A boolean column read strictly: true/false, yes/no, 1/0 (any case); anything else is refused, naming
    the row (``astype(bool)`` would read every non-empty word, "no" and "false" included, as true)."""
    if values.dtype == bool:
        return values.to_numpy()
    flags = [_flag(v) for v in values]
    bad = [i for i, f in enumerate(flags) if f is None]
    if bad:
        value = values.iloc[bad[0]]
        value = value.item() if isinstance(value, np.generic) else value  # 2, not np.int64(2)
        raise DataError(f"{where.at(column, bad[:1])}: {value!r} is not a yes/no value; "
                        "write true or false (also accepted: yes/no, 1/0, in any case)")
    return np.array(flags, dtype=bool)


# --- timestamps -----------------------------------------------------------------------------------------

def _has_offset(value: str) -> bool:
    return bool(_OFFSET.search(value)) and pd.notna(pd.to_datetime(value, errors="coerce", utc=True, format="ISO8601"))


def parse_timestamps(values: pd.Series, where: Where, column: str, time_format: str = TIME_FORMAT) -> pd.Series:
    """Naive local times from ``values`` (text in ``time_format``, or datetimes); empty cells are NaT (time
    unknown). A value in another format, or one carrying a UTC offset or time zone, is refused with its row."""
    values = values.reset_index(drop=True)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        raise DataError(f"{where.at(column)}: timestamps carry a time zone ({values.dtype.tz}); give local "
                        "wall-clock times without one (the hour of day is a model input)")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values
    shown = TIME_FORMAT_TEXT.get(time_format, time_format)
    objects = values.astype(object)
    is_text = np.array([isinstance(v, str) and v.strip() != "" for v in objects])
    is_time = np.array([isinstance(v, (pd.Timestamp, np.datetime64)) or hasattr(v, "tzinfo") for v in objects])
    is_empty = np.array([v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v)) or
                         (isinstance(v, str) and v.strip() == "") for v in objects])
    other = np.flatnonzero(~(is_text | is_time | is_empty))
    if len(other):
        value = objects.iloc[other[0]]
        value = value.item() if isinstance(value, np.generic) else value
        raise DataError(f"{where.at(column, other[:1])}: {value!r} is not a timestamp; "
                        f"write it as {shown}")
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if is_text.any():
        parsed[is_text] = pd.to_datetime(objects[is_text].str.strip(), format=time_format, errors="coerce")
    if is_time.any():
        stamps = [pd.Timestamp(v) for v in objects[is_time]]
        zoned = [i for i, s in zip(np.flatnonzero(is_time), stamps) if s.tzinfo is not None]
        if zoned:
            raise DataError(f"{where.at(column, zoned[:1])}: a timestamp with a time zone; give local wall-clock times")
        parsed[is_time] = stamps
    bad = np.flatnonzero(is_text & parsed.isna().to_numpy())
    if len(bad):
        value = objects.iloc[bad[0]].strip()
        if _has_offset(value):
            why = "carries a UTC offset; give the local wall-clock time without it (the hour of day is a model input)"
        elif _DATE_ONLY.match(value):
            why = "is a date without a time of day (the hour of day is a model input; leave the cell empty if unknown)"
        else:
            why = f"is not a timestamp of the form {shown}"
        more = f" ({len(bad)} rows like it)" if len(bad) > 1 else ""
        raise DataError(f"{where.at(column, bad[:1])}: {value!r} {why}{more}; every row must use {shown}")
    return parsed


def default_time_range() -> tuple[pd.Timestamp, pd.Timestamp]:
    """No declared recording dates: from :data:`EARLIEST` to the end of tomorrow (slack for time zones)."""
    return EARLIEST, pd.Timestamp.now().normalize() + pd.Timedelta(days=2) - pd.Timedelta(seconds=1)


def check_time_range(stamps: pd.Series, where: Where, column: str, time_range: tuple[object, object] | None,
                     declared_by: str) -> None:
    """Refuse a timestamp outside ``time_range`` (None: :func:`default_time_range`): a mistyped year would
    otherwise become the test side of a hold-out by date."""
    lo, hi = (pd.Timestamp(t) for t in time_range) if time_range else default_time_range()
    outside = np.flatnonzero(((stamps < lo) | (stamps > hi)).to_numpy())
    if len(outside):
        what = f"the recording dates {declared_by} declares" if time_range else "the plausible dates (1990 to today)"
        more = f" ({len(outside)} rows outside it)" if len(outside) > 1 else ""
        raise DataError(f"{where.at(column, outside[:1])}: {stamps.iloc[outside[0]]} lies outside {what}, "
                        f"{lo:%Y-%m-%d %H:%M:%S} to {hi:%Y-%m-%d %H:%M:%S}{more}; fix the date")


# --- recordings -----------------------------------------------------------------------------------------

def check_one_label_per_recording(labels: pd.Series, recordings: pd.Series, where: Where, column: str) -> None:
    """Refuse a recording whose labeled clips carry two scene labels: one of them is wrong, and a split
    keeping the recording whole cannot say which."""
    labels, recordings = labels.reset_index(drop=True), recordings.reset_index(drop=True)
    known = (labels.fillna("").astype(str) != "").to_numpy()
    per = pd.DataFrame({"rec": recordings[known].astype(str).to_numpy(), "label": labels[known].astype(str).to_numpy(),
                        "row": np.flatnonzero(known)})
    counts = per.groupby("rec", sort=False)["label"].nunique()
    mixed = counts.index[counts.to_numpy() > 1]
    if len(mixed):
        rec = per[per["rec"] == mixed[0]]
        (a, rows_a), (b, rows_b) = list(rec.groupby("label", sort=False)["row"])[:2]
        raise DataError(f"{where.at(column)}: recording {mixed[0]!r} has two scene labels, {a!r} ({where.rows(rows_a)}) "
                        f"and {b!r} ({where.rows(rows_b)}); one recording is one scene: fix the label or the recording id")


# --- files ----------------------------------------------------------------------------------------------

_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def special_kind(mode: int) -> str | None:
    """What a non-regular file is ("a FIFO (named pipe)", "a directory", ...); None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, without opening it (a FIFO or /dev/zero would block or never
    end); None for a readable regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"is a link to {os.readlink(path)}, which does not exist" if os.path.islink(path) else "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    kind = special_kind(mode)
    if kind is not None:
        link = f" (a link to {os.readlink(path)})" if os.path.islink(path) else ""
        return f"is {kind}{link}, not a regular file"
    if not os.access(path, os.R_OK):
        return "is not readable (permission denied)"
    return None


def readable_file(path: Path, what: str = "metadata file", hint: str = "") -> Path:
    """``path`` if it is a readable regular file; otherwise a :class:`DataError` saying what it is instead."""
    problem = file_problem(path)
    if problem is not None:
        raise DataError(f"{what} {path} {problem}{hint or '; fix or remove it'}")
    return path


def anything_at(path: Path) -> bool:
    """Whether anything, even a dangling link, is at ``path``: a loader that finds one must use it or say why not."""
    return os.path.lexists(path)
