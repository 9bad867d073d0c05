import json
import multiprocessing as mp

import pytest

from ascbench.fileio import append_line, atomic_write_text
from ascbench.leaderboard import aggregate, render
from ascbench.results import load_rows


def _writer(path, worker):
    for i in range(40):
        append_line(path, json.dumps({"worker": worker, "i": i, "pad": "x" * 2000}))


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "results.jsonl"
    procs = [mp.get_context("fork").Process(target=_writer, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 160
    assert {(r["worker"], r["i"]) for r in rows} == {(w, i) for w in range(4) for i in range(40)}


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, "old")

    def explode(*args):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", explode)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary left behind


def test_torn_last_line_is_reported_and_earlier_rows_survive(tmp_path, capsys):
    path = tmp_path / "results.jsonl"
    a, b = ({"run_id": name, "model": "m", "strategy": "scratch", "semi": "none", "dataset": "d", "protocol": "p",
             "labeled": None, "seed": 0, "fold": None, "accuracy": 0.5, "macro_accuracy": 0.5, "macro_f1": 0.5,
             "log_loss": 1.0, "params": 10, "macs": 100} for name in "ab")
    path.write_text(json.dumps(a) + "\n" + json.dumps(b) + "\n" + '{"run_id": "c", "b"')
    assert load_rows(tmp_path) == [a, b]
    assert "results.jsonl:3" in capsys.readouterr().err


def _row(model, seed, acc, protocol="official"):
    return {"dataset": "d", "protocol": protocol, "model": model, "strategy": "scratch", "labeled": None,
            "seed": seed, "accuracy": acc, "macro_accuracy": acc, "macro_f1": acc, "log_loss": 1.0, "worst_city_accuracy": acc - 0.1,
            "worst_period_accuracy": acc - 0.2, "params": 1000, "macs": 2_500_000, "param_kb": 4.0}


def test_aggregate_over_seeds():
    table = aggregate([_row("a", 0, 0.5), _row("a", 1, 0.7), _row("b", 0, 0.9)])
    a = table[table["model"] == "a"].iloc[0]
    assert a["seeds"] == 2 and a["accuracy"] == pytest.approx(0.6) and a["accuracy_std"] == pytest.approx(0.1414, abs=1e-4)
    assert list(table["model"]) == ["b", "a"]  # best first


def test_render_formats():
    table = aggregate([_row("a", 0, 0.5), _row("a", 1, 0.7)])
    md = render(table, "markdown")
    assert md.splitlines()[1].startswith("|--") and "60.0 ± 14.1" in md and "2.50 M" in md
    csv = render(table, "csv")
    assert csv.splitlines()[0].startswith("dataset,protocol,model,strategy,semi,labeled,setting,setting_label,seeds,runs,")


def test_two_runs_of_the_same_config_at_once_both_land(tmp_path):
    """Two `ascbench run` processes started together with the same config: the second must not take
    over the first one's staging directory (it is locked), and both rows reach the leaderboard."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ASCBENCH_RUNS_DIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "ascbench", "run", "--dataset", "embedded-tiny", "--model", "mobileascnet-tiny",
           "--strategy", "scratch", "--epochs", "2", "--threads", "1", "--no-progress"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outputs]
    rows = load_rows(tmp_path)
    assert len(rows) == 2 and rows[0]["run_id"] != rows[1]["run_id"]
    assert rows[0]["accuracy"] == rows[1]["accuracy"]  # same seed, same numbers
    board = subprocess.run([sys.executable, "-m", "ascbench", "leaderboard"], env=env, capture_output=True, text=True)
    assert board.returncode == 0 and "mobileascnet-tiny" in board.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_rows_are_ranked_by_macro_accuracy_the_challenge_metric():
    from ascbench.leaderboard import aggregate, render

    frequent_class_wins = {**_row("micro-favourite", 0, 0.70), "macro_accuracy": 0.40}
    balanced = {**_row("balanced", 0, 0.60), "macro_accuracy": 0.55}
    table = aggregate([frequent_class_wins, balanced])
    assert list(table["model"]) == ["balanced", "micro-favourite"]
    header = render(table, "markdown").splitlines()[0]
    assert header.index("macro acc %") < header.index("accuracy %")


def _configured(model, seed, acc, run_id, finished="2026-01-01T00:00:00", **config):
    from ascbench.leaderboard import setting_of

    cfg = {"dataset": "d", "model": model, "strategy": "scratch", "seed": seed, **config}
    return {**_row(model, seed, acc), "run_id": run_id, "finished": finished, **setting_of(cfg)}


def test_rows_with_different_settings_stay_apart_and_say_how():
    rows = [_configured("a", 0, 0.5, "r0"), _configured("a", 1, 0.7, "r1"),
            _configured("a", 0, 0.2, "r2", epochs=2), _configured("a", 0, 0.3, "r3", model_kwargs={"width": 48}),
            _configured("a", 2, 0.6, "r4", device="cuda", threads=4)]  # execution details: the same experiment
    table = aggregate(rows)
    assert sorted(table["setting_label"]) == ["default", "default + epochs=2", "default + model.width=48"]
    default = table[table["setting_label"] == "default"].iloc[0]
    assert default["seeds"] == 3 and default["macro_accuracy"] == pytest.approx(0.6)
    text = render(table)
    assert "20.0 " in text and "20.0 ±" not in text  # one seed: no spread to show


def test_a_rerun_replaces_its_seed_instead_of_joining_it():
    first = [_configured("a", 0, 0.5, "r0", "2026-01-01T00:00:00"), _configured("a", 1, 0.7, "r1", "2026-01-01T00:01:00")]
    rerun = _configured("a", 0, 0.52, "r9", "2026-02-01T00:00:00")  # the same seed again, later
    before, after = aggregate(first), aggregate(first + [rerun])
    assert len(after) == len(before) == 1 and after.iloc[0]["runs"] == 2 and after.iloc[0]["superseded"] == 1
    assert after.iloc[0]["macro_accuracy"] == pytest.approx((0.52 + 0.7) / 2)  # the newest record of seed 0 counts


def test_a_nan_run_is_reported_not_averaged():
    nan = {**_configured("a", 2, float("nan"), "r2"), "accuracy": float("nan")}
    table = aggregate([_configured("a", 0, 0.5, "r0"), _configured("a", 1, 0.7, "r1"), nan])
    row = table.iloc[0]
    assert row["seeds"] == 2 and row["failed"] == 1 and row["macro_accuracy"] == pytest.approx(0.6)
    assert "failed runs" in render(table).splitlines()[0]


def test_a_run_id_may_hold_any_plugin_name_but_never_a_path():
    """Plugin names may hold '.', '_', ':' and '-' (timm:resnet18): such run ids are rows; a path never is."""
    from ascbench.results import row_type_problems

    row = {"model": "timm:resnet18", "strategy": "scratch", "semi": "none", "dataset": "d", "protocol": "p",
           "labeled": None, "seed": 0, "fold": None, "accuracy": 0.5, "macro_accuracy": 0.5, "macro_f1": 0.5,
           "log_loss": 1.0, "params": 10, "macs": 100}
    assert row_type_problems({**row, "run_id": "20260101-000000-timm:resnet18-scratch-session-holdout-s0-abc123"}) == []
    assert row_type_problems({**row, "run_id": "20260101-000000-my_net.v2-scratch-unseen-city-s0-abc123"}) == []
    for bad in ("../x", "a/b", "/abs", ".partial", "x" * 241):
        assert any("run_id" in p for p in row_type_problems({**row, "run_id": bad})), bad
