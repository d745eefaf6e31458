"""Box detectors (SSDlite, Faster R-CNN): no download, the loss, predict's structure, fit."""

from __future__ import annotations

import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from torch.utils.data import Dataset  # noqa: E402

from synthgen.detect import engine  # noqa: E402
from synthgen.detect.localisation import box_f1_iou, coco_map  # noqa: E402
from synthgen.detect.models import detectors  # noqa: E402
from synthgen.detect.models.registry import get_spec  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402

PRESETS = ["ssdlite", "fasterrcnn"]
SIZE = 64
CPU = torch.device("cpu")


def square_batch(n: int = 2, size: int = SIZE, empty: tuple[int, ...] = ()) -> dict:
    """n grey images, each with a bright square (its box, class 0) unless listed in `empty`."""
    images = torch.full((n, 3, size, size), 0.3)
    boxes, classes = [], []
    for i in range(n):
        if i in empty:
            boxes.append(torch.zeros(0, 4))
            classes.append(torch.zeros(0, dtype=torch.int64))
            continue
        x, y = 8 + 12 * i % (size // 2), 10 + 8 * i % (size // 2)
        side = size // 4
        images[i, :, y : y + side, x : x + side] = 1.0
        boxes.append(torch.tensor([[x, y, x + side, y + side]], dtype=torch.float32))
        classes.append(torch.zeros(1, dtype=torch.int64))
    return {"image": images, "mask": torch.zeros(n, 1, size, size),
            "label": torch.tensor([0 if i in empty else 1 for i in range(n)]),
            "boxes": boxes, "classes": classes, "index": torch.arange(n)}


def make(name: str, **overrides):
    torch.manual_seed(0)
    return get_spec(name).make(**{"image_size": SIZE, **overrides})


# -- building ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_presets_build_without_any_download(name, monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network access attempted: {args}")

    import torchvision.models._api as tv_api

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(tv_api, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    spec = get_spec(name)
    assert spec.kind == "detector" and spec.needs == "boxes"
    model = spec.make(num_classes=3)
    assert isinstance(model, detectors.TorchvisionDetector) and model.num_classes == 3
    assert calls == []


def test_config_errors():
    with pytest.raises(ConfigError, match="num_classes"):
        make("ssdlite", num_classes=0)
    with pytest.raises(ConfigError, match="no option"):
        make("fasterrcnn", min_size=3)
    with pytest.raises(ConfigError, match="does not exist"):
        make("fasterrcnn", weights_path="/nonexistent/weights.pth")


def test_targets_map_classes_clip_and_drop_empty_boxes():
    model = make("fasterrcnn", num_classes=2)
    batch = square_batch(2)
    batch["boxes"][0] = torch.tensor([[-5.0, 2, 10, 12], [3, 3, 3, 9], [60, 60, 90, 70]])
    batch["classes"][0] = torch.tensor([1, 0, 0])
    targets = model.targets(batch)
    assert targets[0]["boxes"].tolist() == [[0, 2, 10, 12], [60, 60, 64, 64]]
    assert targets[0]["labels"].tolist() == [2, 1]  # background is torchvision's 0
    assert targets[1]["labels"].tolist() == [1]
    batch["classes"][1] = torch.tensor([2])
    with pytest.raises(ValueError, match="num_classes=2"):
        model.targets(batch)


# -- loss -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_loss_is_finite_with_boxes_empty_images_and_one_image(name):
    model = make(name).train()
    for batch in (square_batch(2, empty=(1,)), square_batch(2, empty=(0, 1)), square_batch(1)):
        loss = model.loss(batch)
        assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
        loss.backward()
        assert set(model.last_losses) and all(np.isfinite(list(model.last_losses.values())))
    model.eval()
    with pytest.raises(RuntimeError, match="train mode"):
        model.loss(square_batch(2))


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_a_few_steps_lower_the_loss(name):
    model = make(name, image_size=96).train()
    batch = square_batch(2, size=96)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        optimizer.zero_grad()
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert min(losses[-2:]) < 0.8 * losses[0], losses


# -- predict ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_predict_returns_the_documented_structure(name):
    model = make(name, num_classes=3, score_threshold=0.0, detections_per_image=7).train()
    images = square_batch(3)["image"]
    preds = model.predict(images)
    assert model.training  # predict restores the mode it found
    assert len(preds) == 3
    for p in preds:
        assert set(p) == {"boxes", "scores", "classes"}
        n = len(p["scores"])
        assert 0 < n <= 7
        assert p["boxes"].shape == (n, 4) and p["boxes"].dtype == torch.float32
        assert p["scores"].dtype == torch.float32 and p["classes"].dtype == torch.int64
        assert 0 <= p["classes"].min() and p["classes"].max() < 3
        assert (p["boxes"][:, 2:] >= p["boxes"][:, :2]).all()
        assert p["boxes"].min() >= 0 and p["boxes"].max() <= SIZE  # the input's frame
        assert (p["scores"][:-1] >= p["scores"][1:]).all()
    high = make(name, score_threshold=0.999).eval().predict(images)
    assert all(len(p["boxes"]) == len(p["scores"]) == len(p["classes"]) for p in high)


# -- weights ----------------------------------------------------------------------------------
def test_weights_path_loads_detector_and_backbone_files(tmp_path):
    model = make("fasterrcnn").eval()
    images = square_batch(1)["image"]
    own = tmp_path / "own.pt"
    torch.save({"model": model.state_dict()}, own)  # a synthgen checkpoint's layout
    bare = tmp_path / "bare.pth"
    torch.save(model.net.state_dict(), bare)  # a torchvision detector state dict
    for path in (own, bare):
        torch.manual_seed(1)
        loaded = get_spec("fasterrcnn").make(image_size=SIZE, weights_path=str(path)).eval()
        for a, b in zip(model.predict(images), loaded.predict(images), strict=True):
            torch.testing.assert_close(a["scores"], b["scores"])
    imagenet = torchvision.models.mobilenet_v3_large(weights=None).state_dict()
    path = tmp_path / "mobilenet_v3_large.pth"
    torch.save(imagenet, path)
    frcnn = make("fasterrcnn", weights_path=str(path))
    torch.testing.assert_close(frcnn.net.backbone.body["0"][0].weight,
                               imagenet["features.0.0.weight"])
    torch.testing.assert_close(frcnn.net.backbone.body["13"].block[0][0].weight,
                               imagenet["features.13.block.0.0.weight"])
    ssd = make("ssdlite", weights_path=str(path))
    torch.testing.assert_close(ssd.net.backbone.features[0][0][0].weight,
                               imagenet["features.0.0.weight"])
    torch.save({"x": torch.zeros(3)}, tmp_path / "junk.pth")
    with pytest.raises(ConfigError, match="fits"):
        make("ssdlite", weights_path=str(tmp_path / "junk.pth"))


# -- the engine -------------------------------------------------------------------------------
class SquareDataset(Dataset):
    """Samples in the batch contract; odd indices hold a bright square (class 0)."""

    def __init__(self, n: int):
        self.batch = square_batch(n, empty=tuple(range(0, n, 2)))

    def __len__(self) -> int:
        return len(self.batch["image"])

    def __getitem__(self, i: int) -> dict:
        return {key: value[i] for key, value in self.batch.items()}


def coco_inputs(outputs: dict) -> tuple[dict, list[dict]]:
    """evaluate()'s detector outputs as a COCO ground truth and detection list."""
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "defect"}]}
    dets = []
    for i, (pred, boxes, classes) in enumerate(
            zip(outputs["predictions"], outputs["boxes"], outputs["classes"], strict=True)):
        gt["images"].append({"id": i, "width": SIZE, "height": SIZE})
        for box, cls in zip(boxes, classes, strict=True):
            x0, y0, x1, y1 = box.tolist()
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i,
                                      "category_id": int(cls) + 1,
                                      "bbox": [x0, y0, x1 - x0, y1 - y0]})
        for box, score, cls in zip(pred["boxes"], pred["scores"], pred["classes"], strict=True):
            x0, y0, x1, y1 = box.tolist()
            dets.append({"image_id": i, "category_id": int(cls) + 1, "score": float(score),
                         "bbox": [x0, y0, x1 - x0, y1 - y0]})
    return gt, dets


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_one_epoch_of_fit_and_evaluate(name, tmp_path):
    result = engine.fit(name, SquareDataset(4), SquareDataset(3), out_dir=tmp_path, epochs=1,
                        batch_size=2, lr=1e-3, device="cpu",
                        config={"image_size": SIZE, "score_threshold": 0.01})
    assert len(result.history) == 1 and np.isfinite(result.history[0]["train_loss"])
    assert (tmp_path / "last.pt").is_file()
    spec = get_spec(name)
    out = engine.evaluate(result.model, spec, engine.make_loader(SquareDataset(3), 2, device=CPU),
                          CPU)
    assert out["labels"].tolist() == [0, 1, 0] and np.isnan(out["loss"])
    assert len(out["predictions"]) == len(out["boxes"]) == len(out["classes"]) == 3
    for pred in out["predictions"]:
        assert isinstance(pred["boxes"], np.ndarray) and pred["boxes"].shape[1:] == (4,)
        assert pred["classes"].dtype == np.int64 and (pred["classes"] == 0).all()
    report = box_f1_iou([p["boxes"] for p in out["predictions"]], out["boxes"])
    assert 0.0 <= report.f1 <= 1.0
    scores = coco_map(*coco_inputs(out))
    assert set(scores) == {"mAP", "AP50", "AP75"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
