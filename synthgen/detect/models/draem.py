"""DRAEM (Zavrtanik et al., ICCV 2021): a reconstructive and a discriminative network trained
on good images with synthetic anomalies (`synthgen.detect.synthetic_anomalies`).

- Reconstructive: an encoder-decoder without skips maps the (anomalous) image back to the
  clean one; loss L2 + (1 - SSIM).
- Discriminative: a U-Net on the concatenated (input, reconstruction), 6 channels, predicting
  the anomaly mask (one logit per pixel); focal loss (gamma 2) against the exact synthetic mask.
- Score: the map is the sigmoid of the mask logits (B, S, S); the image score is the maximum
  of the map smoothed by a mean filter (21 px at 256 px in the paper, scaled with the size).

No pretrained weights: the paper reports 98.0 image AUROC and 97.3 pixel AUROC on MVTec AD.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from synthgen.detect.models.autoencoder import map_image_score, ssim_map
from synthgen.detect.models.registry import ModelSpec, register_model
from synthgen.detect.models.unet import UNet, _check_size, _double_conv


class Reconstructive(nn.Module):
    """Encoder-decoder without skip connections: (B, 3, S, S) → (B, 3, S, S) in [0, 1];
    S must be divisible by 2**depth."""

    def __init__(self, base: int = 16, depth: int = 3):
        super().__init__()
        self.depth = depth
        widths = [base * 2 ** i for i in range(depth + 1)]
        down, cin = [], 3
        for w in widths[:-1]:
            down += [_double_conv(cin, w), nn.MaxPool2d(2)]
            cin = w
        down.append(_double_conv(cin, widths[-1]))
        self.encoder = nn.Sequential(*down)
        up, cin = [], widths[-1]
        for w in reversed(widths[:-1]):
            up += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                   _double_conv(cin, w)]
            cin = w
        self.decoder = nn.Sequential(*up, nn.Conv2d(cin, 3, 3, padding=1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_size(images, 2 ** self.depth, "DRAEM's reconstructive network")
        return torch.sigmoid(self.decoder(self.encoder(images)))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
               alpha: float = 0.5) -> torch.Tensor:
    """Mean binary focal loss of logits (B, 1, S, S) against a {0, 1} target of that shape."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    pt = p * target + (1 - p) * (1 - target)
    weight = alpha * target + (1 - alpha) * (1 - target)
    return (2 * weight * (1 - pt) ** gamma * ce).mean()


class Draem(nn.Module):
    """DRAEM as an anomaly model of the trainer.

    Training batches hold "image" (with synthetic anomalies), "clean" (the good image) and
    "mask" (B, 1, S, S) exact; without "clean" (validation on real data) the input is its
    own reconstruction target.
    """

    def __init__(self, base: int = 16, depth: int = 3, disc_base: int = 16, disc_depth: int = 3,
                 smooth: float = 21 / 256):
        super().__init__()
        self.reconstructive = Reconstructive(base, depth)
        self.discriminative = UNet(base=disc_base, depth=disc_depth, prior=0.05, in_channels=6)
        self.smooth = float(smooth)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, S, S) → (reconstruction (B, 3, S, S), mask logits (B, 1, S, S))."""
        recon = self.reconstructive(images)
        return recon, self.discriminative(torch.cat([images, recon], dim=1))

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        images = batch["image"]
        clean = batch.get("clean", images)
        recon, logits = self(images)
        recon = recon.float()
        l2 = F.mse_loss(recon, clean)
        structural = 1.0 - ssim_map(recon, clean).mean()
        return l2 + structural + focal_loss(logits.float(), batch["mask"].float())

    def score(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(image scores (B,), maps (B, S, S)) float32, both in [0, 1]."""
        _, logits = self(images)
        maps = torch.sigmoid(logits.float())[:, 0]
        return map_image_score(maps, 1.0, self.smooth), maps


def build_draem(config: dict[str, Any]) -> Draem:
    return Draem(int(config["base"]), int(config["depth"]), int(config["disc_base"]),
                 int(config["disc_depth"]), float(config["smooth"]))


register_model(ModelSpec(
    name="draem",
    kind="anomaly",
    build=build_draem,
    default_config={"base": 16, "depth": 3, "disc_base": 16, "disc_depth": 3,
                    "smooth": 21 / 256},
    description="DRAEM: reconstructive + discriminative nets on synthetic Perlin anomalies",
    needs="good images only",
    synthetic_anomalies=True,
))
