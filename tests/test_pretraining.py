import os

from ascbench.config import RunConfig
from ascbench.features import PRESETS
from ascbench.pretraining import pretrained_state

SMALL = {"channels": [8, 8, 8], "stem_channels": 8}


def test_stage_is_cached_and_invalidated_when_source_audio_changes(registry, tiny):
    config = RunConfig(model="mobileascnet-cnn", dataset="embedded-tiny", pretrain_epochs=1, seed=5, model_kwargs=SMALL)
    first, second, third = {}, {}, {}
    state = pretrained_state(config, registry, "embedded-tiny", PRESETS["embedded"], progress=False, notes=first)
    again = pretrained_state(config, registry, "embedded-tiny", PRESETS["embedded"], progress=False, notes=second)
    assert first["pretraining"]["cached"] is False and second["pretraining"]["cached"] is True
    assert all((state[k] == again[k]).all() for k in state)

    from ascbench.data.dataset import DatasetOptions

    source = registry.dataset("embedded-tiny-source").load(DatasetOptions())
    path = source.audio_paths()[0]
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    pretrained_state(config, registry, "embedded-tiny", PRESETS["embedded"], progress=False, notes=third)
    assert third["pretraining"]["cached"] is False
    assert third["pretraining"]["stage"] != first["pretraining"]["stage"]
