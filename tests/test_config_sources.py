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
