"""Where a result came from: software versions, source revision, machine."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy as np
import torch
import torchaudio

from ascbench._version import __version__


def git_revision() -> str | None:
    """The commit of the ascbench source tree (with '+dirty' for local changes), or None outside git."""
    source = Path(__file__).resolve().parent.parent  # the checkout holding ascbench/
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect() -> dict:
    return {
        "ascbench": __version__, "git_commit": git_revision(),
        "python": platform.python_version(), "torch": torch.__version__, "torchaudio": torchaudio.__version__,
        "numpy": np.__version__, "platform": platform.platform(), "cpu": cpu_name(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        # The vector instruction set torch dispatches to (AVX2, AVX512, ...): the same code on another ISA sums
        # in another order, and a re-run elsewhere may differ beyond the last bits.
        "cpu_capability": _cpu_capability(),
    }


def _cpu_capability() -> str | None:
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return None
