"""Every file ascbench writes goes through here: atomic, umask-respecting, and guarded.

Two kinds of write:

* **Owned writes** (:func:`atomic_write_bytes` / :func:`atomic_write_text`): the runner assembling a run,
  the publisher regenerating a board, a cache filling an entry. Each owner writes only inside what it owns.
* **Outputs a user points somewhere** (:func:`write_output`: ``--output`` of predict, export, leaderboard,
  data split, plot, new-plugin): refused inside anything ascbench keeps (the results store, a run
  directory finished or in progress, a published board's records and tables, the cache), and refused over an
  existing file unless the user asked for it (``--force``). A typo in ``--output`` can therefore never
  replace a result.

New files get the mode the user's umask gives (0644 under the usual 022), so a shared web directory can
serve a published page; an existing file keeps its mode when it is replaced.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator


def cache_root() -> Path:
    """Root of everything ascbench caches (datasets, features, pretrained stages): ``$ASCBENCH_CACHE_DIR``."""
    return Path(os.environ.get("ASCBENCH_CACHE_DIR") or default_cache_root())


def data_cache_root() -> Path:
    """Where built-in datasets are generated: ``$ASCBENCH_DATA_DIR``, by default ``<cache>/data``."""
    return Path(os.environ.get("ASCBENCH_DATA_DIR") or cache_root() / "data")


def feature_cache_root() -> Path:
    """Where extracted features are cached: ``$ASCBENCH_FEATURE_DIR``, by default ``<cache>/features``."""
    return Path(os.environ.get("ASCBENCH_FEATURE_DIR") or cache_root() / "features")


def cache_areas() -> list[Path]:
    """Every folder ascbench fills as a cache under the current environment (each may sit outside the others)."""
    return [cache_root(), data_cache_root(), feature_cache_root()]


# The Cache Directory Tagging convention (https://bford.info/cachedir/): backup tools skip a tagged folder,
# and guarded_area refuses user outputs under it, even when the variable that placed it there is no longer
# set (data generated under one $ASCBENCH_DATA_DIR, an export pointed into it later without it).
CACHE_TAG = "CACHEDIR.TAG"
CACHE_TAG_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
_CACHE_TAG_TEXT = (f"{CACHE_TAG_SIGNATURE}\n# This file is a cache directory tag created by ascbench: everything here is "
                   "regenerated on demand, and ascbench refuses to write user outputs into it.\n")


def check_cache_place(folder: Path, what: str) -> None:
    """A cache is never filled inside a run, the results store or a published board (whichever command fills
    it: run, predict, data info); ConfigError naming ``what`` set it there (``$ASCBENCH_DATA_DIR``, ...)."""
    from ascbench.errors import ConfigError

    area = guarded_area(Path(folder) / "_", allow=("cache",))
    if area:
        raise ConfigError(f"{what} {folder} is inside {area}, which no command may change but the one that owns it; "
                          f"point {what} at a folder of its own")


def mark_cache_area(folder: Path, what: str = "--cache-dir") -> None:
    """Create ``folder`` and tag it as one of ascbench's caches (once; a tag already there is left as it is).
    Best effort: a folder that cannot be written is reported by the cache fill that needs it, with its fix."""
    folder = Path(folder)
    check_cache_place(folder, what)
    try:
        if os.path.lexists(folder / CACHE_TAG):
            return
        # Only a folder that is ascbench's: new, empty, or under the default cache. A tag in a folder the user
        # pointed --cache-dir at that holds their own files (a home, a project) would make backup tools skip it.
        ours = not folder.exists() or not any(folder.iterdir()) or is_within(folder, default_cache_root())
        folder.mkdir(parents=True, exist_ok=True)
        if ours:
            atomic_write_text(folder / CACHE_TAG, _CACHE_TAG_TEXT)
    except OSError:
        pass


def default_cache_root() -> Path:
    """Where the cache goes when $ASCBENCH_CACHE_DIR is unset (read when called: $HOME may change)."""
    return Path.home() / ".cache" / "ascbench"


def is_within(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or lies under it, links resolved."""
    path, root = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    return path == root or root in path.parents


def _is_ascbench_cache(folder: Path) -> bool:
    try:
        with open(folder / CACHE_TAG, "rb") as f:
            head = f.read(200)
    except OSError:  # no tag (the usual case), or a folder we cannot read: not known to be a cache
        return False
    return head.startswith(CACHE_TAG_SIGNATURE.encode()) and b"ascbench" in head


class NotRegularFileError(OSError):
    """A path that names a folder, a pipe, a device or a socket where a file was expected."""


def read_file_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of the regular file at ``path``. Opened without blocking and checked before reading: a FIFO
    (or a link to one) would otherwise block the command forever, and a device such as /dev/zero never ends.
    Raises :class:`NotRegularFileError` (an OSError whose ``strerror`` says what the path is) for anything else."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "a pipe, a device or a socket"
            raise NotRegularFileError(0, f"not a regular file ({what})", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def read_file_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> str:
    """:func:`read_file_bytes`, decoded."""
    return read_file_bytes(path).decode(encoding, errors)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; a result, a table or a page must be readable as any other file the user makes.
        os.fchmod(fd, _mode_for(path))
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


def current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` can only be read by setting it, which races
    with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _mode_for(path: Path) -> int:
    """An existing file keeps its permission bits; a new one gets 0666 less the umask, as open() would give it."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def guarded_area(path: Path, allow: tuple[str, ...] = ()) -> str | None:
    """What ascbench keeps at ``path`` or above it, in words, or None if a user output may go there.

    Kinds (``allow`` exempts those the caller owns): ``store`` (a runs directory: it holds results.jsonl),
    ``run`` (a finished or unfinished run's directory), ``board`` (a published board: results/ and its
    tables), ``dataset`` (a built-in dataset generated into a folder), ``cache``. Checked on the path as given
    and with links resolved, so a link into a run is caught.
    """
    given = Path(os.path.abspath(path))
    candidates = [given]
    # From the path as given, not from ``given``: abspath folds "link/.." away as text, while the kernel (and
    # realpath) follows the link first, so "link-to-a-run/../x" lands beside the run, not beside the link.
    real = Path(os.path.realpath(path))
    if real != given:
        candidates.append(real)
    caches = [] if "cache" in allow else [Path(os.path.realpath(area)) for area in cache_areas()]
    dataset = None  # said only if nothing else is: a dataset in the cache is refused as the cache, as before
    for candidate in candidates:
        if candidate.name == "results.jsonl" and "store" not in allow:
            return f"the results store {candidate}"
        for cache in caches:
            if candidate == cache or cache in candidate.parents:
                return f"ascbench's cache {cache}"
        for folder in candidate.parents:
            if "cache" not in allow and _is_ascbench_cache(folder):
                return f"ascbench's cache {folder}"
            kind, words = _kept_folder(folder)
            if kind == "dataset" and "dataset" not in allow:
                dataset = dataset or words
            elif kind and kind not in allow:
                return words
    return dataset


# A folder holding results/ and one of these is a published board (``leaderboard --publish`` writes them).
BOARD_TABLES = ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "index.html")


def _kept_folder(folder: Path) -> tuple[str | None, str]:
    if folder.name.startswith(".") and folder.name.endswith(".partial"):
        return "run", f"the unfinished run {folder}"
    if (folder / "metrics.json").is_file() and (folder / "config.json").is_file():
        return "run", f"the finished run {folder}"
    if (folder / "results.jsonl").exists():
        return "store", f"the results store {folder}"
    if (folder / "results").is_dir() and any((folder / name).is_file() for name in BOARD_TABLES):
        return "board", f"the published board {folder}"
    if _is_generated_dataset(folder):
        return "dataset", f"the generated dataset {folder}"
    return None, ""


# A built-in dataset generated into a folder (the cache, or a --data-root of the user's) holds its metadata.csv and
# a manifest.json naming the generator; outside the cache it carries no cache tag, so it is recognised by these.
GENERATED_DATASET_MANIFEST = "manifest.json"
_GENERATOR_KEYS = ("generator_version", "seed")


def generated_dataset_manifest(path: Path) -> dict | None:
    """The manifest a dataset generator left at ``path``, or None: none there, or not one of ours (not JSON,
    another tool's manifest.json, one without a generator's keys, more than a manifest's size)."""
    try:
        if not path.is_file() or path.stat().st_size > 1 << 20:  # a manifest is a few hundred bytes
            return None
        data = json.loads(read_file_text(path))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and all(key in data for key in _GENERATOR_KEYS) else None


def _is_generated_dataset(folder: Path) -> bool:
    manifest = generated_dataset_manifest(folder / GENERATED_DATASET_MANIFEST)
    return manifest is not None and (folder / "metadata.csv").is_file()


def write_output(path: str | os.PathLike, data: bytes | str, *, force: bool = False, flag: str = "--output") -> Path:
    """Write a file the user asked for at ``path``: atomically, never inside what ascbench keeps, and never
    over an existing file unless ``force`` (the command's ``--force``).

    Raises ConfigError (one line: what is there, what to do) before anything is written.
    """
    from ascbench.errors import ConfigError

    target = Path(path)
    refuse = _output_refusal(target, force, flag)
    if refuse:
        raise ConfigError(refuse)
    try:
        atomic_write_bytes(target, data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:  # a read-only or pseudo file system (/sys, /proc), a full disk: nothing was written
        raise ConfigError(f"cannot write {flag} {target}: {exc.strerror or exc}; pass a path in a writable folder") from None
    return target


def check_output(path: str | os.PathLike, *, force: bool = False, flag: str = "--output") -> None:
    """The checks of :func:`write_output`, alone: commands that compute for minutes call it first, so a bad
    ``--output`` is refused before the work, not after."""
    from ascbench.errors import ConfigError

    refuse = _output_refusal(Path(path), force, flag)
    if refuse:
        raise ConfigError(refuse)


def check_output_folder(folder: str | os.PathLike, *, flag: str = "--output", allow: tuple[str, ...] = ()) -> None:
    """A folder a command will fill (plots, a scaffold, a board) is not inside anything ascbench keeps, other
    than the kinds in ``allow`` (the publisher owns its board: ``allow=("board",)``)."""
    from ascbench.errors import ConfigError

    folder = Path(folder)
    try:
        area = guarded_area(folder / "_", allow)
    except OSError as exc:  # a path too long for the system, a folder that cannot be searched
        raise ConfigError(f"{flag} {str(folder)[:60]}... cannot be used: {exc.strerror or exc}; pass a shorter or "
                          "other path") from None
    if area:
        raise ConfigError(f"{flag} {folder} would write into {area}, which no command may change but the one that "
                          f"owns it; pass {flag} a folder outside it")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder} is a file, not a folder; pass a folder")


# The temporary file beside an output is ".<name>.<8 random>.tmp": 14 bytes longer than the name itself.
_TEMPORARY_NAME_EXTRA = 14


def _output_refusal(target: Path, force: bool, flag: str) -> str | None:
    longest = os.pathconf(Path(os.path.abspath(target)).anchor, "PC_NAME_MAX") if os.name == "posix" else 255
    if len(os.fsencode(target.name)) + _TEMPORARY_NAME_EXTRA > longest:
        return (f"{flag} {str(target)[:60]}...: the file name is {len(os.fsencode(target.name))} bytes long; at most "
                f"{longest - _TEMPORARY_NAME_EXTRA} are possible here (the name of its temporary file must fit too)")
    try:
        area = guarded_area(target)
    except OSError as exc:  # a path too long for the system, a folder that cannot be searched
        return f"{flag} {str(target)[:60]}... cannot be used: {exc.strerror or exc}; pass a shorter or other path"
    if area:
        return (f"{flag} {target} would write into {area}, which no command may change but the one that owns it; "
                f"pass {flag} a path outside it")
    if os.path.lexists(target):
        try:
            mode = os.stat(target).st_mode
        except OSError:
            return f"{flag} {target} is a broken link; remove it or pass another path"
        if stat.S_ISDIR(mode):
            return f"{flag} {target} is a folder; pass a file name (e.g. {target / 'out'})"
        if not stat.S_ISREG(mode):
            return f"{flag} {target} is not a regular file (a device, pipe or socket); pass a file name"
        if not force:
            return f"{flag} {target} already exists; pass --force to replace it, or another path"
    for folder in Path(os.path.abspath(target)).parents:  # the nearest existing folder above must be a folder
        if os.path.lexists(folder):
            if not folder.is_dir():
                return f"{flag} {target}: {folder} is a file, not a folder; pass a path under a folder"
            if not os.access(folder, os.W_OK | os.X_OK):  # found before the work, not after it
                return f"{flag} {target}: {folder} is not writable; pass a path in a writable folder"
            break
    return None


def append_line(path: Path, line: str) -> None:
    """Append one line under an exclusive lock, in a single write, so concurrent writers never interleave."""
    if "\n" in line:
        raise ValueError("append_line takes a single line")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0666 less the umask, like any file the user makes: a group-shared store stays appendable by the group.
    # O_NOFOLLOW: a link in the store's place would send the row into whatever it points at.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A torn last line (a crash mid-write, a hand edit without a newline) must not swallow this row: start it
        # on a line of its own, so the damage stays one damaged line that load_rows names and skips.
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, (("\n" if torn else "") + line + "\n").encode("utf-8"))
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
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # less the umask: others sharing the cache can lock it too
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
