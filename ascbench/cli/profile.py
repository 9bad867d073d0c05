"""``ascbench profile``: parameters, MACs and memory of a model, without training.

The figures come from the pipeline's ``profile`` stage, the one every run records, so what this prints for a
model is what its leaderboard row will say.
"""

from __future__ import annotations

from ascbench.defaults import PROFILE_FRONT_END


def command(args) -> int:
    from ascbench import pipeline
    from ascbench.complexity import BYTES_PER_PARAM, DCASE_MEMORY_LIMIT_BYTES
    from ascbench.config import RunConfig
    from ascbench.data.timefeatures import TIME_FEATURE_DIM
    from ascbench.cli.common import parse_model_args
    from ascbench.formatting import render_pairs
    from ascbench.specs import ModelContext
    from ascbench.training import create_model

    kwargs = parse_model_args(args.model_arg)
    plan = pipeline.resolve(RunConfig(model=args.model, context=args.context, feature_preset=args.preset,
                                      model_kwargs=kwargs))
    cfg = plan.feature_config
    frames = cfg.n_frames(args.seconds)
    model = create_model(plan.model, ModelContext(10, args.cities + 1, TIME_FEATURE_DIM, cfg.n_mels, frames), plan.config)
    figures = pipeline.profile(plan, model, frames, TIME_FEATURE_DIM, args.seconds, "cpu")
    memory = figures["param_bytes"]
    fits = next((p for p in BYTES_PER_PARAM if memory[p] <= DCASE_MEMORY_LIMIT_BYTES), None)
    info = figures["torchinfo_macs_per_second"]
    print(render_pairs([
        ("model", args.model + "".join(f" {k}={v!r}" for k, v in kwargs.items())),
        ("input", f"{cfg.n_mels} mel x {frames} frames ({args.seconds:g} s, preset {args.preset}); front-end excluded"),
        ("params", f"{figures['params']:,}"),
        ("MACs per second of audio", f"{figures['macs_per_second']:,}  (DCASE limit 30,000,000)"),
        ("MACs per clip", f"{figures['macs']:,}"),
        ("torchinfo MACs per second", f"{info:,}" if info is not None else "n/a (torchinfo failed)"),
        ("param memory", ", ".join(f"{memory[p]:,} B {p}" for p in ("float32", "float16", "int8"))),
        (f"fits {DCASE_MEMORY_LIMIT_BYTES:,} B", f"at {fits}" if fits else "at no precision"),
        ("CPU latency per clip", f"{figures['latency_ms']:.2f} ms (median, batch 1)"),
    ]))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("profile", help="parameters, MACs and memory of a model, without training",
                       description="Count a model's parameters and MACs and time one clip, with the rules every run "
                                   "records (ascbench/complexity.py), on the input shape a front-end gives.",
                       epilog="example: ascbench profile mobileascnet --model-arg gru_hidden=96 --preset apsipa2025")
    p.add_argument("model")
    p.add_argument("--preset", default=PROFILE_FRONT_END, help=f"feature front-end giving the input shape (default: {PROFILE_FRONT_END})")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length (default: 10)")
    p.add_argument("--cities", type=int, default=8, help="number of known cities (default: 8)")
    p.add_argument("--context", default=None, metavar="city,time", help="profile with context fusion added")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=JSON",
                   help="model constructor argument, as for ascbench run (repeatable)")
