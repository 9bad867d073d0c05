"""The Python API a notebook uses: list, create, run, load results; and a light `import ascbench`."""

import subprocess
import sys

import pandas as pd

import ascbench


def test_import_ascbench_loads_no_torch():
    code = "import sys, ascbench; ascbench.hookimpl; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_list_create_run_and_load_results(tmp_path):
    assert {"mobileascnet", "se-trans", "cp-mobile"} <= set(ascbench.list_models())
    assert "unseen-time" in ascbench.list_plugins("protocol")
    model = ascbench.create_model("mobileascnet", dataset="apsipa2025")
    assert sum(p.numel() for p in model.parameters()) == 376_330  # the README's figure, sized for APSIPA 2025
    record = ascbench.run({"dataset": "embedded-tiny", "model": "context-only", "strategy": "scratch", "epochs": 1},
                          runs_dir=tmp_path)
    frame = ascbench.load_results(tmp_path)
    assert isinstance(frame, pd.DataFrame) and list(frame["run_id"]) == [record.run_id]
    assert frame["macro_accuracy"].iloc[0] == record.metrics["macro_accuracy"]
    assert ascbench.RunConfig(epochs=2).epochs == 2


def test_version_flag(capsys):
    from ascbench.cli import main

    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"ascbench {ascbench.__version__}"
