"""Plugins' own options: a strategy, a semi method, a protocol and a dataset from outside the core each declare a
typed option, a front-end's options are its settings; a run sets them as KIND.FIELD from Python, the command line, a config file and a sweep cell (one validation path), and
bad keys or values fail before any audio is read."""

import dataclasses
import json
import types

import numpy as np
import pytest

from ascbench import hookimpl
from ascbench.cli import build_parser, config_from_args
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.protocols import Split
from ascbench.registry import build_registry
from ascbench.runner import execute
from ascbench.semi import supervised
from ascbench.data.dataset import DatasetOptions
from ascbench.features import FeatureConfig
from ascbench.specs import DatasetSpec, FrontEndSpec, ProtocolSpec, SemiSpec, StrategySpec
from ascbench.sweep import SweepSpec


@dataclasses.dataclass(frozen=True)
class WarmStartOptions:
    lr_scale: float = dataclasses.field(default=0.1, metadata={"help": "learning rate = --lr x this"})
    note: str = "none"


def warm_start(job):
    job.notes["lr_scale_used"] = job.options.lr_scale
    return job.fit(job.build_model(), lr=job.config.lr * job.options.lr_scale, desc="warm-start")


@dataclasses.dataclass(frozen=True)
class LastCityOptions:
    cities: int = 1  # how many cities (alphabetically last) to hold out


def last_cities(dataset, options):
    held = sorted(dataset.meta["city"].unique())[-options.plugin.cities:]
    test = np.flatnonzero(dataset.meta["city"].isin(held).to_numpy() & dataset.meta["labeled"].to_numpy())
    train = np.flatnonzero(~dataset.meta["city"].isin(held).to_numpy())
    return Split(train=train, test=test, info={"held_out": held})


@dataclasses.dataclass(frozen=True)
class RepeatOptions:
    times: int = 1


def repeat_supervised(job, model, lr, epochs, desc):
    """A semi method from outside the core: fit on the labeled clips ``times`` times (and say so)."""
    results = []
    for k in range(job.semi_options.times):
        results += supervised(job, model, lr, epochs, f"{desc} pass {k + 1}")
    job.notes["passes"] = len(results)
    return results


@dataclasses.dataclass(frozen=True)
class FewerCitiesOptions:
    drop: int = dataclasses.field(default=0, metadata={"help": "leave out this many cities (alphabetically last)"})

    def __post_init__(self):
        if self.drop < 0:
            raise ValueError(f"dataset.drop must be at least 0, got {self.drop}")


def fewer_cities(options: DatasetOptions):
    """A dataset from outside the core: the embedded-tiny clips, less the last ``drop`` cities."""
    from ascbench.registry import get_registry

    full = get_registry().dataset("embedded-tiny").load(DatasetOptions(data_root=options.data_root))
    cities = sorted(full.meta["city"].unique())
    keep = ~full.meta["city"].isin(cities[len(cities) - options.plugin.drop:] if options.plugin.drop else [])
    return dataclasses.replace(full, name="fewer-cities", meta=full.meta[keep.to_numpy()].reset_index(drop=True))


# A front-end from outside the core: the embedded front-end with half the mel bands.
COARSE = FeatureConfig(16_000, 1024, 800, 320, 32, 50.0, 8000.0)


PLUGIN = types.SimpleNamespace(
    ascbench_semi_methods=hookimpl(lambda: [SemiSpec("repeat", repeat_supervised, "fit again",
                                                     options_class=RepeatOptions)]),
    ascbench_strategies=hookimpl(lambda: [StrategySpec("warm-start", warm_start, "scaled lr", pretrains=False,
                                                       options_class=WarmStartOptions)]),
    ascbench_protocols=hookimpl(lambda: [ProtocolSpec("last-cities", last_cities, "hold out the last cities",
                                                      options_class=LastCityOptions)]),
    ascbench_datasets=hookimpl(lambda: [DatasetSpec("fewer-cities", fewer_cities, "embedded-tiny less some cities",
                                                    pretrain_source="embedded-tiny-source",
                                                    options_class=FewerCitiesOptions)]),
    ascbench_frontends=hookimpl(lambda: [FrontEndSpec("coarse-mel", COARSE, "32 mel bands")]),
)


@pytest.fixture(scope="module")
def registry():
    return build_registry([("outside", PLUGIN)])


BASE = dict(dataset="embedded-tiny", model="context-only", strategy="warm-start", epochs=1)


def test_options_set_as_kind_dot_field_reach_the_plugins_and_the_record(registry, tmp_path):
    config = RunConfig.from_dict({**BASE, "protocol": "last-cities", "strategy.lr_scale": 0.5, "protocol.cities": 2})
    assert config.options == {"strategy": {"lr_scale": 0.5}, "protocol": {"cities": 2}}
    record = execute(config, registry=registry, runs_root=tmp_path, progress=False)
    assert record.metrics["strategy_notes"]["lr_scale_used"] == 0.5
    assert len(record.metrics["split"]["held_out"]) == 2
    stored = json.loads((tmp_path / record.run_id / "config.json").read_text())
    assert stored["options"] == {"strategy": {"lr_scale": 0.5}, "protocol": {"cities": 2}}
    # Options are part of the experiment: another value is another row.
    assert config.experiment_digest() != config.replace(options={"strategy": {"lr_scale": 0.1}}).experiment_digest()
    # Defaults apply when nothing is set.
    plain = execute(RunConfig(**BASE), registry=registry, runs_root=tmp_path / "plain", progress=False)
    assert plain.metrics["strategy_notes"]["lr_scale_used"] == 0.1


@pytest.mark.parametrize("options,message", [
    ({"strategy.lr_scal": 0.5}, r"strategy 'warm-start' \(plugin 'outside'\) has no option strategy.lr_scal "
                                r"\(did you mean strategy.lr_scale\?\); its options: strategy.lr_scale, strategy.note"),
    ({"strategy.lr_scale": "fast"}, r"strategy.lr_scale of strategy 'warm-start' must be float, got 'fast'"),
    ({"protocol.cities": 1}, r"protocol 'session-holdout' \(plugin 'protocols'\) takes no options, got protocol.cities"),
])
def test_bad_options_fail_before_any_audio_is_read(registry, tmp_path, monkeypatch, options, message):
    import ascbench.pipeline as pipeline

    monkeypatch.setattr(pipeline, "load_checked_features", lambda *a, **k: pytest.fail("features were read"))
    with pytest.raises(ConfigError, match=message):
        execute(RunConfig.from_dict({**BASE, **options}), registry=registry, runs_root=tmp_path, progress=False)


def test_a_dataset_plugin_with_its_own_option_runs_end_to_end(registry, tmp_path):
    record = execute(RunConfig.from_dict({**BASE, "dataset": "fewer-cities", "dataset.drop": 2}), registry=registry,
                     runs_root=tmp_path, progress=False)
    plain = execute(RunConfig.from_dict({**BASE, "dataset": "fewer-cities"}), registry=registry,
                    runs_root=tmp_path, progress=False)
    tiny = registry.dataset("embedded-tiny").load(DatasetOptions())
    dropped = set(sorted(tiny.meta["city"].unique())[-2:])
    seen = lambda r: set(r.metrics["city_accuracy"])  # noqa: E731 - the test side's cities
    assert seen(record) and not seen(record) & dropped and seen(plain) & dropped
    assert record.metrics["dataset_fingerprint"] != plain.metrics["dataset_fingerprint"]
    with pytest.raises(ConfigError, match=r"dataset 'fewer-cities' options: dataset.drop must be at least 0"):
        execute(RunConfig.from_dict({**BASE, "dataset": "fewer-cities", "dataset.drop": -1}), registry=registry,
                runs_root=tmp_path, progress=False)


def test_a_front_end_plugin_and_front_end_options_run_end_to_end(registry, tmp_path):
    coarse = execute(RunConfig.from_dict({**BASE, "feature_preset": "coarse-mel"}), registry=registry,
                     runs_root=tmp_path, progress=False)
    assert coarse.metrics["features"]["preset"] == "coarse-mel" and coarse.metrics["features"]["n_mels"] == 32
    # A front-end's options are its settings: one changed, the rest the front-end's own.
    narrower = execute(RunConfig.from_dict({**BASE, "feature_preset": "coarse-mel", "frontend.n_mels": 24}),
                       registry=registry, runs_root=tmp_path, progress=False)
    assert narrower.metrics["features"] == {**coarse.metrics["features"], "n_mels": 24}
    with pytest.raises(ConfigError, match=r"frontend 'coarse-mel' \(plugin 'outside'\) has no option frontend.n_mel "
                                          r"\(did you mean frontend.n_mels\?\)"):
        execute(RunConfig.from_dict({**BASE, "feature_preset": "coarse-mel", "frontend.n_mel": 24}),
                registry=registry, runs_root=tmp_path, progress=False)
    with pytest.raises(ConfigError, match=r"front-end setting log='log2' is not one of"):
        execute(RunConfig.from_dict({**BASE, "frontend.log": "log2"}), registry=registry, runs_root=tmp_path,
                progress=False)


def test_one_path_from_the_command_line_a_config_file_and_a_sweep(tmp_path):
    argv = ["run", "--strategy", "finetune", "--set", "strategy.lr_scale=0.5", "--set", "model.width=48"]
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    assert config.options == {"strategy": {"lr_scale": 0.5}} and config.model_kwargs == {"width": 48}
    spec = tmp_path / "run.toml"
    spec.write_text('strategy = "finetune"\n[options.strategy]\nlr_scale = 0.25\n')
    assert RunConfig.from_file(spec, {}).options == {"strategy": {"lr_scale": 0.25}}
    cells = SweepSpec({"strategy": "finetune"}, {"strategy.lr_scale": [0.1, 0.2]}).cells()
    assert [c.options for c in cells] == [{"strategy": {"lr_scale": 0.1}}, {"strategy": {"lr_scale": 0.2}}]
    with pytest.raises(ConfigError, match="unknown config field.*'optimiser.lr'"):
        RunConfig.from_dict({"optimiser.lr": 1})


def test_a_semi_method_plugin_with_its_own_option_runs_with_any_strategy(registry, tmp_path):
    config = RunConfig.from_dict({**BASE, "semi": "repeat", "semi.times": 2})
    record = execute(config, registry=registry, runs_root=tmp_path, progress=False)
    assert record.metrics["strategy_notes"]["passes"] == 2
    assert [entry["stage"] for entry in record.metrics["history"]] == ["warm-start pass 1", "warm-start pass 2"]
    with pytest.raises(Exception, match="unknown semi-supervised method 'repaet'.*repeat"):
        execute(RunConfig(**{**BASE, "semi": "repaet"}), registry=registry, runs_root=tmp_path, progress=False)


def test_metric_plugins_score_every_run_and_agree_with_an_independent_computation(tmp_path):
    import sklearn.metrics

    from ascbench.leaderboard import sort_table
    from ascbench.specs import MetricSpec

    worst = types.SimpleNamespace(ascbench_metrics=hookimpl(lambda: [MetricSpec(
        "worst-class-accuracy", lambda y, p, classes: min(sklearn.metrics.recall_score(y, p.argmax(1), average=None,
                                                                                        labels=np.unique(y))), True,
        "the class the model serves worst")]))
    registry = build_registry([("outside", PLUGIN), ("worst-metric", worst)])
    record = execute(RunConfig(**{**BASE, "epochs": 2}), registry=registry, runs_root=tmp_path, progress=False)
    scores, m = record.metrics["scores"], record.metrics
    # The built-in metrics (scikit-learn) against ascbench's own numpy implementation.
    assert scores["macro-accuracy"] == pytest.approx(m["macro_accuracy"], abs=1e-12)
    assert scores["accuracy"] == pytest.approx(m["accuracy"], abs=1e-12)
    assert scores["macro-f1"] == pytest.approx(m["macro_f1"], abs=1e-12)
    assert scores["log-loss"] == pytest.approx(m["log_loss"], rel=1e-6)
    assert 0.0 <= scores["worst-class-accuracy"] <= scores["macro-accuracy"] <= scores["top-2-accuracy"] <= 1.0
    assert scores["worst-class-accuracy"] == pytest.approx(min(m["class_accuracy"].values()))
    # Leaderboards rank a metric the way its plugin says.
    import pandas as pd

    table = pd.DataFrame({"log_loss": [0.9, 0.5, 0.7], "accuracy": [0.5, 0.9, 0.7]})
    assert list(sort_table(table, "log_loss", registry)["log_loss"]) == [0.5, 0.7, 0.9]
    assert list(sort_table(table, "accuracy", registry)["accuracy"]) == [0.9, 0.7, 0.5]
