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
    spec_path.write_text('[base]\nseed = 1.5\n[grid]\nmodel = ["mobileascnet"]\n')
    with pytest.raises(ConfigError, match=r"^sweep spec .*mine\.toml, cell \{'model': 'mobileascnet'\}: --seed"):
        SweepSpec.load(spec_path).cells()
    with pytest.raises(ConfigError, match=r"mine\.toml with the command line's --grid/--base, cell"):
        SweepSpec.load(spec_path).with_overrides({"epochs": [1]}, {}).cells()
    with pytest.raises(ConfigError, match=r"^the command line's --grid/--base, cell"):
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
