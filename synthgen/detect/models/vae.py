"""A convolutional variational autoencoder for unsupervised anomaly detection (preset ``vae``).

After the X-ray casting method: a VAE trained on good images only reconstructs what it has
seen; the per-pixel L2 reconstruction error is the anomaly map, which is thresholded, cleaned
to its large connected components and boxed (``localise``); boxes are scored against ground
truth with F1 and IoU (``synthgen.detect.localisation.box_f1_iou``).

- Encoder: five stride-2 conv stages (S → S/32, any side divisible by 32), then either
  - ``latent_type="spatial"`` (default): 1x1 convs to a mean and a log-variance of shape
    (B, latent, S/32, S/32); works at any size divisible by 32; or
  - ``latent_type="flat"``: linear layers to a (B, latent) mean and log-variance; the input
    size is fixed to ``image_size``.
  The decoder mirrors the encoder with stride-2 transposed convs; sigmoid output in [0, 1].
  The preset (widths 32, 32, 64, 64, 128; spatial latent of 64 channels) has 0.41 M
  parameters; see the timing note below.
- Sampling: in train mode ``z = mu + exp(logvar / 2) * eps`` with ``eps`` from ``torch.randn``
  (the engine seeds torch; pass a ``torch.Generator`` to ``loss``/``forward`` for a private
  stream). In eval mode ``z = mu``: no randomness at all, so scores are deterministic.
- Loss per good image (label 0): ``mean((x - x̂)²) + beta * KL / (C H W)`` with
  ``KL = 0.5 Σ (mu² + σ² - 1 - log σ²)`` summed over the latent. Normalising the KL by the
  number of pixel values makes ``beta`` equal ``2 σ_x²`` of a Gaussian decoder with variance
  σ_x² (so ``beta = 1`` is the ELBO with σ_x² = 0.5); the default ``beta = 0.01`` (σ_x ≈ 0.07,
  the scale of texture and noise in [0, 1] images) keeps reconstructions sharp while the KL
  still regularises the latent. ``beta = 0`` leaves the reconstruction term alone (a plain
  autoencoder with noise).
- Anomaly map (B, S, S) float32: ``(x - x̂)²`` averaged over channels, optionally smoothed
  by a Gaussian of ``smooth_sigma`` pixels (reflect padding). The default 0 (off) follows
  the method (threshold, keep large components): specks are removed by ``min_area``
  instead, and boxes stay tight. Smoothing (e.g. 1-2 px) steadies noisy maps and image
  scores but widens every region by ~3 sigma at a low threshold, which costs box IoU on
  small defects (an 8x8 square boxed at the 99.9th percentile of clean maps: IoU ~1.0
  unsmoothed, ~0.4 at sigma 1).
- Localisation (``localise``): map > threshold → 8-connected components of at least
  ``min_area`` pixels (default 16) → xyxy boxes, by ``localisation.boxes_from_map``; pick the
  threshold on good images, e.g. ``map_threshold(good, 0.999)``.
- Image score: the ``score_quantile`` quantile of the map (default 0.999; 1.0 = the max).
- Timing (256x256, batch 1, two CPU cores, torch CPU, best of 40): ``score`` ~6 ms (encode
  1.1, decode 3.6, quantile 0.9 ms; smoothing at sigma 1 adds 0.4 ms), the same as ``ae_l2``
  timed alongside; ``localise`` adds 0.2-1.6 ms of connected-component labelling. The flat
  latent costs about the same (1.97 M parameters, mostly its two linear layers).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthgen.detect.localisation import boxes_from_map
from synthgen.detect.models.autoencoder import (
    _conv_block,
    _deconv_block,
    gaussian_kernel1d,
    map_image_score,
)
from synthgen.detect.models.registry import ModelSpec, register_model
from synthgen.errors import ConfigError

DOWNSAMPLE = 32
LOGVAR_RANGE = (-12.0, 8.0)  # clamp of the log-variance, for a finite KL and exp()
LATENT_TYPES = ("spatial", "flat")


class ConvVAE(nn.Module):
    """Convolutional VAE with the ``anomaly`` protocol (loss, score) plus ``localise``.

    Args:
        channels: encoder widths of the five stride-2 stages (the decoder mirrors them).
        latent: latent channels (spatial) or latent dimensions (flat).
        latent_type: "spatial" (B, latent, S/32, S/32) or "flat" (B, latent).
        image_size: input side in pixels; only enforced for the flat latent.
        beta: weight of the normalised KL term (see the module docstring), >= 0.
        smooth_sigma: Gaussian smoothing of the anomaly map in pixels; 0 for none.
        score_quantile: quantile of the anomaly map used as the image score (1.0 = max).
        min_area: default least component size (pixels) kept by ``localise``.
        in_channels: image channels (3 for RGB).
    """

    def __init__(
        self,
        channels: Sequence[int] = (32, 32, 64, 64, 128),
        latent: int = 64,
        latent_type: str = "spatial",
        image_size: int = 256,
        beta: float = 0.01,
        smooth_sigma: float = 0.0,
        score_quantile: float = 0.999,
        min_area: int = 16,
        in_channels: int = 3,
    ):
        super().__init__()
        if latent_type not in LATENT_TYPES:
            raise ConfigError(f"vae latent_type {latent_type!r} is not known; accepted: "
                              f"{', '.join(map(repr, LATENT_TYPES))}")
        if len(channels) != 5:
            raise ConfigError(f"vae channels needs 5 widths (one per stage), got {list(channels)}")
        if image_size <= 0 or image_size % DOWNSAMPLE:
            raise ConfigError(f"vae image_size must be a positive multiple of {DOWNSAMPLE}, "
                              f"got {image_size}")
        if beta < 0:
            raise ConfigError(f"vae beta must be >= 0, got {beta}")
        if smooth_sigma < 0:
            raise ConfigError(f"vae smooth_sigma must be >= 0 (0 = off), got {smooth_sigma}")
        if not 0.0 < score_quantile <= 1.0:
            raise ConfigError(f"score_quantile must be in (0, 1], got {score_quantile}")
        if min_area < 1:
            raise ConfigError(f"vae min_area must be >= 1 pixel, got {min_area}")
        self.latent_type = latent_type
        self.image_size = int(image_size)
        self.beta = float(beta)
        self.smooth_sigma = float(smooth_sigma)
        self.score_quantile = float(score_quantile)
        self.min_area = int(min_area)
        widths = [in_channels, *channels]
        self.encoder = nn.Sequential(*(_conv_block(a, b) for a, b in itertools.pairwise(widths)))
        top = channels[-1]
        if latent_type == "spatial":
            self.to_stats = nn.Conv2d(top, 2 * latent, 1)
            self.from_latent = nn.Sequential(
                nn.Conv2d(latent, top, 1, bias=False),
                nn.BatchNorm2d(top),
                nn.LeakyReLU(0.2, inplace=True),
            )
        else:
            side = self.image_size // DOWNSAMPLE
            self.to_stats = nn.Sequential(nn.Flatten(), nn.Linear(top * side * side, 2 * latent))
            self.from_latent = nn.Sequential(
                nn.Linear(latent, top * side * side),
                nn.Unflatten(1, (top, side, side)),
                nn.BatchNorm2d(top),
                nn.LeakyReLU(0.2, inplace=True),
            )
        rev = list(reversed(channels))
        self.decoder = nn.Sequential(*(_deconv_block(a, b) for a, b in itertools.pairwise(rev)))
        self.head = nn.ConvTranspose2d(channels[0], in_channels, 4, stride=2, padding=1)

    # -- network ---------------------------------------------------------------------------
    def _check_size(self, images: torch.Tensor) -> None:
        h, w = images.shape[-2:]
        if h % DOWNSAMPLE or w % DOWNSAMPLE:
            raise ConfigError(
                f"the vae needs image sides divisible by {DOWNSAMPLE}, got {h}x{w}; "
                "resize the images (e.g. to 256x256)"
            )
        if self.latent_type == "flat" and (h, w) != (self.image_size, self.image_size):
            raise ConfigError(
                f"the flat-latent vae was built for {self.image_size}x{self.image_size} "
                f"images, got {h}x{w}; resize them or build it with image_size={h}"
            )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) in [0, 1] → (mean, log-variance), each (B, latent, H/32, W/32)
        (spatial) or (B, latent) (flat); the log-variance is clamped to [-12, 8]."""
        self._check_size(images)
        mu, logvar = self.to_stats(self.encoder(images)).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent code → reconstruction (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.head(self.decoder(self.from_latent(z))))

    def reparameterise(
        self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``mu + exp(logvar / 2) * eps`` in train mode (eps ~ N(0, 1) from ``torch.randn``
        with ``generator``, drawn on the generator's device and moved); ``mu`` in eval mode."""
        if not self.training:
            return mu
        device = generator.device if generator is not None else mu.device
        eps = torch.randn(mu.shape, generator=generator, device=device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps.to(mu.device)

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reconstruction (B, C, H, W) in [0, 1]; sampled in train mode, from the mean in eval."""
        mu, logvar = self.encode(images)
        return self.decode(self.reparameterise(mu, logvar, generator))

    # -- anomaly protocol ------------------------------------------------------------------
    def loss_terms(
        self, batch: dict[str, Any], generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Scalar terms over the good images of ``batch`` (label 0; all images without labels).

        Returns:
            {"recon": mean squared error per pixel value, "kl": KL per pixel value (>= 0),
            "loss": recon + beta * kl}; float32 scalars. Defective images (label 1) are left
            out; a batch without a good image gives zeros that still carry a graph.
        """
        images = batch["image"]
        mu, logvar = self.encode(images)
        recon = self.decode(self.reparameterise(mu, logvar, generator))
        mu, logvar = mu.float(), logvar.float()
        per_image_se = (images.float() - recon.float()).pow(2).flatten(1).mean(dim=1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(dim=1)
        per_image_kl = kl / images[0].numel()
        labels = batch.get("label")
        if labels is None:
            weights = torch.ones_like(per_image_se)
        else:
            weights = (labels == 0).to(per_image_se.dtype)
        count = weights.sum().clamp(min=1.0)
        rec_term = (per_image_se * weights).sum() / count
        kl_term = (per_image_kl * weights).sum() / count
        return {"recon": rec_term, "kl": kl_term, "loss": rec_term + self.beta * kl_term}

    def loss(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> torch.Tensor:
        """Scalar ``recon + beta * kl`` over the good images of ``batch``; see ``loss_terms``."""
        return self.loss_terms(batch, generator)["loss"]

    def anomaly_map(self, images: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
        """(B, H, W) float32: (x - x̂)² averaged over channels, Gaussian-smoothed when
        ``smooth_sigma > 0`` (window of 2 ceil(3 sigma) + 1 pixels, reflect padding)."""
        maps = (images.float() - recon.float()).pow(2).mean(dim=1, keepdim=True)
        if self.smooth_sigma > 0:
            radius = max(1, math.ceil(3 * self.smooth_sigma))
            radius = min(radius, min(maps.shape[-2:]) - 1)
            g = gaussian_kernel1d(2 * radius + 1, self.smooth_sigma, device=maps.device)
            maps = F.pad(maps, (radius, radius, radius, radius), mode="reflect")
            maps = F.conv2d(maps, g.view(1, 1, 1, -1))
            maps = F.conv2d(maps, g.view(1, 1, -1, 1))
        return maps[:, 0]

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Anomaly scores of images (B, C, H, W) in [0, 1]; higher = more anomalous.

        Decodes the latent mean (no sampling, whatever the mode), so it is deterministic.

        Returns:
            image scores (B,) float32 (the ``score_quantile`` quantile of each map) and
            anomaly maps (B, H, W) float32 (see ``anomaly_map``).
        """
        mu, _ = self.encode(images)
        maps = self.anomaly_map(images, self.decode(mu))
        scores = map_image_score(maps, self.score_quantile)
        return scores.float(), maps

    # -- localisation ----------------------------------------------------------------------
    @torch.no_grad()
    def localise(
        self, images: torch.Tensor, threshold: float, min_area: int | None = None
    ) -> list[np.ndarray]:
        """Defect boxes per image: map → map > threshold → 8-connected components with at
        least ``min_area`` pixels → one box each (``localisation.boxes_from_map``).

        Args:
            images: (B, C, H, W) in [0, 1].
            threshold: anomaly-map level (squared error units), e.g. from ``map_threshold``
                on good images.
            min_area: least component size in pixels (smaller specks are dropped); the
                model's ``min_area`` when None.

        Returns:
            B arrays (K_i, 4) int64 xyxy boxes in pixels (pixel-corner frame).
        """
        min_area = self.min_area if min_area is None else int(min_area)
        if min_area < 1:
            raise ConfigError(f"localise min_area must be >= 1 pixel, got {min_area}")
        _, maps = self.score(images)
        return [boxes_from_map(m, float(threshold), min_area) for m in maps.float().cpu().numpy()]

    @torch.no_grad()
    def map_threshold(self, images: torch.Tensor, quantile: float = 0.999) -> float:
        """The ``quantile`` of the anomaly-map values of ``images`` (good ones, say): a
        threshold for ``localise`` that about (1 - quantile) of good pixels exceed."""
        if not 0.0 < quantile <= 1.0:
            raise ConfigError(f"map_threshold quantile must be in (0, 1], got {quantile}")
        _, maps = self.score(images)
        return float(np.quantile(maps.float().cpu().numpy(), quantile))


def build_vae(config: dict[str, Any]) -> ConvVAE:
    """Factory for the ``vae`` preset."""
    cfg = dict(config)
    cfg["channels"] = tuple(cfg.get("channels", (32, 32, 64, 64, 128)))
    return ConvVAE(**cfg)


register_model(ModelSpec(
    name="vae",
    kind="anomaly",
    build=build_vae,
    default_config={
        "image_size": 256,
        "channels": (32, 32, 64, 64, 128),
        "latent": 64,
        "latent_type": "spatial",
        "beta": 0.01,
        "smooth_sigma": 0.0,
        "score_quantile": 0.999,
        "min_area": 16,
    },
    description="convolutional VAE (L2 + beta KL); map (x - x̂)², Gaussian-smoothed; localise",
    needs="good images only",
))
