"""The translator's losses, their weights and the switches that turn each one off.

X is the defect-free domain, Y the defective one; G: X→Y (image + mask), F: Y→X.
With x a good image, y a defective image, m_y its real mask and (ŷ, m̂) = G(x):

- adversarial (least squares), weights `adv_g` (G against D_Y) and `adv_f` (F against D_X);
- cycle consistency: |F(G(x)) − x|₁ + |G(F(y)) − y|₁, weight `cycle`;
- identity: |G(y) − y|₁ + |F(x) − x|₁, weight `identity`;
- D_C consistency: G's least-squares loss against D_C, the critic of (image, mask) pairs that
  tells (y, m_y) from (ŷ, m̂), weight `consistency`;
- background: the MSE between x·(1 − m̂) and ŷ·(1 − m̂), weight `background`.

All tensors are float; images (B, 3, H, W) in [-1, 1], masks (B, 1, H, W) in [0, 1]; every
loss is a scalar tensor (mean over its elements), differentiable in its inputs.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from synthgen.config import StrictModel

LossName = Literal["adversarial", "cycle", "identity", "consistency", "background"]
ALL_LOSSES: tuple[str, ...] = ("adversarial", "cycle", "identity", "consistency", "background")
MASK_LOSSES = ("consistency", "background")
"""Losses that need the mask branch (and real masks, for D_C)."""

PRESETS: dict[str, tuple[str, ...]] = {
    "full": ALL_LOSSES,
    "plain": ("adversarial", "cycle", "identity"),
    "no_background": ("adversarial", "cycle", "identity", "consistency"),
    "no_consistency": ("adversarial", "cycle", "identity", "background"),
}
"""Named loss sets: the method ("full"), plain CycleGAN ("plain", no mask branch) and the
ablation steps."""


class LossWeights(StrictModel):
    """Loss weights (the paper's values by default) and which losses are on."""

    adv_g: float = Field(1.0, ge=0)
    adv_f: float = Field(1.0, ge=0)
    cycle: float = Field(5.0, ge=0)
    identity: float = Field(10.0, ge=0)
    consistency: float = Field(150.0, ge=0)
    background: float = Field(0.05, ge=0)
    enabled: tuple[LossName, ...] = ALL_LOSSES

    def on(self, name: str) -> bool:
        """Whether loss `name` is switched on."""
        return name in self.enabled

    @property
    def needs_mask(self) -> bool:
        """True when a loss needs G's mask branch."""
        return any(self.on(n) for n in MASK_LOSSES)


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss: mean((scores − 1)²) for `real`, mean(scores²) otherwise.

    Args:
        scores: (B, 1, h, w) critic outputs (any shape).
        real: the target label.
    """
    scores = scores.float()
    target = torch.ones_like(scores) if real else torch.zeros_like(scores)
    return F.mse_loss(scores, target)


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """A critic's least-squares loss: ½(mean((real − 1)²) + mean(fake²))."""
    return 0.5 * (lsgan_loss(real_scores, True) + lsgan_loss(fake_scores, False))


def cycle_loss(reconstructed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between an image and its reconstruction after a round trip (mean over pixels)."""
    return F.l1_loss(reconstructed.float(), original.float())


def identity_loss(mapped: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L1 between a target-domain image and the generator's output for it."""
    return F.l1_loss(mapped.float(), original.float())


def background_loss(good: torch.Tensor, translated: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
    """MSE between good·(1 − m) and translated·(1 − m): the translation must leave the
    background (outside the generated defect mask) as it was.

    Args:
        good: (B, 3, H, W) the input good image x.
        translated: (B, 3, H, W) G(x).
        mask: (B, 1, H, W) in [0, 1], G's mask for x (broadcast over channels).
    """
    keep = 1.0 - mask.float()
    return F.mse_loss(good.float() * keep, translated.float() * keep)
