"""One benchmark run, start to finish: resolve plugins, split, extract features, train, score, store."""

from __future__ import annotations

import logging
import os
import platform
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ascbench._version import __version__
from ascbench import callbacks, distributed, provenance
from ascbench.complexity import latency_ms, profile, torchinfo_macs
from ascbench.config import RunConfig
from ascbench.checkpoint import Checkpointer, checkpointing
from ascbench.data.audio import FileReport
from ascbench.device import Compute
from ascbench.data.dataset import DatasetOptions
from ascbench.errors import AscbenchError, ConfigError, DataError, PluginError, RunInterrupted
from ascbench.features import CheckedFeatures, load_checked_features, unusable_files_error
from ascbench.metrics import evaluate
from ascbench.options import resolve_all
from ascbench.pretraining import pretrained_state
from ascbench.metadata_ceiling import describe as describe_ceiling
from ascbench.split_plan import check_protocol_options, plan_split
from ascbench.registry import Registry, get_registry
from ascbench.results import RunRecord, RunSlot, commit_run, open_run, runs_dir
from ascbench.job import TrainingJob
from ascbench.training import DataBundle, predict, probe_model

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
    registry = registry or get_registry()
    # Resolve every name first: a typo fails in a second, not after training.
    model_spec = registry.model(config.model)
    strategy_spec = registry.strategy(config.strategy)
    semi_spec = registry.semi(config.semi)
    dataset_spec = registry.dataset(config.dataset)
    check_protocol_options(config, registry.protocol(config.protocol), registry.owner("protocol", config.protocol))
    _check_strategy_options(config, strategy_spec, registry)
    own_options = resolve_all(config, registry)  # every plugin's own options, before any data is read
    if config.pretrained and not Path(config.pretrained).is_file():  # before any audio is read, not after
        raise ConfigError(f"--pretrained {config.pretrained}: no such file; pass the path of a torch.save checkpoint "
                          "(an ascbench run's model.pt or an official checkpoint)")
    if config.recipe:
        registry.recipe(config.recipe)  # an unknown recipe in a stored config fails here, naming the valid ones
    feature_cfg = own_options["frontend"]  # the front-end's settings, with any frontend.FIELD options applied
    logger_specs = [_logger_spec(registry, name) for name in config.loggers]

    compute = Compute.from_names(config.device, config.precision)  # an absent GPU fails here, in a second
    if config.threads:
        torch.set_num_threads(config.threads)
    _seed_everything(config.seed)
    distributed.setup("nccl" if compute.device.type == "cuda" else "gloo")
    world = distributed.world_size()
    if world > 1 and (config.semi == "mean-teacher" or resume):
        raise ConfigError("data-parallel runs support neither --semi mean-teacher nor --resume")
    root = runs_dir(runs_root) if resume is None else Path(resume).parent
    if distributed.is_main():
        # A data-parallel run starts afresh: its ranks could not all pick up one checkpoint in step.
        slot = open_run(root, config.to_dict(), config.digest(), make_run_id(config), Path(resume) if resume else None,
                        adopt_unfinished=world == 1)
    else:  # other ranks write nothing to the results store
        slot = RunSlot(make_run_id(config), Path(tempfile.mkdtemp(prefix=f"ascbench-rank{distributed.rank()}-")), False)
    run_id, staging = slot.run_id, slot.path
    checkpointer = Checkpointer(staging, config.digest()) if world == 1 else None
    timings: dict[str, float] = {}
    started = time.perf_counter()
    history = callbacks.EpochHistory()
    loggers = [history] + (_start_loggers(logger_specs, config, run_id, root) if distributed.is_main() else [])
    try:
        with _log_to(staging / "log.txt"), (checkpointing(checkpointer) if checkpointer else nullcontext()), \
                callbacks.logging_to(loggers):
            if world > 1:
                log.info("data-parallel over %d processes (rank %d)", world, distributed.rank())
            if checkpointer and checkpointer.resumed_from:
                log.info("run %s: resuming from its checkpoint (%s)", run_id, checkpointer.resumed_from)
            # One readable line; every field is in the run's config.json.
            log.info("run %s: %s / %s / semi %s on %s, %s, seed %d", run_id, config.model, config.strategy, config.semi,
                     config.dataset, config.protocol, config.seed)
            t = time.perf_counter()
            dataset = dataset_spec.load(DatasetOptions(data_root=Path(config.data_root) if config.data_root else None,
                                                       plugin=own_options["dataset"]))
            timings["data_s"] = time.perf_counter() - t
            _check_model_builds(model_spec, config, registry, dataset, feature_cfg)

            t = time.perf_counter()
            checked = load_checked_features(dataset, feature_cfg, progress=progress, threads=config.threads)
            kept_rows, skipped = _drop_bad_audio(dataset, checked, config)
            timings["features_s"] = time.perf_counter() - t
            log.info("features: %s (%s)", checked.features.shape, "cache hit" if checked.cached else "extracted")

            t = time.perf_counter()
            plan = plan_split(dataset, config, registry)
            split, part, ceiling = plan.split, plan.partition, plan.ceiling
            timings["data_s"] += time.perf_counter() - t
            log.info("split by %s: %d labeled, %d unlabeled, %d validation, %d test clips%s",
                     split.info["group_by"], len(part.labeled), len(part.unlabeled), len(part.val), len(part.test),
                     f"; not scored (no labeled training clip): {', '.join(split.excluded_classes)}" if split.excluded_classes else "")
            log.info("metadata ceiling: %s", describe_ceiling(ceiling))
            data = DataBundle.build(dataset, checked.features, split.train, kept_rows, config.normalization,
                                    feature_cfg.sample_rate / feature_cfg.hop_length)

            notes: dict = {}
            job = TrainingJob(
                config=config, model_spec=model_spec, data=data, partition=part, progress=progress, notes=notes,
                options=own_options["strategy"], semi_method=semi_spec, semi_options=own_options["semi"],
                pretrained_state=lambda: pretrained_state(config, registry, config.dataset, feature_cfg, progress, notes),
            )
            t = time.perf_counter()
            try:
                model = strategy_spec.train(job)
            except AscbenchError:
                raise
            except OSError as exc:  # a full or read-only disk under a checkpoint or cache write: not the plugin's fault
                where = exc.filename or "the runs or cache directory"
                raise DataError(f"cannot write {where}: {exc.strerror or exc}; free some space or choose a writable "
                                "--runs-dir / --cache-dir; nothing of this run was stored") from exc
            except Exception as exc:
                raise PluginError(
                    f"training failed in strategy {config.strategy!r} (plugin {registry.owner('strategy', config.strategy)!r}) "
                    f"with model {config.model!r} (plugin {registry.owner('model', config.model)!r}): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            # Training compute and batch assembly apart, so the leaderboard's training cost is the model's.
            timings["loading_s"] = data.loading_s
            timings["train_s"] = time.perf_counter() - t - data.loading_s

            t = time.perf_counter()
            if len(part.test):
                probs = predict(model, data, part.test)  # on the run's device
                meta = dataset.meta.iloc[part.test]
                metrics = evaluate(data.labels[part.test], probs, dataset.classes,
                                   cities=meta["city"].tolist(), periods=meta["period"].tolist())
                metrics["scores"] = _scores(registry, data.labels[part.test], probs, dataset.classes)
            else:  # a protocol without a test side (all-labeled): stored, not scored
                metrics = dict(UNSCORED)
            timings["eval_s"] = time.perf_counter() - t
            latency = latency_ms(model, feature_cfg.n_mels, checked.features.shape[2], data.time.shape[1])
            model = model.cpu()  # MACs are counted, and weights stored, on the CPU
            per_clip = profile(model, feature_cfg.n_mels, checked.features.shape[2], data.time.shape[1])
            per_second = profile(model, feature_cfg.n_mels, feature_cfg.n_frames(1.0), data.time.shape[1])
            timings["total_s"] = time.perf_counter() - started
            if checkpointer and checkpointer.earlier_s:  # a resumed run reports its whole wall time
                timings["before_resume_s"] = checkpointer.earlier_s
                timings["total_s"] += checkpointer.earlier_s

            one_second = feature_cfg.n_frames(1.0)
            metrics.update({
                "complexity": {**per_clip.as_dict(), "macs_per_second": per_second.macs,
                               "torchinfo_macs_per_second": torchinfo_macs(model, feature_cfg.n_mels, one_second, data.time.shape[1]),
                               "latency_ms": round(latency, 3), "latency_device": str(compute.device),
                               "clip_seconds": dataset.clip_seconds, "precision": "float32",
                               "model_kwargs": {**model_spec.default_kwargs, **config.model_kwargs}},
                "split": {**split.info, "labeled": len(part.labeled), "unlabeled": len(part.unlabeled),
                          "val": len(part.val)},
                "metadata_ceiling": ceiling,
                "strategy_notes": job.notes,
                "timings": {k: round(v, 3) for k, v in timings.items()},
                "dataset_fingerprint": dataset.fingerprint(),
                "skipped_files": skipped,
                "resumed_from": checkpointer.resumed_from if checkpointer else None,
                "data_parallel_processes": world,
                "split_fingerprint": plan.fingerprint(),
                "features": {"preset": config.feature_preset or dataset_spec.feature_preset, **asdict(feature_cfg)},
                "provenance": {**provenance.collect(), "plugins": _plugin_provenance(config, registry)},
                "compute": compute.describe(),
                "recipe": _recipe_record(config, registry),
                "history": history.stages,
            })
            callbacks.run_end({k: metrics[k] for k in ("macro_accuracy", "accuracy", "macro_f1", "log_loss")})
            _write_split(staging / "split.csv", dataset.meta, part)
            torch.save({"model": model.state_dict(), "mean": data.mean, "std": data.std, "cities": data.cities,
                        "classes": dataset.classes, "config": config.to_dict()}, staging / "model.pt")
            if metrics["accuracy"] is not None:
                log.info("macro accuracy %.4f, accuracy %.4f, macro-F1 %.4f, log loss %.4f", metrics["macro_accuracy"],
                         metrics["accuracy"], metrics["macro_f1"], metrics["log_loss"])
    except KeyboardInterrupt:
        slot.release()  # the checkpoint stays for a resume
        where = checkpointer.last_position if checkpointer else None
        raise RunInterrupted(
            f"run {run_id} interrupted; " + (f"its last checkpoint is at {where}" if where else "no epoch had finished")
            + f". Resume with `ascbench run --resume {staging}` or by running the same command again") from None
    except BaseException:
        slot.discard()  # a failed run leaves nothing half-written behind
        raise

    row = {
        "run_id": run_id,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": config.model, "strategy": config.strategy, "semi": config.semi, "dataset": config.dataset,
        "protocol": config.protocol,
        "labeled": config.labeled, "seed": config.seed, "config_digest": config.digest(),
        "experiment_digest": config.experiment_digest(), "threads": torch.get_num_threads(), "processes": world,
        "fold": f"{config.fold + 1}/{config.folds}" if config.folds else None,
        "accuracy": metrics["accuracy"], "macro_accuracy": metrics["macro_accuracy"], "macro_f1": metrics["macro_f1"],
        "log_loss": metrics["log_loss"], "metadata_ceiling": ceiling["best"], "group_by": split.info["group_by"],
        "worst_city_accuracy": metrics.get("worst_city_accuracy"),
        "worst_period_accuracy": metrics.get("worst_period_accuracy"),
        "params": metrics["complexity"]["params"], "macs": metrics["complexity"]["macs"],
        "macs_per_second": metrics["complexity"]["macs_per_second"], "param_kb": metrics["complexity"]["param_kb"],
        "latency_ms": metrics["complexity"]["latency_ms"],
        # From the stored (3-decimal) timings, so the row and the record always agree on the rounding.
        "wall_s": round(metrics["timings"]["total_s"], 2), "train_s": round(metrics["timings"]["train_s"], 2),
        "device": str(compute.device), "precision": compute.precision,
        "ascbench": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "git_commit": metrics["provenance"]["git_commit"], "cpu": metrics["provenance"]["cpu"],
        "dataset_fingerprint": metrics["dataset_fingerprint"], "split_fingerprint": metrics["split_fingerprint"],
    }
    record = RunRecord(run_id=run_id, config=config.to_dict(), metrics=metrics, row=row)
    if not distributed.is_main():
        slot.discard()
        return record
    try:
        commit_run(root, slot, record)
    except OSError as exc:
        slot.discard()
        raise DataError(f"cannot store run {run_id} in {root}: {exc.strerror or exc}; earlier results are untouched") from exc
    return record


def _recipe_record(config: RunConfig, registry: Registry) -> dict | None:
    """The recipe a run named, its settings, and the ones the run overrode (the config holds the values used)."""
    if not config.recipe:
        return None
    spec = registry.recipe(config.recipe)
    settings = spec.settings_for(config.dataset)

    def used(key: str):  # as stored: lists, not tuples
        value = config.value(key)
        return list(value) if isinstance(value, tuple) else value

    return {"name": spec.name, "source": spec.source, "plugin": registry.owner("recipe", spec.name),
            "settings": settings, "overridden": {k: used(k) for k, v in settings.items()
                                                 if used(k) != (list(v) if isinstance(v, tuple) else v)}}


# The metrics of a run whose protocol has no test side.
UNSCORED = {"num_clips": 0, "accuracy": None, "macro_accuracy": None, "macro_f1": None, "log_loss": None,
            "worst_city_accuracy": None, "worst_period_accuracy": None, "class_accuracy": {}, "city_accuracy": {},
            "period_accuracy": {}, "confusion_matrix": [], "scored": False}


def _check_strategy_options(config: RunConfig, spec, registry: Registry) -> None:
    """Pretraining options under a strategy that does not pretrain are refused, not ignored."""
    if spec.pretrains is not False:
        return
    given = [flag for flag, value in (("--pretrained", config.pretrained), ("--pretrain-on", config.pretrain_on),
                                      ("--pretrain-data-root", config.pretrain_data_root)) if value]
    if given:
        raise ConfigError(f"{', '.join(given)}: strategy {config.strategy!r} (plugin "
                          f"{registry.owner('strategy', config.strategy)!r}) trains from random weights and would ignore it; "
                          f"use --strategy finetune, freeze or linear-probe")


def _check_model_builds(spec, config: RunConfig, registry: Registry, dataset, feature_cfg) -> None:
    """Build the model once before feature extraction, so a bad ``--model-arg`` fails in seconds."""
    try:
        probe_model(spec, config, dataset, feature_cfg.n_mels, feature_cfg.n_frames(dataset.clip_seconds))
    except AscbenchError:
        raise
    except Exception as exc:
        args = " ".join(f"--model-arg {k}={v!r}" for k, v in config.model_kwargs.items()) or "its defaults"
        raise ConfigError(f"model {config.model!r} (plugin {registry.owner('model', config.model)!r}) cannot be "
                          f"built with {args}: {type(exc).__name__}: {exc}") from None


def _drop_bad_audio(dataset, checked: CheckedFeatures, config: RunConfig) -> tuple[np.ndarray | None, list[dict]]:
    """Refuse a dataset with unusable audio files, or leave them out with --skip-bad (listed in the record).

    Returns the feature rows of the clips kept (None: all of them; ``dataset.meta`` is cut to match)
    and the files left out.
    """
    reports = checked.reports
    if config.other_rate == "refuse":  # the resampling note becomes a problem
        reports = [r if r.problem or not any(n.startswith("sample rate") for n in r.notes) else
                   FileReport(r.filename, next(n for n in r.notes if n.startswith("sample rate")).split(" (")[0]
                              + f", the dataset declares {dataset.sample_rate} Hz (--other-rate refuse)")
                   for r in reports]
    bad = [r for r in reports if r.problem]
    noted = sorted({n.split(" (")[0] if "channels" in n or "sample rate" in n else "length differs" for r in reports for n in r.notes})
    if noted:
        log.info("audio notes for %s: %s (see `ascbench data check %s`)", dataset.name, "; ".join(noted), dataset.name)
    if not bad:
        return None, []
    if not config.skip_bad:
        raise unusable_files_error(dataset, bad, ", --skip-bad leaves them out")
    log.warning("skipping %d unusable audio file(s) of %s (listed in metrics.json)", len(bad), dataset.name)
    keep = ~dataset.meta["filename"].isin({r.filename for r in bad}).to_numpy()
    dataset.meta = dataset.meta[keep].reset_index(drop=True)
    return np.flatnonzero(keep), [{"filename": r.filename, "problem": r.problem} for r in bad]


def _write_split(path: Path, meta: pd.DataFrame, part) -> None:
    role = np.full(len(meta), "unused", dtype=object)
    for name in ("labeled", "unlabeled", "val", "test"):
        role[getattr(part, name)] = name
    pd.DataFrame({"filename": meta["filename"], "role": role}).to_csv(path, index=False)


def _scores(registry: Registry, y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict[str, float | None]:
    """Every registered metric on the test predictions; one that raises is stored as None with a warning
    (a broken metric plugin must not cost the run)."""
    scores: dict[str, float | None] = {}
    for name in registry.names("metric"):
        try:
            scores[name] = float(registry.metric(name).compute(y_true, probs, classes))
        except Exception as exc:  # noqa: BLE001
            log.warning("metric %r (plugin %r) failed: %s: %s", name, registry.owner("metric", name),
                        type(exc).__name__, exc)
            scores[name] = None
    return scores


def _plugin_provenance(config: RunConfig, registry: Registry) -> list[dict]:
    """Package, version and source hash of every plugin the run used."""
    used = [("model", config.model), ("strategy", config.strategy), ("dataset", config.dataset),
            ("protocol", config.protocol)]
    used += [("recipe", config.recipe)] if config.recipe else []
    used += [("logger", name) for name in config.loggers]
    return [registry.provenance(kind, name) for kind, name in used if name in registry.entries[kind]]


def _logger_spec(registry: Registry, name: str):
    """The logger named ``name``, its packages checked now: a missing one is one line before any work."""
    import importlib.util

    spec = registry.logger(name)
    missing = [module for module in spec.requires if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"--logger {name} needs the {', '.join(missing)} package: "
                          f"{spec.install or 'pip install ' + ' '.join(missing)}")
    return spec


def _start_loggers(specs: list, config: RunConfig, run_id: str, root: Path) -> list[callbacks.RunLogger]:
    """Each named logger for this run, under ``<log dir>/<run id>``; one that cannot start is left out with a
    warning (a dashboard that fails must not cost the run)."""
    base = Path(config.log_dir) if config.log_dir else root / "logs"
    started = []
    for spec in specs:
        ctx = callbacks.LoggerContext(run_id, config.to_dict(), base / run_id)
        try:
            started.append(spec.create(ctx))
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            log.warning("logger %r could not start (%s: %s); the run goes on without it", spec.name,
                        type(exc).__name__, exc)
    return started
