"""U-Nets: a supervised defect segmenter (preset ``unet``) and the founding method's skip-less
U-Net autoencoder with an optional self-organising map (preset ``unet_ae``).

``unet`` (kind ``segmenter``, needs masks): Ronneberger et al. 2015 at a small width.

- ``depth`` = 4 levels: each is two 3x3 conv + BatchNorm + ReLU blocks, then a 2x2 max-pool;
  a bottleneck of two blocks at S/16; the decoder upsamples with 2x2 stride-2 transposed convs,
  concatenates the encoder features of the same level (the skip connections) and runs two
  blocks; a 1x1 conv gives one logit per pixel. Widths ``base * 2**level``: 16, 32, 64, 128
  and 256 at the bottleneck for the default ``base=16`` (1.94 M parameters; ``base=8``:
  0.49 M, half the time).
- ``forward(images (B, 3, S, S) float [0, 1]) -> logits (B, 1, S, S)``; S (H and W) divisible
  by ``2**depth`` (16). The engine trains it with binary cross-entropy against
  ``batch["mask"]``; the sigmoid of the logits is the defect map.
- The last bias starts at ``log(prior / (1 - prior))`` (prior 0.05), so an untrained network
  predicts "mostly background", as defect masks are; this steadies the first steps.
- Speed on two CPU cores at 256x256 (channels-last inside): inference ~21-25 ms per image at
  batch 1 (``base=8``: ~10 ms); training a few images/s (``base=8``: 10-25), so train on a GPU.

``unet_ae`` (kind ``anomaly``, needs good images only): the "U-Net without cross-connections"
of the founding method (a bottle cap rendered in 3D, detecting novel defects): without skips
the bottleneck descriptor alone must describe the image, and what it cannot describe (a
defect never seen in training) reconstructs poorly.

- Encoder: one 5x5 stride-2 conv + BatchNorm + LeakyReLU(0.2) per entry of ``channels``
  (default (16, 32, 64, 64, 128): S → S/32), then a 1x1 conv to the descriptor of shape
  (B, latent, S/32, S/32) (default latent 16: 1024 numbers at 256x256). Decoder: a 1x1 conv +
  BN + LeakyReLU, then the mirror image with 5x5 stride-2 transposed convs + BN + LeakyReLU,
  and a 5x5 stride-2 transposed conv to 3 channels with a sigmoid. 0.75 M parameters;
  S divisible by ``2**len(channels)`` (32).
- ``loss(batch)``: mean squared error per image, averaged over the good images (label 0).
- ``score(images) -> (image_scores (B,), maps (B, S, S))``: the map is the per-pixel squared
  error (x - x̂)² averaged over channels; the image score is its ``score_quantile`` quantile
  (0.999 by default; 1.0 = max). On two CPU cores at 256x256: scoring ~6 ms per image at
  batch 1 (~6.5 ms with the SOM), training 35-110 images/s; one SOM fit on 1000 descriptors
  takes ~2 s (10 epochs, ``som_batch=1``).
- ``som=True``: a self-organising map (Kohonen) on the flattened descriptors of the good
  training images, fitted in ``fit_after`` (the engine calls it after every epoch, so the map
  follows the encoder). A ``som_grid`` (rows, cols) grid of units (default 8x8), each a
  descriptor-sized prototype; PCA initialisation (units spread over the plane of the two
  leading principal components, ±2 standard deviations); ``som_epochs`` passes over the
  descriptors in a seeded random order (``som_seed``), in mini-batches of ``som_batch``, of
  ``w_j += lr(t) * sum_i h_ij (x_i - w_j) / max(sum_i h_ij, 1)`` with the Gaussian
  neighbourhood ``h_ij = exp(-|g_j - g_bmu(i)|² / (2 sigma(t)²))`` on the grid. With the default
  ``som_batch=1`` this is the classic online rule ``w_j += lr h_j (x - w_j)``; with larger
  batches a unit moves at most ``lr`` of the way to its neighbourhood-weighted batch mean
  (stable; faster, but needs more epochs). ``lr`` decays exponentially from ``som_lr`` (0.5) to
  0.01 and ``sigma`` from ``som_sigma`` (default half the larger grid side) to 0.5 over the
  steps. At inference each descriptor is replaced by its best-matching unit (nearest prototype,
  Euclidean) before decoding, so "the SOM recreates the object nearest to the one passed", and
  the map is the error of that reconstruction. The prototypes are a buffer (``som_weights``,
  (units, D)), so checkpoints keep them; until it is fitted the model scores with its plain
  reconstruction. D depends on the image size: score images of the training size.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthgen.detect.models.autoencoder import _conv_block, _deconv_block, map_image_score
from synthgen.detect.models.registry import ModelSpec, register_model
from synthgen.errors import ConfigError

log = logging.getLogger(__name__)


def _check_size(images: torch.Tensor, factor: int, what: str) -> None:
    h, w = images.shape[-2:]
    if h % factor or w % factor:
        raise ConfigError(
            f"the {what} needs image sides divisible by {factor}, got {h}x{w}; "
            "resize the images (e.g. to 256x256)"
        )


# -- segmenter ---------------------------------------------------------------------------------
def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """U-Net segmenter with the ``segmenter`` protocol: images → per-pixel defect logits.

    Args:
        base: width of the first level; level ``i`` has ``base * 2**i`` channels.
        depth: number of pooling levels (S must be divisible by ``2**depth``).
        prior: initial foreground probability the output bias encodes, in (0, 1).
        in_channels: image channels (3 for RGB).
    """

    def __init__(self, base: int = 16, depth: int = 4, prior: float = 0.05, in_channels: int = 3):
        super().__init__()
        if base < 1 or depth < 1:
            raise ConfigError(f"unet needs base >= 1 and depth >= 1, got base={base}, "
                              f"depth={depth}")
        if not 0.0 < prior < 1.0:
            raise ConfigError(f"unet prior must be in (0, 1), got {prior}")
        self.depth = int(depth)
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            _double_conv(a, b) for a, b in itertools.pairwise([in_channels, *widths[:-1]])
        )
        self.bottleneck = _double_conv(widths[-2], widths[-1])
        levels = list(reversed(range(depth)))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in levels
        )
        self.dec = nn.ModuleList(_double_conv(2 * widths[i], widths[i]) for i in levels)
        self.head = nn.Conv2d(widths[0], 1, 1)
        nn.init.constant_(self.head.bias, math.log(prior / (1.0 - prior)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, S, S) float in [0, 1] → logits (B, 1, S, S) (sigmoid = defect map)."""
        _check_size(images, 2**self.depth, "unet")
        skips = []
        x = images.contiguous(memory_format=torch.channels_last)  # ~1.5-2x faster convs on CPU
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def build_unet(config: dict[str, Any]) -> UNet:
    """Factory for the ``unet`` preset; ``image_size`` is informative (multiples of 16 work)."""
    return UNet(**{k: v for k, v in config.items() if k != "image_size"})


# -- skip-less U-Net autoencoder ---------------------------------------------------------------
class UNetAutoencoder(nn.Module):
    """The U-Net without skip connections as an autoencoder, ``anomaly`` protocol.

    Args:
        channels: encoder widths, one 5x5 stride-2 stage each (the decoder mirrors them).
        latent: channels of the descriptor (B, latent, S/2**n, S/2**n), n = len(channels).
        score_quantile: quantile of the map used as the image score, in (0, 1] (1.0 = max).
        som: fit a self-organising map on the descriptors and decode the best-matching unit.
        som_grid: (rows, cols) of the SOM grid.
        som_epochs: passes over the training descriptors per fit.
        som_lr: initial learning rate (decays exponentially to 0.01).
        som_sigma: initial neighbourhood radius in grid units (None: half the larger side);
            decays exponentially to 0.5.
        som_seed: seed of the presentation order.
        som_batch: descriptors per SOM update (1 = the classic per-sample online rule).
        in_channels: image channels (3 for RGB).
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 32, 64, 64, 128),
        latent: int = 16,
        score_quantile: float = 0.999,
        som: bool = False,
        som_grid: Sequence[int] = (8, 8),
        som_epochs: int = 10,
        som_lr: float = 0.5,
        som_sigma: float | None = None,
        som_seed: int = 0,
        som_batch: int = 1,
        in_channels: int = 3,
    ):
        super().__init__()
        if len(channels) < 1 or latent < 1:
            raise ConfigError(f"unet_ae needs at least one stage and latent >= 1, got channels="
                              f"{list(channels)}, latent={latent}")
        if not 0.0 < score_quantile <= 1.0:
            raise ConfigError(f"score_quantile must be in (0, 1], got {score_quantile}")
        if len(som_grid) != 2 or min(som_grid) < 1:
            raise ConfigError(f"som_grid must be (rows, cols) of positive ints, got {som_grid}")
        if som_epochs < 1 or som_batch < 1 or not 0.0 < som_lr <= 1.0:
            raise ConfigError(f"som_epochs and som_batch must be >= 1 and som_lr in (0, 1], got "
                              f"{som_epochs}, {som_batch} and {som_lr}")
        self.downsample = 2 ** len(channels)
        self.score_quantile = float(score_quantile)
        self.use_som = bool(som)
        self.som_grid = (int(som_grid[0]), int(som_grid[1]))
        self.som_epochs = int(som_epochs)
        self.som_lr = float(som_lr)
        self.som_sigma = float(som_sigma) if som_sigma is not None else max(self.som_grid) / 2
        self.som_seed = int(som_seed)
        self.som_batch = int(som_batch)
        self.som_errors: list[float] = []  # quantisation error before and after each SOM epoch
        widths = [in_channels, *channels]
        self.encoder = nn.Sequential(*(_conv_block(a, b, 5) for a, b in itertools.pairwise(widths)))
        self.to_latent = nn.Conv2d(channels[-1], latent, 1)
        self.from_latent = nn.Sequential(
            nn.Conv2d(latent, channels[-1], 1, bias=False),
            nn.BatchNorm2d(channels[-1]),
            nn.LeakyReLU(0.2, inplace=True),
        )
        rev = list(reversed(channels))
        self.decoder = nn.Sequential(*(_deconv_block(a, b, 5) for a, b in itertools.pairwise(rev)))
        self.head = nn.ConvTranspose2d(channels[0], in_channels, 5, stride=2, padding=2,
                                       output_padding=1)
        # SOM prototypes (units, D); empty until fit_after sizes them to the descriptor.
        self.register_buffer("som_weights", torch.zeros(0, 0))

    # -- network ---------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] → descriptor (B, latent, H/2**n, W/2**n)."""
        _check_size(images, self.downsample, "unet_ae")
        x = images.contiguous(memory_format=torch.channels_last)  # faster convs on the CPU
        return self.to_latent(self.encoder(x))

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Descriptor → reconstruction (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.head(self.decoder(self.from_latent(code))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Plain reconstruction (B, C, H, W) in [0, 1] of images (B, C, H, W) in [0, 1]."""
        return self.decode(self.encode(images))

    # -- SOM ---------------------------------------------------------------------------------
    @property
    def som_fitted(self) -> bool:
        """Whether the SOM prototypes have been fitted (or loaded)."""
        return self.som_weights.numel() > 0

    def _grid(self, device: torch.device) -> torch.Tensor:
        rows, cols = self.som_grid
        r, c = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device),
                              indexing="ij")
        return torch.stack([r.flatten(), c.flatten()], dim=1).float()  # (units, 2)

    def best_matching_units(self, descriptors: torch.Tensor) -> torch.Tensor:
        """Index (N,) int64 of the nearest prototype to each flattened descriptor (N, D)."""
        weights = self.som_weights
        if descriptors.shape[1] != weights.shape[1]:
            raise ConfigError(
                f"unet_ae: the SOM was fitted on descriptors of {weights.shape[1]} numbers but "
                f"these images give {descriptors.shape[1]}; score images of the training size"
            )
        # Exact distances (no matrix-product shortcut), so near ties resolve consistently.
        dist = torch.cdist(descriptors.float(), weights.float(),
                           compute_mode="donot_use_mm_for_euclid_dist")
        return dist.argmin(dim=1)

    def quantise(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Replaces each descriptor (B, latent, h, w) by its best-matching SOM unit.

        Returns:
            (the units' descriptors, same shape and dtype as ``code``; unit indices (B,) int64).
        """
        idx = self.best_matching_units(code.flatten(1))
        return self.som_weights[idx].view_as(code).to(code.dtype), idx

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction (B, C, H, W): of the best-matching SOM unit with som=True (fitted),
        the plain one otherwise."""
        code = self.encode(images)
        if self.use_som and self.som_fitted:
            code, _ = self.quantise(code)
        return self.decode(code)

    @torch.no_grad()
    def fit_som(self, descriptors: torch.Tensor) -> list[float]:
        """Fits the SOM prototypes on flattened descriptors (N, D) (see module docstring).

        Returns:
            the mean quantisation error (distance to the best-matching unit) before training and
            after each epoch, ``som_epochs + 1`` floats (also kept in ``som_errors``).
        """
        x = descriptors.detach().float().cpu()
        grid = self._grid(torch.device("cpu"))
        weights = _pca_init(x, self.som_grid, grid)
        errors = [_quantisation_error(x, weights)]
        # The loop runs in numpy: far less overhead per small update than torch.
        xs, w = x.numpy(), weights.numpy().copy()
        grid_d2 = torch.cdist(grid, grid).pow(2).numpy()  # (units, units) squared grid distances
        rng = np.random.default_rng(self.som_seed)
        n, b = len(xs), self.som_batch
        total = self.som_epochs * math.ceil(n / b)
        lr_end, sigma_end = min(0.01, self.som_lr), min(0.5, self.som_sigma)
        t = 0
        for _ in range(self.som_epochs):
            order = rng.permutation(n)
            for start in range(0, n, b):
                frac = t / max(total - 1, 1)
                lr = self.som_lr * (lr_end / self.som_lr) ** frac
                sigma = self.som_sigma * (sigma_end / self.som_sigma) ** frac
                xb = xs[order[start : start + b]]
                bmu = ((w * w).sum(axis=1)[None] - 2 * xb @ w.T).argmin(axis=1)
                h = np.exp(-grid_d2[bmu] / (2 * sigma**2))  # (b, units)
                mass = h.sum(axis=0)
                w += lr * (h.T @ xb - mass[:, None] * w) / np.maximum(mass, 1.0)[:, None]
                t += 1
            errors.append(_quantisation_error(x, torch.from_numpy(w)))
        weights = torch.from_numpy(w)
        self.som_weights = weights.to(self.som_weights.device)
        self.som_errors = errors
        return errors

    @torch.no_grad()
    def fit_after(self, loader: Iterable[dict[str, Any]], device: torch.device) -> None:
        """Fits the SOM on the descriptors of the good images of ``loader`` (no-op unless
        som=True); the engine calls it after every training epoch."""
        if not self.use_som:
            return
        was_training = self.training
        self.eval()
        codes = []
        for batch in loader:
            images = batch["image"].to(device)
            if "label" in batch:
                images = images[batch["label"].to(device) == 0]
            if len(images):
                codes.append(self.encode(images).flatten(1).float().cpu())
        self.train(was_training)
        if not codes:
            log.warning("unet_ae fit_after found no good image; the SOM is not fitted")
            return
        errors = self.fit_som(torch.cat(codes))
        log.info("unet_ae SOM %dx%d: quantisation error %.4g → %.4g", *self.som_grid,
                 errors[0], errors[-1])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The descriptor size (and whether a SOM was fitted) varies: resize before loading.
        key = prefix + "som_weights"
        if key in state_dict:
            self.som_weights = torch.empty_like(state_dict[key], device=self.som_weights.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- anomaly protocol ----------------------------------------------------------------------
    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean squared reconstruction error over the good images of ``batch`` (label 0).

        Defective images are left out; a batch without a good image gives a zero loss that
        still carries a graph.
        """
        images = batch["image"]
        per_image = (images.float() - self(images).float()).pow(2).flatten(1).mean(dim=1)
        labels = batch.get("label")
        if labels is None:
            return per_image.mean()
        good = (labels == 0).to(per_image.dtype)
        return (per_image * good).sum() / good.sum().clamp(min=1.0)

    @torch.no_grad()
    def score(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Anomaly scores of images (B, C, H, W) in [0, 1]; higher = more anomalous.

        Returns:
            image scores (B,) float32 (``score_quantile`` of the map) and maps (B, H, W) float32
            (squared error averaged over channels, of the SOM reconstruction with som=True).
        """
        maps = (images.float() - self.reconstruct(images).float()).pow(2).mean(dim=1)
        scores = map_image_score(maps, self.score_quantile)
        return scores.float(), maps


def _quantisation_error(x: torch.Tensor, weights: torch.Tensor) -> float:
    return float(torch.cdist(x, weights).amin(dim=1).mean())


def _pca_init(x: torch.Tensor, shape: tuple[int, int], grid: torch.Tensor) -> torch.Tensor:
    """Prototypes (units, D) on the plane of the two leading principal components of x (N, D),
    spanning ±2 standard deviations along each (rows along the first)."""
    mean = x.mean(dim=0)
    centred = x - mean
    if len(x) < 2:
        return mean.expand(len(grid), -1).clone()
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    std = s / math.sqrt(len(x) - 1)
    k = min(2, len(s))
    span = []
    for axis, side in enumerate(shape[:k]):
        pos = grid[:, axis] / max(side - 1, 1) * 2 - 1 if side > 1 else grid[:, axis] * 0
        span.append(2 * pos[:, None] * std[axis] * vh[axis][None])
    return mean + sum(span)


def build_unet_ae(config: dict[str, Any]) -> UNetAutoencoder:
    """Factory for the ``unet_ae`` preset; ``image_size`` is informative."""
    cfg = {k: v for k, v in config.items() if k != "image_size"}
    cfg["channels"] = tuple(cfg.get("channels", (16, 32, 64, 64, 128)))
    cfg["som_grid"] = tuple(cfg.get("som_grid", (8, 8)))
    return UNetAutoencoder(**cfg)


register_model(ModelSpec(
    name="unet",
    kind="segmenter",
    build=build_unet,
    default_config={"image_size": 256, "base": 16, "depth": 4, "prior": 0.05},
    description="U-Net segmenter (4 levels, skip connections), per-pixel BCE on defect masks",
    needs="masks",
))
register_model(ModelSpec(
    name="unet_ae",
    kind="anomaly",
    build=build_unet_ae,
    default_config={
        "image_size": 256,
        "channels": (16, 32, 64, 64, 128),
        "latent": 16,
        "score_quantile": 0.999,
        "som": False,
        "som_grid": (8, 8),
        "som_epochs": 10,
        "som_lr": 0.5,
        "som_sigma": None,
        "som_seed": 0,
        "som_batch": 1,
    },
    description="U-Net without skips (5x5 convs) as an autoencoder; map (x - x̂)², optional SOM",
    needs="good images only",
))
