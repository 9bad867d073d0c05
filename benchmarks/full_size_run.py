"""Synthetic full-length audio for every row of the shipped APSIPA 2025 dev and eval metadata, and (run as a
script) full-size runs on it: training under two protocols, then ``predict`` on the 1,100 eval clips.

    python benchmarks/full_size_run.py --device cuda --workers 16 [--audio DIR] [--epochs 3]

The audio is noise (PCM-16, 10 s, 44.1 kHz; about 8.6 GB for both sets), so accuracies mean nothing;
the split sizes, the feature cache and every cost are the real ones. The scale benchmark
(``test_scale_bench.py``) writes its audio with :func:`write_audio` too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

SHIPPED = Path(__file__).resolve().parents[1] / "plugins" / "data" / "apsipa2025"
DEV, EVAL = "APSIPA2025_GC_ASC_dev_metadata.csv", "APSIPA2025_GC_ASC_eval_metadata.csv"
RATE, SECONDS = 44_100, 10


def _write_clips(args: tuple[Path, list[str], int]) -> int:
    root, names, seed = args
    rng = np.random.default_rng(seed)
    written = 0
    for name in names:
        path = root / f"{name}.wav"
        if path.exists() and path.stat().st_size > 2 * RATE * SECONDS:  # kept from an earlier run
            continue
        sf.write(str(path), rng.integers(-3000, 3000, RATE * SECONDS, dtype=np.int16), RATE, subtype="PCM_16")
        written += 1
    return written


def write_audio(root: Path, workers: int) -> tuple[int, int]:
    """A WAV for every dev and eval row under ``root`` (flat, ``<filename>.wav``, as the challenge ships
    them); files already there at full length are kept. Returns (files, files written)."""
    root.mkdir(parents=True, exist_ok=True)
    names = [n for csv in (DEV, EVAL) for n in pd.read_csv(SHIPPED / csv, encoding="utf-8-sig", dtype=str)["filename"]]
    with ProcessPoolExecutor(workers) as pool:
        written = sum(pool.map(_write_clips, [(root, names[k::workers], k) for k in range(workers)]))
    return len(names), written


def _ascbench(runs: Path, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ascbench", *args, "--no-progress", "--runs-dir", str(runs)],
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stdout[-2000:] + proc.stderr[-2000:])
    return time.perf_counter() - started, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--audio", type=Path, default=None, help="where the audio goes (default: a temporary dir)")
    parser.add_argument("--epochs", default="3")
    args = parser.parse_args()
    root = args.audio or Path(tempfile.mkdtemp(prefix="ascbench-full-"))
    runs = Path(tempfile.mkdtemp(prefix="ascbench-full-runs-"))
    started = time.perf_counter()
    files, written = write_audio(root, args.workers)
    print(f"audio: {files} files ({written} written in {time.perf_counter() - started:.0f} s) in {root}", flush=True)
    for protocol in ("official", "all-labeled"):
        wall, _ = _ascbench(runs, "run", "--dataset", "apsipa2025", "--data-root", str(root), "--model", "mobileascnet",
                            "--strategy", "scratch", "--epochs", args.epochs, "--protocol", protocol,
                            "--device", args.device)
        row = [json.loads(line) for line in (runs / "results.jsonl").read_text().splitlines()][-1]
        metrics = json.loads((runs / row["run_id"] / "metrics.json").read_text())
        timings, split = metrics["timings"], metrics["split"]
        trained = split.get("labeled", 0) * int(args.epochs)
        print(f"{protocol}: wall {wall:.1f} s, timings {timings}, {split.get('labeled')} labeled clips x {args.epochs} "
              f"epochs = {trained / timings['train_s']:.0f} clips/s, {metrics['compute']}", flush=True)
    wall, out = _ascbench(runs, "predict", row["run_id"], "--dataset", "apsipa2025-eval", "--data-root", str(root),
                          "--output", str(runs / "submission.csv"), "--device", args.device)
    print(f"predict eval: {wall:.1f} s with cold extraction\n{out}", flush=True)


if __name__ == "__main__":
    main()
