"""Shared fixtures of the benchmark suite and the ratio table printed at its end.

Every harness benchmark has a bare-PyTorch twin (same model, batch size, device and thread count,
tensors already in memory, a plain loop). The two run **interleaved**: each round times both, in
alternating order (harness first, then bare first), so drift of the machine (clock, cache, a
neighbour's load) falls on both sides alike. The ratio is harness/bare of the medians over rounds;
beside it the spread of the per-round ratios (quartiles) says how far one round can be trusted.
The table is printed at the end of the session and, with ``--benchmark-json PATH``, written to
``PATH`` with ``.ratios.json`` appended.

``ASCBENCH_BENCH_THREADS`` sets torch's thread count, ``ASCBENCH_BENCH_DEVICE`` the device of the
model benchmarks (default cpu; e.g. cuda), ``ASCBENCH_BENCH_PRECISION`` their precision (fp32,
bf16) and ``ASCBENCH_BENCH_COMPILE`` a torch.compile mode for both sides (default off).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
from pathlib import Path
from time import perf_counter
from typing import Callable

import pytest
import torch

# Targets from the issues: harness / bare medians.
TARGETS = {"training epoch": 1.05, "inference batch": 1.05, "data loading": 1.5, "log-mel extraction": 1.2}

_results: dict[str, dict] = {}
_notes: dict[str, str] = {}


def threads() -> int:
    return int(os.environ.get("ASCBENCH_BENCH_THREADS") or len(os.sched_getaffinity(0)))


def device() -> torch.device:
    return torch.device(os.environ.get("ASCBENCH_BENCH_DEVICE", "cpu"))


def precision() -> str:
    return os.environ.get("ASCBENCH_BENCH_PRECISION", "fp32")


def compile_mode() -> str:
    return os.environ.get("ASCBENCH_BENCH_COMPILE", "off")


def synchronize() -> None:
    if device().type == "cuda":
        torch.cuda.synchronize(device())


@pytest.fixture(scope="session", autouse=True)
def bench_environment(tmp_path_factory):
    """One cache for the whole session (warm after first use), torch threads set and recorded."""
    os.environ["ASCBENCH_CACHE_DIR"] = os.environ.get("ASCBENCH_BENCH_CACHE") or str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("ASCBENCH_FEATURE_DIR", None)
    os.environ.pop("ASCBENCH_DATA_DIR", None)
    torch.set_num_threads(threads())
    yield


@pytest.fixture
def interleaved(benchmark):
    """``interleaved(name, harness, bare, items=, unit=, rounds=, warmup=)``: time both callables round by
    round (order alternating) under pytest-benchmark, and file the ratio of their medians under ``name``."""
    benchmark.extra_info.update(torch_threads=torch.get_num_threads(), device=str(device()), precision=precision(),
                                compile=compile_mode())

    def run(name: str, harness: Callable[[], object], bare: Callable[[], object], *, items: int, unit: str = "clips",
            rounds: int = 10, warmup: int = 1) -> None:
        times: dict[str, list[float]] = {"harness": [], "bare": []}
        turn = itertools.count()
        sides = {"harness": harness, "bare": bare}

        def one_round() -> None:
            order = ("harness", "bare") if next(turn) % 2 == 0 else ("bare", "harness")
            for side in order:
                synchronize()
                started = perf_counter()
                sides[side]()
                synchronize()
                times[side].append(perf_counter() - started)

        benchmark.group = name
        benchmark.pedantic(one_round, rounds=rounds, warmup_rounds=warmup, iterations=1)
        harness_s, bare_s = times["harness"][warmup:], times["bare"][warmup:]
        if len(harness_s) < 3:  # --benchmark-disable: each body ran once, unmeasured
            return
        per_round = sorted(h / b for h, b in zip(harness_s, bare_s))
        q1, _, q3 = statistics.quantiles(per_round, n=4)
        ratio = statistics.median(harness_s) / statistics.median(bare_s)
        throughput = items / statistics.median(harness_s)
        _results[name] = {"ratio": ratio, "round_ratio_q1": q1, "round_ratio_q3": q3, "rounds": len(per_round),
                          "medians_s": {"harness": statistics.median(harness_s), "bare": statistics.median(bare_s)},
                          "harness_throughput": throughput, "unit": f"{unit}/s"}
        benchmark.extra_info.update(_results[name], harness_s=harness_s, bare_s=bare_s)

    return run


def note(name: str, text: str) -> None:
    """A free-form line for the final table (e.g. the share of a warm run spent on features)."""
    _notes[name] = text


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _results and not _notes:
        return
    from tabulate import tabulate

    rows, record = [], {}
    for name in sorted(set(_results) | set(_notes)):
        result = _results.get(name)
        target = next((t for key, t in TARGETS.items() if name.startswith(key)), None)
        if result is None:
            rows.append((name, "", "", "", "", _notes.get(name, "")))
            record[name] = {"note": _notes.get(name)}
            continue
        ratio = result["ratio"]
        rows.append((name, f"{ratio:.3f}", f"{result['round_ratio_q1']:.2f}-{result['round_ratio_q3']:.2f}",
                     f"<= {target}" if target else "", "" if target is None else ("ok" if ratio <= target else "OVER"),
                     f"{result['harness_throughput']:,.1f} {result['unit']}"))
        record[name] = {**result, "target": target}
    where = f"{device()}, {precision()}" + (f", compile {compile_mode()}" if compile_mode() != "off" else "")
    terminalreporter.write_sep("=", f"harness / bare-PyTorch ratios (interleaved rounds; {where}; {threads()} torch threads)")
    terminalreporter.write_line(tabulate(rows, headers=["benchmark", "harness/bare", "per-round IQR", "target", "",
                                                        "harness throughput"]))
    out = config.getoption("benchmark_json", None)
    if out:  # pytest-benchmark hands over the open file, older versions its path
        Path(f"{getattr(out, 'name', out)}.ratios.json").write_text(json.dumps(record, indent=2, sort_keys=True))
