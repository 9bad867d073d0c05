"""Which config fields a run reads, derived from the plugins it chose and its other settings.

A field set to a value the run never reads (``--pretrain-epochs`` under a strategy that does not pretrain,
``--folds`` under a protocol that has none) would be stored with the run as if it had shaped the
result. Each conditional field declares here what makes a run read it: a capability a plugin declares
(``ProtocolSpec.options``, ``StrategySpec.pretrains``, ``ModelSpec.uses_city``, ``ProtocolSpec.scored``) or
another field's value. :func:`check_applicable` refuses every field that is set but unread, in one line.

"Set" means: different from what the run would hold without it (the recipe's value where the run names a
recipe, else the field's default). A recipe's settings are a bundle and may include fields a run then does
not read (a recipe's pretraining epochs under ``--strategy scratch``); those are not the user's doing.
Every source of a config (flags, ``--set``, a config file, a sweep cell, a stored record) reaches this check
through ``ascbench.pipeline.resolve``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from ascbench.config import QUICK_SETTINGS, RunConfig, flag_of, recipe_settings
from ascbench.errors import ConfigError
from ascbench.options import fold_dotted


@dataclass(frozen=True)
class Choices:
    """What a rule looks at: the config and the specs (with owners) of the plugins it chose."""

    config: RunConfig
    registry: Any

    def spec(self, kind: str) -> Any:
        return self.registry.get(kind, getattr(self.config, kind))

    def named(self, kind: str) -> str:
        """``strategy 'scratch' (plugin 'ascbench')``: how a message names the chosen plugin."""
        name = getattr(self.config, kind)
        return f"{kind} {name!r} (plugin {self.registry.owner(kind, name)!r})"


# A rule returns why the run does not read the field (None: it reads it).
Rule = Callable[[Choices], "str | None"]


def protocol_reads(name: str) -> Rule:
    """Read when the chosen protocol declares it among the split options it reads (undeclared: read)."""
    def rule(c: Choices) -> str | None:
        declared = c.spec("protocol").options
        if declared is None or name in declared:
            return None
        reads = ", ".join(flag_of(n) for n in declared) or "none of the split options"
        return f"{c.named('protocol')} does not use it; it reads {reads}"
    return rule


def strategy_pretrains(c: Choices) -> str | None:
    """Read when the chosen strategy starts from pretrained weights (``pretrains`` not False)."""
    if c.spec("strategy").pretrains is not False:
        return None
    users = [n for n in c.registry.names("strategy") if c.registry.strategy(n).pretrains]
    return (f"{c.named('strategy')} trains from random weights and would ignore it; a strategy "
            f"that pretrains reads it ({', '.join(users) or 'none registered'})")


def pretrains_itself(c: Choices) -> str | None:
    """The pretraining stage's own settings: read when a pretraining stage runs, i.e. not from --pretrained."""
    if c.config.pretrained:
        return f"--pretrained {c.config.pretrained} is loaded instead of pretraining, so no pretraining stage runs"
    return None


def model_uses_city(c: Choices) -> str | None:
    if c.spec("model").uses_city or "city" in c.config.context_parts:
        return None
    return f"{c.named('model')} does not read the city (add --context city to fuse it in)"


def protocol_scored(c: Choices) -> str | None:
    if c.spec("protocol").scored:
        return None
    return f"{c.named('protocol')} has no test side, so no test class can go untaught"


def when(test: Callable[[RunConfig], Any], reason: str) -> Rule:
    """Read when ``test(config)`` holds; ``reason`` (a format string over the config) says why not."""
    return lambda c: None if test(c.config) else reason.format(c=c.config)


_PRETRAINING = (strategy_pretrains, pretrains_itself)
_NO_VALIDATION = "--val-fraction 0 holds out no validation clips"

# Each conditional field and what makes a run read it; a field not listed here is read by every run.
READ_WHEN: dict[str, tuple[Rule, ...]] = {
    "folds": (protocol_reads("folds"),),
    "fold": (protocol_reads("fold"), when(lambda k: k.folds, "it picks one of --folds K, and no --folds is given")),
    "untaught": (protocol_scored,),
    "pretrained": (strategy_pretrains,),
    "pretrain_on": _PRETRAINING,
    "pretrain_epochs": _PRETRAINING,
    "pretrain_data_root": _PRETRAINING,
    "pretrain_classes": _PRETRAINING,
    "step_epochs": (when(lambda k: k.scheduler == "step", "--scheduler {c.scheduler} has no steps (--scheduler step)"),),
    "step_gamma": (when(lambda k: k.scheduler == "step", "--scheduler {c.scheduler} has no steps (--scheduler step)"),),
    "warmup_epochs": (when(lambda k: k.scheduler == "cosine",
                           "--scheduler {c.scheduler} has no warm-up (only --scheduler cosine does)"),),
    "mixstyle_alpha": (when(lambda k: k.mixstyle_p > 0, "--mixstyle-p 0 applies no MixStyle"),),
    "mask_value": (when(lambda k: k.freq_mask or k.time_mask, "no mask is drawn (--freq-mask and --time-mask are 0)"),),
    # Without validation no early stopping happens and the last epoch is kept: saying so (patience 0,
    # select_on last) states what the run does, and is accepted.
    "patience": (when(lambda k: k.val_fraction > 0 or k.patience == 0, _NO_VALIDATION),),
    "select_on": (when(lambda k: k.val_fraction > 0 or k.select_on == "last", _NO_VALIDATION),),
    "min_epochs": (when(lambda k: k.val_fraction > 0, _NO_VALIDATION),
                   when(lambda k: k.patience, "--patience 0 never stops early")),
    "city_dropout": (model_uses_city,),
    "log_dir": (when(lambda k: k.loggers, "no --logger is given"),),
}


def baseline(config: RunConfig) -> dict[str, Any]:
    """What each field would hold had the user not set it: the recipe's value, else the default."""
    values = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
              for f in dataclasses.fields(RunConfig)}
    if config.recipe:
        settings = fold_dotted(recipe_settings(config.recipe, config.dataset, config.options.get("recipe")))
        values.update({k: tuple(v) if isinstance(v, list) else v for k, v in settings.items() if k in values})
    if config.quick:  # --quick's short stages are a bundle too, set for every strategy alike: not the user's doing
        values.update(QUICK_SETTINGS)
    return values


def unread(config: RunConfig, registry: Any) -> dict[str, str]:
    """The fields ``config`` sets that the run would not read, each with the first reason why."""
    choices, base = Choices(config, registry), baseline(config)
    found = {}
    for name, rules in READ_WHEN.items():
        if getattr(config, name) == base[name]:
            continue
        reason = next((r for r in (rule(choices) for rule in rules) if r), None)
        if reason:
            found[name] = reason
    return found


def check_applicable(config: RunConfig, registry: Any) -> None:
    """Refuse, in one line, every field the run sets but would not read (see the module docstring)."""
    found = unread(config, registry)
    if found:
        reasons = "; ".join(f"{flag_of(name)}: {reason}" for name, reason in found.items())
        values = ", ".join(f"{name} = {_shown(getattr(config, name))}" for name in found)
        raise ConfigError(f"{reasons}. Drop {values}: a setting the run does not read is refused, not stored as "
                          "if it mattered")


def _shown(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)
