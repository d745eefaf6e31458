"""The ``vae`` anomaly preset: shapes, loss terms, determinism, scoring, localisation, engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torch.utils.data import Dataset  # noqa: E402

from synthgen.detect import engine  # noqa: E402
from synthgen.detect.localisation import box_f1_iou, box_iou  # noqa: E402
from synthgen.detect.models import vae  # noqa: E402
from synthgen.detect.models.registry import get_spec  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402

from .images import batch_of, clean_images, with_square  # noqa: E402

TINY = {"channels": (8, 8, 16, 16, 16), "latent": 8}
CPU = torch.device("cpu")








def tiny_vae(**overrides) -> vae.ConvVAE:
    torch.manual_seed(0)
    return get_spec("vae").make(**{**TINY, **overrides})


@pytest.fixture(scope="module")
def trained() -> vae.ConvVAE:
    """A tiny VAE trained briefly on clean 32x32 textures (eval mode)."""
    model = tiny_vae()
    batch = batch_of(clean_images(16, 32, seed=3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    return model.eval()


# -- preset and shapes -----------------------------------------------------------------------
def test_preset_is_registered_as_an_anomaly_model():
    spec = get_spec("vae")
    assert spec.kind == "anomaly" and spec.needs == "good images only" and spec.description
    cfg = spec.config()
    assert cfg["beta"] == 0.01 and cfg["latent_type"] == "spatial" and cfg["min_area"] == 16
    assert isinstance(spec.make(), vae.ConvVAE)
    with pytest.raises(ConfigError, match="no option"):
        spec.make(depth=3)


@pytest.mark.parametrize(("latent_type", "size", "code_shape"),
                         [("spatial", 64, (2, 8, 2, 2)), ("flat", 32, (2, 8))])
def test_shapes(latent_type, size, code_shape):
    model = tiny_vae(latent_type=latent_type, image_size=size).eval()
    x = torch.rand(2, 3, size, size)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == code_shape
    with torch.no_grad():
        recon = model(x)
    assert recon.shape == x.shape and float(recon.min()) >= 0 and float(recon.max()) <= 1
    scores, maps = model.score(x)
    assert scores.shape == (2,) and maps.shape == (2, size, size)
    assert scores.dtype == maps.dtype == torch.float32 and bool((maps >= 0).all())
    boxes = model.localise(x, threshold=0.0, min_area=1)
    assert len(boxes) == 2 and all(b.shape[1] == 4 and b.dtype == np.int64 for b in boxes)


def test_bad_sizes_and_options_are_config_errors():
    with pytest.raises(ConfigError, match="divisible by 32"):
        tiny_vae()(torch.rand(1, 3, 48, 48))
    with pytest.raises(ConfigError, match="image_size=64"):
        tiny_vae(latent_type="flat", image_size=32).score(torch.rand(1, 3, 64, 64))
    for bad in ({"latent_type": "dense"}, {"beta": -1.0}, {"smooth_sigma": -1.0},
                {"score_quantile": 0.0}, {"min_area": 0}, {"image_size": 100}):
        with pytest.raises(ConfigError):
            tiny_vae(**bad)


# -- loss ------------------------------------------------------------------------------------
def test_loss_decreases_on_a_fixed_batch():
    model = tiny_vae()
    batch = batch_of(clean_images(8, 32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(15):
        value = model.loss(batch, generator=g)
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(float(value.detach()))
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0]


def test_loss_ignores_defective_images():
    model = tiny_vae().eval()  # eval: decode the mean and use running BatchNorm statistics
    good = batch_of(clean_images(4, 32), label=0)
    mixed = batch_of(torch.cat([good["image"], torch.rand(4, 3, 32, 32)]))
    mixed["label"] = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert torch.allclose(model.loss(good), model.loss(mixed))
    model.train()
    mixed["label"][:] = 1
    zero = model.loss(mixed)
    assert float(zero.detach()) == 0.0 and zero.requires_grad


def test_kl_is_non_negative_and_beta_weights_it():
    x = clean_images(4, 32)
    for beta in (0.0, 0.5):
        model = tiny_vae(beta=beta)
        terms = model.loss_terms(batch_of(x), generator=torch.Generator().manual_seed(1))
        assert float(terms["kl"].detach()) > 0.0  # a random encoder is not exactly the prior
        assert torch.allclose(terms["loss"], terms["recon"] + beta * terms["kl"])
        # The KL is the closed form of KL(N(mu, sigma²) || N(0, 1)) per pixel value.
        mu, logvar = model.encode(x)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean() / x[0].numel()
        assert torch.allclose(terms["kl"], kl, rtol=1e-4)
    # beta = 0: the loss is the mean squared error of a sampled reconstruction, nothing else.
    model = tiny_vae(beta=0.0).train()
    loss = model.loss(batch_of(x), generator=torch.Generator().manual_seed(2))
    recon = model(x, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(loss, torch.nn.functional.mse_loss(recon, x))


def test_training_samples_and_eval_is_deterministic():
    model = tiny_vae()
    x = clean_images(4, 32)
    model.train()
    a = model(x, generator=torch.Generator().manual_seed(5))
    b = model(x, generator=torch.Generator().manual_seed(5))
    c = model(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    model.eval()
    state = torch.get_rng_state()
    s1, m1 = model.score(x)
    s2, m2 = model.score(x)
    with torch.no_grad():
        r1, r2 = model(x), model(x)
    assert torch.equal(s1, s2) and torch.equal(m1, m2) and torch.equal(r1, r2)
    assert torch.equal(torch.get_rng_state(), state)  # eval draws no random number


# -- scoring and localisation ------------------------------------------------------------------
def test_a_bright_square_scores_higher_and_is_boxed(trained):
    calibration = clean_images(8, 32, seed=7)
    clean = clean_images(6, 32, seed=11)
    defective, _, true_boxes = with_square(clean, margin=3, side=8)
    clean_scores, _ = trained.score(clean)
    bad_scores, _ = trained.score(defective)
    assert float(bad_scores.min()) > 2 * float(clean_scores.max())
    # Default: unsmoothed map, threshold = 99.9th percentile of other clean images' maps.
    threshold = trained.map_threshold(calibration, 0.999)
    pred = trained.localise(defective, threshold)
    report = box_f1_iou(pred, true_boxes, iou_threshold=0.3)
    assert report.recall == 1.0 and report.precision == 1.0, pred
    assert report.mean_iou > 0.8
    assert all(len(b) == 0 for b in trained.localise(clean, threshold))


def test_smoothed_maps_still_find_the_square(trained):
    calibration = clean_images(8, 32, seed=7)
    clean = clean_images(6, 32, seed=11)
    defective, _, true_boxes = with_square(clean, margin=3, side=8)
    _, raw = trained.score(defective)
    trained.smooth_sigma = 1.0  # only scoring reads it, so the trained model is reused
    try:
        _, smooth = trained.score(defective)
        threshold = trained.map_threshold(calibration, 0.999)
        pred = trained.localise(defective, threshold)
        clean_boxes = trained.localise(clean, threshold)
    finally:
        trained.smooth_sigma = 0.0
    assert float(smooth.amax()) < float(raw.amax())  # smoothing spreads the peaks
    assert torch.allclose(smooth.mean(dim=(1, 2)), raw.mean(dim=(1, 2)), rtol=0.05)
    for boxes, (x0, y0, _, _) in zip(pred, (b[0] for b in true_boxes), strict=True):
        cx, cy = x0 + 4, y0 + 4  # every square's centre lies in a box
        assert any(b[0] <= cx < b[2] and b[1] <= cy < b[3] for b in boxes), boxes
    assert all(len(b) == 0 for b in clean_boxes)


def test_min_area_drops_specks(trained):
    image = clean_images(1, 32, seed=11)
    image[:, :, 4:12, 4:12] = 1.0  # a defect of 64 pixels
    image[:, :, 24:26, 24:26] = 1.0  # a speck of 4 pixels
    threshold = trained.map_threshold(clean_images(8, 32, seed=7), 0.999)
    everything = trained.localise(image, threshold, min_area=1)[0]
    assert len(everything) >= 2
    assert any(b[0] <= 24 and b[1] <= 24 and b[2] >= 26 and b[3] >= 26 for b in everything)
    # The model's default min_area (16 pixels) keeps only the square.
    kept = trained.localise(image, threshold)[0]
    assert len(kept) == 1 and box_iou(kept, [[4, 4, 12, 12]])[0, 0] > 0.7, kept
    assert trained.localise(image, threshold, min_area=100)[0].shape == (0, 4)
    with pytest.raises(ConfigError, match="min_area"):
        trained.localise(image, threshold, min_area=0)


# -- engine ----------------------------------------------------------------------------------
class TinyDataset(Dataset):
    """Samples in the batch contract: clean textures, odd indices with a bright square."""

    def __init__(self, n: int = 8, size: int = 32):
        clean = clean_images(n, size, seed=3)
        squares, _, boxes = with_square(clean, margin=3, side=6)
        self.items = []
        for i in range(n):
            bad = i % 2 == 1
            mask = torch.zeros(1, size, size)
            if bad:
                x0, y0, x1, y1 = boxes[i][0].tolist()
                mask[:, y0:y1, x0:x1] = 1.0
            self.items.append({
                "image": squares[i] if bad else clean[i],
                "mask": mask,
                "label": int(bad),
                "boxes": torch.as_tensor(boxes[i] if bad else np.zeros((0, 4)),
                                         dtype=torch.float32),
                "classes": torch.zeros(int(bad), dtype=torch.int64),
                "index": i,
            })

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def test_one_epoch_through_the_engine(tmp_path):
    data = TinyDataset()
    result = engine.fit("vae", data, data, out_dir=tmp_path, epochs=1, batch_size=4,
                        device="cpu", config=TINY)
    assert isinstance(result.model, vae.ConvVAE) and result.epochs == 1
    row = result.history[0]
    assert math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"])
    assert (tmp_path / "last.pt").is_file()
    out = engine.evaluate(result.model, result.spec,
                          engine.make_loader(data, 4, device=CPU), CPU)
    assert out["scores"].shape == (8,) and out["maps"].shape == (8, 32, 32)
