"""``ascbench profile``: parameters, MACs and memory of a model, without training."""

from __future__ import annotations


def command(args) -> int:
    from tabulate import tabulate

    from ascbench.complexity import DCASE_MEMORY_LIMIT_BYTES, latency_ms, profile, torchinfo_macs
    from ascbench.config import RunConfig
    from ascbench.data.timefeatures import TIME_FEATURE_DIM
    from ascbench.features import get_preset
    from ascbench.registry import get_registry
    from ascbench.specs import ModelContext
    from ascbench.training import create_model

    cfg = get_preset(args.preset)
    frames, second = cfg.n_frames(args.seconds), cfg.n_frames(1.0)
    spec = get_registry().model(args.model)
    model = create_model(spec, ModelContext(10, args.cities + 1, TIME_FEATURE_DIM, cfg.n_mels, frames),
                         RunConfig(model=args.model, context=args.context))
    clip = profile(model, cfg.n_mels, frames, TIME_FEATURE_DIM)
    per_second = profile(model, cfg.n_mels, second, TIME_FEATURE_DIM)
    info = torchinfo_macs(model, cfg.n_mels, second, TIME_FEATURE_DIM)
    fits = clip.widest_precision_within()
    print(tabulate([
        ("model", args.model),
        ("input", f"{cfg.n_mels} mel x {frames} frames ({args.seconds:g} s, preset {args.preset}); front-end excluded"),
        ("params", f"{clip.params:,}"),
        ("MACs per second of audio", f"{per_second.macs:,}  (DCASE limit 30,000,000)"),
        ("MACs per clip", f"{clip.macs:,}"),
        ("torchinfo MACs per second", f"{info:,}" if info is not None else "n/a (torchinfo failed)"),
        ("param memory", ", ".join(f"{clip.memory_bytes(p):,} B {p}" for p in ("float32", "float16", "int8"))),
        (f"fits {DCASE_MEMORY_LIMIT_BYTES:,} B", f"at {fits}" if fits else "at no precision"),
        ("CPU latency per clip", f"{latency_ms(model, cfg.n_mels, frames, TIME_FEATURE_DIM):.2f} ms (median, batch 1)"),
    ], tablefmt="simple"))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("profile", help="parameters, MACs and memory of a model, without training")
    p.add_argument("model")
    p.add_argument("--preset", default="apsipa2025", help="feature preset giving the input shape (default: apsipa2025)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (default: 10)")
    p.add_argument("--cities", type=int, default=8, help="number of known cities (default: 8)")
    p.add_argument("--context", default=None, metavar="city,time", help="profile with context fusion added")
