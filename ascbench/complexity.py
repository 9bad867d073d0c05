"""Model complexity: parameters, MACs and parameter memory, counted by explicit per-layer rules.

Common counters disagree on recurrent layers and lookups (some count a GRU as zero, some add its
biases and embedding lookups). Here every layer type has a stated rule, and a layer without one is
an error rather than a silent zero:

* Conv: output elements x (input channels / groups) x kernel area (a depthwise conv is cheap, as it should be)
* Linear: leading elements x in_features x out_features
* GRU: steps x 3*H*(I + H) per layer and direction (input-to-hidden and hidden-to-hidden matrices)
* Multi-head attention: projections, plus L*L*E for the scores and L*L*E for the weighted sum
* Embeddings, normalisation, activations, pooling, dropout: 0 (lookups and element-wise work)

Biases are not counted, following the DCASE low-complexity convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from ascbench.errors import PluginError

ZERO_COST: set[type] = {
    nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d,
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.LeakyReLU,
    nn.Softmax, nn.Dropout, nn.Dropout2d, nn.Identity, nn.Flatten, nn.Embedding,
    nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
}


def _conv_macs(m: nn.Module, inputs, output) -> int:
    per_output = (m.in_channels // m.groups) * math.prod(m.kernel_size)
    return output.numel() * per_output


def _linear_macs(m: nn.Linear, inputs, output) -> int:
    return output.numel() * m.in_features


def _gru_macs(m: nn.GRU, inputs, output) -> int:
    x = inputs[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        raise PluginError("MAC counting of packed sequences is not supported; profile with a padded batch")
    steps = x.shape[1] if m.batch_first else x.shape[0]
    batch = x.shape[0] if m.batch_first else x.shape[1]
    dirs = 2 if m.bidirectional else 1
    h = m.hidden_size
    total = 0
    for layer in range(m.num_layers):
        i = m.input_size if layer == 0 else h * dirs
        total += dirs * steps * 3 * h * (i + h)
    return batch * total


def _attention_macs(embed: int, kdim: int, vdim: int, q_len: int, kv_len: int, batch: int) -> int:
    projections = q_len * embed * embed + kv_len * kdim * embed + kv_len * vdim * embed
    scores_and_sum = 2 * q_len * kv_len * embed
    out_proj = q_len * embed * embed
    return batch * (projections + scores_and_sum + out_proj)


def _mha_macs(m: nn.MultiheadAttention, inputs, output) -> int:
    q, k = inputs[0], inputs[1]
    if m.batch_first:
        batch, q_len, kv_len = q.shape[0], q.shape[1], k.shape[1]
    else:
        q_len, batch, kv_len = q.shape[0], q.shape[1], k.shape[0]
    return _attention_macs(m.embed_dim, m.kdim, m.vdim, q_len, kv_len, batch)


def _encoder_layer_macs(m: nn.TransformerEncoderLayer, inputs, output) -> int:
    # Counted as a whole: in eval mode torch may run a fused kernel that never calls its sub-modules.
    x = inputs[0]
    attn = m.self_attn
    batch, length = (x.shape[0], x.shape[1]) if attn.batch_first else (x.shape[1], x.shape[0])
    ff = length * (m.linear1.in_features * m.linear1.out_features + m.linear2.in_features * m.linear2.out_features)
    return _attention_macs(attn.embed_dim, attn.kdim, attn.vdim, length, length, batch) + batch * ff


RULES: dict[type, Callable] = {
    nn.Conv1d: _conv_macs,
    nn.Conv2d: _conv_macs,
    nn.Linear: _linear_macs,
    nn.GRU: _gru_macs,
    nn.MultiheadAttention: _mha_macs,
    nn.TransformerEncoderLayer: _encoder_layer_macs,
}


def register_rule(layer_type: type, rule: Callable | None = None) -> None:
    """Teach the counter a layer type: ``rule(module, inputs, output) -> MACs``, or ``None`` for zero cost.

    Plugins with custom layers call this at import time; a rule covers the layer's sub-modules too.
    """
    if rule is None:
        ZERO_COST.add(layer_type)
    else:
        RULES[layer_type] = rule


def _rule_for(module: nn.Module) -> Callable | None:
    for cls in type(module).__mro__:
        if cls in RULES:
            return RULES[cls]
        if cls in ZERO_COST:
            return lambda *_: 0
    return None


BYTES_PER_PARAM = {"float32": 4, "float16": 2, "int8": 1}
DCASE_MEMORY_LIMIT_BYTES = 128_000


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int  # for one input of the profiled shape
    param_bytes: int  # at the stored precision

    @property
    def param_kb(self) -> float:
        return self.param_bytes / 1000.0

    def memory_bytes(self, precision: str) -> int:
        return self.params * BYTES_PER_PARAM[precision]

    def widest_precision_within(self, limit_bytes: int = DCASE_MEMORY_LIMIT_BYTES) -> str | None:
        """The most precise storage type whose parameter memory fits ``limit_bytes`` (None if none does)."""
        return next((p for p in BYTES_PER_PARAM if self.memory_bytes(p) <= limit_bytes), None)

    def as_dict(self) -> dict:
        return {
            "params": self.params, "macs": self.macs, "param_kb": round(self.param_kb, 2),
            "param_bytes": {p: self.memory_bytes(p) for p in BYTES_PER_PARAM},
            "fits_128kB_at": self.widest_precision_within(),
        }


def count_macs(model: nn.Module, *inputs: torch.Tensor, **kwargs) -> int:
    """MACs of one forward pass of ``model`` on ``inputs`` by the rules above."""
    hooks, total = [], [0]

    def visit(module: nn.Module) -> None:
        rule = _rule_for(module)
        if rule is not None:
            hooks.append(module.register_forward_hook(lambda m, i, o, rule=rule: total.__setitem__(0, total[0] + int(rule(m, i, o)))))
            return  # a rule covers its sub-modules too
        children = list(module.children())
        if not children:
            own = sum(p.numel() for p in module.parameters(recurse=False))
            raise PluginError(
                f"no MAC rule for layer type {type(module).__name__} ({own} parameters); "
                "register one with ascbench.complexity.register_rule"
            )
        for child in children:
            visit(child)

    try:
        visit(model)
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(*inputs, **kwargs)
        model.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def profile(model: nn.Module, n_mels: int, n_frames: int, time_dim: int) -> Complexity:
    """Parameters, MACs and parameter memory for one clip of ``n_mels`` x ``n_frames``."""
    x, city, time = _example_inputs(n_mels, n_frames, time_dim)
    params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return Complexity(params=params, macs=count_macs(model, x, city, time), param_bytes=param_bytes)


def _example_inputs(n_mels: int, n_frames: int, time_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.zeros(1, 1, n_mels, n_frames), torch.zeros(1, dtype=torch.long), torch.zeros(1, time_dim)


def torchinfo_macs(model: nn.Module, n_mels: int, n_frames: int, time_dim: int) -> int | None:
    """The figure torchinfo (and the DCASE NeSsi tool that wraps it) reports, for comparison with DCASE tables.

    It differs from ours by design: it adds biases and embedding lookups. ``None`` if torchinfo fails.
    """
    try:
        import torchinfo

        was_training = model.training
        summary = torchinfo.summary(model.eval(), input_data=list(_example_inputs(n_mels, n_frames, time_dim)), verbose=0)
        model.train(was_training)
        return int(summary.total_mult_adds)
    except Exception:
        return None


def latency_ms(model: nn.Module, n_mels: int, n_frames: int, time_dim: int, repeats: int = 10) -> float:
    """Median wall time of one single-clip forward pass on the model's device, in milliseconds (after two
    warm-up passes; CUDA work is waited for)."""
    import time

    from ascbench.device import model_compute

    compute = model_compute(model)
    inputs = compute.to(*_example_inputs(n_mels, n_frames, time_dim))
    was_training = model.training
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            start = time.perf_counter()
            model(*inputs)
            compute.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - start)
    model.train(was_training)
    return float(sorted(times)[len(times) // 2] * 1000.0)