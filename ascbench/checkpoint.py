"""Epoch-end checkpoints, so that a killed run resumes where it stopped and ends with the same numbers.

A run is a sequence of training stages (``fit`` calls: a pretraining stage, fine-tuning, one per
pseudo-label round, ...). Strategies are deterministic given the seed, so a resumed run simply runs
the strategy again: a stage that finished is replayed from its stored result in no time, the stage
that was interrupted continues from its last epoch with every piece of state restored (weights,
optimiser, schedule, random generators, early-stopping bookkeeping, the hook's own state), and the
stages after it run as usual. Stages are named by their description and how often it occurred, so
a pretraining stage that got cached in the meantime does not shift the names of the others.

The checkpoint is one file in the run's staging directory, replaced atomically at every epoch end. The state is
copied at the epoch end; serialising and writing it (with its fsync, tens of milliseconds) happen on a writer
thread while the next epoch trains. At most one write is in flight; the next save, and leaving
:func:`checkpointing`, wait for it, so a run never commits, and an interrupted run never exits, before its last
checkpoint is on disk. A process killed mid-write keeps the previous checkpoint whole (the write is atomic).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ascbench.errors import DataError
from ascbench.fileio import atomic_write_bytes

log = logging.getLogger("ascbench")

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT_VERSION = 1

_active: ContextVar["Checkpointer | None"] = ContextVar("ascbench_checkpointer", default=None)


class Checkpointer:
    """The checkpoint of one run; ``fit`` finds the active one through :func:`active`."""

    def __init__(self, directory: Path, config_digest: str):
        self.path = Path(directory) / CHECKPOINT_FILE
        self.config_digest = config_digest
        self._seen: dict[str, int] = {}
        self.resumed_from: str | None = None  # "stage, epoch N" when this process picked up a checkpoint
        self.state: dict[str, Any] = {"version": FORMAT_VERSION, "config_digest": config_digest,
                                      "finished": {}, "current": None, "elapsed_s": 0.0}
        self._started = time.perf_counter()
        self._writer: threading.Thread | None = None
        self._write_error: BaseException | None = None
        self.earlier_s = 0.0  # wall time spent by the processes that ran this run before it was resumed
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(f"checkpoint {self.path} is unreadable ({type(exc).__name__}: {exc}); "
                            f"delete its directory to start the run afresh") from None
        if state.get("version") != FORMAT_VERSION or state.get("config_digest") != self.config_digest:
            raise DataError(f"checkpoint {self.path} belongs to another configuration "
                            f"(digest {state.get('config_digest')}, this run {self.config_digest})")
        self.state = state
        self.earlier_s = float(state.get("elapsed_s", 0.0))
        current = state.get("current")
        if current is not None:
            self.resumed_from = f"{current['stage']}, epoch {current['epoch']}"
        elif state["finished"]:
            self.resumed_from = f"after {list(state['finished'])[-1]}"

    def stage_name(self, desc: str) -> str:
        """A name for the next stage described as ``desc``, unique within the run."""
        self._seen[desc] = self._seen.get(desc, 0) + 1
        return desc if self._seen[desc] == 1 else f"{desc} #{self._seen[desc]}"

    def finished(self, stage: str) -> dict | None:
        """What a finished stage left: ``{"model": state_dict, "result": {...}}``."""
        return self.state["finished"].get(stage)

    def in_progress(self, stage: str) -> dict | None:
        current = self.state["current"]
        return current if current is not None and current["stage"] == stage else None

    def save_epoch(self, stage: str, epoch: int, payload: dict) -> None:
        self.state["current"] = {"stage": stage, "epoch": epoch, **payload}
        self._write()

    def finish_stage(self, stage: str, model_state: dict, result: dict) -> None:
        self.state["finished"][stage] = {"model": {k: v.clone() for k, v in model_state.items()}, "result": result}
        self.state["current"] = None
        self._write()
        self.flush()  # stage ends are few: each is on disk before the next stage (or anything else) starts

    @property
    def last_position(self) -> str | None:
        """Where the checkpoint stands: the stage and epoch a resume would continue after."""
        current = self.state["current"]
        if current is not None:
            return f"{current['stage']}, epoch {current['epoch']}"
        if self.state["finished"]:
            return f"end of {list(self.state['finished'])[-1]}"
        return None

    def _write(self) -> None:
        self.state["elapsed_s"] = self.earlier_s + time.perf_counter() - self._started
        state = _snapshot(self.state)  # training goes on changing the live tensors and lists in place
        self.flush()
        self._writer = threading.Thread(target=self._write_now, args=(state,), name="ascbench-checkpoint")
        self._writer.start()

    def _write_now(self, state: dict) -> None:
        try:
            buffer = io.BytesIO()
            torch.save(state, buffer)
            atomic_write_bytes(self.path, buffer.getvalue())
        except BaseException as exc:  # raised in the training thread by the next flush
            self._write_error = exc

    def flush(self) -> None:
        """Wait for the checkpoint write in flight; raise its error (a full disk) here, in the training thread."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        error, self._write_error = self._write_error, None
        if error is not None:
            raise error


def _snapshot(value: Any) -> Any:
    """A copy of a checkpoint's state that later training cannot change: tensors and arrays cloned, containers
    rebuilt (a state dict keeps its type and its ``_metadata``, which ``load_state_dict`` reads)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        copied = type(value)((k, _snapshot(v)) for k, v in value.items())
        if getattr(value, "__dict__", None):
            copied.__dict__.update(value.__dict__)
        return copied
    if type(value) is list:
        return [_snapshot(v) for v in value]
    if type(value) is tuple:
        return tuple(_snapshot(v) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(_snapshot(v) for v in value))
    return value  # numbers, text, None, torch.Size: immutable


def active() -> Checkpointer | None:
    return _active.get()


@contextmanager
def checkpointing(checkpointer: Checkpointer) -> Iterator[Checkpointer]:
    token = _active.set(checkpointer)
    try:
        yield checkpointer
    except BaseException:
        try:
            checkpointer.flush()  # an interrupted run leaves its last checkpoint whole on disk
        except Exception as exc:  # the run's own error is the one to report
            log.warning("the last checkpoint could not be written: %s", exc)
        raise
    else:
        checkpointer.flush()
    finally:
        _active.reset(token)
