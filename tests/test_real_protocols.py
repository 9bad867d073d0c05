"""Protocols on the real APSIPA ASC 2025 dev metadata: sessions kept whole, every protocol runs, the
metadata ceiling is what an independent computation gives, and the core refuses a leaky plugin."""

import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score

from ascbench import hookimpl
from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.data.dataset import ClipDataset, DatasetOptions
from ascbench.errors import AscbenchError, ConfigError
from ascbench.metadata_ceiling import metadata_ceiling
from ascbench.options import resolve_all
from ascbench.protocols import ProtocolOptions, Split, run_protocol
from ascbench.registry import build_registry, get_registry
from ascbench.specs import ProtocolSpec
from ascbench.split_plan import plan_split
from ascbench.testing import ConformanceError, check_protocol, protocol_checks
from ascbench_plugins import apsipa2025

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "apsipa2025"
META_DIR = SHARED if SHARED.is_dir() else apsipa2025.SHIPPED


@pytest.fixture(scope="module")
def dev():
    return apsipa2025.load("dev", DatasetOptions(data_root=META_DIR, require_audio=False))


CASES = {
    "official": dict(protocol="official"),
    "unseen-city s0": dict(protocol="unseen-city"),
    "unseen-city s2": dict(protocol="unseen-city", seed=2),
    "unseen-city Xi'an": dict(protocol="unseen-city", options={"protocol": {"test_cities": ("Xi'an",)}}),
    "unseen-time evening+night": dict(protocol="unseen-time"),
    "unseen-time morning": dict(protocol="unseen-time", options={"protocol": {"test_periods": ("morning",)}}),
    "unseen-time date": dict(protocol="unseen-time", options={"protocol": {"time_holdout": "date"}}),
    "unseen-time June": dict(protocol="unseen-time", options={"protocol": {"time_holdout": "date",
                                                                            "test_dates": ("2023-06-18", "2023-06-19")}}),
    **{f"fold {k + 1}/4": dict(protocol="unseen-city", folds=4, fold=k) for k in range(4)},
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_protocol_runs_on_the_real_dev_metadata_with_sessions_whole(dev, case):
    plan = plan_split(dev, RunConfig(dataset="apsipa2025", **CASES[case]), get_registry())
    split, part = plan.split, plan.partition
    sessions, labels = dev.groups("session"), dev.label_indices()
    train_side = np.concatenate([part.labeled, part.unlabeled, part.val])
    assert split.info["group_by"] == "session"
    assert not set(sessions[train_side]) & set(sessions[part.test])  # no session on both sides
    assert not set(sessions[part.val]) & set(sessions[np.concatenate([part.labeled, part.unlabeled])])
    assert (labels[part.test] >= 0).all() and len(part.test) > 0
    taught = set(labels[np.concatenate([part.labeled, part.val])])
    assert set(labels[part.test]) <= taught  # every scored class is taught
    excluded = {dev.classes.index(c) for c in split.excluded_classes}
    assert not excluded & set(labels[part.test])  # excluded classes are not scored
    if case in ("unseen-time morning", "unseen-time evening+night"):
        periods = set(split.info["test_periods"])
        assert set(dev.meta["period"].iloc[part.test]) <= periods
        assert not set(dev.meta["period"].iloc[train_side]) & periods


def test_the_default_time_of_day_holdout_names_what_it_cannot_score(dev):
    plan = plan_split(dev, RunConfig(dataset="apsipa2025", protocol="unseen-time"), get_registry())
    # Every labeled Bar clip is from the evening; Construction-site sessions all reach into it.
    assert plan.split.excluded_classes == ("Bar", "Construction site")
    assert plan.split.info["purged_clips"] > 0  # afternoon clips of sessions that run into the evening
    with pytest.raises(ConfigError, match="Bar, Construction site.*--untaught exclude"):
        plan_split(dev, RunConfig(dataset="apsipa2025", protocol="unseen-time", untaught="refuse"), get_registry())
    morning = plan_split(dev, RunConfig(dataset="apsipa2025", protocol="unseen-time",
                                               options={"protocol": {"test_periods": ("morning",)}}),
                         get_registry())
    assert morning.split.excluded_classes == ()  # a hold-out that scores every class it tests


def test_official_split_leaves_metadata_little_and_the_recording_level_shows_the_leak(dev):
    registry = get_registry()
    session = plan_split(dev, RunConfig(dataset="apsipa2025"), registry)
    assert session.ceiling["nearest_in_time"] <= 0.45  # measured: 0.399
    assert session.ceiling["recording_hits"] == 0.0
    recording = plan_split(dev, RunConfig(dataset="apsipa2025", group_by="recording"), registry)
    assert recording.split.info["group_by"] == "recording"
    # Recordings whole but sessions cut: the training recording minutes away gives the label away.
    assert recording.ceiling["nearest_in_time"] > 0.8  # measured: 0.873


def _independent_ceiling(ds: ClipDataset, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """The three rules written as plain loops over clips, scored with scikit-learn."""
    labels, meta = ds.label_indices(), ds.meta
    train = [i for i in train if labels[i] >= 0]
    test = [i for i in test if labels[i] >= 0]

    def majority(values):
        counts = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        top = max(counts.values())
        return min(v for v, n in counts.items() if n == top)

    overall = majority([labels[i] for i in train])
    by_city, by_rec, stamps = {}, {}, {}
    for i in train:
        city = meta["city"].iloc[i]
        by_city.setdefault(city, []).append(labels[i])
        by_rec.setdefault(meta["group"].iloc[i], []).append(labels[i])
        stamps.setdefault(city, []).append((meta["timestamp"].iloc[i], labels[i]))
    preds = {"recording_lookup": [], "nearest_in_time": [], "city_prior": []}
    for i in test:
        city, rec, t = meta["city"].iloc[i], meta["group"].iloc[i], meta["timestamp"].iloc[i]
        prior = majority(by_city[city]) if city in by_city else overall
        preds["city_prior"].append(prior)
        preds["recording_lookup"].append(majority(by_rec[rec]) if rec in by_rec else prior)
        if city not in stamps:
            preds["nearest_in_time"].append(overall)
            continue
        gap = min(abs((s - t).total_seconds()) for s, _ in stamps[city])
        nearest = [(s, y) for s, y in stamps[city] if abs((s - t).total_seconds()) == gap]
        earliest = min(s for s, _ in nearest)  # ties: the earlier recording
        preds["nearest_in_time"].append(majority([y for s, y in nearest if s == earliest]))
    truth = [labels[i] for i in test]
    with warnings.catch_warnings():  # a rule may predict a class that is not tested: that is just a miss
        warnings.simplefilter("ignore", UserWarning)
        return {rule: balanced_accuracy_score(truth, p) for rule, p in preds.items()}


@pytest.mark.parametrize("case", ["official", "unseen-time evening+night", "unseen-city Xi'an", "recording-level"])
def test_metadata_ceiling_matches_an_independent_computation(dev, case):
    fields = dict(protocol="official", group_by="recording") if case == "recording-level" else CASES[case]
    plan = plan_split(dev, RunConfig(dataset="apsipa2025", **fields), get_registry())
    seen = np.concatenate([plan.partition.labeled, plan.partition.val])
    # A sample of the test side keeps the plain loops fast; the rules do not depend on the other test clips.
    test = np.random.default_rng(0).choice(plan.partition.test, size=min(150, len(plan.partition.test)), replace=False)
    ours = metadata_ceiling(dev, seen, test)
    theirs = _independent_ceiling(dev, seen, test)
    for rule, value in theirs.items():
        assert ours[rule] == pytest.approx(value, abs=1e-12), rule


def test_metadata_ceiling_by_hand():
    """Six clips worked out on paper: city A trains Bus at 10:00 and Metro at 12:00; city B trains Bar."""
    rows = [("a1.wav", "Bus", "A", "2023-06-01 10:00:00", "A 10"), ("a2.wav", "Metro", "A", "2023-06-01 12:00:00", "A 12"),
            ("a3.wav", "Metro", "A", "2023-06-01 12:00:00", "A 12"), ("b1.wav", "Bar", "B", "2023-06-01 20:00:00", "B 20"),
            ("t1.wav", "Bus", "A", "2023-06-01 10:30:00", "A 1030"),  # nearest: Bus (30 min) -> right; prior Metro -> wrong
            ("t2.wav", "Metro", "A", "2023-06-01 11:00:00", "A 11"),  # tie 1 h each way -> earlier, Bus -> wrong
            ("t3.wav", "Bar", "B", "2023-06-02 08:00:00", "B 8")]  # only Bar in B -> right by every rule
    meta = pd.DataFrame(rows, columns=["filename", "scene_label", "city", "timestamp", "group"])
    meta["labeled"], meta["split"] = True, ""
    ds = ClipDataset("hand", Path("."), meta, ["Bus", "Metro", "Bar"], 16_000, 1.0, "embedded")
    ceiling = metadata_ceiling(ds, np.arange(4), np.arange(4, 7))
    # classes Bus, Metro, Bar: nearest 1, 0, 1 -> 2/3; city prior (A: Metro 2-1) 0, 1, 1 -> 2/3
    assert ceiling["nearest_in_time"] == pytest.approx(2 / 3)
    assert ceiling["city_prior"] == pytest.approx(2 / 3)
    assert ceiling["recording_lookup"] == ceiling["city_prior"] and ceiling["recording_hits"] == 0.0


def test_a_careless_clip_split_is_exposed_by_the_recording_lookup(dev):
    labeled = np.flatnonzero(dev.meta["labeled"].to_numpy())
    test = np.random.default_rng(0).choice(labeled, size=len(labeled) // 5, replace=False)
    leaky = metadata_ceiling(dev, np.setdiff1d(labeled, test), test)
    assert leaky["recording_lookup"] > 0.95 and leaky["recording_hits"] > 0.9


def _leaky_registry():
    def every_other_clip(dataset, options):
        rows = np.arange(len(dataset.meta))
        return Split(train=rows[::2], test=rows[1::2], info={"protocol": "every-other-clip"})

    plugin = types.SimpleNamespace(ascbench_protocols=hookimpl(lambda: [ProtocolSpec("every-other-clip", every_other_clip)]))
    return build_registry([("leaky-split", plugin)])


def test_the_core_refuses_a_leaky_protocol_plugin_naming_the_shared_group(registry, dev):
    leaky = _leaky_registry()
    embedded = registry.dataset("embedded").load(DatasetOptions())  # three clips per recording
    with pytest.raises(ConfigError, match=r"protocol 'every-other-clip' puts recording\(s\) '.+' .*on both sides"):
        plan_split(embedded, RunConfig(protocol="every-other-clip"), leaky)
    with pytest.raises(ConfigError, match=r"puts session\(s\) 'Chongqing 2023-06-24', .* and 28 more on both sides"):
        plan_split(dev, RunConfig(dataset="apsipa2025", protocol="every-other-clip"), leaky)
    with pytest.raises(ConformanceError, match="every-other-clip.*leaky-split.*on both sides"):
        check_protocol("every-other-clip", dev, leaky)


def test_a_protocol_plugin_that_breaks_is_named():
    def broken(dataset, options):
        raise KeyError("city")

    plugin = types.SimpleNamespace(ascbench_protocols=hookimpl(lambda: [ProtocolSpec("broken", broken),
                                                                        ProtocolSpec("shapeless", lambda d, o: (1, 2))]))
    registry = build_registry([("oops", plugin)], entry_points=False)
    ds = apsipa2025.load("dev", DatasetOptions(data_root=META_DIR, require_audio=False))
    with pytest.raises(AscbenchError, match=r"protocol 'broken' \(plugin 'oops'\) failed.*KeyError"):
        run_protocol(registry.protocol("broken"), ds, ProtocolOptions(), "oops")
    with pytest.raises(AscbenchError, match="returned tuple, not a Split"):
        run_protocol(registry.protocol("shapeless"), ds, ProtocolOptions(), "oops")


@pytest.mark.parametrize("name", ["session-holdout", "unseen-city", "unseen-time"])
def test_built_in_protocols_pass_the_protocol_kit_on_real_and_embedded_data(name, dev, tiny):
    for dataset in (dev, tiny):
        for check in protocol_checks(name, dataset):
            check()


def test_unknown_grouping_level_and_bad_split_options_fail_before_any_data(tiny):
    with pytest.raises(ConfigError, match="declares the levels recording"):
        plan_split(tiny, RunConfig(dataset="embedded-tiny", group_by="session"), get_registry())
    with pytest.raises(ConfigError, match="--test-periods takes periods"):
        resolve_all(RunConfig.from_dict({"protocol": "unseen-time", "test_periods": ["dusk"]}), get_registry())
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        resolve_all(RunConfig.from_dict({"protocol": "unseen-time", "time_holdout": "date",
                                         "test_dates": ["18/06/2023"]}), get_registry())
    with pytest.raises(ConfigError, match="protocol.test_cities must be a list"):
        resolve_all(RunConfig.from_dict({"protocol": "unseen-city", "test_cities": 5}), get_registry())
    with pytest.raises(ConfigError, match="--untaught"):
        RunConfig(untaught="ignore")


def test_a_test_date_nobody_recorded_on_is_named(dev):
    with pytest.raises(ConfigError, match="--test-dates 2023-01-01: no clip"):
        plan_split(dev, RunConfig(dataset="apsipa2025", protocol="unseen-time",
                                  options={"protocol": {"time_holdout": "date", "test_dates": ("2023-01-01",)}}),
                   get_registry())


def test_pretraining_on_the_dataset_under_test_is_refused():
    with pytest.raises(ConfigError, match="--pretrain-on 'apsipa2025' is the dataset under test"):
        RunConfig(dataset="apsipa2025", pretrain_on="apsipa2025")


def test_data_split_previews_four_folds_that_all_run(capsys):
    assert main(["data", "split", "apsipa2025", "--protocol", "unseen-city", "--folds", "4",
                 "--data-root", str(META_DIR)]) == 0
    out = capsys.readouterr().out
    assert "4 folds" in out and all(f"{k}/4" in out for k in range(1, 5))
    assert "Public square, Traffic street" in out  # the fold holding out Xi'an cannot score them


def test_data_split_prints_the_ceiling_and_writes_sessions(capsys, tmp_path):
    out_csv = tmp_path / "split.csv"
    assert main(["data", "split", "apsipa2025", "--data-root", str(META_DIR), "--output", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "whole sessions on one side" in out and "nearest in time (same city) 39.9 %" in out
    frame = pd.read_csv(out_csv)
    assert {"session", "role"} <= set(frame.columns)
    assert not set(frame.loc[frame.role == "test", "session"]) & set(frame.loc[frame.role.str.startswith("train"), "session"])


def test_run_with_folds_checks_every_fold_before_storing_any(runs, capsys):
    code = main(["run", "--dataset", "apsipa2025", "--data-root", str(META_DIR), "--protocol", "unseen-city",
                 "--folds", "4", "--untaught", "refuse", "--no-progress"])
    assert code != 0
    err = capsys.readouterr().err
    assert "fold 3 of 4 cannot run, so no fold was started" in err and "Public square" in err
    assert not runs.exists() or not any(runs.iterdir())
