"""Every plugin kind, declared once: its registry name, hook, spec class, how ``ascbench list`` and messages name it,
the prefix of its options, its scaffold template and its conformance kit.

The registry, the options, ``ascbench new-plugin``, ``ascbench list`` and ``ascbench.testing`` read this table;
``tests/test_plugin_surface.py`` checks that it and the hookspecs agree. A new kind is one row here, one hookspec,
and (if it has them) a template pair and a kit.
"""

from __future__ import annotations

from dataclasses import dataclass

from ascbench.specs import (CommandSpec, DatasetSpec, FrontEndSpec, LoggerSpec, MetricSpec, ModelFamily, ModelSpec,
                            ProtocolSpec, RecipeSpec, SemiSpec, StrategySpec)


@dataclass(frozen=True)
class Kind:
    name: str  # the registry's key ("front-end")
    hook: str  # the hookspec a plugin implements
    spec: type  # what that hook returns a list of
    plural: str  # `ascbench list --PLURAL`
    display: str  # in messages ("unknown semi-supervised method 'x'")
    option_prefix: str | None = None  # `--set PREFIX.FIELD`; None: the kind has no options of its own
    template: str | None = None  # `ascbench new-plugin --kind TEMPLATE` (ascbench/templates/TEMPLATE.py.tmpl)
    kit: str | None = None  # its conformance checks in ascbench.testing (a function returning the checks)


# In the order `ascbench list` shows them; options are checked in this order too.
KINDS: tuple[Kind, ...] = (
    Kind("model", "ascbench_models", ModelSpec, "models", "model", template="model", kit="model_checks"),
    Kind("model family", "ascbench_model_families", ModelFamily, "model-families", "model family"),
    Kind("strategy", "ascbench_strategies", StrategySpec, "strategies", "strategy", option_prefix="strategy",
         template="strategy", kit="strategy_checks"),
    Kind("semi", "ascbench_semi_methods", SemiSpec, "semi-methods", "semi-supervised method", option_prefix="semi",
         template="semi", kit="semi_checks"),
    Kind("metric", "ascbench_metrics", MetricSpec, "metrics", "metric", template="metric", kit="metric_checks"),
    Kind("protocol", "ascbench_protocols", ProtocolSpec, "protocols", "protocol", option_prefix="protocol",
         template="protocol", kit="protocol_checks"),
    Kind("dataset", "ascbench_datasets", DatasetSpec, "datasets", "dataset", option_prefix="dataset",
         template="dataset", kit="dataset_checks"),
    Kind("front-end", "ascbench_frontends", FrontEndSpec, "front-ends", "front-end", option_prefix="frontend",
         template="frontend", kit="frontend_checks"),
    Kind("recipe", "ascbench_recipes", RecipeSpec, "recipes", "recipe", option_prefix="recipe", template="recipe",
         kit="recipe_checks"),
    Kind("logger", "ascbench_loggers", LoggerSpec, "loggers", "logger", template="logger", kit="logger_checks"),
    Kind("command", "ascbench_commands", CommandSpec, "commands", "command"),
)

BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}
HOOK_NAMES: frozenset[str] = frozenset(kind.hook for kind in KINDS)
# The kinds whose options a run sets as `--set PREFIX.FIELD`, in the order they are checked.
OPTION_PREFIXES: tuple[str, ...] = tuple(kind.option_prefix for kind in KINDS if kind.option_prefix)
# `ascbench new-plugin --kind` choices.
TEMPLATES: tuple[str, ...] = tuple(kind.template for kind in KINDS if kind.template)
# `ascbench list` shows model families among the models, not as a kind of their own.
LISTED: tuple[Kind, ...] = tuple(kind for kind in KINDS if kind.name != "model family")
