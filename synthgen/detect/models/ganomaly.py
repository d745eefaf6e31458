"""GANomaly (Akcay et al., ACCV 2018): an encoder-decoder-encoder generator and a discriminator,
trained on good images.

G_E maps x to z, G_D maps z to x_hat, E maps x_hat to z_hat. Losses: adversarial (feature
matching: L2 between D's mean features of x and x_hat) weight 1, contextual L1 |x - x_hat|
weight 50, encoder L2 |z - z_hat|^2 weight 1; D is trained with binary cross-entropy.
Score: mean (z - z_hat)^2 per image, min-max normalised by the training images' scores (set
after each epoch; AUROC is unaffected). Map: |x - x_hat| averaged over channels (GANomaly
itself gives no map). The paper notes results vary across runs, even with one seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthgen.detect.models.gan import Discriminator, Encoder, Generator, _levels
from synthgen.detect.models.registry import ModelSpec, register_model
from synthgen.errors import ConfigError


class Ganomaly(nn.Module):
    """GANomaly as an anomaly model that owns its training step.

    Args:
        size: image side S (power of two >= 16); z_dim: latent size; width: first conv width.
        w_adv, w_con, w_enc: loss weights (1, 50, 1 in the paper).
    """

    select_best = False

    def __init__(self, size: int = 64, z_dim: int = 64, width: int = 32, w_adv: float = 1.0,
                 w_con: float = 50.0, w_enc: float = 1.0):
        super().__init__()
        _levels(size)
        self.size, self.z_dim = int(size), int(z_dim)
        self.weights = (float(w_adv), float(w_con), float(w_enc))
        self.encoder1 = Encoder(self.z_dim, self.size, width)
        self.decoder = Generator(self.z_dim, self.size, width)
        self.encoder2 = Encoder(self.z_dim, self.size, width)
        self.discriminator = Discriminator(self.size, width)
        self.register_buffer("score_range", torch.tensor([0.0, 1.0]))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images (B, 3, S, S) → (x_hat (B, 3, S, S), z (B, Z), z_hat (B, Z))."""
        if images.shape[-1] != self.size or images.shape[-2] != self.size:
            raise ConfigError(f"ganomaly was built for {self.size}x{self.size} images, got "
                              f"{images.shape[-2]}x{images.shape[-1]}")
        z = self.encoder1(images)
        recon = self.decoder(z)
        return recon, z, self.encoder2(recon)

    def generator_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder1.parameters(), *self.decoder.parameters(),
                *self.encoder2.parameters()]

    def configure_optimizers(self, lr: float, weight_decay: float = 0.0
                             ) -> dict[str, torch.optim.Optimizer]:
        """Adam (beta1 0.5) for the generator (G_E, G_D, E) and for D, at `lr` / 5."""
        kw = {"lr": lr / 5, "betas": (0.5, 0.999), "weight_decay": weight_decay}
        return {"generator": torch.optim.Adam(self.generator_parameters(), **kw),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), **kw)}

    def _generator_loss(self, images: torch.Tensor, recon: torch.Tensor, z: torch.Tensor,
                        z_hat: torch.Tensor) -> torch.Tensor:
        w_adv, w_con, w_enc = self.weights
        adv = F.mse_loss(self.discriminator.features(recon).float().mean(0),
                         self.discriminator.features(images).float().mean(0).detach())
        con = F.l1_loss(recon.float(), images.float())
        enc = F.mse_loss(z_hat.float(), z.float())
        return w_adv * adv + w_con * con + w_enc * enc

    def _discriminator_loss(self, images: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        _, real = self.discriminator(images)
        _, fake = self.discriminator(recon.detach())
        real, fake = real.float(), fake.float()
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def train_step(self, batch: dict[str, Any], optimizers: Mapping[str, torch.optim.Optimizer],
                   sync: Callable[[Any], None]) -> torch.Tensor:
        """One generator update, then one discriminator update; returns the summed loss."""
        images = batch["image"]
        recon, z, z_hat = self(images)
        g_loss = self._generator_loss(images, recon, z, z_hat)
        params = self.generator_parameters()
        optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward(inputs=params)
        sync(params)
        optimizers["generator"].step()
        d_loss = self._discriminator_loss(images, recon)
        optimizers["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward(inputs=list(self.discriminator.parameters()))
        sync(self.discriminator.parameters())
        optimizers["discriminator"].step()
        return g_loss.detach() + d_loss.detach()

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        images = batch["image"]
        recon, z, z_hat = self(images)
        return self._generator_loss(images, recon, z, z_hat) + self._discriminator_loss(
            images, recon)

    def raw_score(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (z - z_hat)^2 (B,), |x - x_hat| maps (B, S, S)) float32."""
        recon, z, z_hat = self(images)
        return ((z - z_hat).float().pow(2).mean(1),
                (images - recon).abs().float().mean(1))

    def score(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(scores min-max normalised by the training range (B,), maps (B, S, S))."""
        raw, maps = self.raw_score(images)
        low, high = self.score_range[0], self.score_range[1]
        return (raw - low) / (high - low).clamp_min(1e-12), maps

    @torch.no_grad()
    def fit_after(self, loader: Iterable[dict[str, Any]], device: torch.device) -> None:
        """Stores the min and max latent-difference score of the training images."""
        was_training = self.training
        self.eval()
        scores = [self.raw_score(b["image"].to(device))[0] for b in loader]
        self.train(was_training)
        if scores:
            values = torch.cat(scores)
            self.score_range.copy_(torch.stack([values.min(), values.max()]).to(
                self.score_range))


def build_ganomaly(config: dict[str, Any]) -> Ganomaly:
    return Ganomaly(**config)


register_model(ModelSpec(
    name="ganomaly", kind="anomaly", build=build_ganomaly,
    default_config={"size": 64, "z_dim": 64, "width": 32, "w_adv": 1.0, "w_con": 50.0,
                    "w_enc": 1.0},
    description="GANomaly: encoder-decoder-encoder + D; score |z - z_hat|^2, map |x - x_hat|",
    needs="good images only",
))
