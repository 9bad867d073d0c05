"""Sweeps: a grid of runs (models x strategies x protocols x labeled fractions x seeds ...), resumable,
on local processes or on a Ray cluster, stored in the same results store as ``ascbench run``.

A spec is a TOML or YAML file::

    [base]                  # RunConfig fields shared by every cell
    dataset = "embedded"

    [grid]                  # RunConfig fields with a list of values; cells are their product
    model = ["mobileascnet", "cp-mobile"]
    strategy = ["scratch", "finetune"]
    seed = [0, 1, 2]

A cell whose experiment is already in the results store is skipped; a cell that was killed half-way
continues from its last epoch checkpoint (see :mod:`ascbench.checkpoint`); a cell that fails is
reported and the others go on.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable

from tqdm.auto import tqdm

from ascbench.options import resolve_all
from ascbench.config import EXECUTION_FIELDS, RunConfig, read_table
from ascbench.errors import AscbenchError, ConfigError, RunInterrupted, Terminated, raise_terminated
from ascbench.fileio import check_output_folder, read_file_text
from ascbench.registry import Registry, get_registry
from ascbench.results import load_rows, runs_dir, store_packed_run
from ascbench.shortcuts import declared

log = logging.getLogger("ascbench")

EXECUTORS = ("local", "ray")


@dataclass
class SweepSpec:
    base: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    # Combinations left out, each a partial cell: {"model": "context-only", "strategy": "freeze"} drops
    # every cell with both values (a model with nothing to freeze, say).
    exclude: list[dict[str, Any]] = field(default_factory=list)
    # Where the cells were written, so that a bad value is blamed on its file (or on the command line).
    origin: str = "the command line's --grid/--set"

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SweepSpec":
        path = Path(path)
        data = read_table(path, "sweep spec")
        unknown = sorted(set(data) - {"base", "grid", "exclude"})
        if unknown:
            raise ConfigError(f"sweep spec {path}: unknown section(s) {unknown}; a spec has [base], [grid] "
                              f"and [[exclude]] tables")
        exclude = data.get("exclude") or []
        if not isinstance(exclude, list) or not all(isinstance(e, dict) and e for e in exclude):
            raise ConfigError(f"sweep spec {path}: exclude must be a list of tables such as "
                              f"[[exclude]] model = \"context-only\" strategy = \"freeze\"")
        for section in ("base", "grid"):
            if not isinstance(data.get(section) or {}, dict):
                raise ConfigError(f"sweep spec {path}: [{section}] must be a table of settings")
        both = sorted(set(data.get("base") or {}) & set(data.get("grid") or {}))
        if both:  # one of the two would be dropped without a word
            raise ConfigError(f"sweep spec {path}: {', '.join(both)} is in both [base] and [grid]; keep it in one "
                              "([grid] to sweep it, [base] for one value in every cell)")
        return cls(dict(data.get("base") or {}), dict(data.get("grid") or {}), [dict(e) for e in exclude],
                   origin=f"sweep spec {path}")

    def with_overrides(self, grid: dict[str, list[Any]], base: dict[str, Any]) -> "SweepSpec":
        """The spec with the command line's ``--grid`` axes and ``--set`` values over it: a ``--set`` of a key the
        spec sweeps replaces that axis (the command line overrides the spec), as ``--grid`` replaces one."""
        from_file = self.origin != SweepSpec.origin
        origin = f"{self.origin} with the command line's --grid/--set" if from_file and (grid or base) else self.origin
        axes = {k: v for k, v in {**self.grid, **grid}.items() if k not in base or k in grid}
        return SweepSpec({**self.base, **base}, axes, list(self.exclude), origin)

    def cells(self) -> list[RunConfig]:
        """Every combination of the grid over the base config, in a stable order, less the excluded ones."""
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{self.origin}: grid entry {key!r} must be a non-empty list, got {values!r}")
        known = {f.name for f in dataclasses.fields(RunConfig)} | set(self.grid) | set(self.base)
        for entry in self.exclude:
            if set(entry) - known:
                raise ConfigError(f"{self.origin}: exclude entry {entry}: unknown config field(s) "
                                  f"{sorted(set(entry) - known)}; an entry names config fields or the [grid]'s keys "
                                  "(a plugin option as \"strategy.lr_scale\")")
        keys = list(self.grid)
        cells, used = [], [False] * len(self.exclude)
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            values = {**self.base, **dict(zip(keys, combo))}
            raw = [all(values.get(k) == v for k, v in entry.items()) for entry in self.exclude]
            if any(raw):  # as written: skipped without being built (it may be a combination that cannot be)
                used = [u or r for u, r in zip(used, raw)]
                continue
            values = _without_others_old_fields(values, set(self.base) - set(keys))
            try:
                cell = applicable_cell(RunConfig.from_dict(values), set(keys))
            except (TypeError, AscbenchError) as exc:
                raise ConfigError(f"{self._blame(dict(zip(keys, combo)))}: {exc}") from None
            # As the run reads them: the old name of a protocol, a field left at its default, 1 for 1.0.
            read = [_excludes(cell, entry) for entry in self.exclude]
            used = [u or r for u, r in zip(used, read)]
            if not any(read):
                cells.append(cell)
        unused = [entry for entry, u in zip(self.exclude, used) if not u]
        if unused:
            raise ConfigError(f"{self.origin}: exclude entr{'y' if len(unused) == 1 else 'ies'} "
                              f"{', '.join(map(str, unused))} match{'es' if len(unused) == 1 else ''} no cell of the "
                              "grid; check the names and values (a value is matched as the run reads it: \"1\" is "
                              "text, not the seed 1), or remove the entry")
        if keys and not cells:
            raise ConfigError(f"{self.origin}: every cell of the grid is excluded; nothing would run")
        self._check_base_options_taken(cells)
        check_distinct(cells)
        return cells

    def _check_base_options_taken(self, cells: list[RunConfig]) -> None:
        """A [base] plugin option is left out of the cells whose plugin does not take it; one that no cell's plugin
        takes is a misspelling, not a shared setting."""
        from ascbench.options import fold_dotted

        try:
            given = fold_dotted(dict(self.base)).get("options") or {}
        except AscbenchError:
            return
        for kind, values in given.items():
            for name in values if isinstance(values, dict) else ():
                if cells and not any(name in c.options.get(kind, {}) for c in cells):
                    chosen = sorted({str(getattr(c, kind, None)) for c in cells})
                    raise ConfigError(f"{self.origin}, [base] (or --set): {kind}.{name} is taken by none of the "
                                      f"cells' {kind} plugins ({', '.join(chosen)}); check its spelling "
                                      "(`ascbench list` shows each plugin's options)")

    def _blame(self, combo: dict[str, Any]) -> str:
        """Where a bad cell's fault was written: the [base] (or --set) alone when it fails alone, else the cell."""
        try:
            RunConfig.from_dict(dict(self.base))
        except (TypeError, AscbenchError):
            return f"{self.origin}, [base] (or --set)"
        return f"{self.origin}, cell {combo}" if combo else f"{self.origin}, [base] (or --set)"


def _excludes(cell: RunConfig, entry: dict[str, Any]) -> bool:
    """Whether ``entry`` matches ``cell`` as the run reads its values (names through their aliases)."""
    from ascbench.config import current_protocol_name

    for key, wanted in entry.items():
        value = cell.value(key)
        if key == "protocol" and isinstance(wanted, str):
            wanted = current_protocol_name(wanted)
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(wanted, bool) != isinstance(value, bool) or isinstance(wanted, str) != isinstance(value, str) \
                or value != wanted:
            return False
    return True


def _without_others_old_fields(values: dict[str, Any], shared: set[str]) -> dict[str, Any]:
    """``values`` without the [base] settings under an old field name of a plugin the cell did not choose
    (``test_periods``, now unseen-time's option, in a cell of ``official``): left out, as a [base] setting a cell
    does not read is (:func:`applicable_cell`), where a config file would be refused for naming it."""
    renamed = declared().renamed
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    elsewhere = {k for k in shared & set(renamed)
                 if values.get(renamed[k].kind, defaults[renamed[k].kind]) != renamed[k].plugin}
    return {k: v for k, v in values.items() if k not in elsewhere}


def applicable_cell(cell: RunConfig, grid_keys: set[str]) -> RunConfig:
    """``cell`` with the [base] settings it does not read put back to what it holds without them (a shared
    ``pretrain_epochs`` means nothing to the cells that train from scratch, and is not stored with them); a
    grid value it does not read is refused, as the cell exists only for that value (ascbench.applicability)."""
    from ascbench.applicability import baseline, check_applicable, unread

    registry = get_registry()
    shared = [name for name in unread(cell, registry) if name not in grid_keys]
    if shared:
        base = baseline(cell)
        cell = cell.replace(**{name: base[name] for name in shared})
    check_applicable(cell, registry)
    return _without_unread_base_options(cell, grid_keys, registry)


def _without_unread_base_options(cell: RunConfig, grid_keys: set[str], registry: Registry) -> RunConfig:
    """``cell`` without the [base] plugin options its chosen plugin does not take (``strategy.lr_scale`` in the
    cells of ``scratch`` beside those of ``finetune``), as for [base] fields; a swept option is kept and refused."""
    from ascbench.options import KINDS, fields_of

    options = {kind: dict(values) for kind, values in cell.options.items()}
    for kind, values in cell.options.items():
        if kind not in KINDS or kind == "frontend" or getattr(cell, kind, None) is None:
            continue
        try:
            taken = fields_of(registry.get(kind, getattr(cell, kind)).options_class)
        except AscbenchError:
            continue  # an unknown plugin: check_names says so
        for name in values:
            if name not in taken and f"{kind}.{name}" not in grid_keys and "options" not in grid_keys:
                del options[kind][name]
    options = {kind: values for kind, values in options.items() if values}
    return cell if options == {k: v for k, v in cell.options.items() if v} else cell.replace(options=options)


def parse_assignment(text: str, multi: bool) -> tuple[str, Any]:
    """``key=value`` (``--set``) or ``key=v1,v2`` (``--grid``) from the command line, values as JSON where they parse."""
    if "=" not in text:
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip().replace("-", "_")

    def value(v: str) -> Any:
        try:
            return json.loads(v)
        except json.JSONDecodeError:
            return v

    return key, ([value(v) for v in _top_level_parts(raw)] if multi else value(raw))


def _top_level_parts(raw: str) -> list[str]:
    """``raw`` split on the commas outside brackets, braces and quotes: ``[8,16],[16,32]`` is two values, and
    ``[8,16]`` one (a list-valued model argument), not ``[8`` and ``16]``."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(raw):
        if quote:
            quote = "" if ch == quote and raw[i - 1] != "\\" else quote
        elif ch == '"':  # JSON's quote
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(raw[start:i])
            start = i + 1
    return [*parts, raw[start:]]


@dataclass
class CellOutcome:
    config: RunConfig
    status: str  # done | skipped | failed | interrupted (stopped or not started; a re-run continues it)
    run_id: str | None = None
    accuracy: float | None = None  # macro accuracy, the leaderboard's metric
    reason: str | None = None
    seconds: float = 0.0
    gpus: tuple[str, ...] = ()  # the GPUs Ray gave the cell (--gpus-per-cell); empty elsewhere


def _identity(config: dict, metrics: dict | None) -> str:
    """A stored run's experiment identity, as the leaderboard de-duplicates by (ascbench.records): its config
    without execution details, and the source of every plugin that computed it. A plugin edited since is a
    new identity: its cells run again instead of showing the old number as "stored"."""
    from ascbench.records import code_digest

    plugins = ((metrics or {}).get("provenance") or {}).get("plugins") or []
    cfg = RunConfig.from_stored(config)
    resolved = ((metrics or {}).get("compute") or {}).get("precision")
    if cfg.precision == "auto" and resolved:  # as ascbench.leaderboard.setting_of: auto is what it resolved to
        cfg = cfg.replace(precision=resolved)
    return f"{cfg.experiment_digest()}/{code_digest(plugins)}"


def cell_identity(cell: RunConfig, registry: Registry) -> str:
    """A cell's identity under the plugins installed now (see ``_identity``)."""
    from ascbench.records import code_digest
    from ascbench.runner import _plugin_provenance

    return f"{_as_resolved(cell, registry).experiment_digest()}/{code_digest(_plugin_provenance(cell, registry))}"


def _as_resolved(cell: RunConfig, registry: Registry) -> RunConfig:
    """``cell`` with ``--precision auto`` resolved as a run here would resolve it: a cell stored as bf16 is made
    here only if auto gives bf16 here too (on an fp32-only machine the same cell is another experiment)."""
    if cell.precision != "auto":
        return cell
    from ascbench.device import Compute, ModelNeeds

    try:
        resolved = Compute.from_names(cell.device, "auto", ModelNeeds.of(registry.model(cell.model))).precision
    except AscbenchError:  # a device this machine lacks (a cell for a Ray cluster): compared as given
        return cell
    return cell.replace(precision=resolved)


def finished_experiments(root: Path) -> dict[str, dict]:
    """Rows of the results store by experiment identity (``_identity``).

    The digest is recomputed from each run's stored config rather than taken from its row: a config
    field added since the run was made then takes its default (which reproduces the old behaviour),
    so an upgrade does not make every stored cell look new. A run whose config or metrics cannot be read, or
    whose record does not check out (ascbench.records.verify: the leaderboard leaves it off), has no identity
    to match and never makes a cell look stored: the cell runs again.
    """
    from ascbench.records import read_json, verify

    found = {}
    for row in load_rows(root):
        config, bad_config = read_json(root / row["run_id"] / "config.json", "run config")
        metrics, bad_metrics = read_json(root / row["run_id"] / "metrics.json", "run metrics")
        if bad_config or bad_metrics or verify(row, metrics, row["run_id"], config):
            continue
        try:
            found[_identity(config, metrics)] = row
        except (ValueError, TypeError, AscbenchError):
            continue
    return found


def published_experiments(publish_dir: Path) -> dict[str, dict]:
    """Rows of a published leaderboard (``DIR/results/*.json``) by experiment identity, so a sweep can skip
    cells already published even where the runs directory that made them is gone."""
    from ascbench.records import verify

    found = {}
    for path in sorted(Path(publish_dir, "results").glob("*.json")):
        try:
            record = json.loads(read_file_text(path))
            if verify(record["row"], record["metrics"], str(path), record["config"]):
                raise ValueError("its record does not check out")
            found[_identity(record["config"], record["metrics"])] = record["row"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError, AscbenchError):
            log.warning("skipping published record %s: unreadable, or it does not check out", path)
    return found


def already_made(cells: list[RunConfig], root: Path, published: str | os.PathLike | None = None,
                 registry: Registry | None = None) -> dict[int, tuple[str, dict]]:
    """The cells a sweep skips, by position: ("stored", row) when the results store holds the experiment made
    with the plugins installed now, ("published", row) when only the published leaderboard ``published`` does."""
    registry = registry or get_registry()
    stored = finished_experiments(root)
    elsewhere = published_experiments(Path(published)) if published else {}
    found = {}
    for i, cell in enumerate(cells):
        identity = cell_identity(cell, registry)
        if identity in stored:
            found[i] = ("stored", stored[identity])
        elif identity in elsewhere:
            found[i] = ("published", elsewhere[identity])
    return found


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def plan(cells: list[RunConfig], jobs: int) -> list[RunConfig]:
    """Give each cell its torch thread count (cores shared out among the parallel runs), unless it sets one."""
    threads = max(1, default_jobs() // jobs)
    return [c if c.threads else c.replace(threads=threads) for c in cells]


def check_names(cells: Iterable[RunConfig], registry: Registry) -> None:
    """Fail before anything runs if any cell names an unknown model, strategy, dataset or protocol, sets an
    option its plugin lacks, or gives model arguments its model cannot be built with (each model x arguments
    x dataset built once, on the dataset's clip table: no audio is read or generated)."""
    built: set[str] = set()
    for cell in cells:
        try:
            check_cell(cell, registry, built)
        except AscbenchError as exc:  # the same error (an unknown name stays an UnknownNameError), located
            exc.args = (f"sweep cell {describe(cell)}: {exc}",)
            raise


def check_cell(cell: RunConfig, registry: Registry, built: set[str] | None = None) -> None:
    """One config's plugin names, their options and its model arguments, checked without reading audio (a model
    built once per model x arguments x dataset in ``built``)."""
    from ascbench import pipeline

    built = set() if built is None else built
    registry.model(cell.model)
    registry.strategy(cell.strategy)
    registry.semi(cell.semi)
    registry.dataset(cell.dataset)
    registry.protocol(cell.protocol)
    resolve_all(cell, registry)  # plugins' own options too
    for name in cell.loggers:
        registry.logger(name)
    if cell.device and cell.device != "auto":
        from ascbench.device import parse_device_name

        parse_device_name(cell.device)
    key = json.dumps([cell.model, cell.model_kwargs, cell.context, cell.dataset, cell.data_root], sort_keys=True,
                     default=str)
    if cell.model_kwargs and key not in built:
        pipeline.load(pipeline.resolve(cell, registry), require_audio=False)
        built.add(key)


def check_distinct(cells: list[RunConfig]) -> None:
    """Refuse two cells that are one experiment (``seed = [1, 1]``, or a plugin under its old and new name):
    the second would only be skipped as already made, or run twice and counted once."""
    seen: dict[str, RunConfig] = {}
    registry = get_registry()
    for cell in cells:
        resolved = _as_resolved(cell, registry)
        digest = resolved.experiment_digest()  # precision auto and what it gives here: one
        if digest in seen and _as_resolved(seen[digest], registry).digest() != resolved.digest():
            raise ConfigError(f"sweep cells {describe(seen[digest])!r} and {describe(cell)!r} differ only in how they "
                              f"run ({', '.join(EXECUTION_FIELDS)}), which makes them one experiment; give such a "
                              "setting one value, in [base] or --set")
        if digest in seen:
            raise ConfigError(f"sweep cells {describe(seen[digest])!r} and {describe(cell)!r} are the same experiment "
                              "(a grid value listed twice, or one setting under two names); list each value once")
        seen[digest] = cell


def _run_cell(config: dict, runs_root: str) -> dict:
    """One cell in a worker process; failures come back as data, so one cell cannot stop the sweep."""
    from ascbench.runner import execute

    if _stopping.is_set():  # cells already queued to a stopping worker are left to the re-run
        return {"status": "interrupted", "reason": "not started"}
    _between_cells.clear()
    started = time.perf_counter()
    try:
        record = execute(RunConfig.from_dict(config), runs_root=runs_root, progress=False)
    except (KeyboardInterrupt, RunInterrupted):
        if _in_worker.is_set():
            _stopping.set()
        return {"status": "interrupted", "reason": "interrupted; its checkpoint is kept",
                "seconds": time.perf_counter() - started}
    except Exception as exc:  # noqa: BLE001 - reported per cell
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - started}
    finally:
        _between_cells.set()
    return {"status": "done", "run_id": record.run_id, "accuracy": record.metrics["macro_accuracy"],
            "seconds": time.perf_counter() - started}


def _run_cell_packed(config: dict) -> dict:
    """A Ray task: run into a scratch directory on the worker and ship the run's files back to the driver."""
    import tempfile

    import ray

    with tempfile.TemporaryDirectory(prefix="ascbench-ray-") as tmp:
        outcome = _run_cell(config, tmp)
        outcome["gpus"] = tuple(str(g) for g in ray.get_gpu_ids())
        if outcome["status"] == "done":
            run_dir = Path(tmp) / outcome["run_id"]
            outcome["files"] = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
            outcome["row"] = load_rows(Path(tmp))[0]
    return outcome


# In a pool worker: whether it is one, and whether it was interrupted (or its sweep died), after which it
# starts none of the cells already queued to it. A queued task cannot be cancelled from the driver.
_in_worker = threading.Event()
_stopping = threading.Event()
# Set while no cell runs in this process: a worker whose sweep died leaves as soon as its cell has kept its
# checkpoint (or was stored), not after a fixed wait.
_between_cells = threading.Event()
_between_cells.set()


def _watch_parent(parent: int) -> None:
    """Worker initializer: if the sweep process dies (even by SIGKILL), interrupt the running cell so it
    keeps its checkpoint and frees its run slot, then leave. Otherwise an orphaned worker would go on
    running queued cells that a re-run of the sweep runs a second time."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        _stopping.set()
        os.kill(os.getpid(), signal.SIGINT)
        # Leave once the interrupted cell has written its checkpoint (at most 30 s), rather than report its
        # outcome on a pipe nobody reads.
        _between_cells.wait(30)
        os._exit(1)

    # A sweep started in the background (`ascbench sweep ... &`, nohup) inherits SIGINT ignored, and Python keeps
    # an inherited SIG_IGN: the SIGINT by which the sweep stops its workers (on SIGTERM, or when it dies) would
    # then be lost and each worker would finish its cell, and the rest of its queue, as an orphan.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _in_worker.set()
    threading.Thread(target=watch, name="ascbench-parent-watch", daemon=True).start()


def _local(todo: list[RunConfig], root: Path, jobs: int, report: Callable[[RunConfig, dict], None]) -> None:
    if jobs == 1:
        for cell in todo:
            outcome = _run_cell(cell.to_dict(), str(root))
            report(cell, outcome)
            if outcome["status"] == "interrupted":
                raise KeyboardInterrupt
        return
    # "spawn": each worker imports torch afresh, with no threads inherited from this process.
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"), initializer=_watch_parent,
                               initargs=(os.getpid(),))
    futures = {pool.submit(_run_cell, cell.to_dict(), str(root)): cell for cell in todo}
    reported = set()
    try:
        for future in as_completed(futures):
            outcome = future.result()
            reported.add(future)
            report(futures[future], outcome)
            if outcome["status"] == "interrupted":  # Ctrl-C reached a worker: the whole sweep stops
                raise KeyboardInterrupt
    except KeyboardInterrupt as stop:
        for future in futures:
            future.cancel()
        if isinstance(stop, Terminated):  # Ctrl-C reaches the workers from the terminal; SIGTERM does not
            for process in list(pool._processes.values()):
                try:
                    os.kill(process.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        for future, cell in futures.items():  # the running cells end at their checkpoints; report them
            if future in reported or future.cancelled():
                continue
            try:
                report(cell, future.result(timeout=120))
            except Exception:  # noqa: BLE001 - a worker that died with the interruption
                pass
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def local_gpu_count() -> int:
    """CUDA devices this machine shows torch (what a local Ray instance is given to share out)."""
    import torch

    return torch.cuda.device_count()


def _check_gpus(available: float, gpus_per_cell: float, where: str) -> None:
    # Ray queues a task whose resources no node has forever, without an error: refuse it up front.
    if gpus_per_cell > available:
        raise ConfigError(f"--gpus-per-cell {gpus_per_cell:g}: {where} has {available:g} GPU(s), so no cell could "
                          "ever be scheduled; ask for fewer, use a cluster with GPUs (--address), or drop the option "
                          "to run the cells on CPUs")


def _ray(todo: list[RunConfig], root: Path, jobs: int, address: str | None,
         report: Callable[[RunConfig, dict], None], gpus_per_cell: float = 0.0) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'ascbench[ray]'") from None
    env = {k: v for k, v in os.environ.items() if k.startswith("ASCBENCH_")}
    if address:
        ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
    else:  # a local instance sized like the local executor, with this machine's GPUs
        gpus = local_gpu_count()
        _check_gpus(gpus, gpus_per_cell, "this machine")
        ray.init(num_cpus=default_jobs(), num_gpus=gpus, include_dashboard=False, runtime_env={"env_vars": env},
                 log_to_driver=False, object_store_memory=200 * 1024 * 1024)
    try:
        if address:
            _check_gpus(ray.cluster_resources().get("GPU", 0.0), gpus_per_cell, f"the Ray cluster at {address}")
        task = ray.remote(max_retries=0)(_run_cell_packed)
        # Ray hides the GPUs a task was not given (CUDA_VISIBLE_DEVICES), so a cell with --device auto
        # trains on its own share; several cells may share one GPU with a fraction (e.g. 0.5).
        pending = {task.options(num_cpus=cell.threads or 1, num_gpus=gpus_per_cell).remote(cell.to_dict()): cell
                   for cell in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - a worker that died
                outcome = {"status": "failed", "reason": f"Ray task failed: {type(exc).__name__}: {exc}"}
            if outcome["status"] == "done":
                store_packed_run(root, outcome["run_id"], outcome.pop("files"), outcome.pop("row"))
            report(cell, outcome)
    finally:
        ray.shutdown()


def _check_executor_args(executor: str, jobs: int, gpus_per_cell: float) -> None:
    """Refuse executor settings that cannot work, before any cell is planned."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; valid executors: {', '.join(EXECUTORS)}")
    if gpus_per_cell < 0:
        raise ConfigError(f"--gpus-per-cell must be 0 or more, not {gpus_per_cell:g}")
    if gpus_per_cell and executor != "ray":
        raise ConfigError("--gpus-per-cell needs --executor ray (Ray shares the GPUs out among cells); the local "
                          "executor runs each cell on the device its --device names")
    if jobs < 1:
        raise ConfigError("--jobs must be at least 1")


class _Progress:
    """Collects each cell's outcome as its executor reports it, and shows it: a bar and a line per cell, or
    log lines with ``progress=False`` (a sweep under nohup should not fill its log with bar redraws)."""

    def __init__(self, cells: list[RunConfig], skipped: dict[int, CellOutcome], progress: bool):
        self.outcomes = dict(skipped)
        self._position = {id(c): i for i, c in enumerate(cells)}
        self._cells = cells
        self._progress = progress
        self._counts = {"done": 0, "failed": 0, "interrupted": 0, "skipped": len(skipped)}
        self._bar = tqdm(total=len(cells), initial=len(skipped), desc="sweep", unit="cell", disable=not progress)

    def report(self, cell: RunConfig, outcome: dict) -> None:
        result = CellOutcome(cell, outcome["status"], outcome.get("run_id"), outcome.get("accuracy"),
                             outcome.get("reason"), outcome.get("seconds", 0.0), outcome.get("gpus", ()))
        self.outcomes[self._position[id(cell)]] = result
        self._counts[result.status] += 1
        self._bar.update(1)
        self._bar.set_postfix(self._counts)
        line = (f"{describe(cell)}: macro accuracy {100 * result.accuracy:.2f} % ({result.seconds:.0f} s, {result.run_id})"
                if result.status == "done" else f"{describe(cell)}: {result.status.upper()}: {result.reason}")
        self._bar.write(line) if self._progress else log.info("%s", line)

    def close(self) -> list[CellOutcome]:
        """One outcome per cell in the grid's order; a cell an interruption left unstarted is ``interrupted``."""
        self._bar.close()
        for i, cell in enumerate(self._cells):
            self.outcomes.setdefault(i, CellOutcome(cell, "interrupted", reason="not started"))
        return [self.outcomes[i] for i in range(len(self._cells))]


def run_sweep(cells: list[RunConfig], *, executor: str = "local", jobs: int | None = None, address: str | None = None,
              runs_root: str | os.PathLike | None = None, registry: Registry | None = None,
              progress: bool = True, published: str | os.PathLike | None = None,
              gpus_per_cell: float = 0.0) -> list[CellOutcome]:
    """Run every cell not yet in the results store (nor, given ``published``, in that published
    leaderboard); returns one outcome per cell, in the grid's order.

    ``gpus_per_cell`` (Ray only) is each cell's share of a GPU; Ray runs as many cells at once as the
    GPUs allow and shows each only its own.
    """
    jobs = jobs or default_jobs()
    _check_executor_args(executor, jobs, gpus_per_cell)
    check_names(cells, registry or get_registry())
    root = runs_dir(runs_root)
    check_output_folder(root, flag="--runs-dir", allow=("store",))  # before the folder is made: never inside a run
    root.mkdir(parents=True, exist_ok=True)
    cells = plan(cells, jobs)
    made = already_made(cells, root, published, registry)
    skipped = {i: CellOutcome(cells[i], "skipped", row["run_id"], row.get("macro_accuracy"),
                              f"already in {'the results store' if where == 'stored' else published}")
               for i, (where, row) in made.items()}
    todo = [cell for i, cell in enumerate(cells) if i not in made]
    stored = sum(where == "stored" for where, _ in made.values())
    log.info("sweep: %d cells, %s, %d to run with the %s executor (%d at a time)", len(cells),
             f"{stored} already in {root}" + (f", {len(made) - stored} published in {published}" if published else ""),
             len(todo), executor, jobs)
    tracker = _Progress(cells, skipped, progress)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_terminated) if in_main_thread else None
    try:
        if todo and executor == "local":
            _local(todo, root, jobs, tracker.report)
        elif todo:
            _ray(todo, root, jobs, address, tracker.report, gpus_per_cell)
    except KeyboardInterrupt:
        log.warning("sweep interrupted: finished cells are stored; run the same sweep again to continue")
    finally:
        outcomes = tracker.close()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return outcomes


_DEFAULT_CELL = RunConfig()


def describe(cell: RunConfig) -> str:
    """One line naming the cell: its plugins, split and seed, then its recipe and any plugin option or model
    argument it sets (two cells of a ``--grid recipe.budget=0.1,0.5`` sweep must not read alike)."""
    parts = [cell.model, cell.strategy]
    if cell.semi != "none":
        parts.append(cell.semi)
    parts += [cell.dataset, cell.protocol]
    if cell.labeled is not None:
        parts.append(f"labeled {cell.labeled:g}")
    parts.append(f"seed {cell.seed}")
    if cell.recipe:
        parts.append(f"recipe {cell.recipe}")
    settings = [f"{kind}.{key}={value}" for kind, values in sorted(cell.options.items()) for key, value in sorted(values.items())]
    settings += [f"model.{key}={value}" for key, value in sorted(cell.model_kwargs.items())]
    settings += [f"{name}={getattr(cell, name)}" for name in ("precision", "context")
                 if getattr(cell, name) != getattr(_DEFAULT_CELL, name)]
    return " / ".join(parts) + (f" ({', '.join(settings)})" if settings else "")
