"""The data corpus: inputs well-formed enough to load that would quietly contaminate a split or hang a run.

Each case ends as in test_fault_corpus.py: **error** (a one-line ``DataError`` naming file, row and
column, or the file), **skip** (an unusable file named by ``ascbench data check``, left out by
``--skip-bad``), or **same** (read as meant). The metadata checks live in ``ClipDataset`` and
``ascbench.data.checks``, so every dataset plugin gets them; the audio checks in ``ascbench.data.audio``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ascbench.cli import main
from ascbench.data.audio import read_checked
from ascbench.data.checks import MetadataSource, name_key
from ascbench.data.dataset import ClipDataset, DatasetOptions
from ascbench.errors import DataError
from ascbench_plugins import apsipa2025


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: a FIFO or /dev/zero read would block the test forever."""
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s: something opened a special file")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --- the clip table, for every plugin: names, flags, times, recordings ---------------------------------------

META = Path("/data/meta.csv")


def _table(**columns) -> ClipDataset:
    base = {"filename": ["a.wav", "b.wav", "c.wav"], "scene_label": ["Bus", "Bus", "Metro"], "labeled": [True] * 3,
            "city": ["Xi'an", "Xi'an", "Hefei"], "timestamp": ["2023-06-18 10:00:00"] * 3, "group": ["g1", "g2", "g3"],
            "split": ""}
    return ClipDataset("plugin-data", Path("/data"), pd.DataFrame({**base, **columns}), ["Bus", "Metro"], 16_000, 1.0,
                       "embedded", source=MetadataSource(META, {"city": "location"}))


TABLE_CASES = [
    ({"city": ["Xi'an", "xi'an", "Hefei"]}, r"column 'location': \"Xi'an\" \(row 2\) and \"xi'an\" \(row 3\) are one name"),
    ({"city": ["Xi'an", "Xi\u2019an", "Hefei"]}, "one name written two ways"),  # curly apostrophe
    ({"city": ["Xi'an", "Xi'an ", "Hefei"]}, "one name written two ways"),
    ({"city": ["Xi'an", "\uff38\uff49'an", "Hefei"]}, "one name written two ways"),  # full-width letters (NFKC)
    ({"city": ["New York", "New  York", "Hefei"]}, "one name written two ways"),
    ({"city": ["Xi'an", "Xian", "Hefei"]}, "one name written two ways"),  # punctuation, for typed names
    ({"city": ["Xi'an", "Xi'\u00e1n", "Hefei"]}, "one name written two ways"),  # an accent
    ({"city": ["Xi'an", "Xi\u200b'an", "Hefei"]}, "one name written two ways"),  # a zero-width space
    ({"group": ["g1", "G1", "g3"]}, "column 'group'.*one name written two ways"),
    ({"scene_label": ["Bus", "Bus", "M\u00e9tro"]}, "'Métro' is 'Metro' written another way"),
    ({"scene_label": ["bus", "bus", "Metro"]}, r"rows 2, 3, column 'scene_label': 'bus' is 'Bus' written another way"),
    ({"labeled": ["yes", "maybe", "no"]}, "row 3, column 'labeled': 'maybe' is not a yes/no value"),
    ({"labeled": ["true", "", "false"]}, "row 3, column 'labeled': '' is not a yes/no value"),
    ({"labeled": [1, 2, 0]}, "row 3, column 'labeled': 2 is not a yes/no value"),
    ({"group": ["g1", "g1", "g3"], "scene_label": ["Bus", "Metro", "Metro"]},
     r"column 'group': recording 'g1' has two scene labels, 'Bus' \(row 2\) and 'Metro' \(row 3\)"),
    ({"timestamp": ["2099-06-18 10:00:00", "2023-06-18 10:00:00", "2023-06-18 10:00:00"]},
     "row 2, column 'timestamp': 2099-06-18 10:00:00 lies outside the plausible dates"),
    ({"timestamp": ["1970-01-01 00:00:00", "2023-06-18 10:00:00", "2023-06-18 10:00:00"]}, "row 2.*lies outside"),
    ({"timestamp": ["2023-06-18 10:00:00", "2023-06-18 10:00:00+08:00", "2023-06-18 10:00:00"]},
     "row 3, column 'timestamp': '2023-06-18 10:00:00[+]08:00' carries a UTC offset"),
    ({"timestamp": ["2023-06-18T02:00:00Z", "2023-06-18 10:00:00", "2023-06-18 10:00:00"]}, "row 2.*carries a UTC offset"),
    # A bare date is not an offset ("-18" is its day): said for what it is.
    ({"timestamp": ["2023-06-18 10:00:00", "2023-06-18", "2023-06-18 10:00:00"]},
     "row 3, column 'timestamp': '2023-06-18' is a date without a time of day"),
    ({"timestamp": ["2023-06-18 10:00:00", "2023-06-18 10:00:00-05", "2023-06-18 10:00:00"]}, "row 3.*carries a UTC offset"),
    # Rows as the file numbers them (the header is row 1), like every other check's.
    ({"filename": ["a.wav", "b.wav", "a.wav"]}, "rows 2, 4, column 'filename' name the same file 'a.wav'"),
    ({"timestamp": ["2023-06-18 10:00:00", "18/06/2023 10:00", "2023-06-18 10:00:00"]},
     "row 3, column 'timestamp': '18/06/2023 10:00' is not a timestamp of the form YYYY-MM-DD HH:MM:SS"),
    ({"timestamp": pd.to_datetime(["2023-06-18 10:00:00"] * 3).tz_localize("Asia/Shanghai")}, "carry a time zone"),
]


@pytest.mark.parametrize("columns,words", TABLE_CASES, ids=[str(c[0])[:60] for c in TABLE_CASES])
def test_clip_table_meaning(columns, words):
    with pytest.raises(DataError, match=r"^/data/meta\.csv.*" + words) as info:
        _table(**columns)
    assert "\n" not in str(info.value)


def test_clear_flags_read_as_meant_and_names_padded_alike_are_one_name():
    ds = _table(labeled=["No", " yes ", "0"], scene_label=["", "Bus", "Metro"], city=[" Xi'an", " Xi'an", "Hefei"],
                timestamp=["2023-06-18 10:00:00", "", "2023-06-18 23:00:00"])
    assert list(ds.meta["labeled"]) == [False, True, False]  # "No" once read as True (astype(bool))
    assert list(ds.meta["city"]) == ["Xi'an", "Xi'an", "Hefei"]
    assert ds.meta["timestamp"].isna().tolist() == [False, True, False]
    assert name_key("  Xi\u2019AN ") == name_key("xi'an")
    # recording ids keep their punctuation: a_1 and a1 may be two recordings
    assert list(_table(group=["a_1", "a1", "a-1"]).meta["group"]) == ["a_1", "a1", "a-1"]


def test_a_declared_time_range_is_the_datasets_own():
    with pytest.raises(DataError, match="outside the recording dates dataset 'plugin-data' declares, 2023-01-01"):
        ClipDataset("plugin-data", Path("/data"), _table().meta.assign(timestamp=pd.Timestamp("2024-06-18")), ["Bus", "Metro"],
                    16_000, 1.0, "embedded", time_range=("2023-01-01", "2023-12-31 23:59:59"))


# --- APSIPA 2025 metadata files: the plugin reports on its own columns and rows --------------------------------

HEADER = "filename,location,record_time,scene_label\n"
APSIPA_CASES = [
    ("a,Xi'an,2023-06-18 18:44:34,Bus\nb,xi'an,2023-06-18 18:44:34,Bus\n", r"column 'location': \"Xi'an\" \(row 2\) and"),
    ("a,Xi'an,2023-06-18 18:44:34,bus\n", "row 2, column 'scene_label': 'bus' is 'Bus' written another way"),
    ("a,Xi'an,2023-06-18 18:44:34+08:00,Bus\n", "row 2, column 'record_time'.*carries a UTC offset"),
    ("a,Xi'an,2023-06-18 18:44:34,Bus\nb,Xi'an,2023-06-18 18:44:34,Metro\n",
     r"recording \"Xi'an 2023-06-18 18:44:34\" has two scene labels, 'Bus' \(row 2\) and 'Metro' \(row 3\)"),
    ("a,Xi'an,2099-06-18 18:44:34,Bus\n", "row 2, column 'record_time'.*outside the recording dates"),
    ("a,Xi'an,2024-06-18 18:44:34,Bus\n", "row 2, column 'record_time'.*2023-04-21 00:00:00 to 2023-08-28 23:59:59"),
]


@pytest.mark.parametrize("rows,words", APSIPA_CASES, ids=[c[1][:40] for c in APSIPA_CASES])
def test_apsipa_metadata_in_the_data_root(rows, words, tmp_path):
    (tmp_path / apsipa2025.META_FILES["dev"]).write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(DataError, match=words) as info:
        apsipa2025.load("dev", DatasetOptions(data_root=tmp_path, require_audio=False))
    assert apsipa2025.META_FILES["dev"] in str(info.value)


def test_one_recording_written_with_and_without_leading_zeros_is_one_recording(tmp_path):
    (tmp_path / apsipa2025.META_FILES["dev"]).write_text(
        HEADER + "a,Xi'an,2023-06-18 08:44:34,Bus\nb,Xi'an,2023-6-18 8:44:34,Metro\n", encoding="utf-8")
    with pytest.raises(DataError, match="has two scene labels"):
        apsipa2025.load("dev", DatasetOptions(data_root=tmp_path, require_audio=False))


def _dangling(path: Path) -> None:
    path.symlink_to(path.parent / "gone.csv")


def _directory(path: Path) -> None:
    path.mkdir()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


@pytest.mark.parametrize("make,words", [(_dangling, "is a link to .*gone.csv, which does not exist"),
                                        (_directory, "is a directory, not a regular file"),
                                        (_fifo, r"is a FIFO \(named pipe\), not a regular file"),
                                        (_dev_zero, "is a character device .*, not a regular file")],
                         ids=["dangling link", "directory", "fifo", "/dev/zero"])
def test_a_data_roots_unusable_metadata_file_is_named_not_replaced_by_the_shipped_one(make, words, tmp_path):
    make(tmp_path / apsipa2025.META_FILES["dev"])
    with deadline(20), pytest.raises(DataError, match=f"metadata file .*{apsipa2025.META_FILES['dev']} {words}"):
        apsipa2025.load("dev", DatasetOptions(data_root=tmp_path, require_audio=False))


def test_the_real_apsipa_metadata_passes_every_check():
    for part, clips in (("dev", 8700), ("eval", 1100)):
        ds = apsipa2025.load(part, DatasetOptions(require_audio=False))
        assert len(ds.meta) == clips and ds.meta["timestamp"].notna().all()


# --- audio files: special files refused before reading, absurd samples like NaN, copies under other names ------

RATE, N = 16_000, 16_000


@pytest.mark.parametrize("make,problem", [
    (lambda p: os.mkfifo(p), r"not a regular file but a FIFO \(named pipe\)"),
    (lambda p: p.symlink_to("/dev/zero"), r"not a regular file but a character device \(through a link\)"),
    (lambda p: sf.write(str(p), np.full(N, 1e30, dtype=np.float32), RATE, subtype="FLOAT"), "samples up to 1e[+]30"),
    (lambda p: sf.write(str(p), (np.sin(np.arange(N) / 5) * 20000).astype(np.float32), RATE, subtype="FLOAT"),
     "samples up to 2e[+]04, far outside the full scale"),  # integer-scale values written as float
], ids=["fifo", "/dev/zero link", "1e30", "integer scale as float"])
def test_audio_file_refused(make, problem, tmp_path):
    path = tmp_path / "clip.wav"
    make(path)
    with deadline(10):
        clip, found, _ = read_checked(path, RATE, N)
    assert clip is None and found is not None and re.search(problem, found), found


def test_a_float_file_slightly_over_full_scale_is_usable(tmp_path):
    path = tmp_path / "hot.wav"
    sf.write(str(path), (1.5 * np.sin(np.arange(N) / 5)).astype(np.float32), RATE, subtype="FLOAT")
    clip, problem, _ = read_checked(path, RATE, N)
    assert problem is None and np.abs(clip).max() > 1.4


@pytest.fixture
def poisoned_copy(tiny, tmp_path):
    """embedded-tiny with a copy of clip 0 under clip 1's name (re-encoded: other bytes, the same samples),
    a FIFO, a /dev/zero link and a clip of 1e30 samples."""
    root = tmp_path / "tiny-copy"
    shutil.copytree(tiny.root, root)
    files = list(tiny.meta["filename"])
    samples, rate = sf.read(str(root / files[0]), dtype="float32")
    sf.write(str(root / files[1]), samples, rate, subtype="FLOAT")  # other bytes, the same audio
    for i, make in ((2, _fifo), (3, _dev_zero)):
        (root / files[i]).unlink()
        make(root / files[i])
    sf.write(str(root / files[4]), np.full(N, 1e30, dtype=np.float32), RATE, subtype="FLOAT")
    return root, files


def test_data_check_names_copies_special_files_and_absurd_samples_without_hanging(poisoned_copy, capsys):
    root, files = poisoned_copy
    with deadline(60):
        assert main(["data", "check", "embedded-tiny", "--data-root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{files[1]}: the same audio samples as {files[0]}" in out
    assert f"{files[2]}: not a regular file but a FIFO" in out and f"{files[3]}: not a regular file but a character" in out
    assert f"{files[4]}: samples up to 1e+30" in out and "4 unusable of 240 files" in out


def test_a_run_refuses_a_copy_before_the_split_then_skip_bad_keeps_the_first(poisoned_copy, registry):
    """The run's features stage (what comes before the split): refused by name, or left out with --skip-bad."""
    from ascbench.config import RunConfig
    from ascbench.features import get_preset, load_checked_features
    from ascbench.pipeline import _drop_bad_audio

    root, files = poisoned_copy
    ds = registry.dataset("embedded-tiny").load(DatasetOptions(data_root=root))
    with deadline(60):  # the feature cache hashes every file: a FIFO there used to block forever
        checked = load_checked_features(ds, get_preset("embedded"), progress=False, threads=1)
    with pytest.raises(DataError, match=f"4 unusable audio file.*{files[1]}: the same audio samples as {files[0]}"):
        _drop_bad_audio(ds, checked, RunConfig())
    _, skipped = _drop_bad_audio(ds, checked, RunConfig(skip_bad=True))
    assert [s["filename"] for s in skipped] == files[1:5] and files[0] in set(ds.meta["filename"])


@pytest.mark.parametrize("make", [_dangling, _fifo], ids=["dangling link", "fifo"])
def test_an_embedded_data_roots_unusable_metadata_is_named_not_regenerated(make, tiny, tmp_path):
    from ascbench.registry import get_registry

    root = tmp_path / "copy"
    shutil.copytree(tiny.root, root)
    (root / "metadata.csv").unlink()
    make(root / "metadata.csv")
    with deadline(20), pytest.raises(DataError, match="metadata file .*metadata.csv (is a link|is a FIFO)"):
        get_registry().dataset("embedded-tiny").load(DatasetOptions(data_root=root))
