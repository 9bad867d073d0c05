"""The recipe kit: a recipe is a valid config for every dataset it names, says what it reproduces and how
faithfully, and its options (if it declares any) give valid settings at their defaults and are recorded."""

from __future__ import annotations

from typing import Any, Callable

from ascbench.config import RunConfig
from ascbench.errors import AscbenchError
from ascbench.options import fields_of
from ascbench.recipes import unaccounted_settings
from ascbench.specs import Departure
from ascbench.registry import Registry, get_registry
from ascbench.testing.kit import ConformanceError, bind

# A recipe describes training; these say which data, seed or machine a run uses (RecipeSpec refuses them too).
RUN_FIELDS = ("recipe", "seed", "dataset", "data_root", "device", "threads", "fold")


def _fail(name: str, registry: Registry, check: str, why: str) -> ConformanceError:
    return ConformanceError(f"recipe {name!r} (plugin {registry.owner('recipe', name)!r}) fails {check}: {why}")


def _datasets(spec: Any) -> list[str]:
    return ["embedded", *spec.per_dataset]


def check_recipe_is_a_valid_config(name, registry, spec):
    """For the embedded dataset and every dataset it has settings for, the recipe's settings (at its options'
    defaults) make a config that passes the checks a run makes before reading data: every field known and in
    range, every plugin it names registered, every plugin option valid."""
    from ascbench import pipeline

    options = spec.options_class() if spec.options_class is not None else None
    for dataset in _datasets(spec):
        try:
            config = RunConfig.from_dict({**spec.settings_for(dataset, options), "dataset": dataset})
            pipeline.resolve(config, registry)
        except AscbenchError as exc:
            raise _fail(name, registry, "check_recipe_is_a_valid_config", f"on dataset {dataset!r}: {exc}") from exc


def check_recipe_says_what_it_reproduces(name, registry, spec):
    """A recipe names its source and what is identical to it; each departure (if any) is a sentence with its
    reason, so a reader knows how far the numbers can be compared with the source's. A recipe that declares
    ``from_source`` accounts for every setting it makes: from the source, or a ``Departure`` naming it."""
    if not spec.source.strip() or not spec.identical.strip() or not spec.description.strip():
        raise _fail(name, registry, "check_recipe_says_what_it_reproduces",
                    "description, source and identical must each say something")
    short = [d for d in spec.departures if not isinstance(d, (str, Departure)) or len(str(d).split()) < 4]
    if short:
        raise _fail(name, registry, "check_recipe_says_what_it_reproduces",
                    f"departures must be sentences giving the reason, got {short}")
    if not spec.from_source:
        return  # departures given as prose only: nothing machine-readable to account for
    for dataset in _datasets(spec):
        loose = unaccounted_settings(spec, dataset)
        if loose:
            raise _fail(name, registry, "check_recipe_says_what_it_reproduces",
                        f"on dataset {dataset!r}, settings {loose} are neither from_source nor named by a Departure "
                        "(set every one of SILENT_DEFAULTS explicitly, and say where each value comes from)")


def check_recipe_options(name, registry, spec):
    """Options (if declared) construct at their defaults, document themselves, and ``configure`` returns
    settings: a dict that names no field a recipe may not set. A recipe without options passes."""
    if spec.options_class is None:
        return
    options = spec.options_class()
    undocumented = [f for f, field in fields_of(spec.options_class).items() if not field.metadata.get("help")]
    if undocumented:
        raise _fail(name, registry, "check_recipe_options", f"options without a help text: {undocumented} "
                    "(field(default=..., metadata={'help': ...}); `ascbench list` shows it)")
    for dataset in _datasets(spec):
        settings = spec.configure(options, {**spec.settings, **spec.per_dataset.get(dataset, {})})
        if not isinstance(settings, dict):
            raise _fail(name, registry, "check_recipe_options",
                        f"configure returned {type(settings).__name__}, not a dict of settings")
        fixed = sorted(set(settings) & set(RUN_FIELDS))
        if fixed:
            raise _fail(name, registry, "check_recipe_options", f"configure sets {fixed}: a recipe describes "
                        "training, not which data, seed or machine a run uses")


RECIPE_CHECKS: tuple[Callable, ...] = (check_recipe_is_a_valid_config, check_recipe_says_what_it_reproduces,
                                       check_recipe_options)


def recipe_checks(name: str, registry: Registry | None = None) -> list[Callable[[], None]]:
    """Each recipe check bound to one registered recipe."""
    registry = registry or get_registry()
    return bind(RECIPE_CHECKS, name, registry, registry.recipe(name))


def check_recipe(name: str, registry: Registry | None = None) -> None:
    """Run every recipe check; the first failure raises ``ConformanceError``."""
    for check in recipe_checks(name, registry):
        check()
