"""Clustering baselines: K-means or Birch (scikit-learn) on CNN features into two groups.

Features: a ResNet-18 trunk up to layer3 (256 channels, S/16), average-pooled and
standardised. Random init by default, so the features are random projections of the image
(there are no pretrained weights to download); ``weights_path`` loads a local torchvision
ResNet-18 state dict, which helps a lot. The clusters are fitted after each epoch on the
training images, good and defective together, without their labels (``train_on="all"``); the
larger cluster is taken as "good" (defects are the minority on a line).

Score: distance to the nearest good centre minus distance to the nearest defective centre
(Birch: its subcluster centres, labelled by the global clustering). Map: per-location distance
of the standardised feature map to the good centre, upsampled. ``embed`` gives the 2-D PCA
view that ``synthgen evaluate`` draws as pca.png.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthgen.detect.models.registry import ModelSpec, register_model
from synthgen.errors import ConfigError, MissingDependency

METHODS = ("kmeans", "birch")
_FITTED = ("feat_mean", "feat_std", "centres", "centre_labels", "pca_mean", "pca_axes")


class FeatureClustering(nn.Module):
    """Two-cluster K-means / Birch on pooled CNN features; no gradient training."""

    select_best = False

    def __init__(self, method: str = "kmeans", weights_path: str | None = None, seed: int = 0):
        super().__init__()
        if method not in METHODS:
            raise ConfigError(f"clustering method {method!r} is not known; accepted: "
                              f"{', '.join(METHODS)}")
        import torchvision

        net = torchvision.models.resnet18(weights=None)
        if weights_path:
            from synthgen.detect.models.classifier import load_weights

            holder = nn.Module()  # load_weights reads a classifier's .backbone
            holder.backbone = net
            load_weights(holder, weights_path)  # type: ignore[arg-type]
        self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1,
                                   net.layer2, net.layer3)
        self.trunk.requires_grad_(False)
        self.method, self.seed = method, int(seed)
        for name in _FITTED:
            self.register_buffer(name, torch.zeros(0))

    @property
    def fitted(self) -> bool:
        return self.centres.numel() > 0

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → standardised features (B, 256, S/16, S/16) (raw before fitting)."""
        mean = images.new_tensor([0.485, 0.456, 0.406])[:, None, None]
        std = images.new_tensor([0.229, 0.224, 0.225])[:, None, None]
        feats = self.trunk.eval()((images - mean) / std).float()
        if self.fitted:
            feats = (feats - self.feat_mean[:, None, None]) / self.feat_std[:, None, None]
        return feats

    def configure_optimizers(self, lr: float, weight_decay: float = 0.0) -> dict:
        return {}  # nothing is trained by gradient

    def train_step(self, batch: dict[str, Any], optimizers: Mapping[str, Any],
                   sync: Callable[[Any], None]) -> torch.Tensor:
        return torch.zeros((), device=batch["image"].device)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        return torch.zeros((), device=batch["image"].device)

    @torch.no_grad()
    def fit_after(self, loader: Iterable[dict[str, Any]], device: torch.device) -> None:
        """Fits the standardisation, the clusters and the PCA on the training images."""
        try:
            from sklearn.cluster import Birch, KMeans
            from sklearn.decomposition import PCA
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise MissingDependency("clustering baselines", "detect", "scikit-learn") from err
        for name in _FITTED:
            setattr(self, name, torch.zeros(0, device=device))
        pooled = torch.cat([self.feature_map(b["image"].to(device)).mean((2, 3))
                            for b in loader]).cpu().numpy().astype(np.float64)
        if len(pooled) < 2:
            raise ConfigError("clustering needs at least 2 training images")
        mean, std = pooled.mean(0), pooled.std(0) + 1e-6
        x = (pooled - mean) / std
        if self.method == "kmeans":
            km = KMeans(2, n_init=10, random_state=self.seed).fit(x)
            centres, labels, assign = km.cluster_centers_, np.arange(2), km.labels_
        else:
            birch = Birch(n_clusters=2, threshold=0.5).fit(x)
            centres = birch.subcluster_centers_
            labels, assign = birch.subcluster_labels_, birch.labels_
        good = int(np.argmax(np.bincount(assign, minlength=2)))  # the larger cluster
        pca = PCA(2, random_state=self.seed).fit(x)
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        self.feat_mean, self.feat_std = as_t(mean), as_t(std)
        self.centres = as_t(centres)
        self.centre_labels = as_t(np.asarray(labels) != good)  # 1.0 = defective cluster
        self.pca_mean, self.pca_axes = as_t(pca.mean_), as_t(pca.components_)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in _FITTED:  # fitted buffers have data-dependent shapes
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _pooled(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.fitted:
            raise ConfigError("the clusters are not fitted yet: train for at least one epoch")
        feats = self.feature_map(images)
        return feats, feats.mean((2, 3))

    def score(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d(good) - d(defective) (B,), maps (B, S, S)) float32."""
        feats, pooled = self._pooled(images)
        dist = torch.cdist(pooled, self.centres)
        bad = self.centre_labels > 0.5
        inf = torch.full_like(dist, float("inf"))
        d_good = torch.where(bad, inf, dist).amin(1)
        d_bad = torch.where(bad, dist, inf).amin(1)
        d_bad = torch.where(torch.isinf(d_bad), torch.zeros_like(d_bad), d_bad)
        centre = self.centres[~bad].mean(0)
        maps = (feats - centre[None, :, None, None]).pow(2).sum(1, keepdim=True).sqrt()
        maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return d_good - d_bad, maps[:, 0]

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(PCA coordinates (B, 2), cluster (B,) int64: 1 = the defective cluster)."""
        _, pooled = self._pooled(images)
        xy = (pooled - self.pca_mean) @ self.pca_axes.T
        nearest = torch.cdist(pooled, self.centres).argmin(1)
        return xy, (self.centre_labels[nearest] > 0.5).long()


def build_clustering(config: dict[str, Any]) -> FeatureClustering:
    return FeatureClustering(**config)


for _method in METHODS:
    register_model(ModelSpec(
        name=_method, kind="anomaly", build=build_clustering,
        default_config={"method": _method, "weights_path": None, "seed": 0},
        description=f"{'K-means' if _method == 'kmeans' else 'Birch'} of ResNet-18 features "
                    "into 2 clusters (random init unless --weights); PCA view pca.png",
        needs="images, unlabelled",
        train_on="all",
    ))
