"""The fault corpus, outputs family: no command can overwrite or add to what ascbench keeps.

Every command that writes where a user points it (``--output``, ``--dir``, ``--publish``) goes through the
guarded writer (``ascbench.fileio.write_output``). For each such command and each kept place — the results
store, a finished run, a published board, the cache, reached directly or through a link — the command must
refuse in one line and leave every kept byte and permission as it was. Files it does write get the user's
umask, and existing files are replaced only with ``--force``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

import ascbench.registry
from ascbench import hookimpl
from ascbench.cli import main
from ascbench.fileio import cache_root
from ascbench.registry import build_registry
from ascbench.results import load_rows
from ascbench.specs import ModelSpec

RUN = ["--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch", "--epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """A results store with one finished run, and a board published from it."""
    base = tmp_path_factory.mktemp("kept")
    runs, board = base / "runs", base / "board"
    assert main(["run", *RUN, "--runs-dir", str(runs)]) == 0
    (row,) = load_rows(runs)
    assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(board), "--allow-nonstandard"]) == 0
    return types.SimpleNamespace(base=base, runs=runs, board=board, run_id=row["run_id"], run=runs / row["run_id"])


def _snapshot(*roots: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``roots`` with its content hash and permission bits."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), stat.S_IMODE(path.stat().st_mode))
    return found


# Where a careless --output may point: each is something ascbench keeps (or a link into it).
TARGETS = {
    "the results store": lambda k: k.runs / "results.jsonl",
    "a finished run's metrics": lambda k: k.run / "metrics.json",
    "a finished run's config": lambda k: k.run / "config.json",
    "a new file in a finished run": lambda k: k.run / "notes.csv",
    "a new file in the runs folder": lambda k: k.runs / "table.csv",
    "a published table": lambda k: k.board / "leaderboard.md",
    "a published record": lambda k: k.board / "results" / f"{k.run_id}.json",
    "the cache": lambda k: cache_root() / "mine.csv",
    "a link into a finished run": lambda k: _link(k.base / "innocent.csv", k.run / "metrics.json"),
    "a link to the results store": lambda k: _link(k.base / "rows.jsonl", k.runs / "results.jsonl"),
}


def _link(link: Path, target: Path) -> Path:
    if not link.is_symlink():
        link.symlink_to(target)
    return link


# Every command that writes a file a user names, as argv builders taking (kept, target).
COMMANDS = {
    "leaderboard": lambda k, t: ["leaderboard", "--runs-dir", str(k.runs), "--output", str(t)],
    "leaderboard --force": lambda k, t: ["leaderboard", "--runs-dir", str(k.runs), "--output", str(t), "--force"],
    "export": lambda k, t: ["export", k.run_id, "--runs-dir", str(k.runs), "--output", str(t), "--force"],
    "data split": lambda k, t: ["data", "split", "embedded-tiny", "--output", str(t), "--force"],
    "data split --folds": lambda k, t: ["data", "split", "embedded-tiny", "--protocol", "unseen-city", "--folds", "2",
                                        "--output", str(t), "--force"],
    "predict": lambda k, t: ["predict", k.run_id, "--runs-dir", str(k.runs), "--dataset", "embedded-tiny",
                             "--output", str(t), "--force", "--no-progress"],
}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_output_lands_in_what_ascbench_keeps(kept, command, target, capsys):
    path = TARGETS[target](kept)
    before = _snapshot(kept.runs, kept.board, cache_root())
    assert main(COMMANDS[command](kept, path)) == 2
    err = capsys.readouterr().err
    assert "would write into" in err and str(path) in err and "--output" in err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(kept.runs, kept.board, cache_root()) == before


@pytest.mark.parametrize("folder", ["run", "store", "board"])
@pytest.mark.parametrize("command", ["plot", "new-plugin", "publish"])
def test_no_command_fills_a_kept_folder(kept, command, folder, capsys):
    where = {"run": kept.run, "store": kept.runs, "board": kept.board}[folder]
    if command == "publish" and folder == "board":
        pytest.skip("the publisher owns its board")
    argv = {"plot": ["plot", kept.run_id, "--runs-dir", str(kept.runs), "--output", str(where / "plots")],
            "new-plugin": ["new-plugin", "my-net", "--dir", str(where)],
            "publish": ["leaderboard", "--runs-dir", str(kept.runs), "--publish", str(where)]}[command]
    before = _snapshot(kept.runs, kept.board)
    assert main(argv) == 2
    assert "would write into" in capsys.readouterr().err
    assert _snapshot(kept.runs, kept.board) == before


def test_plot_by_default_writes_beside_not_into_the_run(kept, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(kept.runs)
    assert main(["plot", kept.run_id, "--runs-dir", str(kept.runs)]) == 0
    assert _snapshot(kept.runs) == before
    assert sorted(p.name for p in (tmp_path / "plots" / kept.run_id).iterdir())


@pytest.mark.parametrize("kind", ["file", "folder", "fifo"])
def test_an_existing_output_is_replaced_only_when_asked(kept, tmp_path, kind, capsys):
    path = tmp_path / "out.md"
    {"file": lambda: path.write_text("mine\n"), "folder": path.mkdir, "fifo": lambda: os.mkfifo(path)}[kind]()
    argv = ["leaderboard", "--runs-dir", str(kept.runs), "--output", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(path) in err and {"file": "--force", "folder": "is a folder", "fifo": "not a regular file"}[kind] in err
    if kind == "file":
        assert path.read_text() == "mine\n"
        assert main(argv + ["--force"]) == 0
        assert path.read_text() != "mine\n"


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_respect_the_umask(kept, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        out, board = tmp_path / "table.md", tmp_path / "board"
        assert main(["leaderboard", "--runs-dir", str(kept.runs), "--output", str(out)]) == 0
        assert main(["leaderboard", "--runs-dir", str(kept.runs), "--publish", str(board), "--allow-nonstandard"]) == 0
        assert main(["plot", kept.run_id, "--runs-dir", str(kept.runs), "--output", str(tmp_path / "plots")]) == 0
    finally:
        os.umask(old)
    written = [out, *board.rglob("*.*"), *(tmp_path / "plots").iterdir()]
    assert written and {p.name: stat.S_IMODE(p.stat().st_mode) for p in written if p.is_file()} == \
        {p.name: mode for p in written if p.is_file()}


def test_a_replaced_file_keeps_its_own_mode(kept, tmp_path):
    out = tmp_path / "table.md"
    out.write_text("old\n")
    out.chmod(0o640)
    assert main(["leaderboard", "--runs-dir", str(kept.runs), "--output", str(out), "--force"]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and out.read_text() != "old\n"


def test_split_files_write_every_fold(tmp_path, tiny):
    out = tmp_path / "folds.csv"
    assert main(["data", "split", "embedded-tiny", "--protocol", "unseen-city", "--folds", "2", "--output", str(out)]) == 0
    frame = pd.read_csv(out)
    assert sorted(frame["fold"].unique()) == [1, 2] and len(frame) == 2 * len(tiny.meta)
    for _, fold in frame.groupby("fold"):  # each fold's test cities never train
        held = set(fold.loc[fold["role"] == "test", "city"])
        assert held and not set(fold.loc[fold["role"].isin(["labeled", "unlabeled"]), "city"]) & held


def test_split_files_tell_unscored_test_clips_from_unused_ones(tmp_path):
    """Real APSIPA metadata, unseen-time: Bar and Construction site are tested but never taught; their test clips
    are on the test side (test-unscored), apart from the clips of sessions that reach into the held-out times."""
    out = tmp_path / "split.csv"
    assert main(["data", "split", "apsipa2025", "--protocol", "unseen-time", "--output", str(out)]) == 0
    frame = pd.read_csv(out)
    unscored = frame[frame["role"] == "test-unscored"]
    assert {"Bar", "Construction site"} <= set(unscored["scene_label"].dropna())
    assert not set(frame.loc[frame["role"] == "test", "scene_label"]) & {"Bar", "Construction site"}
    assert (frame["role"] == "unused").sum() > 0  # the purged sessions stay 'unused'


class _NanAtEvaluation(nn.Module):
    """Trains normally; in eval mode its outputs are NaN (an overflow a model might only show at inference)."""

    def __init__(self, ctx):
        super().__init__()
        self.head = nn.Linear(1, ctx.num_classes)

    def forward(self, x, city=None, time=None):
        logits = self.head(x.flatten(1).mean(1, keepdim=True))
        return logits if self.training else logits * torch.tensor(float("nan"))


NAN_PLUGIN = types.SimpleNamespace(ascbench_models=hookimpl(lambda: [ModelSpec("nan-at-eval", _NanAtEvaluation)]))


def test_a_model_whose_evaluation_is_nan_is_a_failure_not_a_number(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ascbench.registry, "_default", build_registry([("nan-plugin", NAN_PLUGIN)]))
    argv = ["run", "--dataset", "embedded-tiny", "--model", "nan-at-eval", "--strategy", "scratch", "--epochs", "1",
            "--select-on", "last", "--no-progress", "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "nan-at-eval" in err and "nan-plugin" in err and "non-finite" in err
    assert load_rows(tmp_path / "runs") == []
    assert not [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")] if (tmp_path / "runs").exists() else True


def test_unwritten_guards_do_not_cost_the_work(kept, tmp_path, monkeypatch, capsys):
    """A refused --output is refused before any feature is extracted or any model loaded."""
    import ascbench.predict

    monkeypatch.setattr(ascbench.predict, "predict_run", lambda *a, **k: pytest.fail("predicted before checking --output"))
    existing = tmp_path / "sub.csv"
    existing.write_text("x\n")
    assert main(["predict", kept.run_id, "--runs-dir", str(kept.runs), "--dataset", "embedded-tiny",
                 "--output", str(existing), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    np.testing.assert_equal(existing.read_text(), "x\n")


@pytest.mark.parametrize("damage", ["truncated", "not an object", "missing"])
@pytest.mark.parametrize("name", ["metrics.json", "config.json"])
@pytest.mark.parametrize("command", ["export", "plot", "rerun"])
def test_a_damaged_run_file_is_named(kept, tmp_path, damage, name, command, capsys):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(kept.runs, runs)
    path = runs / kept.run_id / name
    {"truncated": lambda: path.write_text(path.read_text()[:40]), "not an object": lambda: path.write_text("[1, 2]"),
     "missing": path.unlink}[damage]()
    argv = {"export": ["export", kept.run_id, "--runs-dir", str(runs)],
            "plot": ["plot", kept.run_id, "--runs-dir", str(runs), "--output", str(tmp_path / "plots")],
            "rerun": ["rerun", kept.run_id, "--runs-dir", str(runs)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(path) in err and len(err.strip().splitlines()) == 1 and "--debug" not in err
