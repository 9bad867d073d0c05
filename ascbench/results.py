"""The results store: one directory per run plus one table row per run.

Layout under the runs directory (``--runs-dir``, ``$ASCBENCH_RUNS_DIR``, default ``./runs``)::

    results.jsonl            one JSON row per finished run (appended under a lock)
    <run_id>/config.json     the full resolved RunConfig
    <run_id>/metrics.json    every metric, complexity, timings, strategy notes
    <run_id>/split.csv       which clip played which role
    <run_id>/model.pt        the trained weights and normalisation
    <run_id>/log.txt         the run's log
    .<run_id>.partial/       a run in progress or interrupted: config.json, checkpoint.pt, lock

A run directory is assembled under a temporary name and renamed into place, then its row is appended:
a crash leaves either nothing or a complete run, and never touches earlier rows. An interrupted run's
staging directory keeps its epoch checkpoint; running the same config again (or ``ascbench run
--resume DIR``) continues it.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import shutil
import signal
import stat
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ascbench.checkpoint import CHECKPOINT_FILE
from ascbench.errors import ConfigError, DataError
from ascbench.fileio import append_line, atomic_write_bytes, atomic_write_text, read_file_bytes, read_file_text

RESULTS_FILE = "results.jsonl"


# Scores a results row repeats from its run's metrics.json: the two must agree (ascbench.records).
ROW_METRICS = ("accuracy", "macro_accuracy", "macro_f1", "log_loss", "worst_city_accuracy", "worst_period_accuracy")
_NUMBER = (int, float)
_TEXT_OR_NONE = (str, type(None))
_NUMBER_OR_NONE = (int, float, type(None))
# The type of every field ascbench writes in a results row (ascbench.runner._result_row). A field may be missing
# (rows made before it existed), but one that is there must have its type: a list as a dataset name or text as
# a labeled fraction would otherwise reach the ranking code and stop it, or be shown as if it were a run's.
ROW_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "model": (str,), "strategy": (str,), "dataset": (str,), "protocol": (str,), "seed": (int,),
    "semi": (str,), "labeled": _NUMBER_OR_NONE, "fold": _TEXT_OR_NONE, "quick": (bool,), "leaky": (bool,),
    "group_by": _TEXT_OR_NONE, "precision": (str,), "device": (str,), "threads": (int,), "processes": (int,),
    "config_digest": (str,), "experiment_digest": (str,), "dataset_fingerprint": _TEXT_OR_NONE,
    "split_fingerprint": _TEXT_OR_NONE, "finished": _TEXT_OR_NONE, "ascbench": _TEXT_OR_NONE, "torch": _TEXT_OR_NONE,
    "python": _TEXT_OR_NONE, "git_commit": _TEXT_OR_NONE, "cpu": _TEXT_OR_NONE,
    **{key: _NUMBER_OR_NONE for key in (*ROW_METRICS, "metadata_ceiling", "params", "macs", "macs_per_second",
                                        "param_kb", "latency_ms", "wall_s", "train_s")},
}
SCORES_THAT_MAY_BE_NAN = (*ROW_METRICS, "metadata_ceiling")
# Without these a row names no experiment, or has no score to rank: every row ascbench ever published has them.
ROW_REQUIRED = ("run_id", "model", "strategy", "semi", "dataset", "protocol", "labeled", "seed", "fold", "accuracy",
                "macro_accuracy", "macro_f1", "log_loss", "params", "macs")
# A run id names a folder of the runs directory and a file of a board: one plain name, never a path. Plugin names
# in it may hold ':' (timm:resnet18); 240 characters at most, so ".<id>.partial" still fits a file name.
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=,@-]{0,239}")


def row_type_problems(row: Any) -> list[str]:
    """What makes ``row`` not a results row as ascbench writes them: a missing identity field, or a field of the
    wrong type (booleans are not numbers here: ``"seed": true`` is refused). Empty: it has the form of a row."""
    if not isinstance(row, dict):
        return [f"it is a JSON {type(row).__name__}, not an object"]
    problems = [f"{key} is missing" for key in ROW_REQUIRED if key not in row]
    if isinstance(row.get("run_id"), str) and not RUN_ID_PATTERN.fullmatch(row["run_id"]):
        problems.append(f"run_id {shown_briefly(row['run_id'])} is not a plain run name (letters, digits, '.', '-', "
                        "'_', ':'; no folder, no leading dot)")
    for key, types in ROW_TYPES.items():
        if key not in row:
            continue
        value = row[key]
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if not wrong and isinstance(value, float) and not math.isfinite(value) and key not in SCORES_THAT_MAY_BE_NAN:
            # a score may be NaN (unscorable: no test side); a seed, a size or a time may not
            problems.append(f"{key} is {value!r}, not a finite number")
        elif wrong:
            problems.append(f"{key} is {shown_briefly(value)} ({_json_type(value)}, expected "
                            f"{' or '.join(dict.fromkeys(_json_type_name(t) for t in types))})")
    return problems


def _json_type(value: Any) -> str:
    return _json_type_name(type(value))


def _json_type_name(kind: type) -> str:
    return {str: "text", int: "a number", float: "a number", bool: "true/false", type(None): "null",
            list: "a list", dict: "an object"}.get(kind, kind.__name__)


def known_fields(row: dict) -> dict:
    """``row`` with only the fields ascbench writes: a field added by hand (``superseded``, ``_chance``) would
    otherwise stand in for a column the leaderboard computes itself."""
    return {key: value for key, value in row.items() if key in ROW_TYPES}


def shown_briefly(value: Any) -> str:
    """A value as JSON, cut to 40 characters: what an error line quotes of a damaged field."""
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."



def runs_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get("ASCBENCH_RUNS_DIR") or "runs")


@dataclass
class RunRecord:
    run_id: str
    config: dict
    metrics: dict
    row: dict  # the summary row for the results table


PARTIAL_SUFFIX = ".partial"
LOCK_FILE = "lock"


@dataclass
class RunSlot:
    """The staging directory of a run in progress, locked by this process for the run's lifetime."""

    run_id: str
    path: Path
    resumed: bool
    _lock_fd: int | None = None

    def release(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def discard(self) -> None:
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)


def _try_lock(path: Path) -> int | None:
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def partial_run_id(path: Path) -> str:
    name = Path(path).name
    return name[1:-len(PARTIAL_SUFFIX)] if name.startswith(".") and name.endswith(PARTIAL_SUFFIX) else name


def unfinished_runs(root: Path) -> list[tuple[Path, dict]]:
    """Staging directories of runs that were interrupted (or are running now), with their configs."""
    found = []
    for path in sorted(Path(root).glob(f".*{PARTIAL_SUFFIX}")):
        try:
            found.append((path, json.loads(read_file_text(path / "config.json"))))
        except (OSError, ValueError, RecursionError):
            continue  # a staging directory from before config.json was written: nothing to resume
    return found


def check_unfinished(path: Path) -> None:
    """Refuse to resume anything but an unfinished run's staging directory.

    A finished run is never touched again: resuming it would overwrite its metrics and append a second
    row, and a failure would delete the folder its row points to.
    """
    name = path.name
    staged = name.startswith(".") and name.endswith(PARTIAL_SUFFIX)
    if (path / "metrics.json").exists() or (not staged and (path / "config.json").exists()):
        raise ConfigError(f"{path} is a finished run; it is never modified. To run its config again use "
                          f"`ascbench rerun {partial_run_id(path)}`")
    if not staged or not (path / "config.json").exists():
        raise ConfigError(f"{path} is not an unfinished run directory; unfinished runs are the "
                          f".<run_id>{PARTIAL_SUFFIX} directories of the runs directory")


def _check_runs_dir(root: Path) -> None:
    """The runs directory exists (or is created) and is a writable folder, else one clear line."""
    if root.exists() and not root.is_dir():
        raise DataError(f"runs directory {root} is a file, not a folder; pass --runs-dir DIR (or set ASCBENCH_RUNS_DIR)")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create runs directory {root}: {exc.strerror or exc}; pass --runs-dir DIR "
                        "to a writable folder") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise DataError(f"runs directory {root} is not writable; pass --runs-dir DIR to a writable folder")
    problem = results_file_problem(root / RESULTS_FILE)
    if problem is None and os.path.islink(root / RESULTS_FILE):
        # A row appended through a link lands in whatever it points at (a finished run's metrics.json, say).
        problem = f"is a link (to {os.path.realpath(root / RESULTS_FILE)}); rows are appended only to a real file"
    if problem is None and os.path.exists(root / RESULTS_FILE) and not os.access(root / RESULTS_FILE, os.R_OK | os.W_OK):
        problem = "is not readable and writable by you"
    if problem:  # found now, not after the training: a run that cannot be stored is not started
        raise DataError(f"the results store {root / RESULTS_FILE} {problem}; a run could not be stored in it. "
                        "Fix or move it, or pass --runs-dir DIR to another folder")


def results_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the results table (a folder, a FIFO, a device, a socket, a broken link), or None
    (a regular file, or nothing yet). From ``os.stat``, before any read: reading a FIFO would block forever."""
    if not os.path.lexists(path):
        return None
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot be reached ({exc.strerror or exc}: a broken link?)"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe, a device or a socket)"
    return None


def open_run(root: Path, config: dict, digest: str, new_run_id: str, resume: Path | None = None,
             adopt_unfinished: bool = True) -> RunSlot:
    """Claim a staging directory: ``resume`` if given, else an unfinished run of the same config, else a new one.

    A directory locked by a live process is never shared; a second process with the same config
    starts its own run.
    """
    if resume is not None:
        resume = Path(resume)
        check_unfinished(resume)
        fd = _try_lock(resume)
        if fd is None:
            raise ConfigError(f"{resume} is being run by another process right now")
        return RunSlot(partial_run_id(resume), resume, True, fd)
    for path, stored in unfinished_runs(root) if adopt_unfinished else ():
        if stored.get("_digest") == digest:
            fd = _try_lock(path)
            if fd is not None:
                return RunSlot(partial_run_id(path), path, True, fd)
    _check_runs_dir(root)
    run_id = new_run_id
    while (root / run_id).exists() or (root / f".{run_id}{PARTIAL_SUFFIX}").exists():
        run_id += "x"
    path = root / f".{run_id}{PARTIAL_SUFFIX}"
    path.mkdir(parents=True)
    fd = _try_lock(path)
    atomic_write_text(path / "config.json", json.dumps({**config, "_digest": digest}, indent=2, sort_keys=True))
    return RunSlot(run_id, path, False, fd)


def commit_run(root: Path, slot: RunSlot, record: RunRecord) -> Path:
    """Write the record into the staging directory, move it into place, then append its row."""
    staging = slot.path
    atomic_write_text(staging / "config.json", json.dumps(record.config, indent=2, sort_keys=True))
    atomic_write_text(staging / "metrics.json", json.dumps(record.metrics, indent=2, sort_keys=True))
    for leftover in (CHECKPOINT_FILE, LOCK_FILE):  # a finished run needs neither
        (staging / leftover).unlink(missing_ok=True)
    final = root / record.run_id
    # The move into place and the row are one step: a Ctrl-C or SIGTERM arriving between them would leave a run
    # folder without its row, or a row whose folder is taken back. (Other writers hold the store's lock for one
    # write only, so the wait for it is short.)
    with signals_deferred():
        os.replace(staging, final)
        try:
            append_line(root / RESULTS_FILE, json.dumps(record.row, sort_keys=True))
        except BaseException:
            # No row, so no finished run either: a run folder without its row would be listed by nothing, yet
            # look finished to every guard. Back to staging; the caller discards it and says it was not stored.
            os.replace(final, staging)
            raise
    slot.release()
    return final


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done, then act as they would have (in the main thread; elsewhere
    signals do not arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda signum, frame: received.append(signum))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if received:  # delivered again now, to whatever handles it (Python's Ctrl-C, the CLI's SIGTERM, the default)
        signal.raise_signal(received[0])


def load_rows(root: Path) -> list[dict]:
    """Every row of the results table; a damaged line (a torn write, bytes that are not UTF-8, JSON that
    is not a row) is reported with its line number and skipped, so one bad line never hides the rest."""
    path = root / RESULTS_FILE
    problem = results_file_problem(path)
    if problem:
        raise DataError(f"the results store {path} {problem}; the results table must be a file (move it away, or "
                        "pass --runs-dir DIR to another folder)")
    if not path.exists():
        return []
    rows: list[dict] = []
    lines: dict[str, list[int]] = {}
    for number, raw in enumerate(read_file_bytes(path).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # also nested too deep, or a 5,000-digit number
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("run_id"), str):
            print(f"warning: {path}:{number} is not a complete result row; skipped", file=sys.stderr)
            continue
        malformed = row_type_problems(row)
        if malformed:  # valid JSON but not a row as the store writes it (a hand edit): named and skipped, as above
            print(f"warning: {path}:{number} (run {row['run_id']}) is not a well-formed result row: "
                  f"{'; '.join(malformed)}; skipped (restore the line from the run's files, or remove it)", file=sys.stderr)
            continue
        rows.append(known_fields(row))
        lines.setdefault(row["run_id"], []).append(number)
    return _without_conflicting_duplicates(rows, lines, path)


def _without_conflicting_duplicates(rows: list[dict], lines: dict[str, list[int]], path: Path) -> list[dict]:
    """One row per run id. The store appends each run once, so two lines for one run are a copy or an edit: an
    exact copy counts once; lines that differ are all skipped (which one is the run's own cannot be told here,
    and every command must give the same verdict), named with their line numbers."""
    by_run: dict[str, list[dict]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    kept = []
    for run_id, copies in by_run.items():
        if any(r != copies[0] for r in copies[1:]):
            print(f"warning: {path} holds {len(copies)} different rows for run {run_id} (lines "
                  f"{', '.join(map(str, lines[run_id]))}); none is used: remove the wrong ones", file=sys.stderr)
        else:
            kept.append(copies[0])
    return kept


def read_record_file(path: Path, what: str = "run record") -> dict:
    """A stored JSON file (a run's config.json or metrics.json, a published record) as a dict, or one DataError
    naming the file: missing, unreadable, not JSON (hand-edited, truncated) or not a JSON object."""
    path = Path(path)
    try:
        value = json.loads(read_file_text(path))
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing; the run's directory is incomplete (was it moved or edited?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{what} {path} is damaged: not JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
                        "restore it from a copy, or set the run aside") from None
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, or arrays nested thousands deep
        reason = "nested too deep" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise DataError(f"{what} {path} is damaged: {reason}; restore it from a copy, or set the run aside") from None
    if not isinstance(value, dict):
        raise DataError(f"{what} {path} is damaged: it holds a JSON {type(value).__name__}, not an object")
    return value


def store_packed_run(root: Path, run_id: str, files: dict[str, bytes], row: dict) -> Path:
    """Store a run that finished elsewhere (a Ray worker) from its files and row, as :func:`commit_run` would."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / run_id
    if final.exists():
        raise ConfigError(f"run {run_id} is already stored in {root}")
    staging = root / f".{run_id}{PARTIAL_SUFFIX}"
    staging.mkdir()
    for name, data in files.items():
        atomic_write_bytes(staging / Path(name).name, data)
    os.replace(staging, final)
    try:
        append_line(root / RESULTS_FILE, json.dumps(row, sort_keys=True))
    except BaseException:  # as commit_run: no row, no run folder
        os.replace(final, staging)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
