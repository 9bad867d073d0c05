"""``ascbench export``: a run in the DCASE Task 1 submission meta format."""

from __future__ import annotations


from ascbench.errors import AscbenchError
from ascbench.cli.common import add_record_arguments, find_record


def command(args) -> int:
    import yaml

    if args.output:
        from ascbench.fileio import check_output

        check_output(args.output, force=args.force)
    row, config, metrics = find_record(args.run_id, args.runs_dir, args.source)
    if metrics.get("accuracy") is None:
        raise AscbenchError(f"run {args.run_id} was not scored (protocol {config.get('protocol')!r}); the meta file reports "
                            "development results, so export the scored run of the same recipe (e.g. under official)")
    c = metrics["complexity"]
    meta = {
        "submission": {"label": f"ascbench_{row['model']}_{row['strategy']}", "name": f"{row['model']} ({row['strategy']})",
                       "abbreviation": row["model"][:10]},
        "system": {
            "description": {"input_sampling_rate": metrics.get("features", {}).get("sample_rate"),
                            "acoustic_features": "log-mel energies", "machine_learning_method": row["model"],
                            "semi_supervised": row.get("semi", "none"), "ascbench_config": _applicable(config)},
            "complexity": {"total_parameters": c["params"], "total_parameters_non_zero": c["params"],
                           "memory_use": c["param_bytes"]["float32"], "memory_use_fp16": c["param_bytes"]["float16"],
                           "macs": c["macs_per_second"], "macs_per_clip": c["macs"],
                           "macs_torchinfo": c.get("torchinfo_macs_per_second")},
        },
        "results": {"development_dataset": {
            # DCASE Task 1 and APSIPA rank by macro accuracy (the mean of class-wise accuracies), as the
            # leaderboard does; the share of clips right (micro accuracy) is not the overall accuracy.
            "overall": {"accuracy": round(100 * metrics["macro_accuracy"], 2), "logloss": round(metrics["log_loss"], 4)},
            "class_wise": {k: {"accuracy": round(100 * v, 2), "logloss": round(metrics["class_log_loss"][k], 4)}
                           for k, v in metrics["class_accuracy"].items()},
            "city_wise": {k: {"accuracy": round(100 * v, 2)} for k, v in metrics.get("city_accuracy", {}).items()},
        }},
    }
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    if args.output:
        from ascbench.fileio import write_output

        write_output(args.output, text, force=args.force)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def _applicable(config: dict) -> dict:
    """The run's config without the protocol settings its protocol does not read (``--test-periods`` under
    ``official``, an older record's ``test_cities``, now unseen-city's option...): they were not used, so the
    meta file must not suggest they were."""
    from dataclasses import fields

    from ascbench.errors import AscbenchError
    from ascbench.protocols import ProtocolOptions
    from ascbench.registry import get_registry
    from ascbench.shortcuts import declared

    try:
        reads = get_registry().protocol(config.get("protocol", "")).options
    except AscbenchError:
        return config  # a protocol from a plugin not installed here: what it reads is unknown, keep everything
    if reads is None:
        return config  # the protocol did not declare what it reads
    always = {"seed", "group_by", "untaught", "plugin"}
    unused = {f.name for f in fields(ProtocolOptions)} - always - set(reads)
    unused |= {old for old, r in declared().renamed.items()
               if r.kind == "protocol" and r.plugin != config.get("protocol")}
    return {k: v for k, v in config.items() if k not in unused}


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run in the DCASE Task 1 submission meta format (YAML)")
    add_record_arguments(p)
    p.add_argument("--format", choices=("dcase",), default="dcase")
    p.add_argument("--output", help="write to this file (never inside a run, the results store, a published board or "
                   "the cache)")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")
