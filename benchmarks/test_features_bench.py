"""Log-mel extraction of 10-second clips: the harness (decode files, check them, batched mel in parallel)
against one batched torchaudio call over the same audio already in memory."""

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


def test_logmel_extraction(interleaved, ten_second_clips):
    """Decoding the files, the audio checks and the batched mel (the harness) against one torchaudio call
    over the same audio already in memory (bare), interleaved round by round."""
    preset, cfg, dataset, audio = ten_second_clips
    front_end = LogMel(cfg)

    def harness():
        feats, reports = extract(dataset, cfg, progress=False)
        assert feats.shape == (CLIPS, cfg.n_mels, cfg.n_frames(10.0)) and not any(r.problem for r in reports)

    def bare():
        with torch.inference_mode():
            return front_end(audio)[..., :cfg.n_frames(10.0)]

    interleaved(f"log-mel extraction ({preset})", harness, bare, items=CLIPS, rounds=8, warmup=1)
