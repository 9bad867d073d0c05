"""A corpus of broken audio, made by the tests: each failure mode gets a clear line and loses nothing."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from ascbench.cli import main
from ascbench.data.validate import inspect_file


@pytest.fixture
def broken_copy(tiny, tmp_path):
    root = tmp_path / "tiny-copy"
    shutil.copytree(tiny.root, root)
    files = list(tiny.meta["filename"])
    truncated, nan, empty, garbage, stereo, slow = (root / files[i] for i in (0, 1, 2, 3, 4, 5))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])  # header still claims the full length
    sf.write(str(nan), np.full(16000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    empty.write_bytes(b"")
    garbage.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    sf.write(str(stereo), np.zeros((16000, 2), dtype=np.float32), 16000)
    sf.write(str(slow), np.zeros(8000, dtype=np.float32), 8000)
    return root, files


def test_each_failure_mode_is_named(broken_copy):
    root, files = broken_copy
    reasons = [inspect_file(root / f, 16000, 16000) for f in files[:6]]
    assert reasons[0][0].startswith("truncated")
    assert reasons[1][0] == "NaN or infinite samples"
    assert reasons[2][0] == "empty file (0 bytes)"
    assert reasons[3][0].startswith("unreadable")
    assert reasons[4] == (None, ("2 channels (averaged to mono)",))
    assert reasons[5][0] is None and "sample rate 8000 Hz (resampled to 16000)" in reasons[5][1]
    assert inspect_file(root / "nope.wav", 16000, 16000)[0] == "missing"


def test_data_check_lists_every_bad_file(broken_copy, capsys):
    root, files = broken_copy
    assert main(["data", "check", "embedded-tiny", "--data-root", str(root)]) == 1
    out = capsys.readouterr().out
    for f in files[:4]:
        assert f in out
    assert "4 unusable of 240 files" in out and "note: 1 file(s): 2 channels" in out


def test_run_refuses_then_skips_with_skip_bad(broken_copy, runs, capsys):
    root, files = broken_copy
    base = ["run", "--dataset", "embedded-tiny", "--data-root", str(root), "--strategy", "scratch", "--model",
            "context-only", "--epochs", "1", "--no-progress"]
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "4 unusable audio file(s)" in err and "--skip-bad" in err
    assert not (runs / "results.jsonl").exists()
    assert main(base + ["--skip-bad"]) == 0
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    skipped = json.loads((run_dir / "metrics.json").read_text())["skipped_files"]
    assert sorted(s["filename"] for s in skipped) == sorted(files[:4])


def test_other_rate_refuse_counts_the_resampled_file_as_unusable(broken_copy, runs, capsys):
    root, files = broken_copy
    base = ["run", "--dataset", "embedded-tiny", "--data-root", str(root), "--strategy", "scratch", "--model",
            "context-only", "--epochs", "1", "--no-progress", "--other-rate", "refuse"]
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "5 unusable audio file(s)" in err
    assert not (runs / "results.jsonl").exists()
    assert main(base + ["--skip-bad"]) == 0
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir()]
    skipped = {s["filename"]: s["problem"] for s in json.loads((run_dir / "metrics.json").read_text())["skipped_files"]}
    assert sorted(skipped) == sorted(files[:4] + [files[5]])
    assert skipped[files[5]] == "sample rate 8000 Hz, the dataset declares 16000 Hz (--other-rate refuse)"
    assert json.loads((run_dir / "config.json").read_text())["other_rate"] == "refuse"


def test_a_run_decodes_each_file_once_and_a_rerun_none(broken_copy, runs, monkeypatch, tmp_path):
    # The checks ride on feature extraction's decoding pass and are cached with the features.
    from ascbench.data import audio

    monkeypatch.setenv("ASCBENCH_FEATURE_DIR", str(tmp_path / "cold-feature-cache"))
    decoded = []
    real_decode = audio._decode

    def counting_decode(path, *args):
        decoded.append(path.relative_to(root).as_posix())
        return real_decode(path, *args)

    monkeypatch.setattr(audio, "_decode", counting_decode)
    root, files = broken_copy
    base = ["run", "--dataset", "embedded-tiny", "--data-root", str(root), "--strategy", "scratch", "--model",
            "context-only", "--epochs", "1", "--no-progress"]
    assert main(base) == 2  # refused: the first pass decoded every file, once
    assert sorted(decoded) == sorted(files)
    decoded.clear()
    assert main(base + ["--skip-bad"]) == 0
    assert decoded == []  # checks and features both came from the cache


def test_skipped_files_leave_the_other_clips_features_in_their_rows(broken_copy, tiny):
    from ascbench.config import RunConfig
    from ascbench.data.dataset import DatasetOptions
    from ascbench.features import get_preset, load_checked_features, load_features
    from ascbench.registry import get_registry
    from ascbench.pipeline import _drop_bad_audio
    from ascbench.training import DataBundle

    root, files = broken_copy
    broken = get_registry().dataset("embedded-tiny").load(DatasetOptions(data_root=root))
    checked = load_checked_features(broken, get_preset("embedded"), progress=False)
    assert [r.filename for r in checked.reports] == files
    assert [r.problem is not None for r in checked.reports[:7]] == [True] * 4 + [False] * 3
    kept_rows, skipped = _drop_bad_audio(broken, checked, RunConfig(skip_bad=True))
    assert sorted(s["filename"] for s in skipped) == sorted(files[:4])
    assert list(broken.meta["filename"]) == files[4:] and list(kept_rows) == list(range(4, len(files)))
    # The cache is not copied: the bundle maps dataset rows onto the full (memory-mapped) array.
    data = DataBundle.build(broken, checked.features, np.arange(len(broken.meta)), kept_rows)
    assert data.features is checked.features
    clean, _ = load_features(tiny, get_preset("embedded"), progress=False)
    x, _, _ = data.batch(np.array([2, 3]))  # files 6 and 7; files 4 and 5 were rewritten (stereo, 8 kHz)
    expected = (np.asarray(clean[[6, 7]]) - data.mean[:, None]) / data.std[:, None]
    np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=1e-6)


def test_a_pretraining_source_with_unusable_files_is_refused_by_name(broken_copy):
    from ascbench.data.dataset import DatasetOptions
    from ascbench.errors import DataError
    from ascbench.features import get_preset, load_features
    from ascbench.registry import get_registry

    root, files = broken_copy
    broken = get_registry().dataset("embedded-tiny").load(DatasetOptions(data_root=root))
    with pytest.raises(DataError, match=rf"4 unusable audio file\(s\) in embedded-tiny \({files[0]}: truncated"):
        load_features(broken, get_preset("embedded"), progress=False)
