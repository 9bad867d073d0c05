"""From a run config to the clips each role gets: protocol, the core's checks, partition, metadata ceiling.

The runner, ``ascbench data split`` and the fold pre-check of ``ascbench run --folds`` all go through
``plan_split``, so a previewed split is exactly the split a run trains and scores on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ascbench.applicability import check_applicable
from ascbench.config import RunConfig
from ascbench.data.dataset import ClipDataset
from ascbench.metadata_ceiling import metadata_ceiling
from ascbench.protocols import Partition, Split, partition, run_protocol
from ascbench.registry import Registry
from ascbench.options import resolve_for


@dataclass
class SplitPlan:
    split: Split
    partition: Partition
    ceiling: dict[str, float]  # metadata-only rules on the scored test clips (see ascbench.metadata_ceiling)

    def roles(self, n_clips: int) -> np.ndarray:
        """Each clip's role, as written to split files: ``labeled``, ``unlabeled`` (training clips whose label the
        strategy may use or not), ``val``, ``test`` (scored), ``test-unscored`` (on the test side but not scored:
        no known label, or a class that no labeled training clip teaches) and ``unused`` (on no side, e.g.
        clips of sessions that reach into held-out times)."""
        role = np.full(n_clips, "unused", dtype=object)
        role[self.split.unscored] = "test-unscored"
        for name in ("labeled", "unlabeled", "val", "test"):
            role[getattr(self.partition, name)] = name
        return role

    def fingerprint(self) -> str:
        """A short hash of the clips in each role: equal fingerprints, equal splits."""
        h = hashlib.sha256()
        for name in ("labeled", "unlabeled", "val", "test"):
            h.update(name.encode() + np.sort(getattr(self.partition, name)).astype(np.int64).tobytes())
        return h.hexdigest()[:16]


def plan_split(dataset: ClipDataset, config: RunConfig, registry: Registry, fold: int | None = None,
               val_fraction: float | None = None) -> SplitPlan:
    """Split ``dataset`` as a run of ``config`` would (fold ``fold`` of ``config.folds`` if given)."""
    spec = registry.protocol(config.protocol)
    check_applicable(config, registry)  # e.g. --test-dates under a protocol that picks no dates
    own = resolve_for(config, registry, "protocol")
    split = run_protocol(spec, dataset, config.protocol_options(fold, own), registry.owner("protocol", config.protocol))
    part = partition(dataset, split, config.labeled, config.val_fraction if val_fraction is None else val_fraction,
                     config.seed, split.info["group_by"])
    # Learning from every label the run may use: the labeled training clips and the validation clips.
    ceiling = metadata_ceiling(dataset, np.concatenate([part.labeled, part.val]), part.test)
    return SplitPlan(split=split, partition=part, ceiling=ceiling)
