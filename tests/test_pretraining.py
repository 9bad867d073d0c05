import os

from ascbench.config import RunConfig
from ascbench.pipeline import resolve
from ascbench.pretraining import pretrained_state

SMALL = {"channels": [8, 8, 8], "stem_channels": 8}


def test_stage_is_cached_and_invalidated_when_source_audio_content_changes(registry, tiny):
    config = RunConfig(model="mobileascnet-cnn", dataset="embedded-tiny", pretrain_epochs=1, seed=5, model_kwargs=SMALL)
    first, second, third = {}, {}, {}
    state = pretrained_state(resolve(config, registry), progress=False, notes=first).state
    again = pretrained_state(resolve(config, registry), progress=False, notes=second).state
    assert first["pretraining"]["cached"] is False and second["pretraining"]["cached"] is True
    assert all((state[k] == again[k]).all() for k in state)

    from ascbench.data.dataset import DatasetOptions

    source = registry.dataset("embedded-tiny-source").load(DatasetOptions())
    path = source.audio_paths()[0]
    original = path.read_bytes()
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    touched = {}
    pretrained_state(resolve(config, registry), progress=False, notes=touched)
    assert touched["pretraining"]["cached"] is True  # same bytes, same stage
    try:
        changed = bytearray(original)
        changed[-200:] = bytes(200)  # silence the last samples of one clip
        path.write_bytes(bytes(changed))
        pretrained_state(resolve(config, registry), progress=False, notes=third)
    finally:
        path.write_bytes(original)  # other tests share this dataset
    assert third["pretraining"]["cached"] is False
    assert third["pretraining"]["stage"] != first["pretraining"]["stage"]


def test_a_model_whose_code_changes_does_not_reuse_its_old_stage(registry, monkeypatch):
    # Same name, same arguments, other strides: what a fix to a model's code looks like to the cache.
    import dataclasses

    from ascbench_plugins.cp_mobile import CPMobile

    kwargs = {"base_channels": 8}
    config = RunConfig(model="cp-mobile", dataset="embedded-tiny", pretrain_epochs=1, seed=3, model_kwargs=kwargs)
    before, after = {}, {}
    pretrained_state(resolve(config, registry), progress=False, notes=before)
    spec = registry.model("cp-mobile")
    changed = dataclasses.replace(spec, build=lambda ctx, **kw: CPMobile(ctx, **kw, strides={"b2": (2, 2), "b4": (2, 1)}))
    monkeypatch.setitem(registry.entries["model"], "cp-mobile", changed)
    pretrained_state(resolve(config, registry), progress=False, notes=after)
    assert after["pretraining"]["cached"] is False
    assert after["pretraining"]["stage"] != before["pretraining"]["stage"]
