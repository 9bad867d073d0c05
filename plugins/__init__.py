"""ascbench's built-in plugins (installed as the package ``ascbench_plugins``).

Each module is one plugin, found through the ``ascbench`` entry-point group exactly as a
third-party plugin would be.
"""
