"""The translator as a whole: its settings, its five networks and one training step.

    config = TranslatorConfig(size=256)            # the paper's networks and weights
    model = CycleGANModel(config)                  # G, F, D_X, D_Y, D_C
    logs = model.train_step(x, y, m, opt_g, opt_d, pools)

`train_step` does the generator update (G and F together) then the critic update (D_X, D_Y
and D_C), each critic seeing generated images through its history pool. Networks can be
swapped for DistributedDataParallel wrappers (`wrap`), which `train.py` does under torchrun.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import nn

from synthgen.config import StrictModel
from synthgen.errors import ConfigError
from synthgen.translate import losses as L
from synthgen.translate.networks import (
    PatchDiscriminator,
    ResnetGenerator,
    init_weights,
    mask_to_image_range,
)
from synthgen.translate.pool import ImagePool


class TranslatorConfig(StrictModel):
    """Every setting of a translator (stored in its checkpoints).

    Attributes:
        size: training crop side, pixels (multiple of 4; 256 in the paper).
        load_size: side images are resized to before cropping (default size · 286/256).
        ngf, ndf: generator / critic widths (64).
        n_blocks: residual blocks of the generators (9).
        d_layers: stride-2 layers of the PatchGAN after the first (3: 70×70 patches).
        pool_size: history pool size per critic (50).
        weights: loss weights and switches.
        mask_threshold: sigmoid probability above which a mask pixel is defect.
        elastic_p: probability of the elastic deformation per sample.
        defect_type: name of the defects the translator paints (for the writers).
    """

    size: int = Field(256, ge=8)
    load_size: int | None = None
    ngf: int = Field(64, ge=1)
    ndf: int = Field(64, ge=1)
    n_blocks: int = Field(9, ge=0)
    d_layers: int = Field(3, ge=1)
    pool_size: int = Field(50, ge=0)
    weights: L.LossWeights = L.LossWeights()
    mask_threshold: float = Field(0.5, gt=0, lt=1)
    elastic_p: float = Field(0.5, ge=0, le=1)
    defect_type: str = "translated"

    @model_validator(mode="after")
    def _check(self) -> TranslatorConfig:
        if self.size % 4:
            raise ValueError(f"size must be a multiple of 4, got {self.size}")
        if self.load_size is not None and self.load_size < self.size:
            raise ValueError(f"load_size {self.load_size} must be >= size {self.size}")
        return self

    @property
    def resize_to(self) -> int:
        """load_size, defaulting to round(size · 286 / 256)."""
        return self.load_size if self.load_size is not None else round(self.size * 286 / 256)

    @property
    def mask_branch(self) -> bool:
        """G has the mask branch when a mask loss is on (plain CycleGAN has none)."""
        return self.weights.needs_mask


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


class CycleGANModel(nn.Module):
    """G: X→Y (with mask branch), F: Y→X, critics D_X, D_Y and (mask branch) D_C.

    Args:
        config: the settings; networks are initialised N(0, 0.02) from torch's global
            generator (seed it first).
    """

    def __init__(self, config: TranslatorConfig):
        super().__init__()
        self.config = config
        c = config
        self.G = ResnetGenerator(3, 3, c.ngf, c.n_blocks, mask_branch=c.mask_branch)
        self.F = ResnetGenerator(3, 3, c.ngf, c.n_blocks, mask_branch=False)
        self.D_X = PatchDiscriminator(3, c.ndf, c.d_layers)
        self.D_Y = PatchDiscriminator(3, c.ndf, c.d_layers)
        self.D_C = PatchDiscriminator(4, c.ndf, c.d_layers) if self.uses_dc else None
        init_weights(self)
        self.nets: dict[str, nn.Module] = {}  # the callables used in steps (maybe DDP)
        self.wrap(lambda net: net)

    @property
    def uses_dc(self) -> bool:
        return self.config.weights.on("consistency")

    def wrap(self, fn: Callable[[nn.Module], nn.Module]) -> None:
        """Route the training step through fn(network) (e.g. a DDP wrapper) for each net."""
        names = ["G", "F", "D_X", "D_Y"] + (["D_C"] if self.uses_dc else [])
        self.nets = {n: fn(getattr(self, n)) for n in names}

    def generators(self) -> list[nn.Parameter]:
        return [*self.G.parameters(), *self.F.parameters()]

    def critics(self) -> list[nn.Parameter]:
        nets = [self.D_X, self.D_Y] + ([self.D_C] if self.D_C is not None else [])
        return [p for net in nets for p in net.parameters()]

    def make_pools(self, seed: int) -> dict[str, ImagePool]:
        """One history pool per critic, seeded from `seed`."""
        return {name: ImagePool(self.config.pool_size, seed + k)
                for k, name in enumerate(("D_X", "D_Y", "D_C"))}

    # ----------------------------------------------------------------- generator losses
    def generator_losses(self, x: torch.Tensor, y: torch.Tensor
                         ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Weighted generator losses and the generated tensors.

        Args:
            x: (B, 3, S, S) good images in [-1, 1].
            y: (B, 3, S, S) defective images in [-1, 1].

        Returns:
            (losses, fakes): losses name → weighted scalar; fakes "fake_y", "fake_x" and,
            with the mask branch, "mask" (B, 1, S, S) in [0, 1].
        """
        w, n = self.config.weights, self.nets
        fake_y, mask_logits = n["G"](x)
        fake_x, _ = n["F"](y)
        out: dict[str, torch.Tensor] = {}
        fakes = {"fake_y": fake_y, "fake_x": fake_x}
        mask = torch.sigmoid(mask_logits.float()) if mask_logits is not None else None
        if mask is not None:
            fakes["mask"] = mask
        if w.on("adversarial"):
            out["adv_g"] = w.adv_g * L.lsgan_loss(n["D_Y"](fake_y), True)
            out["adv_f"] = w.adv_f * L.lsgan_loss(n["D_X"](fake_x), True)
        if w.on("cycle"):
            rec_x, _ = n["F"](fake_y)
            rec_y, _ = n["G"](fake_x)
            out["cycle"] = w.cycle * (L.cycle_loss(rec_x, x) + L.cycle_loss(rec_y, y))
        if w.on("identity"):
            same_y, _ = n["G"](y)
            same_x, _ = n["F"](x)
            out["identity"] = w.identity * (L.identity_loss(same_y, y)
                                            + L.identity_loss(same_x, x))
        if mask is not None and w.on("consistency"):
            pair = torch.cat([fake_y, mask_to_image_range(mask).to(fake_y.dtype)], dim=1)
            out["consistency"] = w.consistency * L.lsgan_loss(n["D_C"](pair), True)
        if mask is not None and w.on("background"):
            out["background"] = w.background * L.background_loss(x, fake_y, mask)
        if not out:
            raise ConfigError("every loss is switched off; enable at least 'adversarial'")
        return out, fakes

    # ----------------------------------------------------------------- critic losses
    def critic_losses(self, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor,
                      fakes: dict[str, torch.Tensor], pools: dict[str, ImagePool]
                      ) -> dict[str, torch.Tensor]:
        """Least-squares critic losses on real images and pooled generated ones.

        Args:
            x, y: (B, 3, S, S) real good / defective images; m: (B, 1, S, S) y's masks.
            fakes: from `generator_losses` (detached here).
            pools: from `make_pools`.
        """
        n = self.nets
        out = {}
        if not self.config.weights.on("adversarial") and not self.uses_dc:
            return out
        if self.config.weights.on("adversarial"):
            fake_y = pools["D_Y"].query(fakes["fake_y"])
            fake_x = pools["D_X"].query(fakes["fake_x"])
            out["D_Y"] = L.critic_loss(n["D_Y"](y), n["D_Y"](fake_y))
            out["D_X"] = L.critic_loss(n["D_X"](x), n["D_X"](fake_x))
        if self.uses_dc and "mask" in fakes:
            fake_pair = torch.cat([fakes["fake_y"].detach(),
                                   mask_to_image_range(fakes["mask"].detach()).to(y.dtype)], 1)
            fake_pair = pools["D_C"].query(fake_pair)
            real_pair = torch.cat([y, mask_to_image_range(m).to(y.dtype)], dim=1)
            out["D_C"] = L.critic_loss(n["D_C"](real_pair), n["D_C"](fake_pair))
        return out

    # ----------------------------------------------------------------- one step
    def train_step(self, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor,
                   opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                   pools: dict[str, ImagePool], autocast: Any = None,
                   freeze_critics: bool = True) -> dict[str, float]:
        """One generator update then one critic update.

        Args:
            x, y, m: a batch (see `critic_losses`), on the model's device.
            opt_g, opt_d: optimisers of `generators()` and `critics()`.
            pools: history pools.
            autocast: a context-manager factory for the forward passes (bf16 on CUDA).
            freeze_critics: stop gradients into the critics during the generator update
                (off under DDP, where every parameter must get a gradient).

        Returns:
            Plain floats: every weighted loss, "G" (their sum) and the critic losses.
        """
        ctx = autocast or contextlib.nullcontext
        critic_nets = [net for net in (self.D_X, self.D_Y, self.D_C) if net is not None]
        if freeze_critics:
            set_requires_grad(critic_nets, False)
        opt_g.zero_grad(set_to_none=True)
        with ctx():
            g_losses, fakes = self.generator_losses(x, y)
        total = sum(g_losses.values())
        total.backward()
        opt_g.step()
        if freeze_critics:
            set_requires_grad(critic_nets, True)
        logs = {k: float(v.detach()) for k, v in g_losses.items()}
        logs["G"] = float(total.detach())
        opt_d.zero_grad(set_to_none=True)
        with ctx():
            d_losses = self.critic_losses(x, y, m, fakes, pools)
        if d_losses:
            sum(d_losses.values()).backward()
            opt_d.step()
        logs.update({k: float(v.detach()) for k, v in d_losses.items()})
        return logs
