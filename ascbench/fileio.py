"""File writes that never leave a half-written file behind, and the cache location."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


def cache_root() -> Path:
    """Root of everything ascbench caches (datasets, features, pretrained stages): ``$ASCBENCH_CACHE_DIR``."""
    return Path(os.environ.get("ASCBENCH_CACHE_DIR") or Path.home() / ".cache" / "ascbench")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def append_line(path: Path, line: str) -> None:
    """Append one line under an exclusive lock, in a single write, so concurrent writers never interleave."""
    if "\n" in line:
        raise ValueError("append_line takes a single line")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def files_state_digest(paths: Iterable[Path], salt: str) -> str:
    """A digest of ``salt`` and every file's path, size, modification and status-change times and inode
    (missing files included): it changes whenever a file is added, removed, replaced or touched.

    The status-change time (ctime) cannot be set back by a user: a file rewritten with the same size
    and its old modification time restored still changes the digest (the content is then re-hashed,
    not trusted)."""
    h = hashlib.sha256(salt.encode())
    for path in paths:
        try:
            st = os.stat(path)
            h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}\n".encode())
        except FileNotFoundError:
            h.update(f"{path}|missing\n".encode())
    return h.hexdigest()[:24]


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed) for the ``with`` block.

    Used around cache fills (dataset generation, feature extraction, pretraining), so that runs
    started together compute a cache entry once: the second waits, then finds it filled.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
