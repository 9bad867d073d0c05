"""The documented contributor path, proven: scaffold a plugin, load it through a real entry point,
pass the conformance kit, run it end to end."""

import subprocess
import sys

import pytest

from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.registry import build_registry
from ascbench.runner import execute
from ascbench.scaffold import new_plugin
from ascbench.testing import check_model


def _install_as_entry_point(root, name, module, site):
    """What pip install -e does for discovery: a dist-info with the entry point, and the module on sys.path."""
    info = site / f"ascbench_{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: ascbench-{name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[ascbench]\n{name} = {module}\n")
    return [str(site), str(root)]


def test_scaffolded_model_plugin_end_to_end(tmp_path, monkeypatch, runs, capsys):
    assert main(["new-plugin", "tiny-net", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "ascbench-tiny-net"
    assert {p.name for p in root.iterdir()} >= {"pyproject.toml", "ascbench_tiny_net.py", "tests", "README.md"}
    assert 'tiny-net = "ascbench_tiny_net"' in (root / "pyproject.toml").read_text()
    for path in _install_as_entry_point(root, "tiny-net", "ascbench_tiny_net", tmp_path / "site"):
        monkeypatch.syspath_prepend(path)
    registry = build_registry(strict=True)
    assert registry.owner("model", "tiny-net") == "tiny-net"
    check_model("tiny-net", registry=registry)
    record = execute(RunConfig(model="tiny-net", strategy="scratch", dataset="embedded-tiny", epochs=1),
                     registry=registry, progress=False)
    assert record.row["model"] == "tiny-net" and record.row["params"] > 0


def test_scaffolded_tests_pass_with_the_plugin_installed(tmp_path):
    root = new_plugin("probe-net", "model", tmp_path)
    paths = _install_as_entry_point(root, "probe-net", "ascbench_probe_net", tmp_path / "site")
    env_path = ":".join(paths + sys.path)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                            capture_output=True, text=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "7 passed" in result.stdout


def test_scaffolded_strategy_plugin(tmp_path, monkeypatch, runs):
    root = new_plugin("gentle-start", "strategy", tmp_path)
    for path in _install_as_entry_point(root, "gentle-start", "ascbench_gentle_start", tmp_path / "site"):
        monkeypatch.syspath_prepend(path)
    registry = build_registry(strict=True)
    record = execute(RunConfig(strategy="gentle-start", dataset="embedded-tiny", epochs=1, pretrain_epochs=1,
                               model="mobileascnet-cnn", model_kwargs={"channels": [8, 8, 8], "stem_channels": 8}),
                     registry=registry, progress=False)
    assert record.row["strategy"] == "gentle-start"


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="lower-case"):
        new_plugin("Bad_Name", "model", tmp_path)
    new_plugin("twice", "model", tmp_path)
    with pytest.raises(ConfigError, match="already exists"):
        new_plugin("twice", "model", tmp_path)


# Each kind's scaffold passes its own tests: its kind's conformance kit and an end-to-end run with its option.
# The strategy and semi-method scaffolds train twice per kit check: slow (-m slow); their kits run on every built-in
# strategy and semi method in the default suite (tests/test_conformance.py).
@pytest.mark.parametrize("kind,name,passed", [
    pytest.param("strategy", "gentle-start", 3, marks=pytest.mark.slow),
    pytest.param("semi", "confident-once", 4, marks=pytest.mark.slow), ("metric", "worst-class", 5),
    ("protocol", "last-cities", 4), ("dataset", "my-scenes", 2), ("frontend", "wide-mel", 4),
    ("recipe", "quick-adam", 4), ("logger", "json-lines", 3),
])
def test_scaffolded_plugins_of_every_kind_pass_their_own_tests(tmp_path, kind, name, passed):
    root = new_plugin(name, kind, tmp_path)
    module = "ascbench_" + name.replace("-", "_")
    paths = _install_as_entry_point(root, name, module, tmp_path / "site")
    env_path = ":".join(paths + sys.path)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                            capture_output=True, text=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin",
                                                                 "ASCBENCH_STRICT_PLUGINS": "1",
                                                                 "ASCBENCH_CACHE_DIR": str(tmp_path / "cache")},
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert f"{passed} passed" in result.stdout
