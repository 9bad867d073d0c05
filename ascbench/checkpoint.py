"""Epoch-end checkpoints, so that a killed run resumes where it stopped and ends with the same numbers.

A run is a sequence of training stages (``fit`` calls: a pretraining stage, fine-tuning, one per
pseudo-label round, ...). Strategies are deterministic given the seed, so a resumed run simply runs
the strategy again: a stage that finished is replayed from its stored result in no time, the stage
that was interrupted continues from its last epoch with every piece of state restored (weights,
optimiser, schedule, random generators, early-stopping bookkeeping, the hook's own state), and the
stages after it run as usual. Stages are named by their description and how often it occurred, so
a pretraining stage that got cached in the meantime does not shift the names of the others.

The checkpoint is one file in the run's staging directory, replaced atomically at every epoch end.
"""

from __future__ import annotations

import io
import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

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
        buffer = io.BytesIO()
        torch.save(self.state, buffer)
        atomic_write_bytes(self.path, buffer.getvalue())


def active() -> Checkpointer | None:
    return _active.get()


@contextmanager
def checkpointing(checkpointer: Checkpointer) -> Iterator[Checkpointer]:
    token = _active.set(checkpointer)
    try:
        yield checkpointer
    finally:
        _active.reset(token)
