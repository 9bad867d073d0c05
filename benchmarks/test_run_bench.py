"""The whole default ``ascbench run`` (mobileascnet, finetune, embedded, official) with warm caches,
and the share of its wall time spent on features."""

from __future__ import annotations

from ascbench.config import RunConfig
from ascbench.runner import execute
from conftest import note


def test_default_run_with_warm_caches(benchmark, tmp_path):
    config = RunConfig()
    execute(config, runs_root=tmp_path / "warm-up", progress=False)  # fills the data, feature and pretraining caches
    records = []
    benchmark.group = "default run"
    benchmark.pedantic(lambda: records.append(execute(config, runs_root=tmp_path / "timed", progress=False)),
                       rounds=1, iterations=1)
    timings = records[-1].metrics["timings"]
    share = timings["features_s"] / timings["total_s"]
    benchmark.extra_info.update(timings=timings, features_share=share)
    note("default run (warm caches)", f"{timings['total_s']:.1f} s wall, features {100 * share:.2f} % "
         f"(data {timings['data_s']:.2f} s, features {timings['features_s']:.2f} s, loading {timings['loading_s']:.2f} s, "
         f"train {timings['train_s']:.1f} s, "
         f"eval {timings['eval_s']:.2f} s)")
    assert records[-1].metrics["accuracy"] > 0.1
