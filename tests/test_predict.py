"""ascbench predict: a run trained on APSIPA-format dev audio predicts the real eval metadata's 1,100 clips
(synthetic audio named after its rows) and writes a checked submission in both formats."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ascbench.cli import main
from ascbench.data.dataset import DatasetOptions
from ascbench.results import load_rows
from ascbench_plugins import apsipa2025

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "apsipa2025"
META_DIR = SHARED if SHARED.is_dir() else apsipa2025.SHIPPED
RATE = 44_100


def _write(root: Path, names, seconds: float, rng) -> None:
    n = int(seconds * RATE)
    for name in names:
        sf.write(str(root / name), (0.05 * rng.standard_normal(n)).astype(np.float32), RATE, subtype="PCM_16")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small run on dev audio for the labeled clips of three cities (the rest left out with --skip-bad)."""
    base = tmp_path_factory.mktemp("predict")
    dev_root, runs = base / "dev", base / "runs"
    dev_root.mkdir()
    dev = apsipa2025.load("dev", DatasetOptions(data_root=META_DIR, require_audio=False))
    chosen = dev.meta[dev.meta["labeled"] & dev.meta["city"].isin(["Xi'an", "Luoyang", "Hefei"])]
    chosen = chosen.groupby("group").head(2)
    _write(dev_root, chosen["filename"], 0.5, np.random.default_rng(0))
    args = ["run", "--dataset", "apsipa2025", "--data-root", str(dev_root), "--model", "mobileascnet", "--strategy",
            "scratch", "--epochs", "1", "--skip-bad", "--no-progress", "--runs-dir", str(runs),
            "--model-arg", "channels=[8,16,16]", "--model-arg", "stem_channels=8", "--model-arg", "gru_hidden=16"]
    assert main(args) == 0
    (row,) = load_rows(runs)
    return runs, row["run_id"]


@pytest.fixture(scope="module")
def eval_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    ev = apsipa2025.load("eval", DatasetOptions(data_root=META_DIR, require_audio=False))
    _write(root, ev.meta["filename"], 0.25, np.random.default_rng(1))
    return root


def _predict(trained_run, eval_root, output, *extra):
    runs, run_id = trained_run
    return main(["predict", run_id, "--dataset", "apsipa2025-eval", "--data-root", str(eval_root), "--runs-dir",
                 str(runs), "--output", str(output), "--no-progress", *extra])


def test_challenge_submission_is_the_eval_metadata_with_labels(trained_run, eval_root, tmp_path, capsys):
    out = tmp_path / "submission.csv"
    assert _predict(trained_run, eval_root, out) == 0
    printed = capsys.readouterr().out
    official = pd.read_csv(META_DIR / "APSIPA2025_GC_ASC_eval_metadata.csv", encoding="utf-8-sig", dtype=str,
                           keep_default_na=False)
    sub = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(sub.columns) == ["filename", "location", "record_time", "scene_label"]
    assert list(sub["filename"]) == list(official["filename"])  # every eval clip, once, in order
    assert list(sub["location"]) == list(official["location"]) and list(sub["record_time"]) == list(official["record_time"])
    assert set(sub["scene_label"]) <= set(apsipa2025.CLASSES) and (sub["scene_label"] != "").all()
    # The six eval cities absent from dev, and the dev cities this run did not train on, get "unknown".
    eval_only = set(official["location"]) - set(
        apsipa2025.load("dev", DatasetOptions(data_root=META_DIR, require_audio=False)).meta["city"])
    assert len(eval_only) == 6
    listed = printed.split("unknown-city index): ")[1].splitlines()[0].split(", ")
    assert eval_only <= set(listed) and "Xi'an" not in listed
    assert "1100 clips predicted" in printed


def test_dcase_output_has_a_probability_per_class(trained_run, eval_root, tmp_path):
    out = tmp_path / "output.tsv"
    assert _predict(trained_run, eval_root, out, "--format", "dcase") == 0
    sub = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert list(sub.columns) == ["filename", "scene_label", *apsipa2025.CLASSES] and len(sub) == 1100
    probs = sub[apsipa2025.CLASSES].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert list(np.array(apsipa2025.CLASSES)[probs.argmax(axis=1)]) == list(sub["scene_label"])
    challenge = tmp_path / "submission.csv"
    assert _predict(trained_run, eval_root, challenge) == 0
    assert list(pd.read_csv(challenge)["scene_label"]) == list(sub["scene_label"])  # one model, one answer


def test_a_missing_eval_file_stops_before_anything_is_written(trained_run, eval_root, tmp_path, capsys):
    import shutil

    partial = tmp_path / "eval"
    shutil.copytree(eval_root, partial)
    victim = sorted(partial.iterdir())[0]
    victim.unlink()
    out = tmp_path / "submission.csv"
    assert _predict(trained_run, partial, out) == 2
    err = capsys.readouterr().err
    assert "1 unusable audio file(s)" in err and victim.name in err and "a submission needs every file" in err
    assert not out.exists()


def test_predicting_with_something_that_is_not_a_run(tmp_path, eval_root, capsys):
    assert main(["predict", str(tmp_path), "--dataset", "apsipa2025-eval", "--data-root", str(eval_root),
                 "--output", str(tmp_path / "x.csv")]) == 2
    assert "is not a run directory (no config.json)" in capsys.readouterr().err


def test_the_record_of_the_trained_run_names_its_split(trained_run):
    runs, run_id = trained_run
    metrics = json.loads((runs / run_id / "metrics.json").read_text())
    assert metrics["split"]["group_by"] == "session" and "metadata_ceiling" in metrics


def test_all_labeled_trains_on_every_label_scores_nothing_and_stays_off_the_leaderboard(tmp_path, capsys, tiny):
    import numpy as np

    from ascbench.leaderboard import aggregate

    runs = tmp_path / "runs"
    base = ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch", "--epochs", "1",
            "--no-progress", "--runs-dir", str(runs)]
    assert main(base + ["--protocol", "all-labeled"]) == 0
    assert "none: this protocol has no test side" in capsys.readouterr().out
    assert main(base) == 0
    unscored, scored = load_rows(runs)
    assert unscored["protocol"] == "all-labeled" and unscored["accuracy"] is None and scored["accuracy"] is not None
    split = pd.read_csv(runs / unscored["run_id"] / "split.csv")
    labeled = set(tiny.meta.loc[tiny.meta["labeled"], "filename"])
    assert set(split.loc[split["role"].isin(["labeled", "val"]), "filename"]) == labeled  # every label used
    assert (split["role"] != "test").all()
    assert list(aggregate([unscored, scored])["protocol"]) == ["session-holdout"]  # only the scored run is a row
    out = tmp_path / "sub.csv"
    assert main(["predict", unscored["run_id"], "--dataset", "embedded-tiny", "--runs-dir", str(runs), "--output",
                 str(out), "--no-progress"]) == 0
    assert len(pd.read_csv(out)) == len(tiny.meta) and np.isin(pd.read_csv(out)["scene_label"], tiny.classes).all()
    # Nothing to score, so no confusion matrix or per-city bars: the learning curves alone.
    assert main(["plot", unscored["run_id"], "--runs-dir", str(runs), "--output", str(tmp_path / "plots")]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["learning_curves.svg"]
