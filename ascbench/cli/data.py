"""``ascbench data info | check | split``: a dataset and its splits, from metadata (and audio for check)."""

from __future__ import annotations

import sys
from collections import Counter

from ascbench.config import RunConfig, current_protocol_name
from ascbench.defaults import DEFAULT_PROTOCOL
from ascbench.errors import AscbenchError, ConfigError
from ascbench.cli.common import (add_plugin_shortcuts, add_split_options, check_folds, load_dataset, shortcut_options,
                                 split_fields)


def command(args) -> int:
    return {"check": _check, "info": _info}.get(args.data_command, _split)(args)


def _check(args) -> int:
    """`data check`: every audio file decoded and checked; unusable ones named by path."""
    from ascbench.data.validate import validate_audio

    ds = load_dataset(args.dataset, args.data_root, require_audio=True)
    reports = validate_audio(ds, progress=sys.stderr.isatty())
    bad = [r for r in reports if r.problem]
    for r in bad:
        print(f"{ds.root / r.filename}: {r.problem}")
    notes = Counter(note for r in reports for note in r.notes)
    for note, count in sorted(notes.items()):
        print(f"note: {count} file(s): {note}")
    print(f"{len(bad)} unusable of {len(reports)} files in {ds.name}")
    return 1 if bad else 0


def _info(args) -> int:
    """`data info`: the dataset's description and its tables by class, city and time."""
    from ascbench.data.summary import dataset_tables
    from ascbench.formatting import render_table

    ds = load_dataset(args.dataset, args.data_root, require_audio=False)
    print(f"{ds.name}: {ds.description}")
    for title, table in dataset_tables(ds).items():
        print(f"\n{title}:")
        print(render_table(table, wide=args.wide))
    return 0


def _split(args) -> int:
    """`data split`: the protocol's split through the pipeline's own stages (the one a run would use)."""
    from ascbench import pipeline
    from ascbench.formatting import render_table
    from ascbench.data.summary import split_table
    from ascbench.metadata_ceiling import describe as describe_ceiling

    args.protocol = current_protocol_name(args.protocol)  # an old name (official) is shown as today's
    config = _split_config(args)
    check_folds(config)
    if args.output:
        from ascbench.fileio import check_output

        check_output(args.output, force=args.force)
    plan = pipeline.resolve(config)
    ds = pipeline.load(plan, require_audio=False)
    if config.folds:
        plans = [pipeline.split(plan, ds, fold=k, val_fraction=0.0) for k in range(config.folds)]
        _print_folds(args, ds, plans, _seed_note(config, ds, plans[0], fold=0))
        if args.output:
            _write_roles(args.output, ds, plans, folds=True, force=args.force)
            print(f"wrote {args.output} (one row per clip and fold)")
        return 0
    split_plan = pipeline.split(plan, ds, fold=None, val_fraction=0.0)
    split, part = split_plan.split, split_plan.partition
    print(f"{ds.name} under {args.protocol}{_seed_note(config, ds, split_plan, fold=None)}, {_kept_whole(split.info)}:")
    print(render_table(split_table(ds, split, part.labeled), wide=args.wide))
    if split.excluded_classes:
        print(f"\nnot scored (no labeled training clip teaches them): {', '.join(split.excluded_classes)}")
    if split.info.get("purged_clips"):
        print(f"left out of training: {split.info['purged_clips']} clips of {split.info['group_by']}s that reach into the "
              "held-out times")
    print(f"\nmetadata ceiling (no audio; learns from the labeled training clips): {describe_ceiling(split_plan.ceiling)}")
    if args.output:
        _write_roles(args.output, ds, [split_plan], folds=False, force=args.force)
        print(f"wrote {args.output}")
    return 0


# What `data split --set` may set: the split's own settings and the options of the protocol and the dataset (anything
# else would be accepted and silently do nothing to the split shown).
SPLIT_SETTINGS = ("seed", "labeled", "folds", "group_by", "untaught", "data_root", "protocol.", "dataset.")


def _split_config(args) -> RunConfig:
    """The config of the split to preview, through the one path every run's config takes (``RunConfig.from_dict``):
    the flags, then the protocol shortcuts, then ``--set``, each over the one before."""
    from ascbench.sweep import parse_assignment

    # Flags left untyped hold None (the config's defaults apply), so a --set over one is no conflict.
    flags = {"seed": args.seed, "labeled": args.labeled, "folds": args.folds, "data_root": args.data_root}
    given = {"dataset": args.dataset, "protocol": args.protocol, **{k: v for k, v in flags.items() if v is not None},
             **split_fields(args)}
    for prefix, values in shortcut_options(args, ("protocol",)).items():
        given.update({f"{prefix}.{name}": value for name, value in values.items()})
    for text in args.assignments:
        key, value = parse_assignment(text, multi=False)
        if not any(key == s or (s.endswith(".") and key.startswith(s)) for s in SPLIT_SETTINGS):
            raise ConfigError(f"data split --set {text}: only the split's settings are read here (seed, labeled, folds, "
                              "group_by, untaught, data_root, protocol.FIELD, dataset.FIELD); other fields do not "
                              "change the split")
        earlier = given.get(key)
        if earlier is not None and earlier != value:
            # as `ascbench run` says it: two values for one setting, and which one applies
            print(f"ascbench: warning: {key} is given different values ({earlier!r} by its flag; --set {text}); "
                  f"--set {text} applies", file=sys.stderr)
        given[key] = value
    return RunConfig.from_dict(given)


def _kept_whole(info: dict) -> str:
    """What the split keeps on one side, and, for a leaky split, that it leaks and why."""
    from ascbench.data.dataset import CLIP_LEVEL

    kept = "clip by clip" if info["group_by"] == CLIP_LEVEL else f"whole {info['group_by']}s on one side"
    return f"{kept}; LEAKY: {info['leak']}" if info.get("leaky") else kept


def _seed_note(config: RunConfig, ds, split_plan, fold: int | None) -> str:
    """" (seed N)" when the seed shapes this split, "" when it does not (a dataset's fixed official hold-out, given
    test cities): found by splitting again with another seed, so it holds for any protocol plugin."""
    import numpy as np

    from ascbench import pipeline

    other_config = config.replace(seed=config.seed + 1)
    other = pipeline.split(pipeline.resolve(other_config), ds, fold=fold, val_fraction=0.0)
    same = (np.array_equal(np.sort(other.split.test), np.sort(split_plan.split.test))
            and np.array_equal(np.sort(other.partition.labeled), np.sort(split_plan.partition.labeled)))
    return "" if same else f" (seed {config.seed})"


def _print_folds(args, ds, plans: list, seed_note: str) -> None:
    from ascbench.formatting import format_percent, render_table

    print(f"{ds.name} under {args.protocol}, {len(plans)} folds{seed_note}; every fold can run:")
    rows = [(f"{k + 1}/{len(plans)}", ", ".join(p.split.info["test_cities_held_out"]), p.split.info["train_clips"],
             p.split.info["test_clips"], ", ".join(p.split.excluded_classes) or "-", format_percent(p.ceiling["best"], 1))
            for k, p in enumerate(plans)]
    print(render_table(rows, ["fold", "test cities", "train clips", "scored test clips", "not scored",
                              "metadata ceiling"], wide=args.wide))


def _roles_frame(ds, split_plan, fold: int | None = None):
    """One row per clip with its city, time, group and role in the split (see ``SplitPlan.roles``)."""
    import pandas as pd

    level = split_plan.split.info["group_by"]
    frame = pd.DataFrame({"filename": ds.meta["filename"], "city": ds.meta["city"], "timestamp": ds.meta["timestamp"],
                          "group": ds.meta["group"], level: ds.groups(level), "scene_label": ds.meta["scene_label"]})
    frame = frame.loc[:, ~frame.columns.duplicated()]
    if fold is not None:
        frame.insert(0, "fold", fold)
    frame["role"] = split_plan.roles(len(ds.meta))
    return frame


def _write_roles(path: str, ds, plans: list, folds: bool, force: bool) -> None:
    """The split file: one row per clip, or with ``--folds`` one row per clip and fold (a ``fold`` column, 1-based
    as in the fold table)."""
    import pandas as pd

    from ascbench.fileio import write_output

    frames = [_roles_frame(ds, p, k + 1 if folds else None) for k, p in enumerate(plans)]
    write_output(path, pd.concat(frames, ignore_index=True).to_csv(index=False), force=force)


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="inspect a dataset and its splits (metadata only; no audio needed)")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    q = data_sub.add_parser("info", help="clips, labeled fraction, per-city and per-period counts, class balance")
    q.add_argument("dataset")
    q.add_argument("--data-root", default=None)
    q.add_argument("--wide", action="store_true", help="every cell whole on one line, however wide the table gets")
    q = data_sub.add_parser("check", help="read every audio file; list each unusable one with its reason")
    q.add_argument("dataset")
    q.add_argument("--data-root", default=None)
    q = data_sub.add_parser("split", help="preview a protocol's split: sides, classes not scored, metadata ceiling, folds; write it as CSV")
    q.add_argument("dataset")
    q.add_argument("--protocol", default=DEFAULT_PROTOCOL)
    q.add_argument("--seed", type=int, default=None, help="split seed (default: 0)")
    q.add_argument("--labeled", type=float, default=None)
    add_split_options(q, typed_only=True)  # untyped: the config's defaults, and no conflict with a --set
    q.add_argument("--folds", type=int, default=None, metavar="K",
                   help="unseen-city: preview K cross-city folds (test cities, sizes, classes not scored, ceiling)")
    q.add_argument("--data-root", default=None)
    q.add_argument("--output", help="write the split to this CSV: one row per clip (per clip and fold with --folds) "
                   "with its role: labeled, unlabeled, test, test-unscored (test side, not scored), unused")
    q.add_argument("--force", action="store_true", help="replace --output if it exists")
    q.add_argument("--wide", action="store_true", help="every cell whole on one line, however wide the table gets")
    q.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="a protocol's or dataset's option, as `ascbench run --set` takes it (repeatable): e.g. "
                   "--set protocol.test_fraction=0.3 (`ascbench list --protocols` lists each protocol's options)")
    add_plugin_shortcuts(q, kinds=("protocol",))  # last: a plugin's flag that clashes with ours is the one skipped
