"""The results store: one directory per run plus one table row per run.

Layout under the runs directory (``--runs-dir``, ``$ASCBENCH_RUNS_DIR``, default ``./runs``)::

    results.jsonl            one JSON row per finished run (appended under a lock)
    <run_id>/config.json     the full resolved RunConfig
    <run_id>/metrics.json    every metric, complexity, timings, strategy notes
    <run_id>/split.csv       which clip played which role
    <run_id>/model.pt        the trained weights and normalisation
    <run_id>/log.txt         the run's log

A run directory is assembled under a temporary name and renamed into place, then its row is appended:
a crash leaves either nothing or a complete run, and never touches earlier rows.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ascbench.fileio import append_line, atomic_write_text

RESULTS_FILE = "results.jsonl"


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override or os.environ.get("ASCBENCH_RUNS_DIR") or "runs")


@dataclass
class RunRecord:
    run_id: str
    config: dict
    metrics: dict
    row: dict  # the summary row for the results table


def staging_dir(root: Path, run_id: str) -> Path:
    path = root / f".{run_id}.partial"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def commit_run(root: Path, staging: Path, record: RunRecord) -> Path:
    """Write the record into ``staging``, move it into place, then append its row."""
    atomic_write_text(staging / "config.json", json.dumps(record.config, indent=2, sort_keys=True))
    atomic_write_text(staging / "metrics.json", json.dumps(record.metrics, indent=2, sort_keys=True))
    final = root / record.run_id
    os.replace(staging, final)
    append_line(root / RESULTS_FILE, json.dumps(record.row, sort_keys=True))
    return final


def load_rows(root: Path) -> list[dict]:
    """Every row of the results table; an unreadable line (a torn write) is reported and skipped."""
    path = root / RESULTS_FILE
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: {path}:{number} is not a complete result row; skipped", file=sys.stderr)
    return rows
