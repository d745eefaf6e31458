"""The translator's networks: a ResNet generator with a mask branch, and PatchGAN critics.

Generator (the CycleGAN ResNet generator, in the paper's notation for 9 residual blocks):

    c7s1-64, d128, d256, R256 × 9, u128, u64, c7s1-3 (tanh)

`c7s1-k` is a 7×7 stride-1 convolution (reflection padded) + instance norm + ReLU with k
filters, `dk` a 3×3 stride-2 convolution + instance norm + ReLU, `Rk` a residual block of two
3×3 convolutions (reflection padded, instance norm), `uk` a 3×3 stride-½ (transposed)
convolution + instance norm + ReLU. The widths scale with `ngf` (64 above).

The mask branch (G only) is a second up-sampling path from the residual features: its first
up-block mirrors u128; the output of each image up-block is concatenated to the mask
branch's output at the same level and fused back to the level's width by a 1×1 convolution
(+ instance norm + ReLU) before the next mask up-block; a final c7s1-1 gives the mask
logits. So the mask sees every level of the image decoder.

Critic: the 70×70 PatchGAN (C64-C128-C256-C512, 4×4 convolutions, LeakyReLU 0.2, instance
norm on all but the first, then a 1-channel 4×4 convolution): a (B, 1, H/8 - 2, W/8 - 2)
map of real/fake scores, each seeing a 70×70 patch of its input. D_C is the same network on
the 4-channel concatenation of an image and its mask (mask scaled to [-1, 1]).

Tensors: images (B, 3, H, W) float in [-1, 1]; masks (B, 1, H, W) float in [0, 1]; H and W
multiples of 4.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def _c7s1(cin: int, cout: int) -> nn.Sequential:
    """c7s1-k: reflection pad 3, 7×7 convolution, instance norm, ReLU."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, cout, 7, bias=True),
                         _norm(cout), nn.ReLU(inplace=True))


def _down(cin: int, cout: int) -> nn.Sequential:
    """dk: 3×3 stride-2 convolution, instance norm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=True),
                         _norm(cout), nn.ReLU(inplace=True))


def _up(cin: int, cout: int) -> nn.Sequential:
    """uk: 3×3 stride-½ (transposed) convolution, instance norm, ReLU; doubles H and W."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=True),
        _norm(cout), nn.ReLU(inplace=True))


def _head(cin: int, cout: int) -> nn.Sequential:
    """The last c7s1 layer: reflection pad 3 and a 7×7 convolution, no norm."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(cin, cout, 7, bias=True))


class ResidualBlock(nn.Module):
    """Rk: x + (pad, conv3, IN, ReLU, pad, conv3, IN)(x); shape (B, k, H, W) kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=True),
            _norm(channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=True),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """The ResNet generator, with an optional mask branch.

    Args:
        in_channels: input image channels (3).
        out_channels: output image channels (3).
        ngf: width of the first layer (64 in the paper); the levels are ngf, 2·ngf, 4·ngf.
        n_blocks: residual blocks (9 in the paper).
        mask_branch: add the mask up-sampling branch (G: X→Y); F: Y→X has none.

    Forward:
        x: (B, in_channels, H, W) float in [-1, 1], H and W multiples of 4.
        Returns (image, mask_logits): image (B, out_channels, H, W) in [-1, 1] (tanh);
        mask_logits (B, 1, H, W) float (sigmoid gives the defect probability), or None
        without the mask branch.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_blocks: int = 9, mask_branch: bool = False):
        super().__init__()
        if n_blocks < 0 or ngf < 1:
            raise ValueError(f"ngf must be >= 1 and n_blocks >= 0, got {ngf}, {n_blocks}")
        self.has_mask = bool(mask_branch)
        self.encoder = nn.Sequential(
            _c7s1(in_channels, ngf), _down(ngf, 2 * ngf), _down(2 * ngf, 4 * ngf),
            *[ResidualBlock(4 * ngf) for _ in range(n_blocks)],
        )
        self.up1, self.up2 = _up(4 * ngf, 2 * ngf), _up(2 * ngf, ngf)
        self.image_head = nn.Sequential(_head(ngf, out_channels), nn.Tanh())
        if self.has_mask:
            self.mask_up1, self.mask_up2 = _up(4 * ngf, 2 * ngf), _up(2 * ngf, ngf)
            self.fuse1 = nn.Sequential(nn.Conv2d(4 * ngf, 2 * ngf, 1), _norm(2 * ngf),
                                       nn.ReLU(inplace=True))
            self.fuse2 = nn.Sequential(nn.Conv2d(2 * ngf, ngf, 1), _norm(ngf),
                                       nn.ReLU(inplace=True))
            self.mask_head = _head(ngf, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"image height and width must be multiples of 4, got {x.shape}")
        features = self.encoder(x)
        a1 = self.up1(features)
        a2 = self.up2(a1)
        image = self.image_head(a2)
        if not self.has_mask:
            return image, None
        m1 = self.fuse1(torch.cat([a1, self.mask_up1(features)], dim=1))
        m2 = self.fuse2(torch.cat([a2, self.mask_up2(m1)], dim=1))
        return image, self.mask_head(m2)


class PatchDiscriminator(nn.Module):
    """The 70×70 PatchGAN critic (least-squares: raw scores, no sigmoid).

    Args:
        in_channels: 3 for D_X and D_Y, 4 (image + mask) for D_C.
        ndf: width of the first layer (64).
        n_layers: stride-2 layers after the first (3 gives the 70×70 receptive field).

    Forward:
        x: (B, in_channels, H, W) float. Returns (B, 1, H', W') scores, H' = H/8 - 2 for
        n_layers 3.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        width = ndf
        for k in range(1, n_layers + 1):
            nxt = ndf * min(2 ** k, 8)
            stride = 2 if k < n_layers else 1
            layers += [nn.Conv2d(width, nxt, 4, stride=stride, padding=1), _norm(nxt),
                       nn.LeakyReLU(0.2, inplace=True)]
            width = nxt
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(disc: PatchDiscriminator) -> int:
    """Side in pixels of the input patch one output score of `disc` sees (70 for the
    default PatchGAN)."""
    field, jump = 1, 1
    convs = [m for m in disc.net if isinstance(m, nn.Conv2d)]
    for conv in convs:
        field += (conv.kernel_size[0] - 1) * jump
        jump *= conv.stride[0]
    return field


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """CycleGAN's initialisation: conv weights ~ N(0, gain), biases 0 (in place).

    Draws from torch's global generator: seed it (torch.manual_seed) before calling.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def mask_to_image_range(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) mask in [0, 1] → [-1, 1], to be concatenated to an image for D_C."""
    return mask * 2.0 - 1.0
