"""Plugins' own options (as llm's ``Model.Options``): a strategy, semi-supervised method, protocol, dataset or recipe
declares a dataclass of typed fields with defaults, and a run sets them as ``KIND.FIELD``; a front-end's options
are its ``FeatureConfig`` fields (``frontend.n_mels``), defaulting to the front-end's own settings:

    ascbench run --strategy warm-start --set strategy.lr_scale=0.05
    # config file:  [options.strategy]  lr_scale = 0.05      sweep:  --grid strategy.lr_scale=0.1,0.05

``RunConfig.options`` holds them per kind (``{"strategy": {"lr_scale": 0.05}}``), so they are saved with every
result and part of the experiment. They are checked by :func:`resolve` against the chosen plugin's class
before any data is read: an unknown key names the plugin and lists the valid ones, a value of the wrong
type names the field and the type. ``model.FIELD`` is the model's keyword arguments (``--model-arg``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any

from ascbench.errors import ConfigError
from ascbench.kinds import OPTION_PREFIXES

# Whole-number plugin options (pseudo-label rounds, a front-end's FFT size, ...) are counts and sizes: one past
# this is a typo, as the config's own count fields have finite upper ends (ascbench.config.BOUNDS).
OPTION_INT_LIMIT = 1_000_000

# The plugin kinds whose options a run can set, in the order they are checked (declared in ascbench.kinds).
KINDS = OPTION_PREFIXES


def fold_dotted(data: dict[str, Any]) -> dict[str, Any]:
    """``{"strategy.lr_scale": 0.1, ...}`` -> ``{"options": {"strategy": {"lr_scale": 0.1}}, ...}``;
    ``model.X`` goes to ``model_kwargs``. Keys of other kinds are left for the config to refuse."""
    out = {k: v for k, v in data.items() if "." not in k}
    dotted = {k: v for k, v in data.items() if "." in k}
    if not dotted:  # nothing to fold: the table is checked as given
        return out
    options = {kind: dict(values) for kind, values in (data.get("options") or {}).items() if isinstance(values, dict)}
    model_kwargs = dict(data.get("model_kwargs") or {}) if isinstance(data.get("model_kwargs") or {}, dict) else None
    for key, value in dotted.items():
        kind, _, name = key.partition(".")
        if (kind == "model" or kind in KINDS) and (not name.strip() or "." in name):
            raise ConfigError(f"{key!r}: a plugin option is KIND.FIELD and a model argument model.ARG, with one "
                              "name after the dot (e.g. strategy.lr_scale, model.width)")
        if kind == "model" and model_kwargs is not None:
            model_kwargs[name] = value
        elif kind in KINDS:
            options.setdefault(kind, {})[name] = value
        else:
            out[key] = value  # unknown: RunConfig names it
    if options:
        out["options"] = options
    if model_kwargs:
        out["model_kwargs"] = model_kwargs
    return out


def fields_of(options_cls: type | None) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(options_cls)} if options_cls is not None else {}


def resolve(kind: str, name: str, owner: str, options_cls: type | None, given: dict[str, Any] | None,
            base: Any = None) -> Any:
    """An instance of ``options_cls`` from ``given`` (None when the plugin declares no options and none
    were given), every key and type checked; ``ConfigError`` naming kind, plugin and field otherwise.
    With ``base`` (an instance), the fields not given are ``base``'s instead of the class defaults."""
    given = dict(given or {})
    known = fields_of(options_cls)
    unknown = sorted(set(given) - set(known))
    if unknown:
        what = f"{kind} {name!r} (plugin {owner!r})"
        if not known:
            raise ConfigError(f"{what} takes no options, got {', '.join(f'{kind}.{u}' for u in unknown)}; "
                              "`ascbench list` shows the options each plugin takes")
        hints = [f"{kind}.{u}" + (f" (did you mean {kind}.{m[0]}?)" if (m := difflib.get_close_matches(u, known, 1))
                                  else "") for u in unknown]
        raise ConfigError(f"{what} has no option {', '.join(hints)}; its options: "
                          + ", ".join(f"{kind}.{f}" for f in known))
    if options_cls is None:
        return None
    hints = typing.get_type_hints(options_cls)
    for key, value in list(given.items()):
        takes_float = float in typing.get_args(hints[key]) or hints[key] is float
        if takes_float and isinstance(value, float) and not math.isfinite(value):
            why = "not a number" if math.isnan(value) else "a number too large for a float reads as inf"
            raise ConfigError(f"{kind}.{key} of {kind} {name!r} must be a finite number, got {value!r} ({why})")
        if not _fits(hints[key], value):
            raise ConfigError(f"{kind}.{key} of {kind} {name!r} must be {_describe(hints[key])}, got {value!r} "
                              f"({type(value).__name__})")
        if isinstance(value, int) and not isinstance(value, bool) and not takes_float and abs(value) > OPTION_INT_LIMIT:
            raise ConfigError(f"{kind}.{key} of {kind} {name!r} must be between -{OPTION_INT_LIMIT:,} and "
                              f"{OPTION_INT_LIMIT:,}, got {value!r}: no run needs more (rounds, sizes, counts), and a "
                              "typo is refused here rather than running for ever or failing in the middle of a run")
        if takes_float and isinstance(value, int) and not isinstance(value, bool):
            # 1 and 1.0 are one value: one experiment has one digest, as for the config's own number fields.
            given[key] = float(value)
    try:
        return dataclasses.replace(base, **given) if base is not None else options_cls(**given)
    except (TypeError, ValueError, ConfigError) as exc:  # the options class's own checks (__post_init__)
        raise ConfigError(f"{kind} {name!r} options: {exc}") from None


def resolve_for(config: Any, registry: Any, kind: str) -> Any:
    """The options of the ``kind`` plugin ``config`` chose (e.g. its strategy), checked; None if it has none.
    For ``frontend``: the chosen front-end's ``FeatureConfig`` with the options applied."""
    if kind == "frontend":
        return resolve_frontend(config, registry)
    name = getattr(config, kind)
    if name is None:  # no recipe chosen (the one kind a run may leave out)
        if config.options.get(kind):
            raise ConfigError(f"{', '.join(f'{kind}.{k}' for k in config.options[kind])} given, but the run names no "
                              f"{kind}; add --{kind} NAME or drop them")
        return None
    spec = registry.get(kind, name)
    return resolve(kind, name, registry.owner(kind, name), spec.options_class, config.options.get(kind))


def frontend_name(config: Any, registry: Any) -> str:
    """The front-end a run uses: ``--front-end``, or its dataset's own."""
    return config.feature_preset or registry.dataset(config.dataset).feature_preset


def resolve_frontend(config: Any, registry: Any) -> Any:
    """The ``FeatureConfig`` a run extracts with: its front-end's settings, with ``frontend.FIELD`` options on top."""
    name = frontend_name(config, registry)
    spec = registry.get("front-end", name)
    given = config.options.get("frontend") or {}
    if not given:
        return spec.config
    resolved = resolve("frontend", name, registry.owner("front-end", name), type(spec.config), given, base=spec.config)
    check_frontend_ranges(resolved, name, given)
    return resolved


def check_frontend_ranges(cfg: Any, name: str, given: dict[str, Any]) -> None:
    """A front-end's settings with ``frontend.FIELD`` options applied, against the ranges an STFT and a mel
    filterbank accept (a hop of 0 divides by zero, more mel bands than FFT bins leave empty filters); the
    first one out of range is refused naming the option and its valid range under the other settings."""
    nyquist = cfg.sample_rate / 2
    ranges = (
        ("sample_rate", cfg.sample_rate >= 1, "[1, inf)"),
        ("n_fft", cfg.n_fft >= 2, "[2, inf)"),
        ("win_length", 1 <= cfg.win_length <= cfg.n_fft, f"[1, n_fft = {cfg.n_fft}]"),
        ("hop_length", cfg.hop_length >= 1, "[1, inf)"),
        ("n_mels", 1 <= cfg.n_mels <= cfg.n_fft // 2 + 1, f"[1, n_fft // 2 + 1 = {cfg.n_fft // 2 + 1}]"),
        ("f_min", 0 <= cfg.f_min < (cfg.f_max or nyquist), f"[0, {cfg.f_max or nyquist:g})"),
        ("f_max", cfg.f_max is None or cfg.f_min < cfg.f_max <= nyquist, f"({cfg.f_min:g}, sample_rate / 2 = {nyquist:g}]"),
        ("max_frames", cfg.max_frames is None or cfg.max_frames >= 1, "[1, inf) or null"),
        ("power", cfg.power > 0, "(0, inf)"),
        ("top_db", cfg.top_db is None or cfg.top_db > 0, "(0, inf) or null"),
    )
    for field_name, ok, valid in ranges:
        if not ok:
            how = "given" if field_name in given else f"front-end {name!r}'s, with the options given"
            raise ConfigError(f"frontend.{field_name} = {getattr(cfg, field_name)!r} ({how}) is out of range: "
                              f"it must be in {valid}")


def resolve_all(config: Any, registry: Any) -> dict[str, Any]:
    """Every chosen plugin's options, checked: what a run, a sweep cell and a dry run validate up front."""
    return {kind: resolve_for(config, registry, kind) for kind in KINDS}


def describe(options_cls: type | None) -> list[tuple[str, str, Any, str]]:
    """(field, type, default, help) of each option; help from the field's ``metadata["help"]``."""
    hints = typing.get_type_hints(options_cls) if options_cls is not None else {}
    return [(f.name, _describe(hints[f.name]), f.default if f.default is not dataclasses.MISSING else None,
             f.metadata.get("help", "")) for f in fields_of(options_cls).values()]


def _fits(annotation: Any, value: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(a, value) for a in args)
    if origin is typing.Literal:
        return value in args
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    return True  # richer types: the options class checks them itself


def _describe(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if args:
        return " | ".join(_describe(a) for a in args)
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))
