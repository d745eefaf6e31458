"""How good are the translations: FID, KID and LPIPS, with weights from local files.

- FID: the Fréchet distance between Gaussians fitted to Inception-v3 pool features (2048-d)
  of real and generated images: |μ₁ − μ₂|² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½).
- KID: the unbiased estimate of the squared MMD between the feature sets with the cubic
  polynomial kernel k(a, b) = (a·b / d + 1)³, averaged over random subsets; unbiased, so it
  stays meaningful on the small sets defect data has.
- LPIPS (Zhang et al. 2018): channel-normalised backbone activations (AlexNet or VGG-16),
  squared differences weighted by learnt 1×1 "linear" heads, averaged over space, summed
  over layers. Diversity is the mean LPIPS between random pairs of generated images; the
  nearest-training distance the mean over generated images of their smallest LPIPS to any
  training image (small: copies of the training set).

No weights are downloaded. The Inception extractor is torchvision's inception_v3 with a
state dict from a file the user names; LPIPS needs the backbone's torchvision state dict and
the linear heads (the LPIPS project's `alex.pth` / `vgg.pth`, keys `lin{k}.model.1.weight`,
or `lin{k}.weight`). Without them `MissingWeights` names the file to supply. Tests use
`ProxyExtractor` and `LPIPS.proxy`: seeded random networks whose numbers only compare runs
of the same proxy, never published figures; results say "proxy" in their `extractor` field.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthgen.errors import SynthgenError

log = logging.getLogger(__name__)

PROXY = "proxy (seeded random network: compares runs with each other only)"


class MissingWeights(SynthgenError, FileNotFoundError):
    """A metric needs a local weights file that was not supplied or does not exist."""

    def __init__(self, what: str, option: str, path: Path | None, expected: str):
        where = f"{path} does not exist" if path is not None else "no file was given"
        super().__init__(f"{what} needs local weights ({where}): supply {expected} with "
                         f"{option} PATH (nothing is downloaded)")


# --------------------------------------------------------------------------- statistics


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, mu2: (D,) means. sigma1, sigma2: (D, D) symmetric PSD covariances.

    Returns:
        |mu1 − mu2|² + Tr(sigma1) + Tr(sigma2) − 2 Tr((sigma1 sigma2)^½) (>= 0), float; the
        trace term uses the eigenvalues of sigma1^½ sigma2 sigma1^½ (symmetric, PSD), which
        equal those of sigma1 sigma2.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    vals, vecs = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_root = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_root)
    return max(value, 0.0)  # rounding can leave a tiny negative for equal Gaussians


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features → mean (D,) and unbiased covariance (D, D), float64 (N >= 2)."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two (N, D) feature sets."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def polynomial_mmd2(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD of two samples with the kernel (x·y / d + 1)³.

    Args:
        a: (m, d), b: (n, d) features, m, n >= 2.

    Returns:
        Σ_{i≠j} k(a_i, a_j)/(m(m−1)) + Σ_{i≠j} k(b_i, b_j)/(n(n−1)) − 2 Σ k(a_i, b_j)/(mn).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a.shape[1]
    kaa = (a @ a.T / d + 1) ** 3
    kbb = (b @ b.T / d + 1) ** 3
    kab = (a @ b.T / d + 1) ** 3
    m, n = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (m * (m - 1))
                 + (kbb.sum() - np.trace(kbb)) / (n * (n - 1)) - 2 * kab.mean())


def kid_from_features(real: np.ndarray, fake: np.ndarray, subsets: int = 100,
                      subset_size: int = 1000, rng: np.random.Generator | None = None
                      ) -> tuple[float, float]:
    """KID: mean and standard deviation of `polynomial_mmd2` over random subsets.

    Args:
        real, fake: (m, d), (n, d) features.
        subsets: number of subsets drawn.
        subset_size: rows per subset (capped at min(m, n)).
        rng: draws the subsets (default seed 0).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError("KID needs at least 2 real and 2 generated images")
    values = [polynomial_mmd2(real[rng.choice(len(real), size, replace=False)],
                              fake[rng.choice(len(fake), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


# --------------------------------------------------------------------------- extractors


class InceptionExtractor(nn.Module):
    """Inception-v3 pool features (2048-d) with weights from a local torchvision file.

    Args:
        weights: a state dict of torchvision's inception_v3 (e.g. the user's copy of
            `inception_v3_google-0cc3c7bd.pth`).

    Raises:
        MissingWeights: no file, or the file does not exist.
    """

    label = "inception_v3"

    def __init__(self, weights: str | Path | None):
        super().__init__()
        path = None if weights is None else Path(weights)
        if path is None or not path.is_file():
            raise MissingWeights("FID/KID", "--inception-weights", path,
                                 "a torchvision inception_v3 state dict "
                                 "(inception_v3_google-0cc3c7bd.pth)")
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.fc = nn.Identity()
        self.net = net.eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] → (B, 2048) pool features (299×299 input)."""
        x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
        mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
        return self.net((x - mean) / std)


class ProxyExtractor(nn.Module):
    """A seeded random convolutional feature extractor: a proxy for tests, not Inception.

    Args:
        seed: seeds the weights.
        dim: feature dimension.
    """

    label = PROXY

    def __init__(self, seed: int = 0, dim: int = 32):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList(nn.Conv2d(c, o, 3, stride=2, padding=1)
                                   for c, o in ((3, 16), (16, 32), (32, dim)))
        for conv in self.convs:
            conv.weight.data = torch.randn(conv.weight.shape, generator=gen) * 0.3
            conv.bias.data.zero_()
        self.eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] → (B, dim) features."""
        x = images * 2 - 1
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return x.mean(dim=(2, 3))


def features(extractor: nn.Module, images: Sequence[np.ndarray], batch: int = 16,
             size: int = 128) -> np.ndarray:
    """(N, D) float64 features of (H, W, 3) uint8 images (each resized to size² first)."""
    out = []
    for k in range(0, len(images), batch):
        out.append(extractor(_batch(images[k:k + batch], size)).double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def _batch(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """(H, W, 3) uint8 images → (B, 3, size, size) float in [0, 1]."""
    from PIL import Image

    arrays = [np.asarray(Image.fromarray(i).resize((size, size), Image.BILINEAR)) for i in images]
    return torch.from_numpy(np.stack(arrays).astype(np.float32) / 255.0).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- LPIPS

_LAYERS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPS(nn.Module):
    """LPIPS distance on a torchvision AlexNet / VGG-16 backbone with linear heads.

    Args:
        backbone: "alex" or "vgg".
        features_module: the backbone's `features` Sequential (weights loaded).
        heads: one (1, C_k, 1, 1) non-negative weight per layer.
        label: what the numbers are ("lpips-alex", or the proxy label).
    """

    def __init__(self, backbone: str, features_module: nn.Sequential,
                 heads: Sequence[torch.Tensor], label: str):
        super().__init__()
        self.taps = _LAYERS[backbone]
        self.features = features_module[: self.taps[-1] + 1].eval()
        self.heads = nn.ParameterList(nn.Parameter(h.float(), requires_grad=False)
                                      for h in heads)
        self.label = label
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    @classmethod
    def from_files(cls, backbone_weights: str | Path | None, head_weights: str | Path | None,
                   backbone: str = "alex") -> LPIPS:
        """Build from a torchvision state dict of the backbone and the heads' file.

        Raises:
            MissingWeights: a file is not given or does not exist.
        """
        from torchvision import models

        if backbone not in _LAYERS:
            raise ValueError(f"backbone must be 'alex' or 'vgg', got {backbone!r}")
        names = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
        for path, option, what in ((backbone_weights, "--lpips-backbone", names[backbone]),
                                   (head_weights, "--lpips-heads", f"LPIPS {backbone}.pth")):
            if path is None or not Path(path).is_file():
                raise MissingWeights("LPIPS", option, None if path is None else Path(path),
                                     what)
        net = models.alexnet(weights=None) if backbone == "alex" else models.vgg16(weights=None)
        net.load_state_dict(torch.load(backbone_weights, map_location="cpu", weights_only=True))
        state = torch.load(head_weights, map_location="cpu", weights_only=True)
        heads = []
        for k in range(5):
            key = next((n for n in (f"lin{k}.model.1.weight", f"lin{k}.weight") if n in state),
                       None)
            if key is None:
                raise SynthgenError(f"{head_weights} holds no LPIPS head lin{k} (expected key "
                                    f"lin{k}.model.1.weight or lin{k}.weight)")
            heads.append(state[key])
        return cls(backbone, net.features, heads, f"lpips-{backbone}")

    @classmethod
    def proxy(cls, seed: int = 0) -> LPIPS:
        """A seeded random AlexNet with uniform heads: a test proxy, not LPIPS."""
        from torchvision import models

        torch_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        net = models.alexnet(weights=None)
        torch.random.set_rng_state(torch_state)
        widths = [net.features[i - 1].out_channels for i in _LAYERS["alex"]]
        heads = [torch.full((1, c, 1, 1), 1.0 / c) for c in widths]
        return cls("alex", net.features, heads, PROXY)

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] pairs → (B,) distances (0 for identical images)."""
        fa, fb = self._taps((a * 2 - 1 - self.shift) / self.scale), \
            self._taps((b * 2 - 1 - self.shift) / self.scale)
        total = torch.zeros(a.shape[0])
        for head, x, y in zip(self.heads, fa, fb, strict=True):
            x = x / (x.norm(dim=1, keepdim=True) + 1e-10)
            y = y / (y.norm(dim=1, keepdim=True) + 1e-10)
            total += ((x - y) ** 2 * head).sum(dim=1).mean(dim=(1, 2))
        return total

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for k, layer in enumerate(self.features):
            x = layer(x)
            if k in self.taps:
                out.append(x)
        return out


def lpips_diversity(lpips: LPIPS, images: Sequence[np.ndarray], pairs: int = 50,
                    rng: np.random.Generator | None = None, size: int = 128) -> float:
    """Mean LPIPS over `pairs` random pairs of distinct images (uint8 (H, W, 3))."""
    rng = rng if rng is not None else np.random.default_rng(0)
    if len(images) < 2:
        raise ValueError("LPIPS diversity needs at least 2 images")
    values = []
    for _ in range(pairs):
        i, j = rng.choice(len(images), 2, replace=False)
        values.append(float(lpips(_batch([images[i]], size), _batch([images[j]], size))[0]))
    return float(np.mean(values))


def nearest_distance(lpips: LPIPS, generated: Sequence[np.ndarray],
                     training: Sequence[np.ndarray], size: int = 128) -> np.ndarray:
    """(N,) smallest LPIPS from each generated image to any training image."""
    train = _batch(list(training), size)
    out = []
    for image in generated:
        g = _batch([image], size).expand(len(train), -1, -1, -1)
        out.append(float(lpips(g, train).min()))
    return np.asarray(out)


def evaluate_images(real: Sequence[np.ndarray], fake: Sequence[np.ndarray],
                    training: Sequence[np.ndarray] | None, extractor: nn.Module,
                    lpips: LPIPS | None, seed: int = 0, size: int = 128) -> dict[str, Any]:
    """FID, KID and (with `lpips`) diversity and nearest-training distance.

    Args:
        real: real defective images; fake: translated images; training: the translator's
            training images (for the nearest distance); all (H, W, 3) uint8.
        extractor: InceptionExtractor or ProxyExtractor.
        lpips: LPIPS (or its proxy), or None to skip LPIPS.
    """
    rng = np.random.default_rng(seed)
    fr, ff = features(extractor, real, size=size), features(extractor, fake, size=size)
    kid, kid_std = kid_from_features(fr, ff, subsets=50, subset_size=100, rng=rng)
    out: dict[str, Any] = {"extractor": extractor.label, "real": len(real), "fake": len(fake),
                           "fid": fid_from_features(fr, ff), "kid": kid, "kid_std": kid_std}
    if lpips is not None:
        out["lpips"] = lpips.label
        out["lpips_diversity"] = lpips_diversity(lpips, fake, rng=rng, size=size)
        if training:
            near = nearest_distance(lpips, fake, training, size=size)
            out["lpips_nearest_train"] = float(near.mean())
    return out
