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
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ascbench.checkpoint import CHECKPOINT_FILE
from ascbench.errors import ConfigError, DataError
from ascbench.fileio import append_line, atomic_write_bytes, atomic_write_text

RESULTS_FILE = "results.jsonl"


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
            found.append((path, json.loads((path / "config.json").read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError):
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
    os.replace(staging, final)
    slot.release()
    append_line(root / RESULTS_FILE, json.dumps(record.row, sort_keys=True))
    return final


def load_rows(root: Path) -> list[dict]:
    """Every row of the results table; a damaged line (a torn write, bytes that are not UTF-8, JSON that
    is not a row) is reported with its line number and skipped, so one bad line never hides the rest."""
    path = root / RESULTS_FILE
    if not path.exists():
        return []
    if path.is_dir():
        raise DataError(f"{path} is a directory; the results table must be a file (move the directory away)")
    rows = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("run_id"), str):
            print(f"warning: {path}:{number} is not a complete result row; skipped", file=sys.stderr)
            continue
        rows.append(row)
    return rows


def read_record_file(path: Path, what: str = "run record") -> dict:
    """A stored JSON file (a run's config.json or metrics.json, a published record) as a dict, or one DataError
    naming the file: missing, unreadable, not JSON (hand-edited, truncated) or not a JSON object."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing; the run's directory is incomplete (was it moved or edited?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{what} {path} is damaged: not JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
                        "restore it from a copy, or set the run aside") from None
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
    append_line(root / RESULTS_FILE, json.dumps(row, sort_keys=True))
    return final
