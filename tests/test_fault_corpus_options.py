"""The options corpus: settings a run would not read, conflicting sources, ranges that depend on the data,
and plugins that misbehave. Each case ends in one line that names the flag (or the plugin) and what to do,
raised before anything is stored; none reaches the CLI's "--debug" catch-all. Nothing here trains a model
for more than a batch.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
import torch.nn as nn

from ascbench import hookimpl, pipeline
from ascbench.applicability import READ_WHEN
from ascbench.cli import build_parser, main
from ascbench.cli.run import config_from_args
from ascbench.config import RunConfig
from ascbench.errors import ConfigError, PluginError
from ascbench.registry import build_registry
from ascbench.specs import DatasetSpec, ModelSpec, SemiSpec, StrategySpec
from ascbench.sweep import SweepSpec

BASE = ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--epochs", "1", "--no-progress"]


def _one_line_error(args: list[str], capsys) -> str:
    assert main(BASE + args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "--debug" not in err, err
    return err


# --- settings the run would not read: refused, from every source ---------------------------------------

UNREAD = [
    (["--strategy", "scratch", "--pretrain-epochs", "5"], "--pretrain-epochs: strategy 'scratch'"),
    (["--strategy", "scratch", "--pretrain-classes", "target"], "--pretrain-classes: strategy 'scratch'"),
    (["--strategy", "scratch", "--pretrain-data-root", "/data"], "--pretrain-data-root: strategy 'scratch'"),
    (["--strategy", "finetune", "--pretrained", "w.pt", "--pretrain-epochs", "5"], "--pretrain-epochs: --pretrained w.pt"),
    (["--strategy", "finetune", "--pretrained", "w.pt", "--pretrain-on", "embedded-source"], "--pretrain-on: --pretrained"),
    (["--protocol", "unseen-time", "--test-dates", "2023-06-18"], "--test-dates: --time-holdout time-of-day"),
    (["--protocol", "unseen-time", "--time-holdout", "date", "--test-periods", "night"], "--test-periods: --time-holdout date"),
    (["--protocol", "unseen-city", "--folds", "3", "--test-cities", "Arden"], "--test-cities: --folds 3"),
    (["--scheduler", "cosine", "--set", "step_gamma=0.5"], "--set step_gamma: --scheduler cosine"),
    (["--set", "step_epochs=4"], "--set step_epochs: --scheduler one-cycle"),
    (["--set", "warmup_epochs=2"], "--set warmup_epochs: --scheduler one-cycle"),
    (["--mixstyle-alpha", "0.5"], "--mixstyle-alpha: --mixstyle-p 0"),
    (["--mask-value", "floor"], "--mask-value: no mask is drawn"),
    (["--patience", "0", "--min-epochs", "3"], "--min-epochs: --patience 0"),
    (["--val-fraction", "0", "--select-on", "loss"], "--select-on: --val-fraction 0"),
    (["--val-fraction", "0", "--patience", "3"], "--patience: --val-fraction 0"),
    (["--log-dir", "logs"], "--log-dir: no --logger"),
    (["--model", "cp-mobile", "--city-dropout", "0.3"], "--city-dropout: model 'cp-mobile'"),
    (["--protocol", "all-labeled", "--untaught", "refuse"], "--untaught: protocol 'all-labeled'"),
]


@pytest.mark.parametrize("args,words", UNREAD, ids=[" ".join(a) for a, _ in UNREAD])
def test_a_setting_the_run_does_not_read_is_refused(args, words, runs, capsys):
    err = _one_line_error(args, capsys)
    assert words in err and "Drop" in err
    assert not (runs / "results.jsonl").exists()


def test_every_conditional_field_is_a_config_field():
    assert set(READ_WHEN) <= set(RunConfig.__dataclass_fields__)


@pytest.mark.parametrize("source", ["api", "config file", "sweep grid"])
def test_unread_settings_are_refused_from_every_source(source, tmp_path, registry):
    fields = {"strategy": "scratch", "pretrain_epochs": 5}
    with pytest.raises(ConfigError, match="--pretrain-epochs: strategy 'scratch'"):
        if source == "api":
            pipeline.resolve(RunConfig(**fields), registry)
        elif source == "config file":
            path = tmp_path / "run.toml"
            path.write_text('strategy = "scratch"\npretrain_epochs = 5\n')
            pipeline.resolve(RunConfig.from_file(path), registry)
        else:
            SweepSpec({}, {"strategy": ["scratch"], "pretrain_epochs": [5, 10]}).cells()


def test_a_sweep_base_setting_is_dropped_from_the_cells_that_do_not_read_it():
    cells = SweepSpec({"pretrain_epochs": 3, "dataset": "embedded-tiny"}, {"strategy": ["scratch", "finetune"]}).cells()
    by_strategy = {c.strategy: c for c in cells}
    assert by_strategy["finetune"].pretrain_epochs == 3
    assert by_strategy["scratch"].pretrain_epochs == RunConfig().pretrain_epochs  # not stored as if it mattered
    # a protocol's option under its old field name (test_periods, now unseen-time's): kept where that protocol runs
    cells = SweepSpec({"test_periods": ["morning"], "dataset": "embedded-tiny"},
                      {"protocol": ["session-holdout", "unseen-time"]}).cells()
    by_protocol = {c.protocol: c for c in cells}
    assert by_protocol["unseen-time"].options == {"protocol": {"test_periods": ["morning"]}}
    assert by_protocol["session-holdout"].options == {}


def test_a_recipes_settings_for_another_plugin_are_not_the_users_mistake(registry):
    config = RunConfig.from_dict({"recipe": "li2026", "strategy": "scratch", "dataset": "embedded-tiny"})
    pipeline.resolve(config, registry)  # li2026's strategy.lr_scale and pretraining epochs belong to finetune
    assert "strategy" not in config.options


# --- one precedence rule, and a word when two sources disagree ----------------------------------------

@pytest.mark.parametrize("argv", [["--set", "seed=1", "--seed", "2"], ["--seed", "2", "--set", "seed=1"]])
def test_set_wins_over_a_typed_flag_in_either_order_and_says_so(argv, capsys):
    args = build_parser().parse_args(["run", *argv])
    assert config_from_args(args).seed == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed" in err[0] and "--set seed=1 applies" in err[0] and "precedence" in err[0]


def test_a_config_file_value_overridden_by_a_flag_is_named(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text("seed = 5\n[options.strategy]\nlr_scale = 0.2\n")
    argv = ["--config", str(path), "--finetune-lr-scale", "0.1", "--seed", "5"]
    args = build_parser().parse_args(["run", *argv])
    config = config_from_args(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert config.options == {"strategy": {"lr_scale": 0.1}} and config.seed == 5
    assert len(err) == 1 and "strategy.lr_scale" in err[0] and "--finetune-lr-scale 0.1 applies" in err[0]


def test_the_precedence_rule_is_in_run_help(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "recipe < --config file < typed flags < --set" in capsys.readouterr().out


# --- ranges: owned by ascbench, and those that depend on the data checked against it --------------------

def test_the_seed_bound_is_ascbenchs():
    RunConfig(seed=2**32 - 1)
    with pytest.raises(ConfigError, match=r"--seed \(seed\) must be in \[0, 4294967296\)"):
        RunConfig(seed=2**32)


DATA_RANGES = [
    (["--freq-mask", "64"], "--freq-mask 64 (freq_mask) is as wide as the spectrogram", "[0, 63]"),
    (["--time-mask", "5000"], "--time-mask 5000 (time_mask) is as wide as the spectrogram", "[0, 50]"),
    (["--roll-seconds", "3"], "--roll-seconds 3 (roll_seconds) is longer than embedded-tiny's 1 s clips", "[0, 1]"),
    (["--val-fraction", "0.99"], "--val-fraction 0.99 (val_fraction) holds out every labeled recording", "[0, 0."),
    (["--labeled", "0.0001"], "--labeled 0.0001 (labeled) leaves no class", ", 1]"),
    (["--batch-size", "1"], "--batch-size (batch_size) must be in [2, 65536]", ""),
    (["--set", "frontend.hop_length=0"], "frontend.hop_length = 0 (given) is out of range", "[1, inf)"),
    (["--set", "frontend.n_mels=100000"], "frontend.n_mels = 100000 (given) is out of range", "n_fft // 2 + 1"),
]


@pytest.mark.parametrize("args,words,valid", DATA_RANGES, ids=[" ".join(a) for a, _, _ in DATA_RANGES])
def test_a_range_that_depends_on_the_data_names_the_valid_range(args, words, valid, runs, capsys):
    err = _one_line_error(args, capsys)
    assert words in err and valid in err


# --- plugins that misbehave are named, and only they ----------------------------------------------------

class _Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Linear(1, 1)

    def forward(self, x, city, time):
        raise KeyError("no such band")


def _lazy(job):
    return None


def _buggy(job):
    return {}["model"]


def _bad_semi(job, model, lr, epochs, desc):
    return None


def _plugin():
    return types.SimpleNamespace(
        ascbench_strategies=hookimpl(lambda: [StrategySpec("lazy", _lazy, pretrains=False),
                                              StrategySpec("buggy", _buggy, pretrains=False)]),
        ascbench_models=hookimpl(lambda: [ModelSpec("nothing-net", lambda ctx: None),
                                          ModelSpec("raising-net", lambda ctx: _Raises())]),
        ascbench_semi_methods=hookimpl(lambda: [SemiSpec("no-results", _bad_semi)]),
        ascbench_datasets=hookimpl(lambda: [DatasetSpec("not-a-dataset", lambda options: {"clips": []})]),
    )


@pytest.fixture(scope="module")
def faulty():
    return build_registry([("faulty-plugin", _plugin())])


PLUGIN_FAULTS = [
    ({"strategy": "lazy"}, "strategy 'lazy' (plugin 'faulty-plugin') returned None, not the trained model"),
    ({"strategy": "buggy"}, "training failed in strategy 'buggy' (plugin 'faulty-plugin'): KeyError"),
    ({"strategy": "scratch", "model": "raising-net"}, "training failed in model 'raising-net' (plugin 'faulty-plugin')"),
    ({"strategy": "scratch", "semi": "no-results"},
     "semi-supervised method 'no-results' (plugin 'faulty-plugin') returned None, not a list of FitResult"),
    ({"model": "nothing-net", "strategy": "scratch"},
     "model 'nothing-net' (plugin 'faulty-plugin') returned None, not a torch nn.Module"),
    ({"dataset": "not-a-dataset", "strategy": "scratch"},
     "dataset 'not-a-dataset' (plugin 'faulty-plugin') returned dict, not ClipDataset"),
]


@pytest.mark.parametrize("fields,words", PLUGIN_FAULTS, ids=[str(f) for f, _ in PLUGIN_FAULTS])
def test_a_misbehaving_plugin_is_named(fields, words, faulty, runs):
    from ascbench.runner import execute

    config = RunConfig(**{"dataset": "embedded-tiny", "model": "context-only", "epochs": 1, **fields})
    with pytest.raises(PluginError) as caught:
        execute(config, registry=faulty, runs_root=runs, progress=False)
    message = str(caught.value)
    assert words in message and "\n" not in message
    if fields.get("strategy") in ("lazy", "buggy"):
        assert "context-only" not in message  # the model did nothing wrong


def test_the_conformance_kit_names_a_strategy_that_returns_none(faulty):
    from ascbench.testing.kit import ConformanceError
    from ascbench.testing.training import strategy_checks

    with pytest.raises(ConformanceError, match="strategy 'lazy' \\(plugin 'faulty-plugin'\\) fails .*returned None"):
        strategy_checks("lazy", faulty)[0]()


# --- weights and data hints -------------------------------------------------------------------------------

def test_a_runs_own_model_pt_loads_as_pretrained_weights(tmp_path):
    from ascbench.weights import read_checkpoint

    path = tmp_path / "model.pt"  # as ascbench.runner writes it: normalisation statistics are numpy arrays
    torch.save({"model": {"w": torch.zeros(2)}, "mean": np.zeros(64, np.float32), "std": np.ones(64, np.float32),
                "cities": ["Arden"], "classes": ["Bus"], "config": RunConfig().to_record()}, path)
    raw = read_checkpoint(path)
    assert raw["mean"].shape == (64,) and raw["config"]["options"] == {"strategy": {"lr_scale": 0.3}}


def test_the_weights_refusal_points_at_real_commands():
    from ascbench.weights import Checkpoint, load_with_report

    with pytest.raises(ConfigError) as caught:
        load_with_report(nn.Linear(3, 2), Checkpoint(state={"other.weight": torch.zeros(1)}))
    assert "import-weights" not in str(caught.value) and "--model" in str(caught.value)
    assert "se-trans reads" in str(caught.value)  # the models that convert official checkpoints, by name


def test_the_unusable_audio_error_gives_a_data_check_command_that_runs(tiny):
    from ascbench.data.audio import FileReport
    from ascbench.features import unusable_files_error

    error = unusable_files_error(tiny, [FileReport("a.wav", "empty")], "")
    assert f"ascbench data check {tiny.name} --data-root {tiny.root}" in str(error)


# --- records keep every plugin option, and old records still compare equal ---------------------------

def test_a_record_stores_every_plugin_option_and_old_records_compare_equal():
    from ascbench.leaderboard import setting_of

    new = RunConfig(strategy="finetune", dataset="embedded-tiny")
    record = new.to_record()
    assert record["options"] == {"strategy": {"lr_scale": 0.3}}  # the default that applied, written down
    old = {**record, "options": {}}  # a record written before options were stored in full
    for stored in (record, old):
        back = RunConfig.from_stored(json.loads(json.dumps(stored)))
        assert back.experiment_digest() == new.experiment_digest() and back.digest() == new.digest()
    assert setting_of(record) == setting_of(old)
    changed = RunConfig.from_stored({**record, "options": {"strategy": {"lr_scale": 0.1}}})
    assert changed.options == {"strategy": {"lr_scale": 0.1}} and changed.experiment_digest() != new.experiment_digest()


# --- the run command's own modes ----------------------------------------------------------------------------

@pytest.mark.parametrize("content,extra,words", [
    ("{not json", [], "its config.json cannot be read"),
    (json.dumps(RunConfig().to_record()), ["--seed", "3"], "so seed would be ignored"),
    (json.dumps(RunConfig().to_record()), ["--runs-dir", "elsewhere"], "is stored where it was started"),
])
def test_resume_refuses_a_damaged_stage_and_settings_it_would_ignore(content, extra, words, tmp_path, capsys):
    stage = tmp_path / ".20260101-x.partial"
    stage.mkdir()
    (stage / "config.json").write_text(content)
    assert main(["run", "--resume", str(stage), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "--debug" not in err


def test_folds_with_a_fold_given_refuses_the_fold(runs, capsys):
    err = _one_line_error(["--protocol", "unseen-city", "--folds", "3", "--set", "fold=1"], capsys)
    assert "runs every fold in turn" in err


def test_a_number_field_holds_the_same_value_however_it_was_written(tmp_path):
    """--lr 1, --set lr=1.0 and lr = 1 in a config file are one experiment: one digest, so a sweep skips it and a
    board keeps its seeds in one row."""
    from ascbench.cli import build_parser
    from ascbench.cli.run import config_from_args

    (tmp_path / "c.toml").write_text("lr = 1\nlabeled = 1\n")
    made = [config_from_args(build_parser().parse_args(["run", *argv])) for argv in
            (["--lr", "1", "--labeled", "1"], ["--set", "lr=1.0", "--set", "labeled=1.0"], ["--config", str(tmp_path / "c.toml")])]
    assert len({c.experiment_digest() for c in made}) == 1 and all(isinstance(c.lr, float) for c in made)


@pytest.mark.parametrize("value,words", [("1000001", "beyond ±1,000,000"), ("[8, 16, 1000000000]", "beyond ±1,000,000"),
                                         ("-5", "cannot be built with --model-arg hidden=-5"),
                                         ("1.5", "cannot be built with --model-arg hidden=1.5"),
                                         ('"x"', "cannot be built with --model-arg hidden='x'")])
@pytest.mark.parametrize("command", ["profile", "run"])
def test_a_model_argument_no_model_can_take_is_one_line_before_any_work(tmp_path, command, value, words, capsys):
    argv = (["profile", "context-only"] if command == "profile" else
            ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch", "--epochs", "1",
             "--no-progress", "--runs-dir", str(tmp_path / "runs")])
    assert main([*argv, "--model-arg", f"hidden={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "--debug" not in err, err
    assert not (tmp_path / "runs").exists() or not [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
