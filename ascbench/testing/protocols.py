"""The protocol kit: the core accepts the split, every grouping level stays whole, the same seed gives the same split."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ascbench.errors import AscbenchError
from ascbench.registry import Registry, get_registry
from ascbench.testing.kit import ConformanceError, bind


def _protocol_split(name: str, dataset, registry: Registry, **options):
    from ascbench.protocols import ProtocolOptions, run_protocol

    spec, owner = registry.protocol(name), registry.owner("protocol", name)
    try:
        return run_protocol(spec, dataset, ProtocolOptions(**options), owner), owner
    except AscbenchError as exc:
        raise ConformanceError(f"protocol {name!r} (plugin {owner!r}) on {dataset.name!r}: the core refused its "
                               f"split: {exc}") from None


def check_protocol_passes_the_core(name, dataset, registry, options):
    """The split passes the core's gate: whole groups, labeled test clips, taught classes."""
    split, _ = _protocol_split(name, dataset, registry, **options)
    labels = dataset.label_indices()
    assert (labels[split.test] >= 0).all()


def check_protocol_keeps_every_level_whole(name, dataset, registry, options):
    """Asked to keep a level whole, the split keeps it (and so every finer level) whole."""
    for level in dataset.groupings:
        split, owner = _protocol_split(name, dataset, registry, **{**options, "group_by": level})
        groups = dataset.groups(level)
        shared = set(groups[split.train]) & set(groups[split.test])
        if shared:
            raise ConformanceError(f"protocol {name!r} (plugin {owner!r}): {level} {sorted(shared)[0]!r} on both sides")


def check_protocol_is_reproducible(name, dataset, registry, options):
    """The same seed gives the same split, so a stored run can be re-run exactly."""
    (a, owner), (b, _) = (_protocol_split(name, dataset, registry, **options) for _ in range(2))
    if not (np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)):
        raise ConformanceError(f"protocol {name!r} (plugin {owner!r}): two splits with the same options differ")


PROTOCOL_CHECKS: tuple[Callable, ...] = (check_protocol_passes_the_core, check_protocol_keeps_every_level_whole,
                                         check_protocol_is_reproducible)


def protocol_checks(name: str, dataset, registry: Registry | None = None, **options) -> list[Callable[[], None]]:
    """Each protocol conformance check bound to one registered protocol and a dataset (a ``ClipDataset``);
    ``options`` are ``ProtocolOptions`` fields (e.g. ``seed=1``)."""
    registry = registry or get_registry()
    registry.protocol(name)
    return bind(PROTOCOL_CHECKS, name, dataset, registry, options)


def check_protocol(name: str, dataset, registry: Registry | None = None, **options) -> None:
    """Run every protocol conformance check; raises ``ConformanceError`` on the first failure."""
    for check in protocol_checks(name, dataset, registry, **options):
        check()
