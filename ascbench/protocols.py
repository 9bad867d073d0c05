"""Split protocols: which clips train and which test, by whole group (recording or session); a protocol that
declares it keeps no groups whole (``ProtocolSpec.keeps_groups_whole``) is checked clip by clip and recorded leaky.

A protocol plugin returns a ``Split`` of row positions. The core then checks it, whichever plugin made
it (``finalize_split``): no group of the chosen level on both sides, labeled test clips only, and every
scored class taught by a labeled training clip; classes that are not are either left out of scoring
(named in the record) or refused. ``partition`` decides which training clips are labeled (the
labeled fraction) and holds out a validation part of them. Test clips are never seen by training,
pseudo-labelling or early stopping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import numpy as np
import pandas as pd

from ascbench.data.dataset import CLIP_LEVEL, ClipDataset
from ascbench.errors import AscbenchError, ConfigError, PluginError
from ascbench.vocabulary import UNTAUGHT_POLICIES

if TYPE_CHECKING:  # pragma: no cover
    from ascbench.specs import ProtocolSpec

T = TypeVar("T")


@dataclass(frozen=True)
class ProtocolOptions:
    seed: int = 0
    test_fraction: float = 0.25  # of groups (official without a split), cities (unseen-city) or dates (unseen-time)
    folds: int = 0  # unseen-city: K cross-city folds (0 = a single seeded hold-out)
    fold: int = 0  # which fold this run tests
    group_by: str | None = None  # grouping level kept whole; None: the dataset's coarsest
    untaught: str = "exclude"  # a test class without labeled training clips: "exclude" it from scoring, or "refuse"
    plugin: Any = None  # the protocol's own options (ProtocolSpec.options_class), set as protocol.FIELD


@dataclass
class Split:
    train: np.ndarray  # row positions of the training side (labeled and unlabeled)
    test: np.ndarray  # row positions scored at the end (clips with a known label only)
    info: dict = field(default_factory=dict)
    excluded_classes: tuple[str, ...] = ()  # tested classes left out of scoring (their test clips removed)
    # Test-side clips that are not scored (no known label, or a class left out of scoring): split files mark
    # them apart from clips that no side uses.
    unscored: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


# --- the core's checks, applied to every protocol's split ---------------------------------------------

def taught_classes(dataset: ClipDataset, train_rows: np.ndarray) -> set[int]:
    """Class indices that some labeled training clip teaches."""
    labels = dataset.label_indices()
    labeled = dataset.meta["labeled"].to_numpy()
    rows = train_rows[labeled[train_rows] & (labels[train_rows] >= 0)]
    return set(labels[rows].tolist())


def classes_without_training_labels(dataset: ClipDataset, train_mask: np.ndarray, test_mask: np.ndarray) -> list[str]:
    """Classes scored on the test side that no labeled training clip teaches."""
    labels = dataset.label_indices()
    taught = taught_classes(dataset, np.flatnonzero(train_mask))
    tested = set(labels[test_mask & (labels >= 0)].tolist())
    return [dataset.classes[c] for c in sorted(tested - taught)]


def straddling_groups(dataset: ClipDataset, train: np.ndarray, test: np.ndarray) -> dict[str, int]:
    """Per declared grouping level, how many groups have clips on both sides (0 everywhere on a split that
    keeps its level's groups whole, when that level is the coarsest)."""
    return {level: len(set(dataset.groups(level)[train]) & set(dataset.groups(level)[test]))
            for level in dataset.groupings}


def leak_record(straddling: dict[str, int], leak: str = "") -> dict[str, Any]:
    """``leaky`` and its reason for a split's record: the protocol's declared ``leak``, else the levels whose
    groups straddle the sides (e.g. sessions under ``--group-by recording``)."""
    cut = [f"{n} {level}s" for level, n in straddling.items() if n]
    if not leak and cut:
        leak = f"{' and '.join(cut)} straddle train and test"
    return {"leaky": bool(leak), **({"leak": leak} if leak else {})}


def finalize_split(dataset: ClipDataset, split: Split, options: ProtocolOptions, protocol: str = "protocol",
                   scored: bool = True, keeps_groups_whole: bool = True, leak: str = "") -> Split:
    """Check and complete any protocol's split; the one gate between a protocol plugin and training.

    Refuses (ConfigError naming the protocol and the group) a split that puts a group of the chosen
    level on both sides or leaves a side empty. Test clips without a known label are dropped. A tested
    class that no labeled training clip teaches is left out of scoring (``untaught="exclude"``: its
    test clips go, its name is recorded) or refused. A protocol that keeps no groups whole
    (``keeps_groups_whole=False``, with its ``leak`` reason) is checked clip by clip and recorded as leaky;
    every split records how many groups of each level straddle its sides.
    """
    if options.untaught not in UNTAUGHT_POLICIES:
        raise ConfigError(f"--untaught must be one of {', '.join(UNTAUGHT_POLICIES)}, not {options.untaught!r}")
    level = dataset.resolve_grouping(options.group_by) if keeps_groups_whole else CLIP_LEVEL
    labels = dataset.label_indices()
    train = np.unique(np.asarray(split.train, dtype=np.int64))
    test = np.unique(np.asarray(split.test, dtype=np.int64))
    proposed_test = test
    test = test[labels[test] >= 0]
    overlap = np.intersect1d(train, test)
    if len(overlap):
        raise ConfigError(f"protocol {protocol!r} puts clip {dataset.meta['filename'].iloc[overlap[0]]!r} on both sides")
    groups = dataset.groups(level)
    shared = sorted(set(groups[train]) & set(groups[test]))
    if shared:
        more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
        raise ConfigError(f"protocol {protocol!r} puts {level}(s) {', '.join(repr(g) for g in shared[:3])}{more} on both "
                          f"sides of its split on {dataset.name!r}: clips of one {level} must all train or all test")

    excluded = set(split.excluded_classes)
    taught = taught_classes(dataset, train)
    untaught = sorted({dataset.classes[c] for c in set(labels[test].tolist()) - taught} - excluded)
    if untaught and options.untaught == "refuse":
        raise ConfigError(f"protocol {protocol!r} on {dataset.name!r} tests class(es) {', '.join(untaught)} that no "
                          "labeled training clip teaches; choose other hold-outs, or --untaught exclude to score "
                          "only the taught classes")
    excluded |= set(untaught)
    if excluded:
        drop = np.isin(labels[test], [dataset.classes.index(c) for c in excluded])
        test = test[~drop]
    if not scored and len(test):
        raise ConfigError(f"protocol {protocol!r} declares no test side but returned {len(test)} test clips")
    if len(train) == 0 or (scored and len(test) == 0):
        raise ConfigError(f"protocol {protocol!r} leaves an empty side on {dataset.name!r}: {len(train)} train, "
                          f"{len(test)} scored test clips" + (f" (excluded classes: {', '.join(sorted(excluded))})" if excluded else ""))
    meta = dataset.meta
    info = dict(split.info)
    info["group_by"] = level
    info["straddling"] = straddling_groups(dataset, train, test)
    info.update(leak_record(info["straddling"], leak))
    info["excluded_classes"] = sorted(excluded)
    for side, rows in (("train", train), ("test", test)):
        info[f"{side}_clips"] = int(len(rows))
        info[f"{side}_groups"] = int(len(set(groups[rows])))
        info[f"{side}_cities"] = sorted(meta["city"].iloc[rows].unique())
        info[f"{side}_periods"] = sorted(meta["period"].iloc[rows].unique())
    return Split(train=train, test=test, info=info, excluded_classes=tuple(sorted(excluded)),
                 unscored=np.setdiff1d(proposed_test, test))


def run_protocol(spec: "ProtocolSpec", dataset: ClipDataset, options: ProtocolOptions, plugin: str = "?") -> Split:
    """Call a protocol plugin and pass its split through the core's checks (``finalize_split``).

    A plugin that raises anything but an ascbench error, or returns something other than a ``Split``,
    is reported by name rather than as a traceback from inside it.
    """
    dataset.resolve_grouping(options.group_by)  # an unknown level fails before the plugin runs
    if not spec.keeps_groups_whole and options.group_by:
        raise ConfigError(f"--group-by {options.group_by}: protocol {spec.name!r} keeps no groups whole (it splits "
                          "clip by clip); drop --group-by, or choose a protocol that keeps groups whole")
    try:
        split = spec.split(dataset, options)
    except AscbenchError:
        raise
    except Exception as exc:
        raise PluginError(f"protocol {spec.name!r} (plugin {plugin!r}) failed on {dataset.name!r}: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(split, Split):
        raise PluginError(f"protocol {spec.name!r} (plugin {plugin!r}) returned {type(split).__name__}, not a Split")
    return finalize_split(dataset, split, options, spec.name, scored=spec.scored,
                          keeps_groups_whole=spec.keeps_groups_whole, leak=spec.leak)


# --- helpers a protocol calls (the built-in protocols live in ascbench_plugins.protocols) ---------------

def best_draw(draw: Callable[[], T], cost: Callable[[T], int], attempts: int) -> T:
    """The first of up to ``attempts`` seeded draws that costs nothing, else the first cheapest.

    Used wherever a protocol draws hold-outs at random but must avoid testing classes training cannot
    teach: the draws come from the caller's seeded generator, so the choice is fixed by the seed.
    """
    best, best_cost = None, None
    for _ in range(attempts):
        candidate = draw()
        c = cost(candidate)
        if best_cost is None or c < best_cost:
            best, best_cost = candidate, c
        if c == 0:
            break
    assert best is not None
    return best


def stratified_group_holdout(dataset: ClipDataset, groups: np.ndarray, fraction: float, seed: int,
                             attempts: int = 200) -> np.ndarray:
    """Test mask holding out about ``fraction`` of each class's groups, whole groups only.

    Classes with the fewest groups choose first; a group holding several classes counts for each. A draw
    that would leave a tested class without labeled training clips is redrawn (from the same seeded
    generator, so the result is fixed by the seed); after ``attempts`` the draw excluding fewest classes is kept.
    """
    labels = dataset.label_indices()
    known = labels >= 0
    frame = pd.DataFrame({"g": groups[known], "y": labels[known]}).drop_duplicates()
    by_class = {int(c): sorted(g) for c, g in frame.groupby("y")["g"].unique().items()}
    order = sorted(by_class, key=lambda c: (len(by_class[c]), c))
    rng = np.random.default_rng(seed)

    def draw() -> np.ndarray:
        held: set = set()
        for c in order:
            class_groups = by_class[c]
            if len(class_groups) < 2:
                continue  # a class of one group cannot be both taught and tested
            want = max(1, int(round(fraction * len(class_groups))))
            have = sum(1 for g in class_groups if g in held)
            free = [g for g in class_groups if g not in held]
            if want > have and free:
                held.update(rng.choice(free, size=min(want - have, len(free)), replace=False).tolist())
        return np.isin(groups, list(held))

    return best_draw(draw, lambda test: len(classes_without_training_labels(dataset, ~test, test)), attempts)


@dataclass
class Partition:
    """Row positions for each role in one run."""

    labeled: np.ndarray  # training clips whose label the strategy may use
    unlabeled: np.ndarray  # training clips whose label it may not
    val: np.ndarray  # labeled clips held out for early stopping
    test: np.ndarray


def partition(dataset: ClipDataset, split: Split, labeled_fraction: float | None, val_fraction: float, seed: int,
              group_by: str | None = None) -> Partition:
    """Choose the labeled training clips and a validation part of them, stratified by class, by whole group.

    A ``val_fraction`` that would hold out every labeled recording of a class, or a ``labeled_fraction`` so
    small that no class keeps the three recordings validation needs, is refused here, where the data is
    known, with the range of values that works for this data and split (not found after training starts)."""
    part = _partition(dataset, split, labeled_fraction, val_fraction, seed, group_by)
    _check_training_side(dataset, split, part, val_fraction, group_by)
    if labeled_fraction is not None and val_fraction > 0 and not len(part.val):
        _check_labeled_leaves_validation(dataset, split, labeled_fraction, val_fraction, seed, group_by)
    return part


# A class needs this many labeled recordings (groups) before any of them is held out for validation.
MIN_GROUPS_FOR_VALIDATION = 3


def _partition(dataset: ClipDataset, split: Split, labeled_fraction: float | None, val_fraction: float, seed: int,
               group_by: str | None = None) -> Partition:
    labels = dataset.label_indices()
    rng = np.random.default_rng([seed, 7])
    train = split.train
    if labeled_fraction is None:
        is_labeled = dataset.meta["labeled"].to_numpy()[train]
    else:
        if not 0.0 < labeled_fraction <= 1.0:
            raise ConfigError(f"--labeled must be in (0, 1], got {labeled_fraction}")
        is_labeled = np.zeros(len(train), dtype=bool)
        for c in np.unique(labels[train][labels[train] >= 0]):
            pos = np.flatnonzero(labels[train] == c)
            wanted = max(1, int(round(labeled_fraction * len(pos))))
            is_labeled[rng.choice(pos, size=wanted, replace=False)] = True
    labeled, unlabeled = train[is_labeled], train[~is_labeled]
    if len(labeled) == 0:
        raise ConfigError(f"no labeled training clips in {dataset.name!r} under this protocol")
    untaught = sorted(set(labels[split.test]) - set(labels[labeled]))
    if untaught:
        names = ", ".join(dataset.classes[c] for c in untaught)
        raise ConfigError(f"split of {dataset.name!r} tests class(es) {names} but has no labeled training clip of them; "
                          "choose other hold-out cities or periods")

    groups = dataset.groups(group_by)
    val_groups: set = set()
    for c in np.unique(labels[labeled]):
        class_groups = sorted(set(groups[labeled[labels[labeled] == c]]))
        if len(class_groups) >= MIN_GROUPS_FOR_VALIDATION and val_fraction > 0:
            take = max(1, int(round(val_fraction * len(class_groups))))
            val_groups.update(rng.choice(class_groups, size=take, replace=False).tolist())
    in_val = np.isin(groups[labeled], list(val_groups))
    # Unlabeled clips of validation groups would let the model peek at them; keep them out.
    unlabeled = unlabeled[~np.isin(groups[unlabeled], list(val_groups))]
    return Partition(labeled=labeled[~in_val], unlabeled=unlabeled, val=labeled[in_val], test=split.test)


def _check_training_side(dataset: ClipDataset, split: Split, part: Partition, val_fraction: float,
                         group_by: str | None) -> None:
    """No class has every one of its labeled recordings drawn for validation by ``val_fraction`` itself
    (``max(1, round(val_fraction * recordings))`` of them), which leaves it nothing to train on. (Recordings
    drawn for another class that hold clips of this one are a matter of the data's grouping, not of the
    fraction, and are not refused here.)"""
    labels, groups = dataset.label_indices(), dataset.groups(group_by)
    labeled = np.concatenate([part.labeled, part.val])
    counts = {int(c): len(set(groups[labeled[labels[labeled] == c]].tolist())) for c in np.unique(labels[labeled])}
    eligible = {c: g for c, g in counts.items() if g >= MIN_GROUPS_FOR_VALIDATION}
    emptied = [c for c, g in eligible.items() if val_fraction > 0 and max(1, int(round(val_fraction * g))) >= g]
    if not emptied:
        return
    limit = min((g - 0.5) / g for g in eligible.values())
    names = ", ".join(dataset.classes[c] for c in sorted(emptied))
    raise ConfigError(f"--val-fraction {val_fraction:g} (val_fraction) holds out every labeled recording of class(es) "
                      f"{names}, leaving none to train on; for {dataset.name} under this split it must be in "
                      f"[0, {math.floor(limit * 1000) / 1000:g}]")


def _check_labeled_leaves_validation(dataset: ClipDataset, split: Split, labeled_fraction: float,
                                     val_fraction: float, seed: int, group_by: str | None) -> None:
    """Refuse a labeled fraction that leaves no validation clips where more labels would (the data allows
    validation); the smallest fraction that gives some is found by trying the fractions at which a class
    gains a labeled clip, in increasing order."""
    labels = dataset.label_indices()
    sizes = sorted({int(n) for n in np.bincount(labels[split.train][labels[split.train] >= 0]) if n})
    candidates = sorted({min(1.0, (k - 0.5) / n) for n in sizes for k in range(MIN_GROUPS_FOR_VALIDATION, n + 1)}
                        | {1.0})
    smallest = next((f for f in candidates if f > labeled_fraction
                     and len(_partition(dataset, split, f, val_fraction, seed, group_by).val)), None)
    if smallest is None:  # no fraction gives validation clips: the data, not --labeled, decides that
        return
    raise ConfigError(f"--labeled {labeled_fraction:g} (labeled) leaves no class the {MIN_GROUPS_FOR_VALIDATION} "
                      f"labeled recordings a validation set needs, so nothing would select the kept epoch; for "
                      f"{dataset.name} under this split it must be in [{math.ceil(smallest * 10000) / 10000:g}, 1], "
                      "or set --val-fraction 0 to train without validation")
