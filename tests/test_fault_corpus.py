"""The fault and bad-input corpus: every case ends in one of three outcome classes, never a traceback.

* **error** — an ``AscbenchError`` whose one-line message names what is wrong and where (the test
  checks the words), raised before anything is stored;
* **skip** — a documented decision recorded where the user sees it (a file left out and named);
* **same** — the input is harmless and the result is what it would have been without it.

One parametrized test per family: config values, CLI applicability, sweep specs, metadata files,
audio files, the results store, disks and paths, plugins. Kill/resume and concurrency cases live in
test_resume.py and test_results.py; they are counted in the README's reliability section.
"""

from __future__ import annotations

import errno
import json
import math
import os
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ascbench import hookimpl
from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.data.audio import read_checked
from ascbench.errors import AscbenchError, ConfigError, DataError, PluginError
from ascbench.registry import build_registry
from ascbench.results import load_rows
from ascbench.specs import ModelSpec, ProtocolSpec, StrategySpec
from ascbench.sweep import SweepSpec
from ascbench_plugins import apsipa2025

# --- config values: every field, checked with its type before any data is read ------------------------

CONFIG_CASES = [
    ({"seed": -1}, "--seed"), ({"seed": 1.5}, "whole number"), ({"seed": None}, "--seed"),
    ({"threads": -1}, "--threads"), ({"threads": 0}, "--threads"), ({"threads": 2.0}, "whole number"),
    ({"epochs": 0}, "--epochs"), ({"epochs": 1.5}, "whole number"), ({"epochs": "3"}, "whole number"),
    ({"epochs": True}, "whole number"), ({"pretrain_epochs": 0}, "--pretrain-epochs"), ({"batch_size": 0}, "--batch-size"),
    ({"min_epoch_clips": -1}, "--set min_epoch_clips"), ({"lr": 0}, "--lr"), ({"lr": -1e-3}, "--lr"),
    ({"lr": math.inf}, "must be a finite number, got inf"), ({"lr": math.nan}, "must be a finite number, got nan"), ({"lr": "fast"}, "must be a number"),
    ({"weight_decay": -1.0}, "--weight-decay"), ({"patience": -1}, "--patience"), ({"val_fraction": 1.0}, "--val-fraction"),
    ({"val_fraction": -0.1}, "--val-fraction"), ({"city_dropout": 1.0}, "--city-dropout"),
    ({"labeled": 0.0}, "--labeled"), ({"labeled": 1.5}, "--labeled"),
    ({"labeled": "half"}, "--labeled"), ({"folds": 1}, "--folds"), ({"folds": -2}, "--folds"),
    ({"folds": 3, "fold": 3, "protocol": "unseen-city"}, "fold < folds"), ({"fold": -1}, "--set fold"),
    ({"freq_mask": -1}, "--freq-mask"),
    ({"time_mask": 2.5}, "whole number"), ({"mixstyle_p": 1.5}, "--mixstyle-p"), ({"mixstyle_alpha": 0.0}, "--mixstyle-alpha"),
    ({"mixup_alpha": -0.1}, "--mixup-alpha"), ({"other_rate": "ignore"}, "--other-rate"), ({"context": "place"}, "--context"),
    ({"context": ""}, "--context"),
    ({"untaught": "ignore"}, "--untaught"), ({"skip_bad": "yes"}, "true or false"),
    ({"model_kwargs": [1]}, "must be a table"), ({"pretrain_on": "embedded-apsipa"}, "dataset under test"), ({"data_root": 5}, "--data-root"),
    ({"group_by": 3}, "--group-by"), ({"model": None}, "--model"),
]


@pytest.mark.parametrize("fields,words", CONFIG_CASES, ids=[str(c[0]) for c in CONFIG_CASES])
def test_config_value(fields, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace("[", r"\[")):
        RunConfig(**fields)
    stored = {**RunConfig().to_dict(), **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}}
    with pytest.raises(ConfigError):  # the same check for stored configs and sweep cells (from_dict)
        RunConfig.from_dict(stored)


# Plugins' own options are checked by their options class, with the registry, before any data is read; the
# old field names (pl_rounds, mt_ema, finetune_lr_scale) still reach the same check.
OPTION_CASES = [
    ({"strategy": "finetune", "strategy.lr_scale": 0.0}, "strategy.lr_scale"),
    ({"strategy": "finetune", "finetune_lr_scale": -1.0}, "--finetune-lr-scale"),
    ({"semi": "pseudo-label", "pl_rounds": 0}, "--pl-rounds"), ({"semi": "pseudo-label", "semi.threshold": 1.0}, "semi.threshold"),
    ({"semi": "mean-teacher", "mt_ema": 1.0}, "--mt-ema"), ({"semi": "mean-teacher", "semi.weight": -1.0}, "semi.weight"),
    ({"semi": "mean-teacher", "semi.rounds": 2}, "has no option semi.rounds"),
    ({"semi": "pseudo-label", "semi.rounds": 1.5}, "semi.rounds .* must be int"),
    ({"protocol": "unseen-city", "test_cities": 5}, "protocol.test_cities must be a list of names"),
    ({"protocol": "unseen-city", "protocol.test_cities": ["Arden", 3]}, "protocol.test_cities must be a list of names"),
    ({"protocol": "official", "protocol.test_cities": ["Arden"]}, "takes no options, got protocol.test_cities"),
    ({"protocol": "unseen-time", "time_holdout": "season"}, "--time-holdout"),
    ({"protocol": "unseen-time", "test_periods": ("dusk",)}, "--test-periods"),
    ({"protocol": "unseen-time", "test_periods": ()}, "--test-periods"),
    ({"protocol": "unseen-time", "time_holdout": "date", "test_dates": ("2023/06/18",)}, "YYYY-MM-DD"),
]


@pytest.mark.parametrize("fields,words", OPTION_CASES, ids=[str(c[0]) for c in OPTION_CASES])
def test_plugin_option_value(registry, fields, words):
    from ascbench.options import resolve_all

    with pytest.raises(ConfigError, match=words):
        resolve_all(RunConfig.from_dict(fields), registry)


def test_an_old_option_field_for_a_plugin_not_chosen_is_refused():
    with pytest.raises(ConfigError, match=r"pl_rounds = 3 is an option of semi 'pseudo-label' \(semi.rounds\), "
                                          r"but this run's semi is 'none'"):
        RunConfig.from_dict({"pl_rounds": 3})
    # at its default it did nothing and is dropped: stored configs of runs without the plugin still load
    assert RunConfig.from_dict({"pl_rounds": 2, "finetune_lr_scale": 0.3}) == RunConfig()
    moved = RunConfig.from_dict({"semi": "pseudo-label", "pl_rounds": 3, "strategy": "finetune", "finetune_lr_scale": 0.1})
    assert moved.options == {"semi": {"rounds": 3}, "strategy": {"lr_scale": 0.1}}
    # a protocol's too: unseen-city's hold-out cities were the core field test_cities
    assert RunConfig.from_dict({"test_cities": [], "time_holdout": "time-of-day", "test_periods": ["evening", "night"],
                                "test_dates": []}) == RunConfig()
    city = RunConfig.from_dict({"protocol": "unseen-city", "test_cities": ["Arden"]})
    assert city.options == {"protocol": {"test_cities": ["Arden"]}}


def test_config_unknown_field_is_named():
    with pytest.raises(ConfigError, match=r"unknown config field\(s\) 'epoch' \(did you mean epochs"):
        RunConfig.from_dict({"epoch": 3})


# --- the command line: options that do not apply are refused before any data is read -------------------

CLI_CASES = [
    (["--model", "resnet-9000"], "unknown model 'resnet-9000'"),
    (["--strategy", "magic"], "unknown strategy 'magic'"),
    (["--dataset", "nowhere"], "unknown dataset 'nowhere'"),
    (["--protocol", "random-sessions"], "unknown protocol 'random-sessions'"),
    (["--test-cities", "Arden"], "protocol 'session-holdout' (plugin 'protocols') takes no options, got protocol.test_cities"),
    (["--protocol", "unseen-time", "--test-cities", "Arden"],
     "protocol 'unseen-time' (plugin 'protocols') has no option protocol.test_cities"),
    (["--protocol", "unseen-city", "--test-dates", "2023-06-18"],
     "protocol 'unseen-city' (plugin 'protocols') has no option protocol.test_dates"),
    (["--protocol", "official", "--time-holdout", "date"], "protocol 'session-holdout' (plugin 'protocols') takes no options"),
    (["--strategy", "scratch", "--pretrained", "weights.pt"], "--pretrained: strategy 'scratch'"),
    (["--strategy", "scratch", "--pretrain-on", "embedded-source"], "--pretrain-on: strategy 'scratch'"),
    (["--folds", "3"], "--folds applies to --protocol unseen-city"),
    (["--model-arg", "width"], "--model-arg expects KEY=VALUE"),
    (["--group-by", "session"], "declares the levels recording"),
    (["--seed", "-3"], "--seed"),
    (["--resume", "."], "not an unfinished run directory"),
]


@pytest.mark.parametrize("args,words", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_option(args, words, runs, capsys):
    base = ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--epochs", "1", "--no-progress"]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (runs / "results.jsonl").exists()


# --- sweep specs: a bad cell fails the whole spec before the first cell runs ------------------------------

SWEEP_CASES = [
    ('[base]\nepochs = 1.5\n[grid]\nseed = [0]\n', "--epochs (epochs) must be a whole number"),
    ('[grid]\nseed = [0]\ntest_cities = [["Arden"]]\n', "test_cities = ['Arden'] is an option of protocol 'unseen-city'"),
    ('[grid]\nseed = [0, -5]\n', "--seed (seed) must be in"),
    ('[grid]\nepoch = [1, 2]\n', "unknown config field(s) 'epoch' (did you mean epochs"),
    ('[grid]\nseed = 3\n', "must be a non-empty list"),
    ('[grid]\nseed = []\n', "must be a non-empty list"),
    ('[base]\nepochs = \n', "does not parse"),
    ('[runs]\nseed = [0]\n', "unknown section(s) ['runs']"),
    ('[grid]\nseed = [0]\n[[exclude]]\nsed = 0\n', "unknown config field(s) ['sed']"),
    ('[grid]\nlabeled = [0.5, 2.0]\n', "--labeled (labeled) must be in"),
]


@pytest.mark.parametrize("text,words", SWEEP_CASES, ids=[c[1][:30] for c in SWEEP_CASES])
def test_sweep_spec(text, words, tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        SweepSpec.load(path).cells()
    assert words in str(info.value)


def test_sweep_spec_that_does_not_exist(tmp_path):
    with pytest.raises(ConfigError, match="cannot read sweep spec .*missing.toml"):
        SweepSpec.load(tmp_path / "missing.toml")


# --- metadata files: file, row and column named ------------------------------------------------------------

HEADER = "filename,location,record_time,scene_label\n"
ROW = "a,Xi'an,2023-06-18 18:44:34,Bus\n"
METADATA_CASES = [
    (HEADER, "has a header but no rows"),
    ("filename,city,record_time,scene_label\n" + ROW, "missing column(s) 'location'"),
    (HEADER + "a,Xi'an,18/06/2023 18:44,Bus\n", "row 2, column 'record_time'"),
    (HEADER + "a,Xi'an,2023-06-18 18:44:34,Beach\n", "unknown scene 'Beach'"),
    (HEADER + ROW + "a,Xi'an,2023-06-18 18:44:34,\n", "row 3, column 'filename': duplicate"),
    (HEADER + ROW + "a ,Xi'an,2023-06-18 18:44:34,\n", "row 3, column 'filename': duplicate"),
    (HEADER + "../../etc/passwd,Xi'an,2023-06-18 18:44:34,Bus\n", "outside the data root"),
    (HEADER + "/etc/passwd,Xi'an,2023-06-18 18:44:34,Bus\n", "outside the data root"),
    (HEADER + "..\\..\\secret,Xi'an,2023-06-18 18:44:34,Bus\n", "outside the data root"),
    (HEADER + ",Xi'an,2023-06-18 18:44:34,Bus\n", "row 2, column 'filename': empty value"),
    (HEADER + "a,,2023-06-18 18:44:34,Bus\n", "row 2, column 'location': empty value"),
    (HEADER + "a,Xi'an,,Bus\n", "row 2, column 'record_time': empty value"),
    (b"filename,location,record_time,scene_label\n\xff\xfe\x00bad,X,2023-06-18 18:44:34,\n", "cannot parse metadata file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "cannot parse metadata file"),
]


@pytest.mark.parametrize("content,words", METADATA_CASES, ids=[c[1][:40] for c in METADATA_CASES])
def test_metadata_file(content, words, tmp_path):
    path = tmp_path / "meta.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(DataError) as info:
        apsipa2025.read_metadata(path)
    assert words in str(info.value) and "meta.csv" in str(info.value)


def test_metadata_with_a_byte_order_mark_and_padding_reads_the_same(tmp_path):
    plain, padded = tmp_path / "plain.csv", tmp_path / "padded.csv"
    plain.write_text(HEADER + ROW, encoding="utf-8")
    padded.write_text("\ufeff" + HEADER.replace(",", " ,") + " a ,Xi'an ,2023-06-18 18:44:34, Bus \n", encoding="utf-8")
    assert apsipa2025.read_metadata(plain).equals(apsipa2025.read_metadata(padded))


# --- audio files: each problem named; with --skip-bad the file is left out and listed ---------------------

RATE, N = 16_000, 16_000


def _wav(path: Path, data: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> None:
    sf.write(str(path), data, rate, subtype=subtype)


def _make_audio(case: str, path: Path) -> None:
    tone = (0.1 * np.sin(np.arange(N) / 5)).astype(np.float32)
    if case == "missing":
        return
    if case == "directory":
        path.mkdir()
    elif case == "symlink loop":
        path.symlink_to(path)
    elif case == "broken link":
        path.symlink_to(path.parent / "gone.wav")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        _wav(path, tone)
        path.write_bytes(path.read_bytes()[: 1000])
    elif case in ("nan", "inf"):
        _wav(path, np.full(N, np.nan if case == "nan" else np.inf, dtype=np.float32), subtype="FLOAT")
    elif case == "not audio":
        path.write_bytes(b"this is a text file, not a WAV")
    elif case == "no samples":
        _wav(path, np.zeros(0, dtype=np.float32))
    elif case == "other rate":
        _wav(path, tone[: N // 2], rate=RATE // 2)
    elif case == "stereo":
        _wav(path, np.stack([tone, tone], axis=1))
    elif case == "short":
        _wav(path, tone[: N // 4])
    elif case == "long":
        _wav(path, np.concatenate([tone, tone]))


AUDIO_CASES = [
    ("missing", "missing"), ("directory", "not a file but a directory"), ("symlink loop", "missing (or a broken or looping link)"),
    ("broken link", "missing (or a broken or looping link)"), ("empty", "empty file (0 bytes)"), ("truncated", "truncated"),
    ("nan", "NaN or infinite samples"), ("inf", "NaN or infinite samples"), ("not audio", "unreadable"),
    ("no samples", "no samples"),
    ("other rate", None), ("stereo", None), ("short", None), ("long", None),  # usable, with a note
]


@pytest.mark.parametrize("case,problem", AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_audio_file(case, problem, tmp_path):
    path = tmp_path / "clip.wav"
    _make_audio(case, path)
    clip, found, notes = read_checked(path, RATE, N)
    if problem is None:  # same: a usable clip of the declared length, and a note saying what was adapted
        assert found is None and clip is not None and clip.shape == (N,) and np.isfinite(clip).all() and notes
    else:
        assert clip is None and found is not None and found.startswith(problem), found


def test_unusable_audio_is_refused_by_name_then_left_out_and_listed(tiny, tmp_path, runs, capsys):
    """The run-level outcome for the audio family: refused with the file named, or (--skip-bad) a
    recorded skip, counted in the summary and named in the record."""
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tiny.root, root)
    victims = list(tiny.meta["filename"][:3])
    (root / victims[0]).unlink()
    (root / victims[1]).unlink()
    (root / victims[1]).mkdir()
    (root / victims[2]).write_bytes(b"")
    base = ["run", "--dataset", "embedded-tiny", "--data-root", str(root), "--model", "context-only", "--strategy",
            "scratch", "--epochs", "1", "--no-progress"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "3 unusable audio file(s)" in err and victims[0] in err and "--skip-bad" in err
    assert main(base + ["--skip-bad"]) == 0
    assert "3 unusable file(s) left out" in capsys.readouterr().out
    (row,) = load_rows(runs)
    skipped = json.loads((runs / row["run_id"] / "metrics.json").read_text())["skipped_files"]
    assert [s["filename"] for s in skipped] == victims


# --- the results store: a damaged line is reported and skipped, never hides the others --------------------

GOOD = json.dumps({"run_id": "r1", "model": "m", "strategy": "scratch", "semi": "none", "dataset": "d", "protocol": "p",
                   "labeled": None, "seed": 0, "fold": None, "accuracy": 0.5, "macro_accuracy": 0.5, "macro_f1": 0.5,
                   "log_loss": 1.0, "params": 10, "macs": 100})
RESULTS_CASES = [
    (b"\xff\xfe not utf-8\n", "non-UTF-8 bytes"),
    (b"[1, 2, 3]\n", "a JSON array"),
    (b"5\n", "a number"),
    (b'{"run_id": "r2", "model":\n', "a torn write"),
    (b'{"model": "m"}\n', "an object without run_id"),
    (b'"text"\n', "a JSON string"),
    (b"\n\n   \n", "blank lines"),
]


@pytest.mark.parametrize("damage,what", RESULTS_CASES, ids=[c[1] for c in RESULTS_CASES])
def test_results_store_line(damage, what, tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + damage + GOOD.replace("r1", "r3").encode() + b"\n")
    assert [r["run_id"] for r in load_rows(tmp_path)] == ["r1", "r3"]
    err = capsys.readouterr().err
    assert what == "blank lines" or ("results.jsonl:2 is not a complete result row" in err)


def test_results_store_that_is_a_directory(tmp_path):
    (tmp_path / "results.jsonl").mkdir()
    with pytest.raises(DataError, match="is a folder, not a file"):
        load_rows(tmp_path)


# --- disks and paths: the folder is named, nothing half-written is left -----------------------------------

def test_runs_dir_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "runs"
    target.write_text("not a folder")
    args = ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch", "--epochs", "1",
            "--no-progress", "--runs-dir", str(target)]
    assert main(args) == 2
    assert f"runs directory {target} is a file" in capsys.readouterr().err
    assert target.read_text() == "not a folder"


def test_runs_dir_under_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    args = ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch", "--epochs", "1",
            "--no-progress", "--runs-dir", str(tmp_path / "file" / "runs")]
    assert main(args) == 2
    assert "cannot create runs directory" in capsys.readouterr().err


def test_a_full_disk_during_dataset_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    from ascbench_plugins import embedded

    calls = {"n": 0}
    real_write = embedded.sf.write

    def write_until_full(path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(embedded.sf, "write", write_until_full)
    target = tmp_path / "embedded-tiny"
    with pytest.raises(DataError, match=r"cannot write the embedded-tiny dataset to .*No space left on device.*nothing was left"):
        embedded.generate("embedded-tiny", embedded.SPECS["embedded-tiny"], target)
    assert list((target / "audio").iterdir()) == [] and not (target / "metadata.csv").exists()


def test_a_finished_run_named_for_resume_is_refused_untouched(tmp_path, capsys):
    finished = tmp_path / "20260101-000000-m-s-p-s0-abcdef"
    finished.mkdir()
    (finished / "config.json").write_text("{}")
    (finished / "metrics.json").write_text("{}")
    assert main(["run", "--resume", str(finished)]) == 2
    assert "is a finished run; it is never modified" in capsys.readouterr().err
    assert sorted(p.name for p in finished.iterdir()) == ["config.json", "metrics.json"]


# --- plugins: a broken plugin is skipped (named) and the rest load -----------------------------------------

def _plugin(**hooks):
    return types.SimpleNamespace(**{name: hookimpl(fn) for name, fn in hooks.items()})


def _exit_at_call():
    raise SystemExit(3)


PLUGIN_CASES = [
    (_plugin(ascbench_models=lambda: 5), "must return a list of ModelSpec, got int 5"),
    (_plugin(ascbench_models=lambda: "mobileascnet"), "must return a list of ModelSpec, got str"),
    (_plugin(ascbench_datasets=_exit_at_call), "SystemExit"),
    (_plugin(ascbench_models=lambda: [5]), "must return ModelSpec"),
    (_plugin(ascbench_strategies=lambda: [ModelSpec("m", lambda ctx: None)]), "must return StrategySpec"),
    (_plugin(ascbench_models=lambda: 1 / 0), "ZeroDivisionError"),
    (_plugin(ascbench_protocols=lambda: [ProtocolSpec("official", lambda d, o: None)]), "registered twice"),
    (_plugin(ascbench_strategies=lambda: [StrategySpec("scratch", lambda job: None)]), "registered twice"),
]


@pytest.mark.parametrize("plugin,words", PLUGIN_CASES, ids=[c[1] for c in PLUGIN_CASES])
def test_broken_plugin_is_skipped_by_name(plugin, words):
    with pytest.warns(UserWarning, match="skipping plugin 'broken'") as caught:
        registry = build_registry([("broken", plugin)])
    assert "broken" not in registry.plugins and "mobileascnet" in registry.names("model")
    assert any(words in str(w.message) for w in caught)
    with pytest.raises(PluginError):
        build_registry([("broken", plugin)], strict=True)


def test_a_planted_feature_memo_cannot_choose_where_features_are_written(tiny):
    from ascbench.features import _memo, audio_content_key, content_key, get_preset, load_checked_features

    cfg = get_preset("embedded")
    memo = _memo(tiny, cfg)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text("../../../../tmp/elsewhere")
    checked = load_checked_features(tiny, cfg, progress=False)  # the memo is not followed
    assert checked.features.shape[0] == len(tiny.meta)
    memo.write_text("../../../../tmp/elsewhere")
    assert audio_content_key(tiny, cfg) == content_key(tiny, cfg)  # recomputed, not trusted
    assert memo.read_text() == content_key(tiny, cfg)


def test_a_full_disk_while_training_is_a_disk_error_not_the_plugins(tmp_path, monkeypatch, capsys):
    from ascbench import checkpoint

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full)
    args = ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch", "--epochs", "2",
            "--no-progress", "--runs-dir", str(tmp_path / "runs")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "checkpoint.pt" in err and "plugin" not in err
    assert load_rows(tmp_path / "runs") == []


CONFIG_FILE_CASES = [
    (None, "cannot read config file"),
    ("epochs = \n", "does not parse"),
    ("epochs = 1.5\n", "--epochs (epochs) must be a whole number"),
    ("test_cities = 'Arden'\n", "test_cities = 'Arden' is an option of protocol 'unseen-city'"),
    ("epoch = 3\n", "unknown config field(s) 'epoch' (did you mean epochs"),
    ("seed = -1\n", "--seed (seed) must be in"),
]


@pytest.mark.parametrize("text,words", CONFIG_FILE_CASES, ids=[c[1][:30] for c in CONFIG_FILE_CASES])
def test_run_config_file(text, words, tmp_path, runs, capsys):
    path = tmp_path / "run.toml"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    assert main(["run", "--config", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert words in err and "run.toml" in err and not (runs / "results.jsonl").exists()


def test_a_config_file_and_flags_make_one_config(tmp_path, runs):
    from ascbench.cli import build_parser, config_from_args

    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nseed: 4\nmodel: context-only\n", encoding="utf-8")
    argv = ["run", "--config", str(path), "--seed", "1", "--epochs", "30"]
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    # Typed flags win over the file, even one typed at its default value (--epochs 30).
    assert (config.epochs, config.seed, config.model) == (30, 1, "context-only")


def test_audio_rewritten_with_its_old_size_and_time_is_not_served_stale_features(tiny, tmp_path):
    """Same size, modification time set back: the file-state memo must still notice (ctime) and re-hash."""
    import shutil

    from ascbench.data.dataset import DatasetOptions
    from ascbench.features import audio_content_key, get_preset
    from ascbench.registry import get_registry

    root = tmp_path / "copy"
    shutil.copytree(tiny.root, root)
    load = lambda: get_registry().dataset("embedded-tiny").load(DatasetOptions(data_root=root))  # noqa: E731
    cfg = get_preset("embedded")
    before = audio_content_key(load(), cfg)
    victim = root / tiny.meta["filename"].iloc[0]
    stat = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-2:] = bytes([data[-2] ^ 0xFF, data[-1] ^ 0xFF])  # flip the last sample: same size
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert victim.stat().st_size == stat.st_size and victim.stat().st_mtime_ns == stat.st_mtime_ns
    assert audio_content_key(load(), cfg) != before


# --- paths in any dataset plugin's clip table: the core keeps audio reads inside the data root -----------

PATH_CASES = [
    (["../outside.wav"], "is not a relative path inside the data root"),
    (["/etc/passwd"], "is not a relative path inside the data root"),
    (["C:\\audio\\a.wav"], "is not a relative path inside the data root"),
    (["audio/../../b.wav"], "is not a relative path inside the data root"),
    (["\\\\server\\share\\a.wav"], "is not a relative path inside the data root"),
    (["a.wav", "a.wav "], "rows 0, 1, column 'filename' name the same file 'a.wav'"),
    (["", "b.wav"], "is not a relative path inside the data root"),
    (["audio/a.wav", " audio/b.wav "], None),  # same: nested paths are fine; surrounding spaces are stripped
]


@pytest.mark.parametrize("names,words", PATH_CASES, ids=[repr(c[0]) for c in PATH_CASES])
def test_clip_table_path(names, words):
    import pandas as pd

    from ascbench.data.dataset import ClipDataset

    meta = pd.DataFrame({"filename": names, "scene_label": "Bus", "labeled": True, "city": "X",
                         "timestamp": "2023-06-18 10:00:00", "group": [f"g{i}" for i in range(len(names))], "split": ""})
    make = lambda: ClipDataset("plugin-data", Path("/data"), meta, ["Bus"], 16_000, 1.0, "embedded")  # noqa: E731
    if words is None:
        assert list(make().meta["filename"]) == [n.strip() for n in names]
    else:
        with pytest.raises(DataError, match=r"dataset 'plugin-data'.*" + words.replace("(", r"\(")):
            make()


def _misspelled_plugin():
    return types.SimpleNamespace(ascbench_model=hookimpl(lambda: [ModelSpec("typo-net", lambda ctx: None)]))


def _undecorated_plugin():
    return types.SimpleNamespace(ascbench_models=lambda: [ModelSpec("bare-net", lambda ctx: None)])


@pytest.mark.parametrize("make,words", [(_misspelled_plugin, "defines ascbench_model, which is no ascbench hook"),
                                        (_undecorated_plugin, "ascbench_models (not marked with @ascbench.hookimpl)")])
def test_a_misspelled_or_unmarked_hook_is_named(make, words):
    with pytest.warns(UserWarning, match=words.replace("(", r"\(").replace(")", r"\)")):
        registry = build_registry([("sloppy", make())])
    assert "sloppy" in registry.plugins  # a warning by default: the plugin loads, and says what it lacks
    with pytest.raises(PluginError, match=words.replace("(", r"\(").replace(")", r"\)")):
        build_registry([("sloppy", make())], strict=True)
