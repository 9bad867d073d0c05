import torch

from ascbench.augment import freq_mixstyle, mixup, spec_augment


def test_spec_augment_masks_one_band_and_one_span_within_the_widths():
    x = torch.ones(16, 1, 20, 30)
    out = spec_augment(x, 5, 7, torch.Generator().manual_seed(0))
    for clip in out[:, 0]:
        zero_rows = (clip == 0).all(dim=1).sum().item()
        zero_cols = (clip == 0).all(dim=0).sum().item()
        assert zero_rows <= 5 and zero_cols <= 7
    assert (out == 0).any() and torch.equal(x, torch.ones_like(x))  # the input is not modified


def test_mixstyle_keeps_shape_and_is_off_at_p0():
    x = torch.randn(8, 1, 10, 12)
    assert torch.equal(freq_mixstyle(x, 0.0, 0.3, torch.Generator().manual_seed(0)), x)
    out = freq_mixstyle(x, 1.0, 0.3, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.allclose(out, x)
    # Per-frequency statistics move towards other clips' but the time pattern within a band is kept.
    corr = torch.corrcoef(torch.stack([out[0, 0, 3], x[0, 0, 3]]))[0, 1]
    assert corr > 0.999


def test_mixup_is_a_convex_combination():
    x = torch.randn(6, 1, 4, 5)
    y = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]
    mx, my = mixup(x, y, 0.4, torch.Generator().manual_seed(1))
    assert torch.allclose(my.sum(1), torch.ones(6))
    assert (my.max(1).values >= 0.5 - 1e-6).all()  # the first clip stays dominant
    assert torch.equal(mixup(x, y, 0.0, torch.Generator())[0], x)
