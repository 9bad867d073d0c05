"""``ascbench data check``: every unusable file of a dataset with its reason, paid once per file state.

The checks themselves are :mod:`ascbench.data.audio`'s, the same ones a run's feature extraction
applies; this module only walks a whole dataset and caches the report.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from tqdm.auto import tqdm

from ascbench.data.audio import CHECKS_VERSION, FileReport, inspect_file, inspect_file_digest, mark_duplicates  # noqa: F401 - inspect_file: re-exported
from ascbench.data.dataset import ClipDataset
from ascbench.fileio import atomic_write_text, cache_root, files_state_digest, mark_cache_area


def _key(dataset: ClipDataset) -> str:
    return files_state_digest(dataset.audio_paths(), f"validate|{CHECKS_VERSION}|{dataset.sample_rate}|{dataset.num_samples}")


def validate_audio(dataset: ClipDataset, progress: bool = True) -> list[FileReport]:
    """A report for every file of ``dataset``; cached, so an unchanged dataset is checked once."""
    cache = cache_root() / "validation" / f"{dataset.name}-{_key(dataset)}.json"
    if cache.exists():
        try:
            return [FileReport(r["filename"], r["problem"], tuple(r["notes"])) for r in json.loads(cache.read_text())]
        except (ValueError, KeyError):
            pass  # a damaged cache entry is simply recomputed
    reports, digests = [], []
    for filename, path in tqdm(list(zip(dataset.meta["filename"], dataset.audio_paths())), desc=f"checking {dataset.name}",
                               unit="file", disable=not progress, leave=False):
        problem, notes, digest = inspect_file_digest(path, dataset.sample_rate, dataset.num_samples)
        reports.append(FileReport(filename, problem, notes))
        digests.append(digest)
    reports = mark_duplicates(reports, digests)
    mark_cache_area(cache_root())  # never inside a run, the store or a board, whichever command checks the data
    try:
        atomic_write_text(cache, json.dumps([asdict(r) for r in reports]))
    except OSError:
        pass  # a read-only cache costs a re-check next time, nothing more
    return reports
