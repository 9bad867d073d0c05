"""Sweeps (local and Ray executors, resumable) and data-parallel runs under torchrun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ascbench.errors import ConfigError, UnknownNameError
from ascbench.results import load_rows
from ascbench.sweep import SweepSpec, parse_assignment, run_sweep

TINY = {"dataset": "embedded-tiny", "epochs": 1, "pretrain_epochs": 1, "min_epoch_clips": 64}
GRID_2x2x2 = {"model": ["mobileascnet-tiny", "cp-mobile"], "strategy": ["scratch", "finetune"], "seed": [0, 1]}


def _write_spec(path: Path, base: dict, grid: dict) -> Path:
    lines = ["[base]"] + [f"{k} = {json.dumps(v)}" for k, v in base.items()]
    lines += ["", "[grid]"] + [f"{k} = {json.dumps(v)}" for k, v in grid.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_spec_files_and_flags_make_the_same_cells(tmp_path):
    toml = SweepSpec.load(_write_spec(tmp_path / "grid.toml", TINY, GRID_2x2x2))
    (tmp_path / "grid.yaml").write_text(json.dumps({"base": TINY, "grid": GRID_2x2x2}))  # JSON is YAML
    yaml = SweepSpec.load(tmp_path / "grid.yaml")
    flags = SweepSpec().with_overrides(
        dict(parse_assignment(a, multi=True) for a in ["model=mobileascnet-tiny,cp-mobile", "strategy=scratch,finetune", "seed=0,1"]),
        dict(parse_assignment(a, multi=False) for a in ["dataset=embedded-tiny", "epochs=1", "pretrain-epochs=1", "min_epoch_clips=64"]))
    cells = toml.cells()
    assert len(cells) == 8 and cells == yaml.cells() == flags.cells()
    assert {(c.model, c.strategy, c.seed) for c in cells} == {(m, s, k) for m in GRID_2x2x2["model"]
                                                              for s in GRID_2x2x2["strategy"] for k in (0, 1)}


def test_excluded_combinations_are_left_out(tmp_path):
    spec = tmp_path / "grid.toml"
    spec.write_text('[grid]\nmodel = ["context-only", "cp-mobile"]\nstrategy = ["scratch", "freeze"]\nseed = [0, 1]\n'
                    '\n[[exclude]]\nmodel = "context-only"\nstrategy = "freeze"\n')
    cells = SweepSpec.load(spec).cells()
    assert len(cells) == 6
    assert ("context-only", "freeze") not in {(c.model, c.strategy) for c in cells}
    assert {(c.model, c.strategy) for c in cells} == {("context-only", "scratch"), ("cp-mobile", "scratch"),
                                                      ("cp-mobile", "freeze")}


@pytest.mark.parametrize("text, message", [
    ("[grid]\nseed = [0]\n[[exclude]]\nmodle = 'x'\n", "exclude entry .* unknown config field"),
    ("exclude = 3\n[grid]\nseed = [0]\n", "exclude must be a list of tables"),
    ("[grid]\nmodel = 'mobileascnet'\n", "must be a non-empty list"),
    ("[grid]\nmodle = ['mobileascnet']\n", "unknown config field"),
    ("[cells]\nmodel = ['x']\n", "unknown section"),
    ("[grid\n", "does not parse"),
    # One experiment twice: a value listed twice, or a protocol under its old and its current name.
    ("[grid]\nseed = [1, 1]\n", "are the same experiment"),
    ("[grid]\nlr = [1, 1.0]\n", "are the same experiment"),  # a number is a number however it is written
    ("[grid]\nprotocol = ['official', 'session-holdout']\n", "are the same experiment"),
    ("[base]\nmodel = 'mobileascnet'\n[grid]\nseed = [0]\nepochs = [2, 2]\n", "are the same experiment"),
])
def test_bad_specs_say_what_is_wrong(tmp_path, text, message):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        SweepSpec.load(tmp_path / "bad.toml").cells()


def test_unknown_names_fail_before_any_cell_runs(runs):
    cells = SweepSpec(TINY, {"model": ["mobileascnet-tiny", "mobileascnett"]}).cells()
    with pytest.raises(UnknownNameError, match="mobileascnett"):
        run_sweep(cells, jobs=1, progress=False)
    assert load_rows(runs) == []


def test_finished_cells_are_skipped_and_a_failing_cell_does_not_stop_the_others(runs):
    first = SweepSpec(TINY, {"model": ["mobileascnet-tiny"], "strategy": ["scratch"], "seed": [0, 1]}).cells()
    outcomes = run_sweep(first, jobs=1, progress=False)
    assert [o.status for o in outcomes] == ["done", "done"]
    # context-only has no feature extractor, so `freeze` fails for it.
    grid = {"model": ["mobileascnet-tiny", "context-only"], "strategy": ["scratch", "freeze"], "seed": [0, 1]}
    outcomes = run_sweep(SweepSpec({**TINY}, grid).cells(), jobs=1, progress=False)
    status = {(o.config.model, o.config.strategy, o.config.seed): o.status for o in outcomes}
    assert status[("mobileascnet-tiny", "scratch", 0)] == status[("mobileascnet-tiny", "scratch", 1)] == "skipped"
    assert status[("context-only", "freeze", 0)] == "failed"
    assert "feature_extractor" in next(o.reason for o in outcomes if o.status == "failed")
    assert sum(s == "done" for s in status.values()) == 4
    assert len(load_rows(runs)) == 6


def test_a_killed_sweep_finishes_the_rest_when_run_again(tmp_path):
    """The acceptance scenario: a 2x2x2 sweep with the local executor, killed mid-way, then re-run."""
    spec = _write_spec(tmp_path / "grid.toml", TINY, GRID_2x2x2)
    env = {**os.environ, "ASCBENCH_RUNS_DIR": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "ascbench", "sweep", str(spec), "--jobs", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 240
    while len(load_rows(tmp_path / "runs")) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole sweep, workers included, with no chance to clean up
    proc.wait()
    killed_with = len(load_rows(tmp_path / "runs"))
    assert 3 <= killed_with < 8

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"8 cells: {8 - killed_with} done, {killed_with} skipped (already stored or published), 0 failed" in again.stdout
    rows = load_rows(tmp_path / "runs")
    assert len(rows) == 8 and len({r["experiment_digest"] for r in rows}) == 8


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "SIGTERM to a sweep started with &"])
def test_stopping_the_sweep_process_alone_stops_its_workers(tmp_path, how):
    """Only the sweep process is signalled: its workers must not run on as orphans (a re-run would then
    run their cells a second time). SIGTERM is also reported like Ctrl-C, with exit status 130. A sweep
    started in the background by a shell (`&`, nohup) inherits SIGINT ignored, which its workers must not keep."""
    background = how.endswith("&")
    how = how.split()[0]
    # 12 epochs: each cell is long enough (a few seconds) for both workers to be mid-cell when the signal comes,
    # and the re-run that finishes all three stays short.
    spec = _write_spec(tmp_path / "grid.toml", {**TINY, "epochs": 12, "patience": 0, "model": "mobileascnet-tiny",
                                                "strategy": "scratch"}, {"seed": [0, 1, 2]})
    runs = tmp_path / "runs"
    env = {**os.environ, "ASCBENCH_RUNS_DIR": str(runs)}
    cmd = [sys.executable, "-m", "ascbench", "sweep", str(spec), "--jobs", "2", "--no-progress"]
    ignore_sigint = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=ignore_sigint)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:  # both workers are inside a cell's epochs
        if len(list(runs.glob(".*.partial/checkpoint*"))) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None
    # On a loaded machine one worker can finish its whole cell before the other writes its first checkpoint,
    # and a cell in its last epoch may still finish within the workers' watch on the sweep (0.5 s). Those rows
    # are the sweep's own work; a row of any other cell would be an orphan's, run after the sweep was gone.
    stored_before = {r["run_id"] for r in load_rows(runs)}
    running = {p.name[1:-len(".partial")] for p in runs.glob(".*.partial")}
    proc.send_signal(getattr(signal, how))
    signalled = time.monotonic()
    out, _ = proc.communicate(timeout=120)
    if how == "SIGTERM":
        assert proc.returncode == 130 and "run the same command again" in out, out[-2000:]
        assert "interrupted; its checkpoint is kept" in out, out[-2000:]  # a cell really was stopped mid-way
    deadline = time.monotonic() + 60
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(proc.pid), "sweep workers outlived the sweep"
    # A worker leaves once its cell has kept its checkpoint, not after a fixed grace period (30 s).
    assert time.monotonic() - signalled < 20, f"workers took {time.monotonic() - signalled:.0f} s to leave"
    orphans = {r["run_id"] for r in load_rows(runs)} - stored_before - running
    assert not orphans, out[-3000:]  # no cell was started behind our back

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    rows = load_rows(runs)
    assert len(rows) == 3 and len({r["experiment_digest"] for r in rows}) == 3


def test_ray_executor_gives_the_same_rows_as_the_local_one(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'ascbench[ray]'")
    cells = SweepSpec(TINY, {"model": ["mobileascnet-tiny", "cp-mobile"], "strategy": ["scratch"]}).cells()
    local = run_sweep(cells, jobs=2, runs_root=tmp_path / "local", progress=False)
    remote = run_sweep(cells, executor="ray", jobs=2, runs_root=tmp_path / "ray", progress=False)
    assert [o.status for o in remote] == ["done", "done"], [o.reason for o in remote]
    assert [o.accuracy for o in remote] == [o.accuracy for o in local]
    rows = {r["model"]: r for r in load_rows(tmp_path / "ray")}
    for o in remote:  # gathered into the driver's store, files and all
        assert (tmp_path / "ray" / o.run_id / "metrics.json").exists()
        assert rows[o.config.model]["log_loss"] == next(r for r in load_rows(tmp_path / "local")
                                                        if r["model"] == o.config.model)["log_loss"]


def test_two_process_data_parallel_run_writes_one_row(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not on PATH")
    args = ["--dataset", "embedded-tiny", "--model", "mobileascnet-tiny", "--strategy", "finetune", "--epochs", "6",
            "--pretrain-epochs", "6", "--threads", "1", "--no-progress"]
    env = {**os.environ, "ASCBENCH_RUNS_DIR": str(tmp_path / "ddp")}
    ddp = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "ascbench", "run", *args],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("model / strategy / semi") == 1  # one summary, from rank 0
    (row,) = load_rows(tmp_path / "ddp")
    assert row["processes"] == 2
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted([row["run_id"], "results.jsonl"])

    env["ASCBENCH_RUNS_DIR"] = str(tmp_path / "single")
    single = subprocess.run([sys.executable, "-m", "ascbench", "run", *args], env=env, capture_output=True, text=True,
                            timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    (one,) = load_rows(tmp_path / "single")
    # Same recipe and data; batch-norm statistics per half-batch make it equal only within noise.
    assert abs(row["accuracy"] - one["accuracy"]) <= 0.15
    assert abs(row["log_loss"] - one["log_loss"]) <= 0.15 * one["log_loss"]


def test_cells_already_published_are_skipped_without_their_runs_directory(tmp_path, caplog):
    """A published grid can be finished in a fresh checkout: the published records stand in for the
    runs directory that made them."""
    from ascbench.cli import main

    published, other = SweepSpec(TINY, {"model": ["context-only"], "strategy": ["scratch"], "seed": [0, 1]}).cells()
    made = run_sweep([published.replace(threads=3)], jobs=1, runs_root=tmp_path / "made", progress=False)
    assert main(["leaderboard", "--runs-dir", str(tmp_path / "made"), "--publish", str(tmp_path / "board"),
                 "--allow-nonstandard"]) == 0
    shutil.rmtree(tmp_path / "made")  # a fresh checkout: only the board is left
    caplog.set_level("INFO", logger="ascbench")
    outcomes = run_sweep([published, other], jobs=1, runs_root=tmp_path / "runs", progress=False,
                         published=tmp_path / "board")
    assert [o.status for o in outcomes] == ["skipped", "done"]  # the thread count is not part of the experiment
    assert f"2 cells, 0 already in {tmp_path / 'runs'}, 1 published in {tmp_path / 'board'}, 1 to run" in caplog.text
    assert outcomes[0].run_id == made[0].run_id and str(tmp_path / "board") in outcomes[0].reason
    assert [r["seed"] for r in load_rows(tmp_path / "runs")] == [1]
    # A published record that does not check out (its row edited) stands in for nothing: its cell runs again.
    record_path = next((tmp_path / "board" / "results").glob("*.json"))
    record = json.loads(record_path.read_text())
    record["row"]["macro_accuracy"] = 0.99
    record_path.write_text(json.dumps(record))
    again = run_sweep([published], jobs=1, runs_root=tmp_path / "runs", progress=False, published=tmp_path / "board")
    assert [o.status for o in again] == ["done"]


def test_gpus_per_cell_gives_each_ray_cell_a_gpu(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'ascbench[ray]'")
    import ascbench.sweep as sweep

    cells = SweepSpec(TINY, {"model": ["context-only"], "strategy": ["scratch"]}).cells()
    # This machine has no GPU: a local Ray instance asked for one would queue the cell forever, so it is refused.
    monkeypatch.setattr(sweep, "local_gpu_count", lambda: 0)
    with pytest.raises(ConfigError, match=r"--gpus-per-cell 1: this machine has 0 GPU"):
        run_sweep(cells, executor="ray", runs_root=tmp_path, progress=False, gpus_per_cell=1)
    with pytest.raises(ConfigError, match="needs --executor ray"):
        run_sweep(cells, runs_root=tmp_path, progress=False, gpus_per_cell=1)
    # Declared to Ray (no CUDA behind it, so the cell's --device auto still resolves to the CPU): the task
    # is scheduled with its GPU and says which.
    monkeypatch.setattr(sweep, "local_gpu_count", lambda: 1)
    (outcome,) = run_sweep(cells, executor="ray", runs_root=tmp_path, progress=False, gpus_per_cell=1)
    assert outcome.status == "done", outcome.reason
    assert outcome.gpus == ("0",)


def test_dry_run_lists_option_cells_apart_and_refuses_a_cell_that_cannot_start(tmp_path, capsys, monkeypatch):
    from ascbench.cli import main

    monkeypatch.setenv("COLUMNS", "200")  # each cell on one line

    assert main(["sweep", "--grid", "recipe=li2026", "--grid", "recipe.budget=0.1,0.5", "--grid", "seed=0",
                 "--runs-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "recipe li2026 (recipe.budget=0.1" in out and "recipe li2026 (recipe.budget=0.5" in out
    # recipe.budget without a recipe would fail when the cell starts: the dry run says so now, running nothing.
    assert main(["sweep", "--grid", "recipe.budget=0.1", "--grid", "seed=0", "--runs-dir", str(tmp_path),
                 "--dry-run"]) == 2
    assert "names no recipe" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_dry_run_refuses_model_arguments_the_model_cannot_take(tmp_path, capsys):
    """A cell whose --model-arg its model rejects would fail after the sweep started: the dry run builds each
    model x arguments once, on the clip table (no audio), and names the cell."""
    from ascbench.cli import main

    assert main(["sweep", "--grid", "model=mobileascnet-tiny", "--grid", "model.gru_hiden=8", "--runs-dir",
                 str(tmp_path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "mobileascnet-tiny" in err and "gru_hiden" in err
    assert main(["sweep", "--grid", "model=mobileascnet-tiny", "--grid", "precision=fp32,bf16", "--runs-dir",
                 str(tmp_path), "--dry-run"]) == 0
    assert "(precision=bf16)" in capsys.readouterr().out  # cells that differ read apart
    assert not any(tmp_path.iterdir())


def test_precision_auto_is_identified_by_what_it_resolved_to(registry):
    """A run made with --precision auto is the experiment it computed: in bf16 on one machine, fp32 on another. Its
    row never pools seeds of both, a sweep cell is 'stored' only where auto resolves alike, and a grid listing
    auto beside what auto gives here lists one experiment twice."""
    from ascbench.config import RunConfig
    from ascbench.device import Compute, ModelNeeds
    from ascbench.leaderboard import setting_of
    from ascbench.sweep import _identity, cell_identity

    auto = RunConfig(dataset="embedded-tiny").to_record()
    pinned = {**auto, "precision": "bf16"}
    assert setting_of(auto, "bf16")["setting"] == setting_of(pinned, "bf16")["setting"]
    assert setting_of(auto, "bf16")["setting"] != setting_of(auto, "fp32")["setting"]
    assert setting_of(auto, "bf16")["setting_label"] == "default"  # what was asked for, as the label says it
    here = Compute.from_names("auto", "auto", ModelNeeds.of(registry.model("mobileascnet"))).precision
    other = "fp32" if here == "bf16" else "bf16"
    cell = RunConfig(dataset="embedded-tiny")
    same = _identity(auto, {"compute": {"precision": here}}).split("/")[0]
    elsewhere = _identity(auto, {"compute": {"precision": other}}).split("/")[0]
    assert cell_identity(cell, registry).split("/")[0] == same != elsewhere
    with pytest.raises(ConfigError, match="are the same experiment"):
        SweepSpec({"dataset": "embedded-tiny"}, {"precision": ["auto", here]}).cells()
