"""Shared fixtures of the benchmark suite and the ratio table printed at its end.

Every harness benchmark has a bare-PyTorch twin (same model, batch size and thread count, tensors
already in memory, a plain loop). Both register under one pair name; at the end of the session the
ratio harness/bare of their medians is printed and, with ``--benchmark-json PATH``, also written
to ``PATH`` with ``.ratios.json`` appended.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

# Targets from the performance issue: harness / bare medians.
TARGETS = {"training epoch": 1.15, "log-mel extraction": 1.2, "inference batch": 1.1}

_medians: dict[str, dict[str, float]] = {}
_units: dict[str, str] = {}
_notes: dict[str, str] = {}


def threads() -> int:
    return int(os.environ.get("ASCBENCH_BENCH_THREADS") or len(os.sched_getaffinity(0)))


@pytest.fixture(scope="session", autouse=True)
def bench_environment(tmp_path_factory):
    """One cache for the whole session (warm after first use), torch threads set and recorded."""
    os.environ["ASCBENCH_CACHE_DIR"] = os.environ.get("ASCBENCH_BENCH_CACHE") or str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("ASCBENCH_FEATURE_DIR", None)
    os.environ.pop("ASCBENCH_DATA_DIR", None)
    torch.set_num_threads(threads())
    yield


@pytest.fixture
def pair(benchmark):
    """``pair(name, side, items, unit)``: run after ``benchmark(...)`` to file its median under ``name``."""
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()

    def record(name: str, side: str, items: int = 1, unit: str = "items") -> None:
        if benchmark.stats is None:  # --benchmark-disable: each body ran once, unmeasured
            return
        median = benchmark.stats.stats.median
        _medians.setdefault(name, {})[side] = median
        _units[name] = f"{items / median:,.1f} {unit}/s ({side})"
        benchmark.extra_info.update(pair=name, side=side, items=items, throughput=items / median, unit=unit)
        if side == "harness":
            _notes[name] = f"{items / median:,.1f} {unit}/s"

    return record


def note(name: str, text: str) -> None:
    """A free-form line for the final table (e.g. the share of a warm run spent on features)."""
    _notes[name] = text


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _medians and not _notes:
        return
    from tabulate import tabulate

    rows, record = [], {}
    for name in sorted(set(_medians) | set(_notes)):
        sides = _medians.get(name, {})
        ratio = sides["harness"] / sides["bare"] if {"harness", "bare"} <= set(sides) else None
        target = next((t for key, t in TARGETS.items() if name.startswith(key)), None)
        rows.append((name, f"{ratio:.3f}" if ratio else "", f"<= {target}" if target else "",
                     "" if ratio is None or target is None else ("ok" if ratio <= target else "OVER"), _notes.get(name, "")))
        record[name] = {"ratio": ratio, "target": target, "medians_s": sides, "note": _notes.get(name)}
    terminalreporter.write_sep("=", f"harness / bare-PyTorch ratios (medians, {threads()} torch threads)")
    terminalreporter.write_line(tabulate(rows, headers=["benchmark", "harness/bare", "target", "", "harness throughput"]))
    out = config.getoption("benchmark_json", None)
    if out:
        path = Path(out)
        Path(f"{path}.ratios.json").write_text(json.dumps(record, indent=2, sort_keys=True))
