"""Log-mel features with torchaudio, extracted in batches and cached on disk once per dataset and preset.

The cache holds one ``.npy`` array (clips x mel bins x frames) per (dataset files, preset), opened
memory-mapped, so a warm epoch is a slice rather than thousands of file opens. The key covers the
preset and every file's path, size and modification time: touching a file re-extracts.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio
from tqdm.auto import tqdm

from ascbench.data.audio import read_clip
from ascbench.data.dataset import ClipDataset
from ascbench.errors import ConfigError
from ascbench.fileio import atomic_write_text, cache_root, files_state_digest


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    f_min: float
    f_max: float | None = None
    max_frames: int | None = None  # crop to this many frames (the challenge baseline keeps 500)

    def n_frames(self, clip_seconds: float) -> int:
        frames = int(round(clip_seconds * self.sample_rate)) // self.hop_length + 1  # centred frames
        return min(frames, self.max_frames) if self.max_frames else frames


PRESETS: dict[str, FeatureConfig] = {
    # The embedded datasets: 16 kHz, 50 ms windows, 20 ms hop.
    "embedded": FeatureConfig(16_000, 1024, 800, 320, 64, 50.0, 8000.0),
    # APSIPA ASC 2025 baseline and MobileASCNet paper: 500 frames per 10 s clip.
    "apsipa2025": FeatureConfig(44_100, 2048, 1764, 882, 64, 50.0, None, max_frames=500),
    # DCASE Task 1 baseline.
    "dcase": FeatureConfig(32_000, 4096, 3072, 500, 256, 0.0, None),
}


def get_preset(name: str) -> FeatureConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown feature preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


class LogMel(torch.nn.Module):
    """Magnitude mel spectrogram (Hann window, Slaney mel scale and norm) in dB."""

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
            f_min=cfg.f_min, f_max=cfg.f_max, n_mels=cfg.n_mels, power=1.0, norm="slaney", mel_scale="slaney",
        )
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="magnitude", top_db=None)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.to_db(self.mel(waveforms))


def cache_key(dataset: ClipDataset, cfg: FeatureConfig) -> str:
    """Identifies the features of exactly these files under exactly this preset."""
    salt = json.dumps(asdict(cfg), sort_keys=True) + f"{dataset.sample_rate}|{dataset.clip_seconds}"
    return files_state_digest(dataset.audio_paths(), salt)


def features_dir() -> Path:
    return Path(os.environ.get("ASCBENCH_FEATURE_DIR") or cache_root() / "features")


def extract(dataset: ClipDataset, cfg: FeatureConfig, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Compute log-mel features for every clip of ``dataset`` (no caching)."""
    front_end = LogMel(cfg)
    paths = dataset.audio_paths()
    n_frames = cfg.n_frames(dataset.clip_seconds)
    out = np.empty((len(paths), cfg.n_mels, n_frames), dtype=np.float32)
    bar = tqdm(total=len(paths), desc=f"log-mel {dataset.name}", unit="clip", disable=not progress, leave=False)
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = np.stack([read_clip(p, dataset.sample_rate, dataset.num_samples) for p in paths[start:start + batch_size]])
            wave = torch.from_numpy(batch)
            if dataset.sample_rate != cfg.sample_rate:
                wave = torchaudio.functional.resample(wave, dataset.sample_rate, cfg.sample_rate)
            out[start:start + len(batch)] = front_end(wave)[..., :n_frames].numpy()
            bar.update(len(batch))
    bar.close()
    return out


def load_features(dataset: ClipDataset, cfg: FeatureConfig, progress: bool = True) -> tuple[np.ndarray, bool]:
    """Features for every clip of ``dataset`` from the cache, extracting them on a miss.

    Returns the (memory-mapped) array and whether it came from the cache.
    """
    directory = features_dir() / f"{dataset.name}-{cache_key(dataset, cfg)}"
    array_path = directory / "features.npy"
    index_path = directory / "index.json"
    if array_path.exists() and index_path.exists():
        return np.load(array_path, mmap_mode="r"), True
    feats = extract(dataset, cfg, progress=progress)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".features.{os.getpid()}.npy"
    np.save(tmp, feats)
    os.replace(tmp, array_path)
    # The index is written last and marks the entry complete.
    atomic_write_text(index_path, json.dumps({"files": list(dataset.meta["filename"]), "config": asdict(cfg)}))
    return np.load(array_path, mmap_mode="r"), False
