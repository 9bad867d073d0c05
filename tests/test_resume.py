"""Kill and resume: a run killed with SIGKILL mid-epoch continues from its last checkpoint and ends
with exactly the numbers (and weights) of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ascbench.config import RunConfig
from ascbench.errors import ConfigError, RunInterrupted
from ascbench.results import load_rows
from ascbench.runner import execute
from small_models import SMALL

# Dies with SIGKILL a few batches into epoch KILL_EPOCH of the stage named KILL_STAGE: an abrupt
# death (no cleanup, no exception handlers), in the middle of an epoch.
KILLER = textwrap.dedent("""
    import json, os, signal, sys
    from ascbench import checkpoint, training
    from ascbench.config import RunConfig
    from ascbench.runner import execute

    stage, kill_epoch = sys.argv[2], int(sys.argv[3])
    state = {"armed": False, "batches": 0}
    save = checkpoint.Checkpointer.save_epoch
    def save_epoch(self, name, epoch, payload):
        save(self, name, epoch, payload)
        state["armed"] = state["armed"] or (name == stage and epoch == kill_epoch - 1)
    checkpoint.Checkpointer.save_epoch = save_epoch
    batch = training.DataBundle.batch_on  # every batch the loop asks for, on whatever device
    def killing_batch(self, rows, compute):
        if state["armed"]:
            state["batches"] += 1
            if state["batches"] == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        return batch(self, rows, compute)
    training.DataBundle.batch_on = killing_batch
    execute(RunConfig.from_dict(json.loads(sys.argv[1])), progress=False)
""")


def _kill_during(config: RunConfig, stage: str, epoch: int, runs: Path) -> None:
    env = {**os.environ, "ASCBENCH_RUNS_DIR": str(runs), "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run([sys.executable, "-c", KILLER, json.dumps(config.to_dict()), stage, str(epoch)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)["model"]


def _assert_same_run(a: Path, b: Path) -> None:
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    for key in ("accuracy", "log_loss", "macro_f1", "class_accuracy", "city_accuracy"):
        assert ma[key] == mb[key], key
    assert [s["best_epoch"] for s in ma["strategy_notes"]["stages"]] == [s["best_epoch"] for s in mb["strategy_notes"]["stages"]]
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.mark.parametrize("semi, stage", [("none", "finetune"), ("mean-teacher", "finetune (mean teacher)"),
                                         ("pseudo-label", "finetune (round 1)")])
def test_sigkill_in_epoch_3_then_resume_gives_identical_results(tmp_path, semi, stage):
    config = RunConfig(dataset="embedded-tiny", model="mobileascnet-tiny", semi=semi, epochs=4, pretrain_epochs=2,
                       patience=0, options={"semi": {"rounds": 1}} if semi == "pseudo-label" else {}, threads=1)
    reference = execute(config, runs_root=tmp_path / "reference", progress=False)

    runs = tmp_path / "killed"
    _kill_during(config, stage, 3, runs)
    partial = [p for p in runs.iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 1 and (partial[0] / "checkpoint.pt").exists()
    assert load_rows(runs) == []  # nothing was stored for the killed run

    resumed = execute(config, runs_root=runs, progress=False)  # the same config again picks it up
    assert resumed.metrics["resumed_from"] == f"{stage}, epoch 2"
    assert resumed.run_id == partial[0].name[1:-len(".partial")]
    assert not partial[0].exists()
    assert not (runs / resumed.run_id / "checkpoint.pt").exists()
    assert len(load_rows(runs)) == 1
    _assert_same_run(tmp_path / "reference" / reference.run_id, runs / resumed.run_id)


def test_ctrl_c_keeps_the_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch):
    from ascbench import checkpoint

    config = RunConfig(dataset="embedded-tiny", model="mobileascnet-tiny", epochs=3, pretrain_epochs=1, patience=0,
                       model_kwargs=SMALL.get("mobileascnet-tiny", {}))
    save = checkpoint.Checkpointer.save_epoch

    def interrupt_after_epoch_2(self, name, epoch, payload):
        save(self, name, epoch, payload)
        if name == "finetune" and epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.Checkpointer, "save_epoch", interrupt_after_epoch_2)
    with pytest.raises(RunInterrupted, match=r"last checkpoint is at finetune, epoch 2\. Resume with `ascbench run --resume .*\.partial`"):
        execute(config, runs_root=tmp_path, progress=False)
    monkeypatch.setattr(checkpoint.Checkpointer, "save_epoch", save)
    (partial,) = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    record = execute(config, progress=False, resume=partial)
    assert record.metrics["resumed_from"] == "finetune, epoch 2"
    # The wall time of the interrupted process (up to its last checkpoint) is counted, not dropped.
    timings = record.metrics["timings"]
    assert timings["before_resume_s"] > 0 and timings["total_s"] > timings["before_resume_s"]
    assert [r["run_id"] for r in load_rows(tmp_path)] == [record.run_id]


def test_resume_of_a_directory_that_is_not_a_run(tmp_path):
    with pytest.raises(ConfigError, match="not an unfinished run directory"):
        execute(RunConfig(dataset="embedded-tiny"), resume=tmp_path, progress=False)


def test_a_run_that_fails_leaves_no_staging_directory(tmp_path):
    with pytest.raises(ConfigError):
        execute(RunConfig(dataset="embedded-tiny", model="context-only", strategy="freeze", epochs=1, pretrain_epochs=1),
                runs_root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_of_another_config_is_refused(tmp_path):
    from ascbench.checkpoint import Checkpointer
    from ascbench.errors import DataError

    Checkpointer(tmp_path, "aaaa").finish_stage("scratch", {}, {"best_epoch": 1, "best_val_accuracy": None, "history": []})
    with pytest.raises(DataError, match="belongs to another configuration"):
        Checkpointer(tmp_path, "bbbb")
    (tmp_path / "checkpoint.pt").write_bytes(b"\x80garbage")
    with pytest.raises(DataError, match="unreadable.*delete its directory"):
        Checkpointer(tmp_path, "aaaa")


def test_a_finished_run_cannot_be_resumed_so_it_is_never_rewritten_or_deleted(tmp_path, capsys):
    """Both ways a finished run used to be lost: a successful resume rewrote metrics.json and appended
    a duplicate row; a failing one deleted the folder its row points to."""
    from ascbench.cli import main

    config = RunConfig(dataset="embedded-tiny", model="context-only", strategy="scratch", epochs=1)
    record = execute(config, runs_root=tmp_path, progress=False)
    finished = tmp_path / record.run_id
    before = {p.name: p.read_bytes() for p in finished.iterdir()}
    with pytest.raises(ConfigError, match="is a finished run; it is never modified.*ascbench rerun"):
        execute(config, resume=finished, progress=False)
    assert main(["run", "--resume", str(finished), "--no-progress"]) != 0
    assert "is a finished run" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in finished.iterdir()} == before
    assert [r["run_id"] for r in load_rows(tmp_path)] == [record.run_id]
