"""One reading of a setting wherever it is written (config file, --set, sweep --grid, data split), and errors
that name where the bad value was written."""

from __future__ import annotations

import pytest

from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.sweep import parse_assignment


def test_a_list_field_reads_alike_from_a_file_and_from_set(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('loggers = "csv"\n')
    from_file = RunConfig.from_file(path)
    from_set = RunConfig.from_dict(dict([parse_assignment("loggers=csv", multi=False)]))
    assert from_file.loggers == from_set.loggers == ("csv",)
    assert RunConfig.from_dict({"loggers": "csv, tensorboard"}).loggers == ("csv", "tensorboard")
    with pytest.raises(ConfigError, match="loggers"):
        RunConfig.from_dict({"loggers": 3})


def test_an_error_names_the_source_that_wrote_the_bad_value(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("epochs = 3\n")
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_file(path, {"lr": "abc"})
    assert str(caught.value).startswith("--lr") and "command line" in str(caught.value)
    path.write_text("epochs = 1.5\n")
    with pytest.raises(ConfigError, match=r"^config file .*c\.toml: --epochs"):
        RunConfig.from_file(path, {"lr": 0.1})


@pytest.mark.parametrize("value, why", [(float("inf"), "1e999"), (float("nan"), "not a number")])
def test_a_non_finite_number_is_refused_with_the_reason(value, why):
    with pytest.raises(ConfigError, match=f"finite number.*{why}"):
        RunConfig.from_dict({"lr": value})


@pytest.mark.parametrize("text, values", [
    ("model.channels=[8,16]", [[8, 16]]),
    ("model.channels=[8,16],[16,32]", [[8, 16], [16, 32]]),
    ("seed=0,1,2", [0, 1, 2]),
    ('model.name="a,b",c', ["a,b", "c"]),
    ('model.cfg={"a":1,"b":[2,3]},4', [{"a": 1, "b": [2, 3]}, 4]),
])
def test_grid_values_split_on_top_level_commas_only(text, values):
    assert parse_assignment(text, multi=True)[1] == values


def test_data_split_takes_protocol_options_by_set_and_refuses_unrelated_fields(capsys):
    assert main(["data", "split", "embedded-tiny", "--protocol", "random-clips",
                 "--set", "protocol.test_fraction=0.5"]) == 0
    half = capsys.readouterr().out
    assert main(["data", "split", "embedded-tiny", "--protocol", "random-clips"]) == 0
    fifth = capsys.readouterr().out
    assert "random-clips" in half and half != fifth  # the option reached the split
    assert main(["data", "split", "embedded-tiny", "--protocol", "random-clips", "--set", "epochs=3"]) == 2
    assert "only the split's settings" in capsys.readouterr().err
    assert main(["data", "split", "embedded-tiny", "--protocol", "random-clips",
                 "--set", "protocol.test_fraction=abc"]) == 2
    assert "test_fraction" in capsys.readouterr().err


def test_a_repeated_logger_is_one_logger():
    """Loggers are a set of names: two csv loggers would write one file twice."""
    assert RunConfig.from_dict({"loggers": ["csv", "csv"]}).loggers == ("csv",)
    assert RunConfig.from_dict({"loggers": "csv,csv"}).loggers == ("csv",)


def test_a_bad_sweep_cell_names_its_spec_file(tmp_path):
    from ascbench.sweep import SweepSpec

    spec_path = tmp_path / "mine.toml"
    spec_path.write_text('[grid]\nmodel = ["mobileascnet"]\nseed = [0, 1.5]\n')
    with pytest.raises(ConfigError, match=r"^sweep spec .*mine\.toml, cell \{'model': 'mobileascnet', 'seed': 1.5\}: --seed"):
        SweepSpec.load(spec_path).cells()
    with pytest.raises(ConfigError, match=r"mine\.toml with the command line's --grid/--set, cell"):
        SweepSpec.load(spec_path).with_overrides({"epochs": [1]}, {}).cells()
    with pytest.raises(ConfigError, match=r"^the command line's --grid/--set, cell"):
        SweepSpec().with_overrides({"epochs": [0]}, {}).cells()


@pytest.mark.parametrize("text, hint", [
    ('protocol = "unseen-city"\n[unseen-city]\ntest_cities = ["x"]\n', r"\[options\.protocol\]"),
    ('[protocol]\nname = "unseen-city"\n', r"protocol is the plugin's name.*\[options\.protocol\]"),
    ('[model]\nname = "mobileascnet"\n', r"\[model_kwargs\]"),
])
def test_a_plugin_table_in_a_config_file_is_pointed_to_where_options_go(tmp_path, text, hint):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=hint):
        RunConfig.from_file(path)
    # and the place it points to works
    path.write_text('protocol = "unseen-city"\n[options.protocol]\ntest_cities = ["Belmora"]\n')
    assert RunConfig.from_file(path).options == {"protocol": {"test_cities": ["Belmora"]}}


def test_the_command_line_merges_into_a_file_s_tables(tmp_path):
    """`--model-arg width=32` over a file's [model_kwargs] changes width and keeps the rest, as --set model.width does."""
    path = tmp_path / "c.toml"
    path.write_text('[model_kwargs]\ngru_hidden = 96\nwidth = 48\n[options.strategy]\nlr_scale = 0.1\n')
    by_table = RunConfig.from_file(path, {"model_kwargs": {"width": 32}, "options": {"semi": {}}})
    by_key = RunConfig.from_file(path, {"model.width": 32})
    assert by_table.model_kwargs == by_key.model_kwargs == {"gru_hidden": 96, "width": 32}
    assert by_table.options["strategy"] == {"lr_scale": 0.1} and by_table.digest() == by_key.digest()


@pytest.mark.parametrize("name, text, expected", [
    ("a.yaml", "seed: 010\nlr: 1e-3\ndevice: cpu\n", {"seed": 10, "lr": 0.001, "device": "cpu"}),  # YAML 1.2 numbers
    ("b.YAML", "seed: 3\nlr: .5\n", {"seed": 3, "lr": 0.5}),  # the suffix in any case
    ("c.toml", "\ufeffseed = 1\n", {"seed": 1}),  # a byte-order mark, invisible in an editor
    ("d.json", '{"seed": 2}', {"seed": 2}),
    ("e.toml", "[options.protocol]\ntest_dates = [2024-01-05]\n", {"options": {"protocol": {"test_dates": ["2024-01-05"]}}}),
])
def test_every_format_reads_a_value_alike(tmp_path, name, text, expected):
    from ascbench.config import read_table

    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert read_table(path, "config file") == expected


@pytest.mark.parametrize("name,text,twice", [
    ("c.yaml", "seed: 1\nseed: 2\n", "seed"),
    ("s.yaml", "grid:\n  seed: [0, 1]\ngrid:\n  seed: [5]\n", "grid"),
    ("c.json", '{"seed": 1, "seed": "x"}', "seed"),  # the json module would keep the last value silently
    ("s.json", '{"base": {"lr": 0.1}, "grid": {"seed": [0], "seed": [1]}}', "seed"),
])
def test_a_key_given_twice_in_yaml_or_json_is_refused_as_in_toml(tmp_path, name, text, twice):
    from ascbench.sweep import SweepSpec

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"{twice} given twice"):
        (SweepSpec.load if name.startswith("s.") else RunConfig.from_file)(path)


def test_a_date_is_read_as_its_text_so_the_experiment_has_one_digest(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('protocol = "unseen-time"\n[options.protocol]\ntime_holdout = "date"\ntest_dates = [2024-01-05]\n')
    typed = RunConfig.from_dict({"protocol": "unseen-time", "protocol.time_holdout": "date",
                                 "protocol.test_dates": "2024-01-05"})
    assert RunConfig.from_file(path).experiment_digest() == typed.experiment_digest()


@pytest.mark.parametrize("one, other", [
    ({"strategy.lr_scale": 1}, {"strategy.lr_scale": 1.0}),
    ({"context": "time,city"}, {"context": "city, time"}),
    ({"loggers": ("csv", "csv")}, {"loggers": "csv"}),
    ({"loggers": ("csv,tensorboard",)}, {"loggers": [" csv ", "tensorboard"]}),
])
def test_one_experiment_written_two_ways_has_one_digest(one, other):
    assert RunConfig.from_dict(one).digest() == RunConfig.from_dict(other).digest()


@pytest.mark.parametrize("data, message", [
    ({"pretrain_on": ""}, "is empty"), ({"group_by": " "}, "is empty"),
    ({"model.": 3}, "one name after the dot"), ({"strategy.a.b": 3}, "one name after the dot"),
])
def test_an_empty_or_malformed_setting_is_refused(data, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(data)


def test_a_non_finite_plugin_option_says_why():
    from ascbench import pipeline
    from ascbench.registry import get_registry

    with pytest.raises(ConfigError, match="semi.threshold .* must be a finite number, got nan"):
        pipeline.resolve(RunConfig.from_dict({"semi": "pseudo-label", "semi.threshold": float("nan")}), get_registry())


def test_quick_works_with_a_strategy_that_does_not_pretrain():
    """--quick's own short stages are not the user's settings: scratch does not read pretrain_epochs, and is run."""
    from ascbench import pipeline
    from ascbench.registry import get_registry

    pipeline.resolve(RunConfig.from_dict({"quick": True, "strategy": "scratch", "dataset": "embedded-tiny"}),
                     get_registry())


def test_a_log_dir_that_is_the_runs_dir_is_refused_before_training(tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["run", "--dataset", "embedded-tiny", "--quick", "--runs-dir", str(runs), "--logger", "csv",
                 "--log-dir", str(runs), "--no-progress"])
    assert code != 0 and "is the runs directory" in capsys.readouterr().err
    assert not [p for p in runs.glob("*") if p.is_dir()]  # nothing trained, nothing left


def test_run_names_the_config_file_for_an_unknown_plugin(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('dataset = "embedded-tiny"\nmodel = "mobileascnett"\n')
    assert main(["run", "--config", str(path), "--quick", "--runs-dir", str(tmp_path / "runs")]) != 0
    err = capsys.readouterr().err
    assert "unknown model 'mobileascnett'" in err and f"config file {path}" in err


def _spec(tmp_path, text):
    from ascbench.sweep import SweepSpec

    path = tmp_path / "spec.toml"
    path.write_text('[base]\ndataset = "embedded-tiny"\n' + text)
    return SweepSpec.load(path)


def test_an_exclude_entry_matches_as_the_run_reads_its_values(tmp_path):
    spec = _spec(tmp_path, '[grid]\nprotocol = ["session-holdout", "unseen-city"]\nstrategy = ["scratch", "finetune"]\n'
                           '[[exclude]]\nprotocol = "official"\nmodel = "mobileascnet"\nstrategy = "scratch"\n')
    cells = spec.cells()  # the old protocol name, and a model left at its default, both match
    assert [(c.protocol, c.strategy) for c in cells] == [("session-holdout", "finetune"), ("unseen-city", "scratch"),
                                                         ("unseen-city", "finetune")]


@pytest.mark.parametrize("exclude, message", [
    ('model = "cp-mobil"', "matches no cell"), ('seed = "1"', "matches no cell"),
    ('dataset = "embedded-tiny"', "every cell of the grid is excluded"),
])
def test_an_exclude_that_does_nothing_or_everything_is_refused(tmp_path, exclude, message):
    with pytest.raises(ConfigError, match=message):
        _spec(tmp_path, f'[grid]\nseed = [0, 1]\n[[exclude]]\n{exclude}\n').cells()


def test_sweep_set_overrides_a_grid_axis_and_base_faults_are_blamed_on_base(tmp_path):
    spec = _spec(tmp_path, "[grid]\nseed = [0, 1]\n")
    assert [c.seed for c in spec.with_overrides({}, {"seed": 5}).cells()] == [5]
    with pytest.raises(ConfigError, match=r"spec\.toml with the command line's --grid/--set, \[base\] \(or --set\): --epochs"):
        spec.with_overrides({}, {"epochs": 0}).cells()
    with pytest.raises(ConfigError, match="seed is in both"):
        _spec(tmp_path, "seed = 7\n[grid]\nseed = [0, 1]\n")


def test_cells_differing_only_in_execution_settings_are_told_so(tmp_path):
    with pytest.raises(ConfigError, match="differ only in how they run"):
        _spec(tmp_path, '[grid]\nloggers = ["csv", "tensorboard"]\n').cells()


def test_a_base_plugin_option_is_left_out_of_cells_whose_plugin_does_not_take_it(tmp_path):
    """As a [base] field is: strategy.lr_scale shared over scratch and finetune cells is finetune's alone; an
    option no cell's plugin takes is a misspelling and is refused."""
    cells = _spec(tmp_path, '"strategy.lr_scale" = 0.1\n[grid]\nstrategy = ["scratch", "finetune"]\n').cells()
    assert [(c.strategy, c.options) for c in cells] == [("scratch", {}), ("finetune", {"strategy": {"lr_scale": 0.1}})]
    with pytest.raises(ConfigError, match="strategy.lr_scal is taken by none"):
        _spec(tmp_path, '"strategy.lr_scal" = 0.1\n[grid]\nstrategy = ["scratch", "finetune"]\n').cells()


def test_data_split_says_which_of_two_values_applies_and_reads_data_root(capsys, tmp_path):
    assert main(["data", "split", "embedded-tiny", "--seed", "2", "--set", "seed=1"]) == 0
    assert "seed is given different values" in capsys.readouterr().err
    assert main(["data", "split", "embedded-tiny", "--set", "seed=1"]) == 0  # over the flag's default: no warning
    assert "different values" not in capsys.readouterr().err
    assert main(["data", "split", "embedded-tiny", "--set", f"data_root={tmp_path / 'data'}"]) == 0  # as --data-root
    assert "only the split's settings" not in capsys.readouterr().err


@pytest.mark.parametrize("setting, message", [("device=quantum", "is not a device"),
                                              ("loggers=nosuch", "unknown logger 'nosuch'")])
def test_a_dry_run_lists_as_run_only_cells_that_can_start(setting, message, capsys, tmp_path):
    code = main(["sweep", "--grid", "seed=0", "--set", "dataset=embedded-tiny", "--set", setting, "--dry-run",
                 "--runs-dir", str(tmp_path)])
    assert code != 0 and message in capsys.readouterr().err


def test_data_split_flags_left_untyped_never_conflict_with_a_set(capsys):
    """An untyped split flag holds no value (the config's default applies), so --set over it warns of nothing."""
    assert main(["data", "split", "embedded-tiny", "--set", "untaught=refuse", "--set", "folds=0"]) == 0
    assert "different values" not in capsys.readouterr().err
