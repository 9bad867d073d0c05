"""ascbench: a plugin-based benchmark harness for acoustic scene classification under city and time shift."""

from ascbench.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
