"""random-clips, the APSIPA 2025 baseline's own 80/20 split of the labeled clips: kept for comparison with
reported numbers, and visibly leaky (its record says so, and the metadata ceiling under it is far above
the one under ``official``). The recipes' departures: every setting a built-in recipe makes is either
stated by its source or listed, with the reason, as a departure. No test trains a model.
"""

from __future__ import annotations

import numpy as np
import pytest

import ascbench.registry
from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.protocols import ProtocolOptions, Split, finalize_split
from ascbench.registry import build_registry, get_registry
from ascbench.recipes import unaccounted_settings
from ascbench.specs import Departure, ProtocolSpec, RecipeSpec
from ascbench.split_plan import plan_split
from ascbench_plugins import protocol_random_clips

NAME = protocol_random_clips.NAME


@pytest.fixture(scope="module")
def registry():
    """The installed plugins, with random-clips loaded explicitly when its entry point is not installed yet."""
    installed = get_registry()
    if NAME in installed.names("protocol"):
        return installed
    return build_registry([("protocol-random-clips", protocol_random_clips)])


@pytest.fixture
def cli_registry(registry, monkeypatch):
    monkeypatch.setattr(ascbench.registry, "_default", registry)


@pytest.fixture(scope="module")
def apsipa(registry):
    from ascbench.data.dataset import DatasetOptions

    return registry.dataset("embedded-apsipa").load(DatasetOptions(require_audio=False))


def plan(dataset, registry, protocol: str = NAME, seed: int = 0, **fields):
    """The split a run of ``protocol`` would train and score on (no validation part)."""
    config = RunConfig(dataset=dataset.name, protocol=protocol, seed=seed, **fields)
    return plan_split(dataset, config, registry, val_fraction=0.0)


def test_labeled_clips_split_80_20_deterministic_per_seed(apsipa, registry):
    labeled = int((apsipa.meta["labeled"] & (apsipa.label_indices() >= 0)).sum())
    first, again, other = (plan(apsipa, registry, seed=s) for s in (0, 0, 1))
    assert abs(len(first.split.test) - 0.2 * labeled) <= 1
    assert abs(len(first.partition.labeled) - 0.8 * labeled) <= 1
    assert np.array_equal(first.split.test, again.split.test)
    assert not np.array_equal(first.split.test, other.split.test)
    # Every unlabeled clip trains (its label hidden); no clip is on both sides or on neither.
    assert len(first.split.train) + len(first.split.test) == len(apsipa.meta)


def test_the_split_leaks_recordings_and_sessions_and_says_so(apsipa, registry):
    info = plan(apsipa, registry).split.info
    assert info["leaky"] is True and info["leak"] == protocol_random_clips.LEAK
    assert info["group_by"] == "clip"
    assert info["straddling"]["recording"] > 0 and info["straddling"]["session"] > 0
    assert protocol_random_clips.DESCRIPTION.startswith(
        "leaky: random clips, recordings and sessions straddle train and test; for comparison with reported "
        "baseline numbers only")


def test_official_is_not_leaky_but_official_by_recording_is(apsipa, registry):
    whole = plan(apsipa, registry, protocol="official").split.info
    assert whole["leaky"] is False and "leak" not in whole and set(whole["straddling"].values()) == {0}
    by_recording = plan(apsipa, registry, protocol="official", group_by="recording").split.info
    assert by_recording["leaky"] is True and "sessions straddle" in by_recording["leak"]


def test_metadata_ceiling_is_far_above_chance_under_random_clips_only(apsipa, registry):
    leaky = plan(apsipa, registry).ceiling["best"]
    whole = plan(apsipa, registry, protocol="official").ceiling["best"]
    assert leaky > 0.70, leaky  # a clip's recording- and session-mates teach its label
    assert whole < 0.50, whole


def test_group_by_is_refused_under_a_protocol_that_keeps_no_groups_whole(apsipa, registry):
    with pytest.raises(ConfigError, match="keeps no groups whole"):
        plan(apsipa, registry, group_by="session")


def test_a_protocol_that_keeps_no_groups_whole_must_say_why():
    with pytest.raises(ValueError, match="must say why"):
        ProtocolSpec("x-leaky", protocol_random_clips.random_clips, keeps_groups_whole=False)


def test_the_core_still_refuses_straddling_groups_for_other_protocols(apsipa):
    rec = apsipa.groups("recording")
    first = np.flatnonzero(rec == rec[0])
    assert len(first) > 1
    split = Split(np.setdiff1d(np.arange(len(rec)), first[:1]), first[:1])
    with pytest.raises(ConfigError, match="on both sides"):
        finalize_split(apsipa, split, ProtocolOptions(group_by="recording"), "p")
    done = finalize_split(apsipa, split, ProtocolOptions(), "p", keeps_groups_whole=False, leak="why")
    assert done.info["leaky"] and done.info["leak"] == "why" and done.info["group_by"] == "clip"


def test_data_split_prints_the_leak_and_the_ceiling(cli_registry, capsys):
    assert main(["data", "split", "embedded-apsipa", "--protocol", NAME]) == 0
    out = capsys.readouterr().out
    assert "clip by clip; LEAKY: random clips, recordings and sessions straddle train and test" in out
    assert "metadata ceiling" in out and "nearest in time" in out


@pytest.mark.parametrize("name", ("apsipa2025-baseline", "dcase2024-baseline", "li2026"))
def test_every_recipe_setting_is_from_its_source_or_a_declared_departure(name):
    spec = get_registry().recipe(name)
    assert spec.from_source, "a built-in recipe says which settings its source states"
    for dataset in ("embedded", *spec.per_dataset):
        assert unaccounted_settings(spec, dataset) == [], dataset


def test_li2026_declares_that_it_leaves_out_the_papers_semi_supervised_stage():
    spec = get_registry().recipe("li2026")
    assert spec.settings["semi"] == "none"
    named = {s: str(d) for d in spec.departures if isinstance(d, Departure) for s in d.settings}
    assert "semi-supervised stage is not reproduced" in named["semi"]
    assert {"city_dropout", "normalization", "val_fraction"} <= set(named)


def test_a_recipe_leaving_a_harness_default_or_an_undeclared_setting_is_caught():
    spec = RecipeSpec("loose", {"epochs": 2, "lr": 0.1}, "d", source="s", identical="i", from_source=("epochs",))
    assert unaccounted_settings(spec) == ["city_dropout", "lr", "normalization", "semi", "val_fraction"]
