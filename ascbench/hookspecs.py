"""The hooks through which plugins extend ascbench.

Every hook takes no arguments and returns a list of specs. A plugin module implements only the hooks it
needs, marked with ``hookimpl``, and imports everything it uses from ascbench through ``ascbench.plugin``::

    import ascbench.plugin as ap

    @ap.hookimpl
    def ascbench_models():
        return [ap.ModelSpec(name="my-net", build=MyNet, description="...")]

Plugins are found through the ``ascbench`` entry-point group (built-ins included).
"""

from __future__ import annotations

import pluggy

PROJECT = "ascbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def ascbench_models() -> list:
    """Return the ``ModelSpec`` objects this plugin provides.

    A model is built as ``spec.build(ctx, **kwargs)`` where ``ctx`` is a ``ModelContext``
    (number of classes, cities, time-feature size, mel bins, frames). Its ``forward(x, city, time)``
    takes a log-mel batch ``x`` of shape (batch, 1, mel_bins, frames), a long tensor of city indices
    (0 = unknown city) and a float tensor of time features, and returns logits (batch, classes).
    """


@hookspec
def ascbench_model_families() -> list:
    """Return the ``ModelFamily`` objects this plugin provides: a prefix (``"timm:"``) under which
    models are resolved by name on demand, for libraries with hundreds of architectures."""


@hookspec
def ascbench_strategies() -> list:
    """Return the ``StrategySpec`` objects this plugin provides.

    A strategy is called as ``spec.train(job)`` with a ``TrainingJob`` and returns the trained
    ``torch.nn.Module``; it decides what is pretrained, frozen or fine-tuned.
    """


@hookspec
def ascbench_metrics() -> list:
    """Return the ``MetricSpec`` objects this plugin provides: scores computed on every scored run's test
    predictions, each saying whether higher is better."""


@hookspec
def ascbench_semi_methods() -> list:
    """Return the ``SemiSpec`` objects this plugin provides: semi-supervised methods (``--semi NAME``) that
    decide how fitting uses the unlabeled training clips, with any strategy."""


@hookspec
def ascbench_datasets() -> list:
    """Return the ``DatasetSpec`` objects this plugin provides.

    ``spec.load(options)`` returns a ``ClipDataset``: an audio root plus a metadata table in the
    standard columns (see ``ascbench.data.dataset``).
    """


@hookspec
def ascbench_protocols() -> list:
    """Return the ``ProtocolSpec`` objects this plugin provides.

    ``spec.split(dataset, options)`` returns a ``Split`` of metadata row positions into train and test.
    """


@hookspec
def ascbench_frontends() -> list:
    """Return the ``FrontEndSpec`` objects this plugin provides.

    A front-end is named by ``--front-end`` (or a dataset's default) and described by a ``FeatureConfig``:
    sample rate, STFT, mel bands, power, padding and log. Features are cached per front-end config.
    """


@hookspec
def ascbench_recipes() -> list:
    """Return the ``RecipeSpec`` objects this plugin provides: named training settings that
    ``ascbench run --recipe NAME`` applies under any explicitly given field."""


@hookspec
def ascbench_loggers() -> list:
    """Return the ``LoggerSpec`` objects this plugin provides: run loggers (``--logger NAME``) that receive
    every finished epoch and stage and the run's final scores (see ``ascbench.callbacks.RunLogger``)."""


@hookspec
def ascbench_commands() -> list:
    """Return the ``CommandSpec`` objects this plugin provides: subcommands of ``ascbench`` (``ascbench NAME``)
    with their own options; a name a built-in command has is refused."""
