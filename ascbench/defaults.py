"""The one table of built-in plugin names the core uses: what ``ascbench run`` uses when nothing is given.

Nowhere else does the core name a built-in plugin (``tests/test_core_names_no_plugin.py`` checks it): anything that
depends on what a plugin can do reads a capability its spec declares, and a plugin's shortcut flags and old config
names are declared by that plugin. Changing a default is one line here.
"""

from __future__ import annotations

DEFAULT_MODEL = "mobileascnet"
DEFAULT_STRATEGY = "finetune"
DEFAULT_DATASET = "embedded-apsipa"  # the real APSIPA dev schedule, synthetic audio (plugins/embedded_apsipa.py)
DEFAULT_PROTOCOL = "session-holdout"
DEFAULT_SEMI = "none"  # labeled clips only
# The front-end a dataset uses when it declares none (DatasetSpec.feature_preset).
DEFAULT_FRONT_END = "embedded"
# The front-end whose input shape `ascbench profile` measures when none is given (the challenge's).
PROFILE_FRONT_END = "apsipa2025"
