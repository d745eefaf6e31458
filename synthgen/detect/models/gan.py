"""GAN anomaly models trained on good images: AnoGAN's latent search, f-AnoGAN's encoder and a
DCGAN scored by its discriminator.

The networks are DCGAN-style (Radford et al. 2016): a generator G from z (B, Z) to images
(B, 3, S, S) in [0, 1] (S a power of two >= 16), a discriminator D whose convolutional trunk
gives features f(x) (B, C, S/8, S/8) and patch logits (B, 1, S/8, S/8) (the image logit is
their mean), and for f-AnoGAN an encoder E from images to z.

These models own their training step (``train_step``): a D update (real vs generated,
binary cross-entropy), a G update (non-saturating) and, for the encoder mode, an E update
with G and D frozen (f-AnoGAN's izi_f loss: image residual + kappa x feature residual).

Scores:
- "search" (AnoGAN, Schlegl et al. 2017): z starts random (seeded) and walks down the
  gradient of (1 - lam) x mean |x - G(z)| + lam x mean |f(x) - f(G(z))| (lam = 0.1: the
  paper's lambda 0.9 on the residual), batched over images; ``search_steps`` iterations trade
  speed for accuracy. Score: the final loss; map: |x - G(z)| averaged over channels.
- "encoder" (f-AnoGAN, Schlegl et al. 2019): z = E(x), no search; score: the izi_f loss.
- "discriminator" (DCGAN): score = -mean patch logit (less real = more anomalous); map: the
  sigmoid of minus the patch logits, upsampled.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthgen.detect.models.registry import ModelSpec, register_model
from synthgen.errors import ConfigError

SCORES = ("search", "encoder", "discriminator", "mse")


def _levels(size: int) -> int:
    if size < 16 or size & (size - 1):
        raise ConfigError(f"GAN models need a power-of-two image size >= 16, got {size}")
    return int(math.log2(size)) - 2  # 4x4 → S


class Generator(nn.Module):
    """z (B, Z) → images (B, 3, S, S) in [0, 1]: a 4x4 projection then stride-2
    transposed convolutions with BatchNorm and ReLU."""

    def __init__(self, z_dim: int, size: int, width: int = 32):
        super().__init__()
        n = _levels(size)
        chans = [width * 2 ** min(n - 1 - i, 3) for i in range(n)]
        self.project = nn.Sequential(nn.ConvTranspose2d(z_dim, chans[0], 4, bias=False),
                                     nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b),
                       nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z[:, :, None, None]))


def _trunk(size: int, width: int, stop: int) -> tuple[nn.Sequential, int]:
    """Stride-2 conv + LeakyReLU stack from S down to `stop` pixels; returns it and its
    output channels."""
    layers: list[nn.Module] = []
    cin, cout, side = 3, width, size
    while side > stop:
        layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        cin, cout, side = cout, min(cout * 2, width * 8), side // 2
    return nn.Sequential(*layers), cin


class Discriminator(nn.Module):
    """images (B, 3, S, S) → features (B, C, S/8, S/8) and patch logits (B, 1, S/8, S/8)."""

    def __init__(self, size: int, width: int = 32):
        super().__init__()
        _levels(size)
        self.trunk, channels = _trunk(size, width, max(4, size // 8))
        self.head = nn.Conv2d(channels, 1, 3, padding=1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.trunk(images * 2 - 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(images)
        return feats, self.head(feats)


class Encoder(nn.Module):
    """images (B, 3, S, S) → z (B, Z) (tanh-bounded, like f-AnoGAN's encoder)."""

    def __init__(self, z_dim: int, size: int, width: int = 32):
        super().__init__()
        self.trunk, channels = _trunk(size, width, 4)
        self.out = nn.Linear(channels * 16, z_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.trunk(images * 2 - 1).flatten(1))) * 3.0


def latent_search(generator: nn.Module, discriminator: Discriminator, images: torch.Tensor,
                  steps: int, lam: float = 0.1, lr: float = 0.05, z_dim: int | None = None,
                  seed: int = 0, z0: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AnoGAN's search for the latent point whose image is closest to each input.

    Loss per image: (1 - lam) x mean |x - G(z)| + lam x mean |f(x) - f(G(z))|, minimised over
    z (one Adam step per iteration, all images of the batch at once); G and D stay fixed.

    Args:
        images: (B, 3, S, S) float in [0, 1].
        steps: iterations (0: score the starting point).
        z0: starting points (B, Z); else drawn from N(0, 1) with a generator seeded `seed`.

    Returns:
        (z (B, Z), per-image loss at the end (B,), per-image loss at the start (B,)).
    """
    if z0 is None:
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        z0 = torch.randn(len(images), int(z_dim), generator=g).to(images.device)  # type: ignore[arg-type]
    z = z0.detach().clone().requires_grad_(True)
    target = discriminator.features(images).detach()
    optimizer = torch.optim.Adam([z], lr=lr)

    def objective() -> torch.Tensor:
        fake = generator(z)
        residual = (images - fake).abs().flatten(1).mean(1)
        feature = (target - discriminator.features(fake)).abs().flatten(1).mean(1)
        return (1 - lam) * residual.float() + lam * feature.float()

    with torch.enable_grad():
        first = objective()
        loss = first
        for _ in range(int(steps)):
            (grad,) = torch.autograd.grad(loss.sum(), z)
            optimizer.zero_grad(set_to_none=True)
            z.grad = grad
            optimizer.step()
            loss = objective()
    return z.detach(), loss.detach(), first.detach()


class GanAnomaly(nn.Module):
    """A GAN trained on good images, scored by latent search, encoder or discriminator.

    Args:
        size: image side S (power of two, >= 16).
        z_dim: latent size.
        width: channels of the first conv layer.
        score_by: one of SCORES ("mse" = search with lam 0: reconstruction error only).
        search_steps, search_lr, lam: latent search settings.
        kappa: weight of the feature residual in the encoder's loss and score.
        seed: seed of the search's starting points.
    """

    select_best = False  # the adversarial losses do not rank epochs: keep the last one

    def __init__(self, size: int = 64, z_dim: int = 64, width: int = 32, score_by: str = "search",
                 search_steps: int = 100, search_lr: float = 0.05, lam: float = 0.1,
                 kappa: float = 1.0, seed: int = 0):
        super().__init__()
        if score_by not in SCORES:
            raise ConfigError(f"score_by {score_by!r} is not known; accepted: {', '.join(SCORES)}")
        self.size, self.z_dim, self.score_by = int(size), int(z_dim), score_by
        self.search_steps, self.search_lr = int(search_steps), float(search_lr)
        self.lam, self.kappa, self.seed = float(lam), float(kappa), int(seed)
        self.generator = Generator(self.z_dim, self.size, width)
        self.discriminator = Discriminator(self.size, width)
        self.encoder = Encoder(self.z_dim, self.size, width) if score_by == "encoder" else None

    def configure_optimizers(self, lr: float, weight_decay: float = 0.0
                             ) -> dict[str, torch.optim.Optimizer]:
        """Adam (beta1 0.5, as DCGAN) for G, D and (encoder mode) E, at `lr` / 5 for G and D
        (GANs need a smaller rate than the trainer's 1e-3 default)."""
        def adam(module: nn.Module, rate: float) -> torch.optim.Optimizer:
            return torch.optim.Adam(module.parameters(), lr=rate, betas=(0.5, 0.999),
                                    weight_decay=weight_decay)

        out = {"generator": adam(self.generator, lr / 5),
               "discriminator": adam(self.discriminator, lr / 5)}
        if self.encoder is not None:
            out["encoder"] = adam(self.encoder, lr)
        return out

    def _check(self, images: torch.Tensor) -> None:
        if images.shape[-1] != self.size or images.shape[-2] != self.size:
            raise ConfigError(f"this GAN was built for {self.size}x{self.size} images, got "
                              f"{images.shape[-2]}x{images.shape[-1]}; set size={images.shape[-1]}")

    def adversarial_losses(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                 torch.Tensor]:
        """(discriminator loss, generator loss, generated images) for one batch."""
        z = torch.randn(len(images), self.z_dim, device=images.device)
        fake = self.generator(z)
        _, real_logits = self.discriminator(images)
        _, fake_logits = self.discriminator(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(real_logits.float(),
                                                     torch.ones_like(real_logits.float()))
                  + F.binary_cross_entropy_with_logits(fake_logits.float(),
                                                       torch.zeros_like(fake_logits.float())))
        _, gen_logits = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(gen_logits.float(),
                                                    torch.ones_like(gen_logits.float()))
        return d_loss, g_loss, fake

    def encoder_loss(self, images: torch.Tensor) -> torch.Tensor:
        """Per-image izi_f loss (B,): mean (x - G(E(x)))^2 + kappa x mean (f(x) - f(G(E(x))))^2."""
        recon = self.generator(self.encoder(images))  # type: ignore[misc]
        image = (images - recon).pow(2).flatten(1).mean(1)
        feats = (self.discriminator.features(images)
                 - self.discriminator.features(recon)).pow(2).flatten(1).mean(1)
        return image.float() + self.kappa * feats.float()

    def train_step(self, batch: dict[str, Any], optimizers: Mapping[str, torch.optim.Optimizer],
                   sync: Callable[[Any], None]) -> torch.Tensor:
        """One D update, one G update and (encoder mode) one E update; returns their summed
        loss, detached."""
        images = batch["image"]
        self._check(images)
        d_loss, _, fake = self.adversarial_losses(images)
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward(inputs=list(self.discriminator.parameters()))
        sync(self.discriminator.parameters())
        optimizers["discriminator"].step()
        _, gen_logits = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(gen_logits.float(),
                                                    torch.ones_like(gen_logits.float()))
        optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward(inputs=list(self.generator.parameters()))
        sync(self.generator.parameters())
        optimizers["generator"].step()
        total = d_loss.detach() + g_loss.detach()
        if self.encoder is not None:  # G and D frozen: only E's parameters get gradients
            e_loss = self.encoder_loss(images).mean()
            optimizers["encoder"].zero_grad(set_to_none=True)
            e_loss.backward(inputs=list(self.encoder.parameters()))
            sync(self.encoder.parameters())
            optimizers["encoder"].step()
            total = total + e_loss.detach()
        return total

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The summed adversarial (and encoder) losses without an update (validation)."""
        d_loss, g_loss, _ = self.adversarial_losses(batch["image"])
        total = d_loss + g_loss
        if self.encoder is not None:
            total = total + self.encoder_loss(batch["image"]).mean()
        return total

    def reconstruct(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(closest normal images (B, 3, S, S), per-image objective (B,)) by the score mode."""
        if self.score_by == "encoder":
            return self.generator(self.encoder(images)), self.encoder_loss(images)  # type: ignore[misc]
        lam = 0.0 if self.score_by == "mse" else self.lam
        z, loss, _ = latent_search(self.generator, self.discriminator, images,
                                   self.search_steps, lam, self.search_lr, self.z_dim, self.seed)
        return self.generator(z), loss

    def score(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image scores (B,), maps (B, S, S)) float32, higher = more anomalous."""
        self._check(images)
        if self.score_by == "discriminator":
            _, logits = self.discriminator(images)
            maps = F.interpolate(torch.sigmoid(-logits.float()), size=images.shape[-2:],
                                 mode="bilinear", align_corners=False)
            return -logits.float().flatten(1).mean(1), maps[:, 0]
        recon, objective = self.reconstruct(images)
        maps = (images - recon).abs().float().mean(1)
        return objective.float(), maps


def build_gan(config: dict[str, Any]) -> GanAnomaly:
    return GanAnomaly(**config)


_GAN = {"size": 64, "z_dim": 64, "width": 32, "search_steps": 100, "search_lr": 0.05,
        "lam": 0.1, "kappa": 1.0, "seed": 0}

register_model(ModelSpec(
    name="anogan", kind="anomaly", build=build_gan,
    default_config={**_GAN, "score_by": "search"},
    description="AnoGAN: DCGAN on good images; latent search (search_steps) scores, residual map",
    needs="good images only",
))
register_model(ModelSpec(
    name="fanogan", kind="anomaly", build=build_gan,
    default_config={**_GAN, "score_by": "encoder"},
    description="f-AnoGAN: GAN + encoder (izi_f, G and D frozen); no search, residual map",
    needs="good images only",
))
register_model(ModelSpec(
    name="dcgan", kind="anomaly", build=build_gan,
    default_config={**_GAN, "score_by": "discriminator"},
    description="DCGAN scored by its discriminator (or score_by=mse); threshold between classes",
    needs="good images only",
    threshold="between",
))
