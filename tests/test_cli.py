"""The command line as a user meets it, including one tiny end-to-end run in the default suite."""

import json
import types

import pytest

from ascbench import hookimpl
from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.errors import PluginError
from ascbench.registry import build_registry
from ascbench.results import load_rows
from ascbench.runner import execute
from ascbench.specs import StrategySpec

TINY = ["--dataset", "embedded-tiny", "--epochs", "2", "--pretrain-epochs", "2", "--no-progress",
        "--model-arg", "channels=[16,24,32]", "--model-arg", "stem_channels=8", "--model-arg", "gru_hidden=16"]


def test_unknown_model_is_one_line_with_valid_names(capsys):
    assert main(["run", "--model", "nosuchmodel"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "nosuchmodel" in err and "mobileascnet" in err and "se-trans" in err


@pytest.mark.parametrize("flag,name,plural", [("--strategy", "nosuchstrategy", "valid strategies: finetune, freeze"),
                                              ("--dataset", "nosuchdata", "valid datasets: apsipa2025"),
                                              ("--protocol", "nosuchprotocol", "valid protocols: all-labeled, random-clips, session-holdout")])
def test_other_unknown_names(capsys, flag, name, plural):
    assert main(["run", flag, name]) == 2
    err = capsys.readouterr().err
    assert name in err and plural in err


def test_leaderboard_sort_choices_are_the_leaderboards_sort_keys():
    from ascbench.cli import build_parser
    from ascbench.leaderboard import SORT_KEYS

    parser = build_parser()
    board = next(a for a in parser._subparsers._group_actions[0].choices["leaderboard"]._actions if a.dest == "sort")
    assert tuple(board.choices) == SORT_KEYS


def test_list_shows_every_kind(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("mobileascnet", "se-trans", "scratch", "finetune", "embedded", "session-holdout", "unseen-city", "unseen-time"):
        assert name in out


def test_profile(capsys):
    assert main(["profile", "mobileascnet"]) == 0
    out = capsys.readouterr().out
    assert "376,330" in out and "MACs per clip" in out


def test_leaderboard_on_empty_store_says_what_to_do(runs, capsys):
    assert main(["leaderboard"]) == 2
    assert "ascbench run" in capsys.readouterr().err


def test_tiny_end_to_end_run_and_leaderboard(runs, capsys, caplog):
    caplog.set_level("INFO", logger="ascbench")
    assert main(["run", "--model", "mobileascnet", "--strategy", "finetune", *TINY]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "MACs per clip" in out and "worst city" in out

    rows = load_rows(runs)
    assert len(rows) == 1
    run_dir = runs / rows[0]["run_id"]
    assert {p.name for p in run_dir.iterdir()} == {"config.json", "metrics.json", "split.csv", "model.pt", "log.txt"}
    config = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    assert config.model_kwargs == {"channels": [16, 24, 32], "stem_channels": 8, "gru_hidden": 16}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["complexity"]["params"] == rows[0]["params"] > 0
    assert set(metrics["city_accuracy"]) and set(metrics["period_accuracy"])
    # Wall time split by phase, shown in the summary and stored; the phases never exceed the whole.
    timings = metrics["timings"]
    phases = ("data_s", "features_s", "loading_s", "train_s", "eval_s")
    assert all(timings[k] >= 0 for k in phases) and timings["loading_s"] > 0 and timings["train_s"] > 0
    assert sum(timings[k] for k in phases) <= timings["total_s"]
    assert rows[0]["train_s"] == round(timings["train_s"], 2)
    assert "time split" in out and "training" in out

    # Same seed, same numbers; and the pretraining stage comes from the cache the second time.
    caplog.clear()
    assert main(["run", "--model", "mobileascnet", "--strategy", "finetune", *TINY]) == 0
    assert "reusing cached pretraining stage" in caplog.text
    first, second = load_rows(runs)
    for key in ("accuracy", "macro_f1", "log_loss", "macs"):
        assert first[key] == second[key]

    capsys.readouterr()
    assert main(["leaderboard", "--format", "markdown"]) == 0
    board = capsys.readouterr().out
    lines = [line for line in board.splitlines() if "mobileascnet" in line]
    assert len(lines) == 1 and "finetune" in lines[0]  # both runs are seed 0 of one cell
    assert f"{rows[0]['params'] / 1e3:.1f} k" in lines[0] and " M " in lines[0]  # params and MACs are shown


def test_a_plugin_that_raises_leaves_results_intact(runs):
    @hookimpl
    def ascbench_strategies():
        def explode(job):
            raise RuntimeError("exploded on purpose")

        return [StrategySpec("explode", explode)]

    registry = build_registry([("fragile", types.SimpleNamespace(ascbench_strategies=ascbench_strategies))])
    base = RunConfig(model="mobileascnet-cnn", strategy="scratch", dataset="embedded-tiny", epochs=1,
                     model_kwargs={"channels": [8, 8, 8], "stem_channels": 8})
    execute(base, registry=registry, progress=False)
    before = (runs / "results.jsonl").read_bytes()
    with pytest.raises(PluginError, match="strategy 'explode' \\(plugin 'fragile'\\).*exploded on purpose"):
        execute(base.replace(strategy="explode"), registry=registry, progress=False)
    assert (runs / "results.jsonl").read_bytes() == before
    assert not [p for p in runs.iterdir() if p.name.startswith(".")]  # no half-written run left behind


def test_cross_city_folds_report_mean_and_worst(runs, capsys):
    args = ["run", "--model", "context-only", "--strategy", "scratch", "--dataset", "embedded-tiny", "--epochs", "1",
            "--protocol", "unseen-city", "--folds", "2", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mean over 2 folds" in out and "worst fold" in out
    rows = load_rows(runs)
    assert sorted(r["fold"] for r in rows) == ["1/2", "2/2"]


def test_a_bad_model_argument_fails_before_feature_extraction(runs, capsys, monkeypatch):
    def extraction_must_not_start(*args, **kwargs):
        raise AssertionError("features were extracted for a model that cannot be built")

    monkeypatch.setattr("ascbench.pipeline.load_checked_features", extraction_must_not_start)
    assert main(["run", "--model", "mobileascnet", "--dataset", "embedded-tiny", "--no-progress",
                 "--model-arg", "gru_hiden=16"]) == 2
    err = capsys.readouterr().err
    assert "mobileascnet" in err and "gru_hiden" in err and "unexpected keyword" in err
    assert not runs.exists() or not any(runs.iterdir()), "a run that never started left files behind"


def test_run_flags_are_made_from_the_config_fields(capsys):
    """A config field declares its `ascbench run` flag once, on the field: --help shows the field's help in its
    group, and an untyped flag leaves nothing in the parsed arguments (the config, a recipe or a file fills it)."""
    import dataclasses

    from ascbench.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--help"])
    shown = "".join(capsys.readouterr().out.split())  # argparse wraps lines, hyphenated words too
    flagged = [f for f in dataclasses.fields(RunConfig) if "group" in f.metadata]
    assert len(flagged) > 40
    for f in flagged:
        names = f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),)
        assert all(name in shown for name in names), f.name
        assert "".join(f.metadata["help"].split()) in shown, f.name
        if f.metadata["group"]:
            assert "".join(f.metadata["group"].split()) + ":" in shown, f.name
    untyped = vars(build_parser().parse_args(["run"]))
    assert not set(untyped) & {f.name for f in dataclasses.fields(RunConfig)}
