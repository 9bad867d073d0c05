"""Audio validation at dataset load: every unusable file with its reason, paid once per file state.

Problems that make a file unusable (it is refused, or skipped with ``--skip-bad``): missing, unreadable,
empty, truncated (fewer samples than its header declares), NaN or infinite samples. Notes that are
handled and said once: another sample rate (resampled), several channels (averaged to mono), a length
other than the declared clip length (zero-padded at the end, or cropped to the first seconds).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from ascbench.data.dataset import ClipDataset
from ascbench.fileio import atomic_write_text, cache_root, files_state_digest


@dataclass(frozen=True)
class FileReport:
    filename: str
    problem: str | None  # None: usable
    notes: tuple[str, ...] = ()


def _wav_data_shortfall(path: Path) -> tuple[int, int] | None:
    """(declared, present) bytes of a WAV file's data chunk when the file ends early, else None.

    libsndfile quietly reads what is there, so truncation is only visible in the RIFF header.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk = f.read(8)
            declared = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                present = size - offset - 8
                return (declared, present) if present < declared else None
            offset += 8 + declared + (declared & 1)
    return None


def inspect_file(path: Path, sample_rate: int, num_samples: int) -> tuple[str | None, tuple[str, ...]]:
    if not path.is_file():
        return "missing", ()
    if path.stat().st_size == 0:
        return "empty file (0 bytes)", ()
    try:
        info = sf.info(str(path))
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        return f"unreadable: {str(exc).splitlines()[0]}", ()
    if data.shape[0] == 0:
        return "no samples", ()
    shortfall = _wav_data_shortfall(path) if path.suffix.lower() == ".wav" else None
    if shortfall or data.shape[0] < info.frames:
        declared, present = shortfall or (info.frames, data.shape[0])
        return f"truncated: the header declares {declared} bytes of audio, {present} are present", ()
    if not np.isfinite(data).all():
        return "NaN or infinite samples", ()
    notes = []
    if info.samplerate != sample_rate:
        notes.append(f"sample rate {info.samplerate} Hz (resampled to {sample_rate})")
    if info.channels != 1:
        notes.append(f"{info.channels} channels (averaged to mono)")
    length = data.shape[0] * sample_rate / info.samplerate
    if abs(length - num_samples) > 1:
        notes.append(f"{length / sample_rate:.2f} s long ({'zero-padded' if length < num_samples else 'cropped'} "
                     f"to {num_samples / sample_rate:g} s)")
    return None, tuple(notes)


def _key(dataset: ClipDataset) -> str:
    return files_state_digest(dataset.audio_paths(), f"validate|{dataset.sample_rate}|{dataset.num_samples}")


def validate_audio(dataset: ClipDataset, progress: bool = True) -> list[FileReport]:
    """A report for every file of ``dataset``; cached, so an unchanged dataset is checked once."""
    cache = cache_root() / "validation" / f"{dataset.name}-{_key(dataset)}.json"
    if cache.exists():
        try:
            return [FileReport(r["filename"], r["problem"], tuple(r["notes"])) for r in json.loads(cache.read_text())]
        except (ValueError, KeyError):
            pass  # a damaged cache entry is simply recomputed
    reports = []
    for filename, path in tqdm(list(zip(dataset.meta["filename"], dataset.audio_paths())), desc=f"checking {dataset.name}",
                               unit="file", disable=not progress, leave=False):
        problem, notes = inspect_file(path, dataset.sample_rate, dataset.num_samples)
        reports.append(FileReport(filename, problem, notes))
    try:
        atomic_write_text(cache, json.dumps([asdict(r) for r in reports]))
    except OSError:
        pass  # a read-only cache costs a re-check next time, nothing more
    return reports
