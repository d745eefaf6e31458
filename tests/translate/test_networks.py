"""Shapes and gradients of every network and loss, the pool, and the loss switches."""

from __future__ import annotations

import pytest
import torch

from synthgen.translate import losses as L
from synthgen.translate.model import CycleGANModel, TranslatorConfig
from synthgen.translate.networks import (
    PatchDiscriminator,
    ResnetGenerator,
    init_weights,
    receptive_field,
)
from synthgen.translate.pool import ImagePool


def _images(b=2, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, s, s, generator=g) * 2 - 1


def test_generator_shapes_ranges_and_gradients():
    torch.manual_seed(0)
    gen = ResnetGenerator(ngf=4, n_blocks=2, mask_branch=True)
    init_weights(gen)
    x = _images().requires_grad_(True)
    image, logits = gen(x)
    assert image.shape == (2, 3, 32, 32) and logits.shape == (2, 1, 32, 32)
    assert image.abs().max() <= 1.0
    (image.mean() + logits.mean()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in gen.parameters())
    plain = ResnetGenerator(ngf=4, n_blocks=1)
    out, none = plain(_images())
    assert out.shape == (2, 3, 32, 32) and none is None
    assert not hasattr(plain, "mask_head")
    with pytest.raises(ValueError, match="multiples of 4"):
        plain(torch.zeros(1, 3, 30, 32))


def test_generator_matches_the_paper_layout():
    gen = ResnetGenerator(ngf=64, n_blocks=9, mask_branch=True)
    convs = [m for m in gen.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0])
            for c in convs[:3]] == [(3, 64, 7, 1), (64, 128, 3, 2), (128, 256, 3, 2)]
    assert len(convs) == 3 + 2 * 9  # c7s1-64, d128, d256, 9 residual blocks of two convs
    assert gen.up1[0].out_channels == 128 and gen.up2[0].out_channels == 64
    # per-level fusion: concatenation back to the level's width by a 1×1 convolution
    assert (gen.fuse1[0].in_channels, gen.fuse1[0].out_channels,
            gen.fuse1[0].kernel_size) == (256, 128, (1, 1))
    assert (gen.fuse2[0].in_channels, gen.fuse2[0].out_channels) == (128, 64)


def test_mask_branch_sees_the_image_decoder():
    """Changing the image up-block's weights changes the mask (the levels are fused)."""
    torch.manual_seed(1)
    gen = ResnetGenerator(ngf=4, n_blocks=1, mask_branch=True)
    init_weights(gen)
    x = _images(1)
    _, before = gen(x)
    with torch.no_grad():
        gen.up2[0].weight.add_(0.5)
    _, after = gen(x)
    assert not torch.allclose(before, after)


@pytest.mark.parametrize("channels", [3, 4])
def test_patchgan_shape_gradient_and_70px_field(channels):
    disc = PatchDiscriminator(channels, ndf=8)
    assert receptive_field(disc) == 70
    x = torch.randn(2, channels, 64, 64, requires_grad=True)
    out = disc(x)
    assert out.shape == (2, 1, 6, 6)  # 64/8 - 2
    out.mean().backward()
    assert x.grad.abs().sum() > 0


def test_losses_values_and_gradients():
    a = torch.zeros(1, 1, 2, 2, requires_grad=True)
    assert L.lsgan_loss(a, True).item() == pytest.approx(1.0)
    assert L.lsgan_loss(a, False).item() == pytest.approx(0.0)
    assert L.critic_loss(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == 0.0
    L.lsgan_loss(a, True).backward()
    assert torch.allclose(a.grad, torch.full_like(a, -0.5))  # d/da mean((a-1)^2) = 2(a-1)/4
    x, y = _images(seed=1).requires_grad_(True), _images(seed=2)
    assert L.cycle_loss(x, x).item() == 0.0
    assert L.identity_loss(x, y).item() == pytest.approx((x - y).abs().mean().item())
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., :16] = 1.0  # left half is defect: changes there are free
    changed = x.detach().clone()
    changed[..., :16] += 0.5
    assert L.background_loss(x.detach(), changed, mask).item() == pytest.approx(0.0)
    changed[..., 20] += 1.0
    expected = (1.0 / 32)  # one column of 32 changed by 1, squared, over the mean
    assert L.background_loss(x.detach(), changed, mask).item() == pytest.approx(expected)
    m = torch.full((2, 1, 32, 32), 0.3, requires_grad=True)
    loss = L.background_loss(x, y, m)
    loss.backward()
    assert x.grad.abs().sum() > 0 and m.grad.abs().sum() > 0


def test_pool_passes_then_mixes_and_restores():
    pool = ImagePool(2, seed=0)
    first = pool.query(torch.zeros(2, 3, 4, 4))
    assert torch.equal(first, torch.zeros(2, 3, 4, 4)) and len(pool.images) == 2
    outs = [pool.query(torch.full((1, 3, 4, 4), float(k))) for k in range(1, 40)]
    assert any(o.max() == 0 for o in outs)  # some old image came back
    assert any(o.max() > 0 for o in outs)
    state = pool.state_dict()
    again = ImagePool(2, seed=5)
    again.load_state_dict(state)
    batch = torch.full((1, 3, 4, 4), 9.0)
    assert torch.equal(pool.query(batch), again.query(batch))
    assert torch.equal(ImagePool(0).query(batch), batch)


def test_loss_switches_build_plain_cyclegan():
    plain = CycleGANModel(TranslatorConfig(size=32, ngf=4, ndf=4, n_blocks=1,
                                           weights=L.LossWeights(enabled=L.PRESETS["plain"])))
    assert plain.D_C is None and not plain.G.has_mask
    full = CycleGANModel(TranslatorConfig(size=32, ngf=4, ndf=4, n_blocks=1))
    assert full.D_C is not None and full.D_C.net[0].in_channels == 4 and full.G.has_mask
    x, y = _images(1, seed=3), _images(1, seed=4)
    losses, fakes = full.generator_losses(x, y)
    assert set(losses) == {"adv_g", "adv_f", "cycle", "identity", "consistency", "background"}
    assert fakes["mask"].shape == (1, 1, 32, 32)
    losses, fakes = plain.generator_losses(x, y)
    assert set(losses) == {"adv_g", "adv_f", "cycle", "identity"} and "mask" not in fakes
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in plain.generators())


def test_weights_scale_the_losses():
    torch.manual_seed(0)
    cfg = dict(size=32, ngf=4, ndf=4, n_blocks=1)
    a = CycleGANModel(TranslatorConfig(**cfg))
    b = CycleGANModel(TranslatorConfig(**cfg, weights=L.LossWeights(cycle=10.0)))
    b.load_state_dict(a.state_dict())
    x, y = _images(1, seed=5), _images(1, seed=6)
    la, _ = a.generator_losses(x, y)
    lb, _ = b.generator_losses(x, y)
    assert lb["cycle"].item() == pytest.approx(2 * la["cycle"].item(), rel=1e-5)
    assert lb["identity"].item() == pytest.approx(la["identity"].item(), rel=1e-5)
