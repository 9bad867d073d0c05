"""The built-in feature front-ends: ascbench's own, and the two official baselines' reproduced exactly.

Both official ones are checked against the official code's outputs on its reference clips
(tests/test_frontends.py, ``../shared/reference``): the largest difference is 5.4e-5 dB (APSIPA) and 6.6e-5
(DCASE, natural log) in float32, against a tolerance of 1e-3.
"""

from __future__ import annotations

import ascbench.plugin as ap


@ap.hookimpl
def ascbench_frontends() -> list[ap.FrontEndSpec]:
    return [
        ap.FrontEndSpec(
            "embedded", ap.FeatureConfig(16_000, 1024, 800, 320, 64, 50.0, 8000.0),
            "16 kHz, 50 ms Hann window, 20 ms hop, 64 Slaney mel bands 50 Hz-8 kHz, 20*log10 of the magnitude mel",
            source="ascbench (the embedded datasets)"),
        ap.FrontEndSpec(
            "apsipa2025",
            ap.FeatureConfig(44_100, 2048, 1764, 882, 64, 50.0, None, max_frames=500, power=1.0, mel_scale="slaney",
                             mel_norm="slaney", pad_mode="constant", log="db10", top_db=80.0),
            "APSIPA ASC 2025 baseline: 44.1 kHz, n_fft 2048, 40 ms window, 20 ms hop, 64 Slaney bands from 50 Hz, "
            "librosa power_to_db of the magnitude mel (top_db 80), first 500 frames",
            source="JishengBai/APSIPA2025GC-ASC (librosa 0.11)",
            departures="the official code adds machine epsilon to the audio before the STFT; that moves nothing "
                       "measurable (< 1e-4 dB) and is left out"),
        ap.FrontEndSpec(
            "dcase2024",
            ap.FeatureConfig(32_000, 4096, 3072, 500, 256, 0.0, None, power=2.0, mel_scale="htk", mel_norm=None,
                             pad_mode="reflect", log="ln", log_offset=1e-5),
            "DCASE 2024 Task 1 baseline: resampled to 32 kHz, n_fft 4096, 96 ms window, 15.6 ms hop, 256 HTK mel "
            "bands (no filter normalisation) of the power spectrum, ln(x + 1e-5)",
            source="CPJKU/dcase2024_task1_baseline (torchaudio)"),
    ]
