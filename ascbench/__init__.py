"""ascbench: a plugin-based benchmark harness for acoustic scene classification under city and time shift.

The Python API (``list_models``, ``create_model``, ``run``, ``load_results``, ``RunConfig``) is in
``ascbench.api`` and re-exported here lazily, so a plugin importing ``ascbench.hookimpl`` loads no torch.
"""

from ascbench._version import __version__
from ascbench.hookspecs import hookimpl

_API = ("list_models", "list_plugins", "create_model", "run", "load_results")
__all__ = ["hookimpl", "__version__", "RunConfig", *_API]


def __getattr__(name: str):
    if name in _API:
        from ascbench import api

        return getattr(api, name)
    if name == "RunConfig":
        from ascbench.config import RunConfig

        return RunConfig
    raise AttributeError(f"module 'ascbench' has no attribute {name!r}")
