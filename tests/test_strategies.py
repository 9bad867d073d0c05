"""Strategies x semi-supervision: every combination runs, nothing of the test side leaks into training."""

import numpy as np
import pytest
import torch

import ascbench.pipeline
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.runner import execute
from ascbench_plugins.semi_methods import select_pseudo_labels
from ascbench.training import DataBundle

SMALL = {"stem_channels": 8, "channels": [8, 16, 16], "gru_hidden": 16}
STRATEGIES = ["scratch", "finetune", "freeze", "linear-probe"]
SEMIS = ["none", "pseudo-label", "mean-teacher"]


@pytest.fixture
def touched(monkeypatch):
    """Every (dataset, row) a training stage reads; the final scoring of the test set is not recorded."""
    seen: list[tuple[str, int]] = []
    recording = {"on": True}
    real_batch, real_predict = DataBundle.batch_on, ascbench.pipeline.predict

    # batch_on is how the loop, validation and pseudo-labelling read clips (the resident copy the bundle may
    # make holds every clip's features, but none of their labels, and is only read through it).
    def batch(self, rows, compute):
        if recording["on"]:
            seen.extend((self.dataset.name, int(r)) for r in rows)
        return real_batch(self, rows, compute)

    def final_predict(*args, **kwargs):
        recording["on"] = False
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(DataBundle, "batch_on", batch)
    monkeypatch.setattr(ascbench.pipeline, "predict", final_predict)
    return seen


@pytest.mark.parametrize("semi", SEMIS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_combination_runs_without_touching_test_clips(runs, touched, strategy, semi, tiny):
    short = {"pretrain_epochs": 1} if strategy != "scratch" else {}  # scratch reads no pretraining setting
    config = RunConfig(strategy=strategy, semi=semi, dataset="embedded-tiny", epochs=2, **short,
                       options={"semi": {"rounds": 1, "threshold": 0.0}} if semi == "pseudo-label" else {},
                       model_kwargs=SMALL, seed=1)
    record = execute(config, progress=False)
    assert 0.0 <= record.metrics["accuracy"] <= 1.0
    split = pd_read_split(runs / record.run_id / "split.csv")
    test_rows = set(np.flatnonzero(split["role"] == "test"))
    test_groups = set(tiny.meta["group"].iloc[sorted(test_rows)])
    target_rows = {r for name, r in touched if name == "embedded-tiny"}
    assert target_rows, "training read no target clips at all"
    assert not target_rows & test_rows
    assert not set(tiny.meta["group"].iloc[sorted(target_rows)]) & test_groups
    if semi == "pseudo-label":
        (entry,) = record.metrics["strategy_notes"]["pseudo_label_rounds"]
        unlabeled = int(np.sum(split["role"] == "unlabeled"))
        assert entry["pool"] == unlabeled and entry["selected"] == unlabeled  # threshold 0, one round: all of them
        assert 0.0 <= entry["accuracy_where_known"] <= 1.0


def pd_read_split(path):
    import pandas as pd

    return pd.read_csv(path)


def _trained_and_pretrained(strategy, runs):
    from ascbench.pipeline import resolve
    from ascbench.pretraining import pretrained_state

    config = RunConfig(strategy=strategy, dataset="embedded-tiny", epochs=2, pretrain_epochs=1, model_kwargs=SMALL)
    record = execute(config, progress=False)
    trained = torch.load(runs / record.run_id / "model.pt", weights_only=False)["model"]
    pretrained = pretrained_state(resolve(config), progress=False).state
    return trained, pretrained


def test_freeze_keeps_the_feature_extractor_fixed(runs):
    trained, pretrained = _trained_and_pretrained("freeze", runs)
    for name in ("stem.0.weight", "blocks.0.body.0.0.weight", "blocks.2.body.1.3.weight", "blocks.1.body.0.1.running_mean"):
        assert torch.equal(trained[name], pretrained[name]), name
    assert not torch.equal(trained["gru.weight_hh_l0"], pretrained["gru.weight_hh_l0"])
    assert not torch.equal(trained["head.1.weight"], pretrained["head.1.weight"])


def test_linear_probe_trains_only_the_classifier(runs):
    trained, pretrained = _trained_and_pretrained("linear-probe", runs)
    changed = {k for k in trained if k in pretrained and trained[k].shape == pretrained[k].shape
               and trained[k].dtype.is_floating_point and not torch.equal(trained[k], pretrained[k])}
    assert changed == {"head.1.weight", "head.1.bias"}


def test_freeze_needs_a_feature_extractor(runs):
    with pytest.raises(ConfigError, match="context-only.*feature_extractor"):
        execute(RunConfig(model="context-only", strategy="freeze", dataset="embedded-tiny", epochs=1, pretrain_epochs=1),
                progress=False)


def test_pseudo_label_selection():
    probs = np.array([
        [0.9, 0.1], [0.6, 0.4], [0.55, 0.45],  # predicted 0
        [0.2, 0.8], [0.45, 0.55],  # predicted 1
    ])
    assert list(select_pseudo_labels(probs, 0.0, 1.0, True)) == [0, 1, 2, 3, 4]
    assert list(select_pseudo_labels(probs, 0.58, 1.0, True)) == [0, 1, 3]
    # Class-balanced: the top half of each predicted class, not the top half overall.
    assert list(select_pseudo_labels(probs, 0.0, 0.5, True)) == [0, 1, 3]
    assert list(select_pseudo_labels(probs, 0.0, 0.4, False)) == [0, 3]


def test_unknown_semi_method_fails_before_any_data_is_read(tmp_path, monkeypatch):
    # Semi methods are plugins: the registry refuses an unknown one at the start of a run, naming the valid ones.
    from ascbench.errors import UnknownNameError

    monkeypatch.setattr(ascbench.pipeline, "load_checked_features", lambda *a, **k: pytest.fail("features were read"))
    with pytest.raises(UnknownNameError, match="unknown semi-supervised method 'co-training'.*mean-teacher"):
        execute(RunConfig(semi="co-training", dataset="embedded-tiny"), runs_root=tmp_path, progress=False)


def test_batches_keep_rows_and_targets_aligned(tiny):
    """Pseudo-labelled training rows are not sorted; a batch must come back in the order asked for."""
    from ascbench.features import get_preset, load_features

    feats, _ = load_features(tiny, get_preset("embedded"), progress=False)
    data = DataBundle.build(tiny, feats, np.arange(len(tiny.meta)))
    rows = np.array([7, 2, 5])
    x, city, _ = data.batch(rows)
    for i, r in enumerate(rows):
        assert torch.allclose(x[i, 0], data.batch(np.array([r]))[0][0, 0])
        assert city[i] == data.city[r]


def test_fit_reads_each_target_with_its_own_clip(tiny, monkeypatch):
    """Training on unsorted rows: every batch pairs each clip with the target given for that row."""
    import torch.nn as nn

    from ascbench.features import get_preset, load_features
    from ascbench.fitting import fit

    feats, _ = load_features(tiny, get_preset("embedded"), progress=False)
    data = DataBundle.build(tiny, feats, np.arange(len(tiny.meta)))
    rows = np.array([40, 3, 25, 11, 30, 1])
    targets = np.array([9, 8, 7, 6, 5, 4])
    expected = dict(zip(rows.tolist(), targets.tolist()))
    pairs = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Linear(1, 10)

        def forward(self, x, city=None, time=None):
            pairs.append(x[:, 0, 0, 0].detach().clone())
            return self.w(x[:, :, 0, :1].mean(dim=(1, 2)).unsqueeze(1))

    seen = []
    real_one_hot = torch.nn.functional.one_hot
    monkeypatch.setattr(torch.nn.functional, "one_hot", lambda t, n: seen.append(t.clone()) or real_one_hot(t, n))
    fit(Probe(), data, rows, np.array([], dtype=np.int64), targets=targets, epochs=1, lr=1e-3,
        config=RunConfig(batch_size=3, min_epoch_clips=1, city_dropout=0.0), seed=0, progress=False)
    first_value = {r: float(data.batch(np.array([r]))[0][0, 0, 0, 0]) for r in rows}
    for xs, ts in zip(pairs, seen):
        for value, target in zip(xs.tolist(), ts.tolist()):
            row = next(r for r, v in first_value.items() if abs(v - value) < 1e-6)
            assert expected[row] == target


def test_recording_vote_uses_labeled_clips_and_averages_the_rest():
    import types

    import pandas as pd

    from ascbench_plugins.semi_methods import recording_vote

    meta = pd.DataFrame({"group": ["r1", "r1", "r1", "r2", "r2", "r3"]})
    data = types.SimpleNamespace(dataset=types.SimpleNamespace(meta=meta), labels=np.array([2, 0, 1, 1, 0, 0]))
    part = types.SimpleNamespace(labeled=np.array([0]), unlabeled=np.array([1, 2, 3, 4, 5]))
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.9, 0.05, 0.05]])
    voted = recording_vote(types.SimpleNamespace(partition=part, data=data), probs)
    np.testing.assert_allclose(voted[0], [0, 0, 1])  # r1 has a labeled clip of class 2
    np.testing.assert_allclose(voted[1], [0, 0, 1])
    np.testing.assert_allclose(voted[2], [0.35, 0.45, 0.2])  # r2: mean of its two clips
    np.testing.assert_allclose(voted[3], voted[2])
    np.testing.assert_allclose(voted[4], probs[4])  # r3 alone
