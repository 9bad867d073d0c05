"""One benchmark run, start to finish: the stages of ``ascbench.pipeline`` (resolve, load, features, split, train,
evaluate, profile) inside a run slot with checkpoints, logs and loggers, then stored (``commit_run``)."""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ascbench._version import __version__
from ascbench import callbacks, distributed, pipeline, provenance
from ascbench.config import RunConfig
from ascbench.checkpoint import Checkpointer, checkpointing
from ascbench.data.dataset import ClipDataset
from ascbench.device import Compute, ModelNeeds
from ascbench.errors import ConfigError, DataError, RunInterrupted
from ascbench.fileio import cache_areas, cache_root, check_output_folder, is_within, mark_cache_area
from ascbench.pretraining import pretrained_state
from ascbench.metadata_ceiling import describe as describe_ceiling
from ascbench.registry import Registry
from ascbench.results import RunRecord, RunSlot, check_unfinished, commit_run, open_run, runs_dir
from ascbench.records import derived_row_fields
from ascbench.job import TrainingJob
from ascbench.options import frontend_name, resolve_for
from ascbench.split_plan import SplitPlan
from ascbench.specs import SemiSpec
from ascbench.training import DataBundle

log = logging.getLogger("ascbench")


@contextmanager
def _log_to(path: Path):
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def _seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_run_id(config: RunConfig) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{config.model}-{config.strategy}-{config.protocol}-s{config.seed}-{config.digest()[:6]}"


def execute(config: RunConfig, *, registry: Registry | None = None, runs_root: str | os.PathLike | None = None,
            progress: bool = True, resume: str | os.PathLike | None = None) -> RunRecord:
    """Run one benchmark cell and store it; returns the stored record.

    An unfinished run of the same config in the runs directory (killed, or stopped with Ctrl-C) is
    continued from its last epoch checkpoint; ``resume`` names one explicitly.
    """
    plan = pipeline.resolve(config, registry)  # every name, option and file, before any data is read
    config = plan.config  # with plugins' current names (a protocol's old name resolved)
    # An absent GPU fails here, in a second; --precision auto is resolved for this device and model (recorded).
    compute = Compute.from_names(config.device, config.precision, ModelNeeds.of(plan.model),
                                 memory_format=config.memory_format)
    world = _prepare_process(config, plan.semi, compute, resume)
    root = runs_dir(runs_root) if resume is None else Path(resume).parent
    if resume is not None:  # what --resume names is checked first: its parent is only a runs folder if it is a run
        check_unfinished(Path(resume))
    _check_places(root, config)
    slot = _open_slot(root, config, resume, world)
    checkpointer = Checkpointer(slot.path, config.digest()) if world == 1 else None
    started = time.perf_counter()
    history = callbacks.EpochHistory()
    loggers = [history] + (_start_loggers(plan.loggers, config, slot.run_id, root) if distributed.is_main() else [])
    try:
        with _log_to(slot.path / "log.txt"), (checkpointing(checkpointer) if checkpointer else nullcontext()), \
                callbacks.logging_to(loggers):
            _log_start(config, slot.run_id, world, checkpointer)
            outcome = _run_stages(plan, compute, progress)
            outcome.timings["total_s"] = time.perf_counter() - started
            if checkpointer and checkpointer.earlier_s:  # a resumed run reports its whole wall time
                outcome.timings["before_resume_s"] = checkpointer.earlier_s
                outcome.timings["total_s"] += checkpointer.earlier_s
            metrics = _run_metrics(plan, outcome, compute, checkpointer, world, history)
            callbacks.run_end({k: metrics[k] for k in ("macro_accuracy", "accuracy", "macro_f1", "log_loss")})
            _write_artifacts(slot.path, config, outcome)
            if metrics["accuracy"] is not None:
                log.info("macro accuracy %.4f, accuracy %.4f, macro-F1 %.4f, log loss %.4f", metrics["macro_accuracy"],
                         metrics["accuracy"], metrics["macro_f1"], metrics["log_loss"])
    except KeyboardInterrupt:
        slot.release()  # the checkpoint stays for a resume
        where = checkpointer.last_position if checkpointer else None
        raise RunInterrupted(
            f"run {slot.run_id} interrupted; " + (f"its last checkpoint is at {where}" if where else "no epoch had finished")
            + f". Resume with `ascbench run --resume {slot.path}` or by running the same command again") from None
    except BaseException:
        slot.discard()  # a failed run leaves nothing half-written behind
        raise
    record = RunRecord(run_id=slot.run_id, config=config.to_record(), metrics=metrics,
                       row=_result_row(slot.run_id, config, metrics, compute, world))
    return _store(root, slot, record)


@dataclass
class _StagesOutcome:
    """What the pipeline's stages produced for one run, before it is scored into a record."""

    dataset: ClipDataset
    features: pipeline.RunFeatures
    split_plan: SplitPlan
    data: DataBundle
    job: TrainingJob
    model: torch.nn.Module
    metrics: dict
    complexity: dict
    timings: dict[str, float]


def _prepare_process(config: RunConfig, semi: SemiSpec, compute: Compute, resume: str | os.PathLike | None) -> int:
    """Threads, seeds and the process group; returns the number of data-parallel processes."""
    if config.threads:
        torch.set_num_threads(config.threads)
    _seed_everything(config.seed)
    distributed.setup("nccl" if compute.device.type == "cuda" else "gloo")
    world = distributed.world_size()
    if world > 1 and not semi.data_parallel:  # a capability the method declares (SemiSpec.data_parallel)
        raise ConfigError(f"--semi {config.semi} cannot run data-parallel (its spec says data_parallel=False): "
                          "run it in one process")
    if world > 1 and resume:
        raise ConfigError("data-parallel runs cannot --resume: run it again from the start, or resume in one process")
    return world


def _check_places(root: Path, config: RunConfig) -> None:
    """A run writes into its runs directory, the cache and its log folder; none of them may lie inside another
    place ascbench keeps (runs inside a published board or the cache, a cache inside the results store, logs
    inside a finished run), or the run would change what that place's owner vouches for."""
    if not (root.exists() and not root.is_dir()):  # a file there: open_run says so, with what to pass instead
        check_output_folder(root, flag="--runs-dir", allow=("store",))
    check_output_folder(cache_root(), flag="--cache-dir", allow=("cache",))
    for area in cache_areas():  # by path too: a fresh runs folder has no results.jsonl yet to be recognised by
        if is_within(area, root) or is_within(root, area):
            raise ConfigError(f"the cache {area} and the runs directory {root} overlap; ascbench keeps them apart "
                              "(a run's files must not be cache entries, nor the reverse): point --cache-dir or "
                              "--runs-dir elsewhere")
    mark_cache_area(cache_root())  # tagged, so outputs stay out of it after $ASCBENCH_CACHE_DIR changes
    if config.log_dir:
        check_output_folder(config.log_dir, flag="--log-dir", allow=("store",))
        if Path(config.log_dir).resolve() == root.resolve():
            # Loggers write into LOG_DIR/RUN_ID: here, the very folder the finished run is moved to, so the run
            # could not be stored. Refused before any training, not after it.
            raise ConfigError(f"--log-dir {config.log_dir} is the runs directory: loggers write into LOG_DIR/RUN_ID, "
                              f"where the finished run itself is stored; leave --log-dir unset (logs go to "
                              f"{root / 'logs'}) or pass another folder")


def _open_slot(root: Path, config: RunConfig, resume: str | os.PathLike | None, world: int) -> RunSlot:
    """The run's staging directory: in the results store on the main process, a scratch one on other ranks."""
    if distributed.is_main():
        # A data-parallel run starts afresh: its ranks could not all pick up one checkpoint in step.
        return open_run(root, config.to_record(), config.digest(), make_run_id(config), Path(resume) if resume else None,
                        adopt_unfinished=world == 1)
    # other ranks write nothing to the results store
    return RunSlot(make_run_id(config), Path(tempfile.mkdtemp(prefix=f"ascbench-rank{distributed.rank()}-")), False)


def _log_start(config: RunConfig, run_id: str, world: int, checkpointer: Checkpointer | None) -> None:
    if world > 1:
        log.info("data-parallel over %d processes (rank %d)", world, distributed.rank())
    if checkpointer and checkpointer.resumed_from:
        log.info("run %s: resuming from its checkpoint (%s)", run_id, checkpointer.resumed_from)
    # One readable line; every field is in the run's config.json.
    log.info("run %s: %s / %s / semi %s on %s, %s, seed %d", run_id, config.model, config.strategy, config.semi,
             config.dataset, config.protocol, config.seed)


def _run_stages(plan: pipeline.Plan, compute: Compute, progress: bool) -> _StagesOutcome:
    """load, features, split, train, evaluate and profile, each timed."""
    config = plan.config
    timings: dict[str, float] = {}
    t = time.perf_counter()
    dataset = pipeline.load(plan)
    timings["data_s"] = time.perf_counter() - t

    t = time.perf_counter()
    run_features = pipeline.features(plan, dataset, progress)
    checked, feature_cfg = run_features.checked, plan.feature_config
    timings["features_s"] = time.perf_counter() - t
    log.info("features: %s (%s)", checked.features.shape, "cache hit" if checked.cached else "extracted")

    t = time.perf_counter()
    split_plan = pipeline.split(plan, dataset)
    split, part = split_plan.split, split_plan.partition
    timings["data_s"] += time.perf_counter() - t
    log.info("split by %s: %d labeled, %d unlabeled, %d validation, %d test clips%s",
             split.info["group_by"], len(part.labeled), len(part.unlabeled), len(part.val), len(part.test),
             f"; not scored (no labeled training clip): {', '.join(split.excluded_classes)}" if split.excluded_classes else "")
    log.info("metadata ceiling: %s", describe_ceiling(split_plan.ceiling))
    data = DataBundle.build(dataset, checked.features, split.train, run_features.kept_rows, config.normalization,
                            feature_cfg.sample_rate / feature_cfg.hop_length)

    notes: dict = {}
    job = TrainingJob(
        config=config, model_spec=plan.model, data=data, partition=part, progress=progress, notes=notes,
        options=plan.options["strategy"], semi_method=plan.semi, semi_options=plan.options["semi"],
        pretrained_state=lambda: pretrained_state(plan, progress, notes),
    )
    t = time.perf_counter()
    model = pipeline.train(plan, job)
    # Training compute and batch assembly apart, so the leaderboard's training cost is the model's.
    timings["loading_s"] = data.loading_s
    timings["train_s"] = time.perf_counter() - t - data.loading_s

    t = time.perf_counter()
    metrics = pipeline.evaluate(plan, model, data, part.test, dataset.groups(split.info["group_by"]))
    timings["eval_s"] = time.perf_counter() - t
    complexity = pipeline.profile(plan, model, checked.features.shape[2], data.time.shape[1],
                                  dataset.clip_seconds, str(compute.device))
    model = model.cpu()  # weights are stored from the CPU
    return _StagesOutcome(dataset, run_features, split_plan, data, job, model, metrics, complexity, timings)


def _run_metrics(plan: pipeline.Plan, outcome: _StagesOutcome, compute: Compute, checkpointer: Checkpointer | None,
                 world: int, history: callbacks.EpochHistory) -> dict:
    """The run's metrics.json: the scores and everything needed to read, trust and repeat them."""
    config, split_plan = plan.config, outcome.split_plan
    split, part = split_plan.split, split_plan.partition
    return {
        **outcome.metrics,
        "complexity": outcome.complexity,
        "split": {**split.info, "labeled": len(part.labeled), "unlabeled": len(part.unlabeled), "val": len(part.val)},
        "metadata_ceiling": split_plan.ceiling,
        "strategy_notes": outcome.job.notes,
        "timings": {k: round(v, 3) for k, v in outcome.timings.items()},
        "dataset_fingerprint": outcome.dataset.fingerprint(),
        "skipped_files": outcome.features.skipped,
        "resumed_from": checkpointer.resumed_from if checkpointer else None,
        "data_parallel_processes": world,
        "split_fingerprint": split_plan.fingerprint(),
        "features": {"preset": plan.front_end, **asdict(plan.feature_config)},
        "provenance": {**provenance.collect(), "plugins": _plugin_provenance(config, plan.registry)},
        "compute": compute.describe(),
        "recipe": _recipe_record(config, plan.registry),
        "history": history.stages,
    }


def _write_artifacts(staging: Path, config: RunConfig, outcome: _StagesOutcome) -> None:
    """The run's split (who was used how) and its weights, with what is needed to predict from them."""
    _write_split(staging / "split.csv", outcome.dataset.meta, outcome.split_plan)
    data = outcome.data
    torch.save({"model": outcome.model.state_dict(), "mean": data.mean, "std": data.std, "cities": data.cities,
                "classes": outcome.dataset.classes, "config": config.to_record()}, staging / "model.pt")


def _result_row(run_id: str, config: RunConfig, metrics: dict, compute: Compute, world: int) -> dict:
    """The run's line in results.jsonl: what the leaderboard and ``load_results`` read."""
    return {
        "run_id": run_id,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # Identity (model, strategy, seed, fold, quick: a --quick run is never published or ranked by default),
        # complexity, grouping, metadata ceiling, precision and fingerprints, copied from the config and metrics by
        # the one function the record checks use, so a row and its check cannot drift apart.
        **derived_row_fields(config.to_record(), metrics),
        "config_digest": config.digest(), "experiment_digest": config.experiment_digest(),
        "threads": torch.get_num_threads(), "processes": world,
        "accuracy": metrics["accuracy"], "macro_accuracy": metrics["macro_accuracy"], "macro_f1": metrics["macro_f1"],
        "log_loss": metrics["log_loss"], "leaky": metrics["split"].get("leaky", False),
        "worst_city_accuracy": metrics.get("worst_city_accuracy"),
        "worst_period_accuracy": metrics.get("worst_period_accuracy"),
        # From the stored (3-decimal) timings, so the row and the record always agree on the rounding.
        "wall_s": round(metrics["timings"]["total_s"], 2), "train_s": round(metrics["timings"]["train_s"], 2),
        "device": str(compute.device),
        "ascbench": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "git_commit": metrics["provenance"]["git_commit"], "cpu": metrics["provenance"]["cpu"],
    }


def _store(root: Path, slot: RunSlot, record: RunRecord) -> RunRecord:
    """Commit the run to the results store (main process only); a failure here leaves earlier results whole."""
    if not distributed.is_main():
        slot.discard()
        return record
    try:
        commit_run(root, slot, record)
    except OSError as exc:
        slot.discard()
        raise DataError(f"cannot store run {record.run_id} in {root}: {exc.strerror or exc}; "
                        "earlier results are untouched") from exc
    except KeyboardInterrupt:
        if (root / record.run_id).is_dir() and not slot.path.exists():
            slot.release()
            return record  # the row was appended before the interruption acted (it waits for it): the run is stored
        # Stopped while storing: commit_run took its folder back, and its checkpoint is already gone (a stored run
        # needs none), so there is nothing to resume. Left as it is, it would be a run that nothing lists.
        slot.discard()
        raise RunInterrupted(f"run {record.run_id} was interrupted while being stored; nothing of it was stored and "
                             "earlier results are untouched. Run the same command again") from None
    return record


def _recipe_record(config: RunConfig, registry: Registry) -> dict | None:
    """The recipe a run named, its settings, and the ones the run overrode (the config holds the values used)."""
    if not config.recipe:
        return None
    spec = registry.recipe(config.recipe)
    options = resolve_for(config, registry, "recipe")
    settings = spec.settings_for(config.dataset, options)

    def used(key: str):  # as stored: lists, not tuples
        value = config.value(key)
        return list(value) if isinstance(value, tuple) else value

    return {"name": spec.name, "source": spec.source, "plugin": registry.owner("recipe", spec.name),
            "options": asdict(options) if options is not None else {}, "settings": settings,
            "overridden": {k: used(k) for k, v in settings.items() if used(k) != (list(v) if isinstance(v, tuple) else v)}}


def _write_split(path: Path, meta: pd.DataFrame, split_plan: SplitPlan) -> None:
    pd.DataFrame({"filename": meta["filename"], "role": split_plan.roles(len(meta))}).to_csv(path, index=False)


def _plugin_provenance(config: RunConfig, registry: Registry) -> list[dict]:
    """Package, version and source hash of every plugin the run used."""
    used = [("model", config.model), ("strategy", config.strategy), ("semi", config.semi), ("dataset", config.dataset),
            ("protocol", config.protocol), ("front-end", frontend_name(config, registry))]
    used += [("recipe", config.recipe)] if config.recipe else []
    used += [("logger", name) for name in config.loggers]
    return [registry.provenance(kind, name) for kind, name in used if registry.has(kind, name)]


def _start_loggers(specs: list, config: RunConfig, run_id: str, root: Path) -> list[callbacks.RunLogger]:
    """Each named logger for this run, under ``<log dir>/<run id>``; one that cannot start is left out with a
    warning (a dashboard that fails must not cost the run)."""
    base = Path(config.log_dir) if config.log_dir else root / "logs"
    started = []
    for spec in specs:
        ctx = callbacks.LoggerContext(run_id, config.to_record(), base / run_id)
        try:
            started.append(spec.create(ctx))
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            log.warning("logger %r could not start (%s: %s); the run goes on without it", spec.name,
                        type(exc).__name__, exc)
    return started
