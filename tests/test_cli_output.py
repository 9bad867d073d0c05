"""What the command line prints: tables that fit the terminal (``$COLUMNS``, 100 columns off a terminal, all with
--wide), numbers formatted once, plugin options with their help, progress in a log, --quick runs, and which
libraries each command imports (what makes it start fast)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout

import pytest

from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.formatting import format_float, format_percent, format_value, render_table
from ascbench.results import load_rows

# A raw float: more digits after the point than any formatted number shows.
RAW_FLOAT = re.compile(r"\d\.\d{6,}")


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def _out(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


# ---- the formatting layer -----------------------------------------------------------------------------------

def test_render_table_fits_the_width_and_wide_shows_every_cell_whole():
    rows = [("timm:<name>", "timm", "any timm architecture " * 8), ("mobileascnet", "mobileascnet", "a CRNN")]
    narrow = render_table(rows, ["name", "plugin", "description"], width=60)
    assert _widest(narrow) <= 60
    assert "mobileascnet" in narrow  # a name is never broken while prose can wrap
    wide = render_table(rows, ["name", "plugin", "description"], wide=True, width=60)
    assert _widest(wide) > 100 and len(wide.splitlines()) == 4


def test_a_table_with_too_many_columns_for_the_width_comes_in_blocks():
    headers = [f"column {k}" for k in range(20)]
    text = render_table([[k * 1.5 for k in range(20)]], headers, width=70)
    assert _widest(text) <= 70
    assert all(h in text for h in headers)


def test_numbers_are_formatted_once():
    assert format_value(0.07608695652173914) == "0.07609"
    assert format_percent(0.07608695652173914) == "7.61 %" and format_percent(None) == "n/a"
    assert format_value(376330) == "376,330" and format_value(None) == "-"
    assert format_float(float("nan")) == "n/a"


# ---- commands fit the terminal ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["list"], ["plugins"], ["data", "split", "embedded-tiny", "--protocol", "unseen-city",
                                                           "--folds", "3"]])
def test_tables_fit_columns_and_default_to_100_off_a_terminal(argv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    assert _widest(_out(capsys, argv)) <= 72
    monkeypatch.delenv("COLUMNS")
    out = _out(capsys, argv)
    assert _widest(out) <= 100 and not RAW_FLOAT.search(out)


def test_wide_shows_whole_cells(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    assert _widest(_out(capsys, ["list", "--recipes", "--wide"])) > 100


def test_list_shows_each_plugin_option_with_type_default_and_help(capsys):
    out = _out(capsys, ["list", "--semi-methods"])
    line = next(line for line in out.splitlines() if line.startswith("semi.rounds"))
    assert "pseudo-label" in line and "int" in line and " 2 " in line and "pseudo-label rounds" in line
    assert "--set semi.FIELD=VALUE" in out


def test_data_split_names_the_seed_only_when_it_shapes_the_split(capsys):
    assert "seed" not in _out(capsys, ["data", "split", "embedded-tiny", "--seed", "1"]).splitlines()[0]
    assert "(seed 1)" in _out(capsys, ["data", "split", "embedded-tiny", "--protocol", "unseen-city", "--seed", "1"])


# ---- what each command imports ------------------------------------------------------------------------------

def _imported_by(code: str) -> set[str]:
    """Top-level modules a fresh interpreter holds after ``code`` (this worktree's ascbench, via PYTHONPATH)."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_help_imports_neither_torch_nor_numpy_nor_pandas():
    loaded = _imported_by("from ascbench.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not loaded & {"torch", "numpy", "pandas", "sklearn", "timm"}


def test_list_and_a_config_error_import_no_model_zoo_nor_scikit_learn():
    loaded = _imported_by("import contextlib, io\nfrom ascbench.cli import main\n"
                          "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
                          "    assert main(['run', '--epochs', '0']) == 2\n    assert main(['list']) == 0")
    assert not loaded & {"timm", "torchvision", "sklearn", "matplotlib", "scipy"}


# ---- progress, in a log and on a console ---------------------------------------------------------------------

def test_epoch_lines_go_to_the_named_stream_and_the_run_log(tmp_path, caplog):
    from ascbench import callbacks

    stream, run_log = io.StringIO(), logging.FileHandler(tmp_path / "log.txt")  # as the runner's log.txt
    logging.getLogger("ascbench").addHandler(run_log)
    caplog.set_level("INFO", logger="ascbench")
    try:
        with callbacks.epoch_lines_to(stream), callbacks.logging_to([]):
            callbacks.stage_start("pretrain embedded-source", 20, 1)
            callbacks.epoch_end("pretrain embedded-source", {"epoch": 1, "loss": 2.30258509, "val_accuracy": 0.123456})
    finally:
        logging.getLogger("ascbench").removeHandler(run_log)
        run_log.close()
    line = stream.getvalue().strip()
    assert line.startswith("pretrain embedded-source") and "epoch 1/20" in line and "loss 2.303" in line
    assert "val accuracy 12.3 %" in line and line.endswith(" s")
    assert (tmp_path / "log.txt").read_text().strip() == line
    assert line not in caplog.text  # the console handlers of the root logger do not show it a second time


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One --quick finetune run (pretraining included) of the small context-only model on embedded-tiny, through the
    CLI, its standard output a file."""
    runs = tmp_path_factory.mktemp("quick-runs")
    out = io.StringIO()
    ascbench_log = logging.getLogger("ascbench")
    level = ascbench_log.level
    ascbench_log.setLevel(logging.INFO)  # as the CLI's basicConfig sets it (pytest's handlers keep that from acting)
    try:
        with pytest.MonkeyPatch.context() as mp, redirect_stdout(out):
            mp.setenv("ASCBENCH_RUNS_DIR", str(runs))
            mp.setenv("COLUMNS", "80")
            assert main(["run", "--model", "context-only", "--strategy", "finetune", "--dataset", "embedded-tiny",
                         "--quick"]) == 0
    finally:
        ascbench_log.setLevel(level)
    return runs, out.getvalue()


def test_a_run_piped_to_a_file_prints_and_logs_one_line_per_epoch(quick_run):
    runs, out = quick_run
    (row,) = load_rows(runs)
    log_text = (runs / row["run_id"] / "log.txt").read_text()
    for stage in ("pretrain embedded-tiny-source", "finetune"):
        for epoch in ("epoch 1/2", "epoch 2/2"):
            assert any(line.startswith(stage) and epoch in line for line in out.splitlines()), (stage, epoch, out)
            assert f"{stage}  {epoch}" in log_text
    # The weights report is given once: the left-out tensor is named in one line.
    assert sum("context.city.weight" in line for line in log_text.splitlines()) == 1
    assert "early stop" not in log_text


def test_the_run_summary_fits_and_shows_no_raw_floats(quick_run):
    _, out = quick_run
    summary = out[out.index("run "):]
    assert _widest(summary) <= 80 and not RAW_FLOAT.search(summary)
    assert "not for publishing" in " ".join(summary.split())
    assert re.search(r"^run +\S+-context-only-finetune-\S+$", summary, re.M)  # the run id whole, to copy


def test_quick_shortens_every_stage_and_marks_the_run(quick_run, capsys, monkeypatch):
    runs, _ = quick_run
    (row,) = load_rows(runs)
    assert row["quick"] is True
    config = json.loads((runs / row["run_id"] / "config.json").read_text())
    assert config["quick"] is True and config["epochs"] == 2 and config["pretrain_epochs"] == 2
    metrics = json.loads((runs / row["run_id"] / "metrics.json").read_text())
    assert [len(stage["epochs"]) for stage in metrics["history"]] == [2, 2]  # pretraining is short too
    monkeypatch.setenv("ASCBENCH_RUNS_DIR", str(runs))
    assert main(["leaderboard"]) == 2  # a quick run is not ranked by default
    assert "ascbench run" in capsys.readouterr().err
    board = _out(capsys, ["leaderboard", "--include-quick"])
    assert "context-only" in board and _widest(board) <= 100


def test_quick_is_a_checked_field_and_given_settings_win():
    config = RunConfig.from_dict({"quick": True, "epochs": 5})
    assert config.epochs == 5 and config.pretrain_epochs == 2
    assert RunConfig.from_dict({}).epochs == RunConfig().epochs  # nothing changes without it
    with pytest.raises(ConfigError, match="quick"):
        RunConfig.from_dict({"quick": "yes"})


def test_reaching_the_last_epoch_is_not_an_early_stop(runs, caplog, monkeypatch):
    from ascbench.fitting import _Selection

    monkeypatch.setattr(_Selection, "should_stop", lambda self, config, epoch, min_epochs, validating: True)
    caplog.set_level("INFO", logger="ascbench")
    assert main(["run", "--model", "context-only", "--strategy", "scratch", "--dataset", "embedded-tiny",
                 "--epochs", "1", "--no-progress"]) == 0
    assert "early stop" not in caplog.text
