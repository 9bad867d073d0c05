"""Shared fixtures of the benchmark suite and the ratio table printed at its end.

Every harness benchmark has a bare-PyTorch twin (same model, batch size, device and thread count,
tensors already in memory, a plain loop). The two run **interleaved**: each round times both, in
alternating order (harness first, then bare first), so drift of the machine (clock, cache, a
neighbour's load) falls on both sides alike. The ratio is harness/bare of the medians over rounds;
beside it the spread of the per-round ratios (quartiles) says how far one round can be trusted.
The table is printed at the end of the session and, with ``--benchmark-json PATH``, written to
``PATH`` with ``.ratios.json`` appended.

How close to the machine: the session times a float32 matrix product (2048 x 2048, ``sgemm``) on the same
threads, and a model benchmark that gives its MACs per clip (``ascbench.complexity``) reports the harness's
achieved GFLOP/s (2 x MACs x clips / s) and that as a fraction of the sgemm rate. A benchmark may also set an
absolute throughput target (clips/s); both sides of a pair use the same device, precision and memory format.

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
_sgemm: dict[str, float] = {}
SGEMM_SIZE = 2048


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


def sgemm_gflops() -> float:
    """The machine's float32 matrix-product rate on the benchmark's threads and device (timed once per session:
    the best of 5 products after a warm-up, so a neighbour's burst does not set the reference)."""
    if "gflops" not in _sgemm:
        a = torch.randn(SGEMM_SIZE, SGEMM_SIZE, device=device())
        b = torch.randn(SGEMM_SIZE, SGEMM_SIZE, device=device())
        torch.mm(a, b)
        best = float("inf")
        for _ in range(5):
            synchronize()
            started = perf_counter()
            torch.mm(a, b)
            synchronize()
            best = min(best, perf_counter() - started)
        _sgemm["gflops"] = 2 * SGEMM_SIZE ** 3 / best / 1e9
    return _sgemm["gflops"]


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
            rounds: int = 10, warmup: int = 1, macs_per_item: int | None = None,
            min_throughput: float | None = None) -> None:
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
                          "harness_throughput": throughput, "unit": f"{unit}/s", "min_throughput": min_throughput,
                          **_machine_fraction(throughput, macs_per_item)}
        benchmark.extra_info.update(_results[name], harness_s=harness_s, bare_s=bare_s)

    return run


def _machine_fraction(throughput: float, macs_per_item: int | None) -> dict:
    """Achieved GFLOP/s (2 x MACs x items / s) and its fraction of the sgemm rate; nothing without MACs."""
    if not macs_per_item:
        return {}
    achieved = 2 * macs_per_item * throughput / 1e9
    return {"gflops": achieved, "sgemm_gflops": sgemm_gflops(), "of_sgemm": achieved / sgemm_gflops()}


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
            rows.append((name, "", "", "", "", _notes.get(name, ""), "", ""))
            record[name] = {"note": _notes.get(name)}
            continue
        ratio, floor = result["ratio"], result.get("min_throughput")
        throughput = f"{result['harness_throughput']:,.1f} {result['unit']}"
        if floor:
            throughput += f" (>= {floor:g}: {'ok' if result['harness_throughput'] >= floor else 'UNDER'})"
        rows.append((name, f"{ratio:.3f}", f"{result['round_ratio_q1']:.2f}-{result['round_ratio_q3']:.2f}",
                     f"<= {target}" if target else "", "" if target is None else ("ok" if ratio <= target else "OVER"),
                     throughput, f"{result['gflops']:.1f}" if "gflops" in result else "",
                     f"{result['of_sgemm']:.1%}" if "of_sgemm" in result else ""))
        record[name] = {**result, "target": target}
    where = f"{device()}, {precision()}" + (f", compile {compile_mode()}" if compile_mode() != "off" else "")
    terminalreporter.write_sep("=", f"harness / bare-PyTorch ratios (interleaved rounds; {where}; {threads()} torch threads)")
    if _sgemm:
        terminalreporter.write_line(f"sgemm {SGEMM_SIZE}x{SGEMM_SIZE} float32 on the same threads: {_sgemm['gflops']:.1f} GFLOP/s")
        record["sgemm_gflops"] = _sgemm["gflops"]
    terminalreporter.write_line(tabulate(rows, headers=["benchmark", "harness/bare", "per-round IQR", "target", "",
                                                        "harness throughput", "GFLOP/s", "of sgemm"]))
    out = config.getoption("benchmark_json", None)
    if out:  # pytest-benchmark hands over a Path (an open file in older versions): beside it, never its bare name
        path = Path(out) if isinstance(out, (str, os.PathLike)) else Path(out.name)
        path.with_name(path.name + ".ratios.json").write_text(json.dumps(record, indent=2, sort_keys=True))
