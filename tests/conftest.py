"""Shared fixtures. Every test session gets its own cache and runs directories, so tests never
touch (or depend on) a user's ~/.cache/ascbench."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("ascbench-cache")
    old = {k: os.environ.get(k) for k in ("ASCBENCH_CACHE_DIR", "ASCBENCH_DATA_DIR", "ASCBENCH_FEATURE_DIR", "ASCBENCH_RUNS_DIR")}
    os.environ["ASCBENCH_CACHE_DIR"] = str(root)
    for k in ("ASCBENCH_DATA_DIR", "ASCBENCH_FEATURE_DIR", "ASCBENCH_RUNS_DIR"):
        os.environ.pop(k, None)
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def registry():
    from ascbench.registry import get_registry

    return get_registry()


@pytest.fixture(scope="session")
def tiny(registry):
    """The embedded-tiny dataset, generated once per session."""
    from ascbench.data.dataset import DatasetOptions

    return registry.dataset("embedded-tiny").load(DatasetOptions())


@pytest.fixture
def runs(tmp_path, monkeypatch):
    path = tmp_path / "runs"
    monkeypatch.setenv("ASCBENCH_RUNS_DIR", str(path))
    return path


@pytest.fixture
def audio_writes_fail(monkeypatch):
    """``fail_after(n, error)``: soundfile.write writes ``n`` files, then raises ``error`` (a full disk, a Ctrl-C);
    returns the list of paths it was asked to write."""
    import soundfile as sf

    real_write = sf.write

    def fail_after(n: int, error: BaseException) -> list:
        calls: list = []

        def write(path, *args, **kwargs):
            calls.append(path)
            if len(calls) > n:
                raise error
            return real_write(path, *args, **kwargs)

        monkeypatch.setattr(sf, "write", write)
        return calls

    return fail_after
