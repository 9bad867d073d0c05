"""The fault corpus, outputs family: no command can overwrite or add to what ascbench keeps.

Every command that writes where a user points it (``--output``, ``--dir``, ``--publish``) goes through the
guarded writer (``ascbench.fileio.write_output``). For each such command and each kept place — the results
store, a finished run, a published board, the cache, reached directly or through a link — the command must
refuse in one line and leave every kept byte and permission as it was. Files it does write get the user's
umask, and existing files are replaced only with ``--force``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
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
    """A results store with one finished run, a board published from it, and a built-in dataset generated into a
    --data-root of the user's (outside the cache, so it carries no cache tag)."""
    base = tmp_path_factory.mktemp("kept")
    runs, board, data = base / "runs", base / "board", base / "data"
    assert main(["run", *RUN, "--runs-dir", str(runs)]) == 0
    (row,) = load_rows(runs)
    assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(board), "--allow-nonstandard"]) == 0
    assert main(["data", "info", "embedded-tiny", "--data-root", str(data)]) == 0
    return types.SimpleNamespace(base=base, runs=runs, board=board, data=data, run_id=row["run_id"],
                                 run=runs / row["run_id"])


def _snapshot(*roots: Path) -> dict[str, tuple]:
    """Every file under ``roots`` with its permission bits, size, modification time and inode, and the content
    hash of every file under 1 MB. The session's cache holds a gigabyte of generated audio and features by the
    time this runs; hashing it twice per case cost 3 s each. A write to a large file shows in its size or its
    nanosecond modification time; a replacement in its inode."""
    found = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                info = path.stat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest() if info.st_size < 2 ** 20 else None
                found[str(path)] = (digest, stat.S_IMODE(info.st_mode), info.st_size, info.st_mtime_ns, info.st_ino)
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
    "a generated dataset's table": lambda k: k.data / "metadata.csv",
    "a new file in a generated dataset": lambda k: k.data / "audio" / "mine.csv",
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
    before = _snapshot(kept.runs, kept.board, kept.data, cache_root())
    assert main(COMMANDS[command](kept, path)) == 2
    err = capsys.readouterr().err
    assert "would write into" in err and str(path) in err and "--output" in err
    assert len(err.strip().splitlines()) == 1
    assert _snapshot(kept.runs, kept.board, kept.data, cache_root()) == before


@pytest.mark.parametrize("folder", ["run", "store", "board", "dataset"])
@pytest.mark.parametrize("command", ["plot", "new-plugin", "publish", "run"])
def test_no_command_fills_a_kept_folder(kept, command, folder, capsys):
    where = {"run": kept.run, "store": kept.runs, "board": kept.board, "dataset": kept.data}[folder]
    if command == "publish" and folder == "board":
        pytest.skip("the publisher owns its board")
    if command == "run" and folder == "store":
        pytest.skip("a run adds its own folder to a store")
    argv = {"plot": ["plot", kept.run_id, "--runs-dir", str(kept.runs), "--output", str(where / "plots")],
            "new-plugin": ["new-plugin", "my-net", "--dir", str(where)],
            "publish": ["leaderboard", "--runs-dir", str(kept.runs), "--publish", str(where)],
            "run": ["run", *RUN, "--runs-dir", str(where / "runs")]}[command]
    before = _snapshot(kept.runs, kept.board, kept.data)
    assert main(argv) == 2
    assert "would write into" in capsys.readouterr().err
    assert _snapshot(kept.runs, kept.board, kept.data) == before


def test_a_dataset_generated_into_a_folder_of_the_users_is_used_again(kept, capsys):
    """Recognising a generated dataset as kept does not stop its own generator or its readers."""
    before = _snapshot(kept.data)
    assert main(["data", "info", "embedded-tiny", "--data-root", str(kept.data)]) == 0
    assert _snapshot(kept.data) == before


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


# --- found by an adversarial pass over the README's promises: each is a mechanism, tested on a new case ---------

def _copy_runs(kept, tmp_path) -> Path:
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(kept.runs, runs)
    return runs


def _own_files_and(manifest: str | None):
    def make(kept, tmp_path):
        root = tmp_path / "mine"
        root.mkdir()
        (root / "metadata.csv").write_text("my own table\n")
        (root / "notes.txt").write_text("keep me\n")
        if manifest is not None:
            (root / "manifest.json").write_text(manifest)
        return root, root
    return make


def _copy_of_the_generated_dataset(kept, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(kept.data, root)
    return root, root


# Where a --data-root may point that a generator must not write into: (the data root, the folder to watch).
FOREIGN_DATA_ROOTS = {
    "a folder of my own files": _own_files_and(None),
    "my files with another tool's manifest.json": _own_files_and('{"name": "my web app", "version": 1}'),
    "my files with a manifest.json that is a list": _own_files_and("[1, 2]"),
    "a generated dataset whose manifest is emptied": lambda k, t: (_damage(_copy_of_the_generated_dataset(k, t)[0]),) * 2,
    "another generated dataset": lambda k, t: _copy_of_the_generated_dataset(k, t),
    "a folder inside a generated dataset": lambda k, t: (k.data / "inner", k.data),
    "a finished run": lambda k, t: (k.run, k.run),
}


def _damage(root: Path) -> Path:
    (root / "manifest.json").write_text("")
    return root


@pytest.mark.parametrize("place", list(FOREIGN_DATA_ROOTS))
def test_a_generated_dataset_is_never_written_over_a_folder_it_does_not_own(kept, tmp_path, place, capsys):
    root, watched = FOREIGN_DATA_ROOTS[place](kept, tmp_path)
    # kept.data holds embedded-tiny: generating embedded-tiny-source there would be another dataset over it.
    dataset = "embedded-tiny-source" if place == "another generated dataset" else "embedded-tiny"
    before = _snapshot(watched)
    assert main(["data", "info", dataset, "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert str(root) in err and len(err.strip().splitlines()) == 1 and "--debug" not in err
    assert _snapshot(watched) == before and not (root / "inner").exists()


def test_an_interrupted_generation_in_a_folder_of_the_users_is_finished_by_the_next_command(tmp_path, monkeypatch,
                                                                                          audio_writes_fail):
    """A generation cut short (Ctrl-C, or a kill: the provisional manifest stays either way) leaves a folder known as
    the generator's; the next command generates it whole instead of refusing it as someone else's."""
    import soundfile as sf

    real_write = sf.write
    audio_writes_fail(3, KeyboardInterrupt())
    root = tmp_path / "data"
    assert main(["data", "info", "embedded-tiny", "--data-root", str(root)]) == 130
    assert not list((root / "audio").iterdir()) and json.loads((root / "manifest.json").read_text())["complete"] is False
    monkeypatch.setattr(sf, "write", real_write)
    assert main(["data", "info", "embedded-tiny", "--data-root", str(root)]) == 0
    assert "complete" not in json.loads((root / "manifest.json").read_text()) and (root / "metadata.csv").exists()


@pytest.mark.parametrize("where", ["a finished run", "a generated dataset", "the cache"])
def test_a_sweep_makes_no_runs_folder_inside_a_kept_place(kept, where, capsys):
    inside = {"a finished run": kept.run, "a generated dataset": kept.data, "the cache": cache_root()}[where] / "sw"
    watched = {"a finished run": kept.runs, "a generated dataset": kept.data, "the cache": cache_root()}[where]
    before = _snapshot(kept.runs, kept.data) if where != "the cache" else None
    assert main(["sweep", "--runs-dir", str(inside), "--grid", "seed=0", "--set", "dataset=embedded-tiny",
                 "--set", "model=context-only", "--set", "epochs=1", "--no-progress"]) == 2
    assert "would write into" in capsys.readouterr().err and not inside.exists()
    if before is not None:
        assert _snapshot(kept.runs, kept.data) == before
    assert watched.exists()


@pytest.mark.parametrize("flag", ["--runs-dir", "--log-dir", "--cache-dir"])
def test_a_run_never_writes_its_own_files_into_another_kept_place(kept, tmp_path, flag, capsys):
    where = {"--runs-dir": kept.board / "results", "--log-dir": kept.run / "logs", "--cache-dir": kept.runs / "cache"}[flag]
    extra = [flag, str(where)] + (["--logger", "csv"] if flag == "--log-dir" else [])
    runs = ["--runs-dir", str(tmp_path / "runs")] if flag != "--runs-dir" else []
    before = _snapshot(kept.runs, kept.board)
    cache = os.environ["ASCBENCH_CACHE_DIR"]
    try:
        assert main(["run", *RUN, *runs, *extra]) == 2
    finally:
        os.environ["ASCBENCH_CACHE_DIR"] = cache  # --cache-dir sets it for the process
    assert flag in capsys.readouterr().err
    assert _snapshot(kept.runs, kept.board) == before


def test_publishing_into_a_folder_with_a_page_of_its_own_needs_force(kept, tmp_path, capsys):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>my homepage</h1>\n")
    argv = ["leaderboard", "--runs-dir", str(kept.runs), "--publish", str(site), "--allow-nonstandard"]
    assert main(argv) == 2
    assert "index.html" in capsys.readouterr().err and (site / "index.html").read_text() == "<h1>my homepage</h1>\n"
    assert not (site / "results").exists()
    assert main(argv + ["--force"]) == 0 and "my homepage" not in (site / "index.html").read_text()


def test_a_publish_that_fails_takes_back_its_records(kept, tmp_path, monkeypatch):
    import ascbench.publish

    def broken(target):
        raise RuntimeError("the page could not be drawn")

    monkeypatch.setattr(ascbench.publish, "publish", broken)
    board = tmp_path / "board"
    assert main(["leaderboard", "--runs-dir", str(kept.runs), "--publish", str(board), "--allow-nonstandard"]) != 0
    assert not list((board / "results").glob("*.json"))


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_publish_stopped_by_a_signal_takes_back_its_records(kept, tmp_path, monkeypatch, signal_name, capsys):
    """SIGTERM (a scheduler's stop) runs the same clean-up as Ctrl-C: by default it ended the process on the spot and
    left records beside the old tables, a board that failed its own --check."""
    import signal

    import ascbench.publish

    def stopped(target):
        signal.raise_signal(getattr(signal, signal_name))

    monkeypatch.setattr(ascbench.publish, "publish", stopped)
    board = tmp_path / "board"
    code = main(["leaderboard", "--runs-dir", str(kept.runs), "--publish", str(board), "--allow-nonstandard"])
    assert code == (143 if signal_name == "SIGTERM" else 130)
    assert not list((board / "results").glob("*.json"))
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the command's own handler is gone again


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_signal_while_a_run_is_stored_waits_for_its_row(tmp_path, monkeypatch, signal_name, capsys):
    """Between the run folder's move into place and its row, a stop request waits: the run is stored whole, with
    its row, never a finished-looking folder that nothing lists."""
    import signal

    import ascbench.results

    real_append = ascbench.results.append_line

    def append_after_a_signal(path, line):
        signal.raise_signal(getattr(signal, signal_name))  # arrives while the folder is in place, the row not yet
        real_append(path, line)

    monkeypatch.setattr(ascbench.results, "append_line", append_after_a_signal)
    runs = tmp_path / "runs"
    main(["run", *RUN, "--runs-dir", str(runs)])
    (row,) = load_rows(runs)
    assert (runs / row["run_id"] / "metrics.json").is_file()
    assert not [p for p in runs.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_signal_before_the_row_leaves_no_half_stored_run(tmp_path, monkeypatch, signal_name, capsys):
    """Stopped while its files are written for storing (its checkpoint already gone): nothing of the run is kept
    and the message says to run it again, not to resume or rerun what cannot be."""
    import signal

    import ascbench.results

    real_write = ascbench.results.atomic_write_text

    def write_then_stop(path, text):
        real_write(path, text)
        if path.name == "metrics.json":
            signal.raise_signal(getattr(signal, signal_name))

    monkeypatch.setattr(ascbench.results, "atomic_write_text", write_then_stop)
    runs = tmp_path / "runs"
    assert main(["run", *RUN, "--runs-dir", str(runs)]) == 130
    assert "interrupted while being stored" in capsys.readouterr().err
    assert load_rows(runs) == [] and [p.name for p in runs.iterdir() if p.name != "results.jsonl"] == []


def test_a_torn_last_line_does_not_swallow_the_next_row(kept, tmp_path):
    runs = _copy_runs(kept, tmp_path)
    store = runs / "results.jsonl"
    store.write_bytes(store.read_bytes() + store.read_bytes()[:120])  # a crash mid-append: no newline
    assert main(["run", *RUN, "--seed", "11", "--runs-dir", str(runs)]) == 0
    assert sorted(r["seed"] for r in load_rows(runs)) == [0, 11]


def test_the_store_and_cache_locks_follow_the_umask(tmp_path):
    from ascbench.fileio import append_line, exclusive_lock

    old = os.umask(0o002)
    try:
        append_line(tmp_path / "results.jsonl", '{"run_id": "x"}')
        with exclusive_lock(tmp_path / ".lock"):
            pass
    finally:
        os.umask(old)
    assert {stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("results.jsonl", ".lock")} == {0o664}


def _edit_record(runs: Path, run_id: str, edit) -> None:
    import json

    metrics_path = runs / run_id / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    rows = [json.loads(line) for line in (runs / "results.jsonl").read_text().splitlines() if line.strip()]
    edit(rows[0], metrics)
    metrics_path.write_text(json.dumps(metrics))
    (runs / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _perfect(row, metrics):
    """Every clip right, written consistently into the row, the metrics and the per-clip predictions."""
    predictions = metrics["test_predictions"]
    predictions["predicted"] = list(predictions["true"])
    for key in ("accuracy", "macro_accuracy"):
        row[key] = metrics[key] = 1.0


EDITS = {
    "scores removed from the metrics, kept in the row": lambda row, m: [m.pop("accuracy"), m.pop("macro_accuracy"),
                                                                       row.update(accuracy=0.99, macro_accuracy=0.98)],
    "predictions dropped, confusion matrix made perfect": lambda row, m: [m.pop("test_predictions"),
                                                                          row.update(accuracy=1.0, macro_accuracy=1.0),
                                                                          m.update(accuracy=1.0, macro_accuracy=1.0)],
    "predictions, metrics and row edited alike": _perfect,
    "predictions shorter than the truth": lambda row, m: m["test_predictions"].update(
        predicted=m["test_predictions"]["predicted"][:-3]),
    "macro F1 stored as text": lambda row, m: m.update(macro_f1="0.5"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_record_that_vouches_for_itself_is_not_ranked_or_published(kept, tmp_path, edit, capsys):
    runs = _copy_runs(kept, tmp_path)
    _edit_record(runs, kept.run_id, EDITS[edit])
    main(["leaderboard", "--runs-dir", str(runs), "--format", "csv"])
    out, err = capsys.readouterr()
    assert kept.run_id in err and "Traceback" not in err and "--debug" not in err
    assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(tmp_path / "board"),
                 "--allow-nonstandard"]) == 2
    assert not (tmp_path / "board" / "results").exists() or not list((tmp_path / "board" / "results").glob("*.json"))


def test_an_output_under_a_file_is_one_line(kept, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["export", kept.run_id, "--runs-dir", str(kept.runs), "--output",
                 str(tmp_path / "afile" / "sub" / "out.yaml")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "--debug" not in err


def test_a_split_value_in_other_words_is_refused(tiny, tmp_path, capsys):
    import shutil

    root = tmp_path / "tiny"
    shutil.copytree(tiny.root, root)
    meta = pd.read_csv(root / "metadata.csv", keep_default_na=False)
    meta.loc[meta["split"] == "test", "split"] = "TEST"
    meta.to_csv(root / "metadata.csv", index=False)
    assert main(["data", "split", "embedded-tiny", "--data-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "'TEST'" in err and "split" in err


@pytest.mark.parametrize("variable", ["ASCBENCH_DATA_DIR", "ASCBENCH_FEATURE_DIR"])
@pytest.mark.parametrize("command", ["export --force", "plot"])
def test_a_cache_moved_out_of_the_cache_root_stays_guarded(kept, tmp_path, monkeypatch, variable, command, capsys):
    """The data and feature caches can each live anywhere ($ASCBENCH_DATA_DIR, $ASCBENCH_FEATURE_DIR); an output
    pointed into one is refused while the variable is set, and still after it is unset (the folder is tagged)."""
    moved = tmp_path / "moved"
    monkeypatch.setenv(variable, str(moved))
    dataset = "embedded-tiny" if variable == "ASCBENCH_DATA_DIR" else None
    assert main(["data", "split", "embedded-tiny", "--output", str(tmp_path / "split.csv")]) == 0
    if variable == "ASCBENCH_FEATURE_DIR":  # the feature cache fills on a run
        assert main(["run", *RUN, "--runs-dir", str(tmp_path / "runs")]) == 0
    assert (moved / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    inside = sorted(p for p in moved.iterdir() if p.is_dir() and not p.name.startswith("."))[0]
    target = inside / ("metadata.csv" if dataset else "mine.csv")
    for env_set in (True, False):
        if not env_set:
            monkeypatch.delenv(variable)
        before = _snapshot(moved)
        argv = (["export", kept.run_id, "--runs-dir", str(kept.runs), "--output", str(target), "--force"]
                if command.startswith("export") else
                ["plot", kept.run_id, "--runs-dir", str(kept.runs), "--output", str(inside / "plots")])
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "would write into" in err and "ascbench's cache" in err, err
        assert _snapshot(moved) == before


# A results row that is valid JSON but not a row as the store writes it: named by line and skipped, never the
# generic error, and never ranked or published.
MALFORMED_ROWS = {
    "dataset as a list": {"dataset": ["embedded-tiny"]},
    "labeled fraction as text": {"labeled": "x"},
    "model as null": {"model": None},
    "seed as text": {"seed": "0"},
    "seed as true": {"seed": True},
    "seed as a fraction": {"seed": 0.5},
    "fold as a number": {"fold": 3},
    "quick as text": {"quick": "no"},
    "params as text": {"params": "many"},
    "macs as an object": {"macs": {"n": 1}},
    "a score as a list": {"macro_accuracy": [0.5]},
    "protocol missing": {"protocol": "__drop__"},
}


@pytest.mark.parametrize("edit", list(MALFORMED_ROWS))
def test_a_malformed_row_is_named_by_line_and_skipped(kept, tmp_path, edit, capsys):
    runs = _copy_runs(kept, tmp_path)
    change = MALFORMED_ROWS[edit]
    _edit_record(runs, kept.run_id, lambda row, m: [row.pop(k) if v == "__drop__" else row.__setitem__(k, v)
                                                    for k, v in change.items()])
    field = next(iter(change))
    for argv in (["leaderboard", "--runs-dir", str(runs), "--format", "csv"], ["export", kept.run_id, "--runs-dir",
                                                                               str(runs), "--output", str(tmp_path / "x.csv")]):
        main(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err and "--debug" not in err, err
    main(["leaderboard", "--runs-dir", str(runs), "--format", "csv"])
    err = capsys.readouterr().err
    assert f"results.jsonl:1 (run {kept.run_id})" in err and field in err and "skipped" in err, err
    assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(tmp_path / "board"),
                 "--allow-nonstandard"]) == 2
    assert not list((tmp_path / "board" / "results").glob("*.json")) if (tmp_path / "board" / "results").exists() else True


# A well-formed row whose identity is not its run's (a hand edit, a row copied from another run): its run's
# config and metrics say what it must be, and the leaderboard leaves it off naming the field.
IDENTITY_EDITS = {
    "model renamed": {"model": "mobileascnet"},
    "another seed": {"seed": 7},
    "another protocol": {"protocol": "unseen-city"},
    "another dataset": {"dataset": "embedded"},
    "another strategy": {"strategy": "finetune"},
    "a labeled fraction": {"labeled": 0.5},
    "a fold": {"fold": "1/5"},
    "not quick said quick": {"quick": True},
    "another precision": {"precision": "fp16"},
    "twice the parameters": {"params": "__double__"},
    "another grouping": {"group_by": "city"},
    "another dataset fingerprint": {"dataset_fingerprint": "0000000000000000"},
    "another split fingerprint": {"split_fingerprint": "0000000000000000"},
    "a higher metadata ceiling": {"metadata_ceiling": 0.99},
}


@pytest.mark.parametrize("edit", list(IDENTITY_EDITS))
def test_a_row_that_is_not_its_runs_is_not_ranked_published_or_counted_as_made(kept, tmp_path, edit, capsys):
    from ascbench.config import RunConfig
    from ascbench.registry import get_registry
    from ascbench.sweep import already_made

    runs = _copy_runs(kept, tmp_path)
    cell = RunConfig.from_stored(json.loads((runs / kept.run_id / "config.json").read_text()))
    assert already_made([cell], runs, registry=get_registry())  # before the edit the cell counts as made
    change = IDENTITY_EDITS[edit]
    field = next(iter(change))
    _edit_record(runs, kept.run_id, lambda row, m: row.update(
        {k: (row[k] * 2 if v == "__double__" else v) for k, v in change.items()}))
    main(["leaderboard", "--runs-dir", str(runs), "--format", "csv", "--include-quick"])  # a row said quick shows too
    out, err = capsys.readouterr()
    assert kept.run_id in err and f"{field} is " in err and "Traceback" not in err, err
    assert kept.run_id not in out
    assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(tmp_path / "board"),
                 "--allow-nonstandard"]) == 2
    assert not already_made([cell], runs, registry=get_registry())  # so a sweep runs the cell again


# Parts of metrics.json that export, plot and rerun read, damaged: each command names the part and stops before
# using the record, as the leaderboard leaves such a record off.
DAMAGED_PARTS = {
    "complexity as text": ("complexity", "x"),
    "complexity with text parameters": ("complexity", {"params": "many", "macs": 1}),
    "history as an object": ("history", {"epochs": 1}),
    "history with text losses": ("history", [{"epochs": [{"epoch": 1, "loss": "low"}]}]),
    "city accuracy as a list": ("city_accuracy", [0.5]),
    "class accuracy with text": ("class_accuracy", {"Bus": "high"}),
    "confusion matrix of text": ("confusion_matrix", [["1"]]),
    "timings as a number": ("timings", 3),
    "split as a list": ("split", []),
}


@pytest.mark.parametrize("damage", list(DAMAGED_PARTS))
@pytest.mark.parametrize("command", ["export", "plot", "rerun", "leaderboard"])
def test_a_damaged_part_of_the_metrics_is_named_by_every_command(kept, tmp_path, damage, command, capsys):
    runs = _copy_runs(kept, tmp_path)
    key, value = DAMAGED_PARTS[damage]
    _edit_record(runs, kept.run_id, lambda row, m: m.__setitem__(key, value))
    argv = {"export": ["export", kept.run_id, "--output", str(tmp_path / "out.yaml")],
            "plot": ["plot", kept.run_id, "--output", str(tmp_path / "plots")],
            "rerun": ["rerun", kept.run_id, "--no-progress"],
            "leaderboard": ["leaderboard", "--format", "csv"]}[command]
    code = main([*argv, "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "--debug" not in err, err
    assert f"{key} is " in err and kept.run_id in err, err
    if command != "leaderboard":
        assert code == 2
        assert not (tmp_path / "out.yaml").exists() and not (tmp_path / "plots").exists()
    assert len(load_rows(runs)) == 1  # nothing added: the rerun did not run


@pytest.mark.parametrize("what", ["a folder", "a pipe"])
def test_a_results_store_that_cannot_take_a_row_is_refused_before_training(tmp_path, what, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "results.jsonl").mkdir() if what == "a folder" else os.mkfifo(runs / "results.jsonl")
    assert main(["run", *RUN, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "results.jsonl" in err and ("folder" in err or "pipe" in err) and "--runs-dir" in err, err
    assert sorted(p.name for p in runs.iterdir()) == ["results.jsonl"]  # no run folder, finished or staged
    assert main(["leaderboard", "--runs-dir", str(runs)]) == 2  # read, not waited on


def test_a_row_that_cannot_be_appended_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    """The store accepted at the start, the append fails at the end (a full disk): no run folder without its
    row, and the message says the run was not stored."""
    import ascbench.results

    def full_disk(path, line):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ascbench.results, "append_line", full_disk)
    runs = tmp_path / "runs"
    assert main(["run", *RUN, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "cannot store run" in err and "No space left" in err, err
    assert [p.name for p in runs.iterdir() if not p.name.startswith(".lock")] == []


@pytest.mark.parametrize("flag", ["--config", "--grid-file"])
def test_a_pipe_named_as_a_settings_file_is_refused_not_waited_on(tmp_path, flag, capsys):
    pipe = tmp_path / "settings.toml"
    os.mkfifo(pipe)
    argv = ["run", "--config", str(pipe)] if flag == "--config" else ["sweep", str(pipe), "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(pipe) in err and "not a regular file" in err, err


def test_a_link_then_dot_dot_is_resolved_as_the_kernel_resolves_it(kept, tmp_path, capsys):
    """"link-to-a-run/../<run>/metrics.json" is the run's own file once the link is followed; folding ".." away as
    text first would point beside the link instead (and a folder of that name there made it look harmless)."""
    runs = _copy_runs(kept, tmp_path)
    link = tmp_path / "L"
    link.symlink_to(runs / kept.run_id)
    (tmp_path / kept.run_id).mkdir()  # the text-folded path exists and is innocent
    sneaky = f"{link}/../{kept.run_id}"
    before = _snapshot(runs)
    for argv in (["export", kept.run_id, "--runs-dir", str(runs), "--output", f"{sneaky}/metrics.json", "--force"],
                 ["plot", kept.run_id, "--runs-dir", str(runs), "--output", sneaky],
                 ["leaderboard", "--runs-dir", str(runs), "--output", f"{link}/../board.md"],
                 ["leaderboard", "--runs-dir", str(runs), "--publish", f"{link}/../pub", "--allow-nonstandard"],
                 ["new-plugin", "myplug", "--kind", "metric", "--dir", f"{link}/../myplug"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "would write into" in err and "--debug" not in err, err
    assert _snapshot(runs) == before


@pytest.mark.parametrize("run_id", ["/tmp/elsewhere/rec", "../outside", "a/b", ".hidden", ""])
def test_a_row_whose_run_id_is_a_path_is_malformed(kept, tmp_path, run_id, capsys):
    runs = _copy_runs(kept, tmp_path)
    _edit_record(runs, kept.run_id, lambda row, m: row.update(run_id=run_id))
    main(["leaderboard", "--runs-dir", str(runs), "--format", "csv"])
    err = capsys.readouterr().err
    assert "results.jsonl:1" in err and "skipped" in err and "--debug" not in err, err
    assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(tmp_path / "board"),
                 "--allow-nonstandard"]) == 2
    assert main(["export", run_id or "x/..", "--runs-dir", str(runs)]) == 2


@pytest.mark.parametrize("field", ["superseded", "_chance", "_classes", "chance", "seeds"])
def test_a_field_added_to_a_row_by_hand_never_stands_in_for_a_computed_column(kept, tmp_path, field, capsys):
    runs = _copy_runs(kept, tmp_path)
    _edit_record(runs, kept.run_id, lambda row, m: row.update({field: 0}))
    assert main(["leaderboard", "--runs-dir", str(runs), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "--debug" not in err and kept.run_id.split("-")[2] in out, (out, err)


# Damage a forger or a bad copy leaves in the parts a command reads; each is named, never the catch-all, and the
# other runs of the store stay on the board.
DEEPER_DAMAGE = {
    "plugins as text": lambda row, cfg, m: m["provenance"].update(plugins="x"),
    "plugins as numbers": lambda row, cfg, m: m["provenance"].update(plugins=[1, 2]),
    "huge predictions": lambda row, cfg, m: m["test_predictions"].update(
        predicted=[10 ** 30] * len(m["test_predictions"]["predicted"])),
    "fractional truths": lambda row, cfg, m: m["test_predictions"].update(
        true=[t + 0.5 for t in m["test_predictions"]["true"]]),
    "a stage without epochs": lambda row, cfg, m: m.update(history=[{"stage": 5}]),
    "a row without accuracy": lambda row, cfg, m: row.pop("accuracy"),
    "epochs as text in the config": lambda row, cfg, m: cfg.update(epochs="abc"),
    "an unknown field in the config": lambda row, cfg, m: cfg.update(bogus=1),
    "lr NaN in the config": lambda row, cfg, m: cfg.update(lr=float("nan")),
    "an unknown recipe in the config": lambda row, cfg, m: cfg.update(recipe="nonexistent"),
}


@pytest.mark.parametrize("damage", list(DEEPER_DAMAGE))
def test_deeper_damage_is_named_and_leaves_the_other_runs_ranked(kept, tmp_path, damage, capsys):
    runs = _copy_runs(kept, tmp_path)
    assert main(["run", *RUN, "--seed", "1", "--runs-dir", str(runs)]) == 0
    (first, second) = load_rows(runs)
    config_path = runs / first["run_id"] / "config.json"
    config = json.loads(config_path.read_text())
    _edit_record(runs, first["run_id"], lambda row, m: DEEPER_DAMAGE[damage](row, config, m))
    config_path.write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["leaderboard", "--runs-dir", str(runs), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert first["run_id"] in err and "--debug" not in err and "Traceback" not in err, err
    assert pd.read_csv(io.StringIO(out))["seeds"].tolist() == [1]  # the other seed is still ranked
    for argv in (["export", first["run_id"]], ["plot", first["run_id"], "--output", str(tmp_path / "p")]):
        assert main([*argv, "--runs-dir", str(runs)]) == 2
        err = capsys.readouterr().err
        assert "--debug" not in err and "Traceback" not in err, err


def test_a_cache_pointed_at_a_folder_of_the_users_own_files_is_not_tagged(tmp_path, monkeypatch):
    """A cache tag makes backup tools skip the folder: it is written only into a folder that is ascbench's (new,
    empty or under the default cache), never into a project or a home the user pointed --cache-dir at."""
    from ascbench.fileio import mark_cache_area

    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    mark_cache_area(project)
    assert not (project / "CACHEDIR.TAG").exists()
    for fresh in (tmp_path / "new-cache", tmp_path / "empty-cache"):
        if fresh.name.startswith("empty"):
            fresh.mkdir()
        mark_cache_area(fresh)
        assert (fresh / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


# --- a second adversarial round: links in the store's and the board's places, caches named by any command,
# special plugin files, records nested too deep, names too long, two rows for one run --------------------------

def test_a_results_store_that_is_a_link_is_refused_before_the_run(kept, tmp_path, capsys):
    runs = _copy_runs(kept, tmp_path)
    other = tmp_path / "linked-store"
    other.mkdir()
    (other / "results.jsonl").symlink_to(runs / kept.run_id / "metrics.json")
    before = _snapshot(runs)
    assert main(["run", *RUN, "--runs-dir", str(other)]) == 2
    assert "is a link" in capsys.readouterr().err
    assert _snapshot(runs) == before


def test_publishing_through_a_linked_results_folder_is_refused(kept, tmp_path, capsys):
    runs = _copy_runs(kept, tmp_path)
    for target in (runs, runs / kept.run_id):
        board = tmp_path / f"board-{target.name}"
        board.mkdir()
        (board / "results").symlink_to(target)
        before = _snapshot(runs)
        assert main(["leaderboard", "--runs-dir", str(runs), "--publish", str(board), "--allow-nonstandard"]) == 2
        assert "would write into" in capsys.readouterr().err
        assert _snapshot(runs) == before


@pytest.mark.parametrize("how", ["--cache-dir", "ASCBENCH_DATA_DIR", "ASCBENCH_FEATURE_DIR"])
def test_no_command_fills_a_cache_placed_inside_a_run(kept, tmp_path, monkeypatch, how, capsys):
    runs = _copy_runs(kept, tmp_path)
    inside = runs / kept.run_id
    before = _snapshot(runs)
    argv = ["predict", kept.run_id, "--runs-dir", str(runs), "--dataset", "embedded-tiny", "--output",
            str(tmp_path / "p.csv"), "--no-progress"]
    if how == "--cache-dir":
        argv += ["--cache-dir", str(inside)]
    else:
        monkeypatch.setenv(how, str(inside / "c"))
        monkeypatch.setenv("ASCBENCH_CACHE_DIR", str(tmp_path / "fresh-cache"))  # nothing cached: it must fill
    cache = os.environ["ASCBENCH_CACHE_DIR"]
    try:
        assert main(argv) == 2
    finally:
        os.environ["ASCBENCH_CACHE_DIR"] = cache  # --cache-dir sets it for the process
    err = capsys.readouterr().err
    assert "is inside the finished run" in err and "--debug" not in err, err
    assert _snapshot(runs) == before


def test_a_cache_inside_a_fresh_runs_folder_is_refused_the_first_time_too(tmp_path, capsys):
    runs = tmp_path / "fresh-runs"
    cache = os.environ["ASCBENCH_CACHE_DIR"]
    try:
        assert main(["run", *RUN, "--runs-dir", str(runs), "--cache-dir", str(runs / "cache")]) == 2
    finally:
        os.environ["ASCBENCH_CACHE_DIR"] = cache
    assert "overlap" in capsys.readouterr().err
    assert not (runs / "cache").exists()


@pytest.mark.parametrize("kind", ["a pipe", "a link to /dev/zero"])
def test_a_plugin_file_that_is_not_a_file_is_named_not_read(tmp_path, kind, capsys):
    folder = tmp_path / "plugins"
    folder.mkdir()
    os.mkfifo(folder / "evil.py") if kind == "a pipe" else (folder / "evil.py").symlink_to("/dev/zero")
    result = subprocess.run([sys.executable, "-m", "ascbench", "--plugins-dir", str(folder), "list"],
                            capture_output=True, text=True, timeout=120)
    assert "evil.py is not a regular file" in result.stdout + result.stderr


@pytest.mark.parametrize("damage", ["nested 100,000 deep", "a 5,000-digit number"])
@pytest.mark.parametrize("where", ["metrics.json", "results.jsonl"])
def test_a_record_nested_too_deep_or_with_a_huge_number_is_named_and_left_off(kept, tmp_path, damage, where, capsys):
    runs = _copy_runs(kept, tmp_path)
    assert main(["run", *RUN, "--seed", "1", "--runs-dir", str(runs)]) == 0
    text = "[" * 100_000 + "]" * 100_000 if damage.startswith("nested") else '{"run_id": "x", "seed": ' + "9" * 5000 + "}"
    if where == "metrics.json":
        (runs / kept.run_id / "metrics.json").write_text(text)
    else:
        with open(runs / "results.jsonl", "a") as store:
            store.write(text + "\n")
    capsys.readouterr()
    assert main(["leaderboard", "--runs-dir", str(runs), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "--debug" not in err and "Traceback" not in err, err
    assert pd.read_csv(io.StringIO(out))["seeds"].tolist() == [1 if where == "metrics.json" else 2]  # the rest ranked
    if where == "metrics.json":
        assert main(["export", kept.run_id, "--runs-dir", str(runs)]) == 2
        assert "is damaged" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["leaderboard", "export", "predict"])
def test_an_output_name_too_long_for_its_temporary_file_is_refused_before_the_work(kept, tmp_path, command, capsys):
    name = str(tmp_path / ("a" * 246 + ".csv"))  # a legal name; its temporary ".<name>.XXXXXXXX.tmp" is not
    argv = {"leaderboard": ["leaderboard", "--runs-dir", str(kept.runs), "--output", name],
            "export": ["export", kept.run_id, "--runs-dir", str(kept.runs), "--output", name],
            "predict": ["predict", kept.run_id, "--runs-dir", str(kept.runs), "--dataset", "embedded-tiny",
                        "--output", name, "--no-progress"]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "bytes long" in err and len(err.splitlines()) == 1 and "--debug" not in err, err


def test_two_different_rows_for_one_run_are_both_left_off_by_every_command(kept, tmp_path, capsys):
    runs = _copy_runs(kept, tmp_path)
    line = (runs / "results.jsonl").read_text().splitlines()[0]
    edited = json.dumps({**json.loads(line), "macro_accuracy": 0.99})
    (runs / "results.jsonl").write_text(edited + "\n" + line + "\n")
    main(["leaderboard", "--runs-dir", str(runs), "--format", "csv"])
    err = capsys.readouterr().err
    assert "2 different rows" in err and "lines 1, 2" in err, err
    assert main(["export", kept.run_id, "--runs-dir", str(runs)]) == 2
    (runs / "results.jsonl").write_text(line + "\n" + line + "\n")  # an exact copy counts once
    assert [r["run_id"] for r in load_rows(runs)] == [kept.run_id]
