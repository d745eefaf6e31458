"""Box detectors: torchvision SSDlite and Faster R-CNN (MobileNetV3-Large) behind one protocol.

Two presets of kind "detector" (see ``synthgen.detect.models.registry``):

- ``ssdlite``: SSDlite320 with a MobileNetV3-Large backbone (2.2 M parameters), one shot, the
  fastest on a CPU; input resized to ``image_size`` squared (default 320).
- ``fasterrcnn``: Faster R-CNN with a MobileNetV3-Large FPN backbone (19 M parameters), two
  stages, better on small defects; shortest side resized to ``image_size`` (default 320).
  Chosen over ResNet-50 Faster R-CNN and RetinaNet: it shares SSDlite's backbone, so both
  load the same ImageNet file, and it trains several times faster on a CPU.

Both are randomly initialised (``weights=None, weights_backbone=None``): nothing is
downloaded. ``weights_path`` names a local file: a torchvision detector state dict (e.g. the
COCO ``fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth``; the 91-class heads are skipped), an
ImageNet ``mobilenet_v3_large-*.pth`` backbone, or a synthgen checkpoint; tensors whose shape
does not fit stay at their random init and are logged.

Classes: the batch's defect-type ids ``0 .. num_classes - 1`` become torchvision labels
``1 .. num_classes`` (0 is torchvision's background) and are mapped back in ``predict``.
Images without boxes are valid negatives for both networks: Faster R-CNN samples background
proposals from them as torchvision does; torchvision's SSD would ignore them (it mines
negatives in proportion to an image's positives), so ``ssdlite`` adds the hardest background
anchors of such images to its loss (``_SSDWithEmptyNegatives``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import (
    fasterrcnn_mobilenet_v3_large_fpn,
    ssdlite320_mobilenet_v3_large,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from synthgen.detect.models.registry import ModelSpec, register_model
from synthgen.errors import ConfigError

log = logging.getLogger(__name__)

Prediction = dict[str, torch.Tensor]


class TorchvisionDetector(nn.Module):
    """A torchvision detection network behind the detector protocol.

    Args:
        net: a torchvision ``SSD`` or ``GeneralizedRCNN`` built with ``num_classes + 1``
            classes (label 0 = background).
        num_classes: number of defect types; the batch's "classes" are ids in
            ``[0, num_classes)``.
        min_batch: training batches smaller than this are repeated up to it (SSDlite's extra
            layers hold BatchNorm over 1×1 maps, which fails on one image; repeating an image
            leaves its loss unchanged).
    """

    def __init__(self, net: nn.Module, num_classes: int, min_batch: int = 1):
        super().__init__()
        self.net = net
        self.num_classes = int(num_classes)
        self.min_batch = int(min_batch)
        self.last_losses: dict[str, float] = {}  # the parts of the latest loss, for logging

    # -- training ----------------------------------------------------------------------------
    def targets(self, batch: Mapping[str, Any]) -> list[dict[str, torch.Tensor]]:
        """torchvision targets of a batch: boxes (N, 4) float32 xyxy px clipped to the image,
        labels (N,) int64 = class + 1; boxes with no area after clipping are dropped.

        Raises:
            ValueError: a class id is outside ``[0, num_classes)`` or boxes and classes differ
                in length.
        """
        height, width = batch["image"].shape[-2:]
        out = []
        for i, (boxes, classes) in enumerate(zip(batch["boxes"], batch["classes"], strict=True)):
            boxes = torch.as_tensor(boxes, device=batch["image"].device).reshape(-1, 4).float()
            classes = torch.as_tensor(classes, device=boxes.device).reshape(-1).long()
            if len(boxes) != len(classes):
                raise ValueError(f"image {i} of the batch has {len(boxes)} boxes but "
                                 f"{len(classes)} classes; give one class per box")
            if len(classes) and (classes.min() < 0 or classes.max() >= self.num_classes):
                raise ValueError(
                    f"image {i} of the batch has defect class {int(classes.max())} "
                    f"(min {int(classes.min())}); this detector was built for num_classes="
                    f"{self.num_classes}, so ids must lie in [0, {self.num_classes - 1}]")
            boxes = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                                 boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], 1)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            if not bool(keep.all()):
                log.debug("image %d: dropped %d boxes without area", i, int((~keep).sum()))
            out.append({"boxes": boxes[keep], "labels": classes[keep] + 1})
        return out

    def loss(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """The sum of torchvision's loss terms over a batch (train mode only).

        Args:
            batch: the batch contract: "image" (B, 3, S, S) float [0, 1], "boxes" list of
                (N_i, 4) float32 xyxy px, "classes" list of (N_i,) int64 defect ids.

        Returns:
            () float32 loss; its parts are kept in ``last_losses``.
        """
        if not self.training:
            raise RuntimeError("detector loss needs train mode (torchvision networks return "
                               "detections in eval mode); call model.train() first")
        images = list(batch["image"])
        targets = self.targets(batch)
        while len(images) < self.min_batch:
            images, targets = images + images, targets + targets
        parts = self.net(images, targets)
        self.last_losses = {k: float(v.detach()) for k, v in parts.items()}
        return torch.stack([v.float() for v in parts.values()]).sum()

    # -- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images: torch.Tensor | Sequence[torch.Tensor]) -> list[Prediction]:
        """Detections per image, in the input's pixel frame.

        Args:
            images: (B, 3, H, W) float in [0, 1] (or a list of (3, H_i, W_i)).

        Returns:
            One dict per image: "boxes" (N, 4) float32 xyxy px, "scores" (N,) float32 in
            [0, 1] descending, "classes" (N,) int64 defect ids in ``[0, num_classes)``; at
            most ``detections_per_image`` boxes scoring above ``score_threshold``.
        """
        was_training = self.training
        self.eval()
        try:
            raw = self.net(list(images))
        finally:
            self.train(was_training)
        return [{"boxes": r["boxes"].float(), "scores": r["scores"].float(),
                 "classes": r["labels"].long() - 1} for r in raw]

    def forward(self, images: torch.Tensor | Sequence[torch.Tensor]) -> list[Prediction]:
        """Same as ``predict``."""
        return self.predict(images)


class _SSDWithEmptyNegatives(SSD):
    """torchvision's SSD whose loss also learns from images without boxes.

    SSD mines ``neg_to_pos_ratio`` hard negatives per positive anchor of the same image, so an
    image without boxes adds nothing to the loss: good images would never teach the network
    to stay quiet. Here each such image adds its ``neg_to_pos_ratio * max(4, mean positive
    anchors per boxed image)`` hardest background anchors to the classification loss, under
    the same normalisation (the batch's positive anchor count). State dicts are unchanged.
    """

    def compute_loss(self, targets, head_outputs, anchors, matched_idxs):
        losses = super().compute_loss(targets, head_outputs, anchors, matched_idxs)
        counts = [int((m >= 0).sum()) for m in matched_idxs]
        empty = [i for i, c in enumerate(counts) if c == 0]
        if not empty:
            return losses
        boxed = [c for c in counts if c > 0]
        per_positive = sum(boxed) / len(boxed) if boxed else 0.0
        k = int(self.neg_to_pos_ratio * max(4.0, per_positive))
        logits = head_outputs["cls_logits"][empty]  # (E, A, C)
        background = -torch.log_softmax(logits.float(), dim=-1)[..., 0]  # (E, A) CE to class 0
        hardest = background.topk(min(k, background.shape[1]), dim=1).values
        losses["classification"] = losses["classification"] + hardest.sum() / max(1, sum(counts))
        return losses


# -- weights -----------------------------------------------------------------------------------
def _read_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"weights file {str(path)!r} does not exist; give a local state dict")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ConfigError(f"weights file {str(path)!r} holds no state dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _backbone_pairs(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor],
                    prefix: str) -> dict[str, torch.Tensor]:
    """An ImageNet MobileNetV3 "features.*" state dict renamed, in order, onto the detector's
    backbone body (which holds the same layers in the same order), while shapes agree."""
    src = [(k, v) for k, v in state.items()
           if k.startswith("features.") and not k.endswith("num_batches_tracked")]
    dst = [k for k in own if k.startswith(prefix) and not k.endswith("num_batches_tracked")]
    fitting = {}
    for (_, value), key in zip(src, dst, strict=False):
        if own[key].shape != value.shape:
            break
        fitting[key] = value
    return fitting


def load_weights(model: TorchvisionDetector, path: str | Path, backbone_prefix: str) -> None:
    """Loads a local state dict into ``model``; never downloads.

    Accepts a state dict of the whole TorchvisionDetector (or a synthgen checkpoint), a
    torchvision detector state dict, or an ImageNet MobileNetV3-Large state dict (its
    "features.*" tensors go onto the backbone, in order, up to the first shape that differs:
    SSDlite's reduced tail stays random). Tensors that do not fit keep their random init.

    Raises:
        ConfigError: the file is missing or no tensor in it fits the model.
    """
    state = _read_state(path)
    target: nn.Module = model if any(k.startswith("net.") for k in state) else model.net
    own = target.state_dict()
    if any(k.startswith("features.") for k in state):
        fitting = _backbone_pairs(state, own, backbone_prefix)
    else:
        fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise ConfigError(f"no tensor in weights file {str(path)!r} fits this detector; "
                          "is it the right network?")
    target.load_state_dict(fitting, strict=False)
    log.info("weights %s: loaded %d of %d tensors (%d of the model's keep their init)",
             path, len(fitting), len(state), len(own) - len(fitting))


# -- builders ----------------------------------------------------------------------------------
def _check(config: Mapping[str, Any]) -> tuple[int, int]:
    num_classes, size = int(config["num_classes"]), int(config["image_size"])
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1 (defect types), got {num_classes}")
    if size < 32:
        raise ConfigError(f"image_size must be at least 32 pixels, got {size}")
    if not 0.0 <= float(config["score_threshold"]) < 1.0:
        raise ConfigError(f"score_threshold must lie in [0, 1), got {config['score_threshold']}")
    return num_classes, size


def build_ssdlite(config: dict[str, Any]) -> TorchvisionDetector:
    """SSDlite320-MobileNetV3-Large, random init (or ``weights_path``).

    Config: num_classes (defect types), image_size (the network's square input side, px),
    score_threshold, nms_threshold, detections_per_image, anchor_min_ratio and
    anchor_max_ratio (default box scales as fractions of image_size; torchvision's 0.2 is
    lowered to 0.1 for small defects), weights_path.
    """
    num_classes, size = _check(config)
    # BatchNorm momentum 0.1 instead of torchvision's 0.03: from random init, the running
    # statistics that eval mode uses then settle within tens of steps, not hundreds.
    norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)
    net = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                        num_classes=num_classes + 1, norm_layer=norm)
    net.__class__ = _SSDWithEmptyNegatives  # same module, a loss that learns from good images
    net.anchor_generator = DefaultBoxGenerator(
        [[2, 3] for _ in range(6)], min_ratio=float(config["anchor_min_ratio"]),
        max_ratio=float(config["anchor_max_ratio"]))
    net.transform = GeneralizedRCNNTransform(size, size, [0.5] * 3, [0.5] * 3,
                                             size_divisible=1, fixed_size=(size, size))
    net.score_thresh = float(config["score_threshold"])
    net.nms_thresh = float(config["nms_threshold"])
    net.detections_per_img = int(config["detections_per_image"])
    net.topk_candidates = max(net.topk_candidates, net.detections_per_img)
    model = TorchvisionDetector(net, num_classes, min_batch=2)
    if config.get("weights_path"):
        load_weights(model, config["weights_path"], "backbone.features.")
    return model


def build_fasterrcnn(config: dict[str, Any]) -> TorchvisionDetector:
    """Faster R-CNN MobileNetV3-Large FPN, random init (or ``weights_path``).

    Config: num_classes (defect types), image_size (shortest side the input is resized to,
    longest capped at the same, px), score_threshold, nms_threshold, detections_per_image,
    anchor_sizes (px side of the RPN anchors, each at ratios 0.5, 1, 2 on every FPN level;
    torchvision's 32..512 is lowered to 16..256 for small defects), weights_path.
    """
    num_classes, size = _check(config)
    net = fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=num_classes + 1,
        min_size=size, max_size=size,
        box_score_thresh=float(config["score_threshold"]),
        box_nms_thresh=float(config["nms_threshold"]),
        box_detections_per_img=int(config["detections_per_image"]),
        # Few defects per image: fewer proposals and sampled RoIs than COCO's 2000/1000/512
        # (what torchvision's 320 variant does too) make it several times faster on a CPU.
        rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=300,
        box_batch_size_per_image=128)
    sizes = tuple(int(s) for s in config["anchor_sizes"])
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"anchor_sizes must be positive pixel sizes, got {sizes}")
    ratios = (0.5, 1.0, 2.0)
    generator = AnchorGenerator((sizes,) * 3, (ratios,) * 3)
    if generator.num_anchors_per_location() != net.rpn.anchor_generator.num_anchors_per_location():
        net.rpn.head = RPNHead(net.backbone.out_channels, len(sizes) * len(ratios))
    net.rpn.anchor_generator = generator
    model = TorchvisionDetector(net, num_classes)
    if config.get("weights_path"):
        load_weights(model, config["weights_path"], "backbone.body.")
    return model


_COMMON: dict[str, Any] = {
    "num_classes": 1,
    "image_size": 320,
    "score_threshold": 0.05,
    "detections_per_image": 100,
    "weights_path": None,
}

register_model(ModelSpec(
    name="ssdlite",
    kind="detector",
    build=build_ssdlite,
    default_config={**_COMMON, "nms_threshold": 0.55, "anchor_min_ratio": 0.1,
                    "anchor_max_ratio": 0.95},
    description="torchvision SSDlite320 MobileNetV3-Large box detector (one stage, fast)",
    needs="boxes",
))
register_model(ModelSpec(
    name="fasterrcnn",
    kind="detector",
    build=build_fasterrcnn,
    default_config={**_COMMON, "nms_threshold": 0.5, "anchor_sizes": (16, 32, 64, 128, 256)},
    description="torchvision Faster R-CNN MobileNetV3-Large FPN box detector (two stage)",
    needs="boxes",
))
