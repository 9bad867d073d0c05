"""Log-mel extraction of 10-second clips: the harness (decode files, batched mel in parallel) against one
batched torchaudio call over the same audio already in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from ascbench.data.dataset import ClipDataset
from ascbench.features import get_preset, LogMel, extract

CLIPS = 48


@pytest.fixture(scope="module", params=["apsipa2025", "dcase2024"])
def ten_second_clips(request, tmp_path_factory):
    """CLIPS ten-second PCM-16 WAV files at the preset's sample rate, as a dataset."""
    preset = request.param
    cfg = get_preset(preset)
    root = tmp_path_factory.mktemp(f"clips-{preset}")
    rng = np.random.default_rng(0)
    n = 10 * cfg.sample_rate
    names, waves = [], []
    for i in range(CLIPS):
        wave = (0.1 * rng.standard_normal(n)).astype(np.float32)
        sf.write(str(root / f"clip{i}.wav"), wave, cfg.sample_rate, subtype="PCM_16")
        names.append(f"clip{i}.wav")
    meta = pd.DataFrame({"filename": names, "scene_label": "", "labeled": False, "city": "x",
                         "timestamp": "2023-05-01 12:00:00", "group": names, "split": ""})
    dataset = ClipDataset(f"bench-{preset}", root, meta, ["a"], cfg.sample_rate, 10.0, preset)
    # The bare twin gets exactly what the harness decodes (PCM-16 rounding included).
    audio = np.stack([sf.read(str(root / f), dtype="float32")[0] for f in names])
    return preset, cfg, dataset, torch.from_numpy(audio)


def test_logmel_harness(benchmark, pair, ten_second_clips):
    preset, cfg, dataset, _ = ten_second_clips
    benchmark.group = f"log-mel {preset}"
    feats, reports = benchmark(extract, dataset, cfg, progress=False)
    assert feats.shape == (CLIPS, cfg.n_mels, cfg.n_frames(10.0)) and not any(r.problem for r in reports)
    pair(f"log-mel extraction ({preset})", "harness", CLIPS, "clips")


def test_logmel_bare(benchmark, pair, ten_second_clips):
    preset, cfg, _, audio = ten_second_clips
    benchmark.group = f"log-mel {preset}"
    front_end = LogMel(cfg)

    def one_call():
        with torch.inference_mode():
            return front_end(audio)[..., :cfg.n_frames(10.0)]

    feats = benchmark(one_call)
    assert feats.shape[0] == CLIPS
    pair(f"log-mel extraction ({preset})", "bare", CLIPS, "clips")
