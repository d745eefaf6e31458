"""U-Net presets: the segmenter (unet) and the skip-less U-Net autoencoder with SOM (unet_ae)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torch.utils.data import Dataset  # noqa: E402

from synthgen.detect import engine  # noqa: E402
from synthgen.detect.checkpoint import export, load_model  # noqa: E402
from synthgen.detect.models import unet  # noqa: E402
from synthgen.detect.models.registry import get_spec  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402

from .images import batch_of, clean_images, with_square  # noqa: E402

TINY_UNET = {"base": 4}
TINY_AE = {"channels": (8, 16, 16), "latent": 8, "som_grid": (3, 3), "som_epochs": 5}
CPU = torch.device("cpu")








class SquareDataset(Dataset):
    """Samples in the batch contract: textured images, odd indices with a bright square."""

    def __init__(self, n: int, size: int = 32, seed: int = 0, good_only: bool = False):
        self.images = clean_images(n, size, seed)
        squares, masks = with_square(self.images, side=6, seed=seed + 1)[:2]
        self.masks = torch.zeros(n, 1, size, size)
        self.labels = torch.zeros(n, dtype=torch.int64)
        for i in range(n):
            if not good_only and i % 2:
                self.images[i], self.masks[i], self.labels[i] = squares[i], masks[i], 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        ys, xs = torch.nonzero(self.masks[i, 0], as_tuple=True)
        boxes = (torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]],
                              dtype=torch.float32) if len(ys) else torch.zeros(0, 4))
        return {"image": self.images[i], "mask": self.masks[i], "label": self.labels[i],
                "boxes": boxes, "classes": torch.zeros(len(boxes), dtype=torch.int64),
                "index": i}


# -- registry and shapes -----------------------------------------------------------------------
def test_presets_are_registered_with_their_kinds():
    assert get_spec("unet").kind == "segmenter" and get_spec("unet").needs == "masks"
    assert get_spec("unet_ae").kind == "anomaly"
    assert get_spec("unet_ae").needs == "good images only"
    assert get_spec("unet").build is unet.build_unet
    with pytest.raises(ConfigError, match="no option"):
        get_spec("unet_ae").make(skips=True)


def test_unet_gives_one_logit_per_pixel_and_rejects_odd_sizes():
    torch.manual_seed(0)
    model = get_spec("unet").make(**TINY_UNET).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 48))
    assert out.shape == (2, 1, 64, 48) and out.dtype == torch.float32
    # The prior bias: an untrained network says "mostly background".
    assert float(torch.sigmoid(out).mean()) < 0.3
    with pytest.raises(ConfigError, match="divisible by 16"):
        model(torch.rand(1, 3, 40, 40))
    default = get_spec("unet").make()
    assert len(default.down) == 4 and 1.8e6 < sum(p.numel() for p in default.parameters()) < 2.1e6


def test_unet_ae_shapes_and_no_skip_connections():
    torch.manual_seed(0)
    model = get_spec("unet_ae").make(**TINY_AE).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        code = model.encode(x)
        assert code.shape == (2, 8, 4, 4)
        assert model(x).shape == x.shape
        scores, maps = model.score(x)
    assert scores.shape == (2,) and maps.shape == (2, 32, 32) and scores.dtype == torch.float32
    # No skips: the decoder sees only the descriptor, so the output is a function of it alone.
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.decode(code))
    assert all(m.kernel_size == (5, 5) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
               and m.kernel_size != (1, 1))
    with pytest.raises(ConfigError, match="divisible by 8"):
        model(torch.rand(1, 3, 36, 36))
    default = get_spec("unet_ae").make()
    assert 0.6e6 < sum(p.numel() for p in default.parameters()) < 0.9e6
    with torch.no_grad():
        assert default.eval().encode(torch.rand(1, 3, 64, 64)).shape == (1, 16, 2, 2)


# -- segmenter learning ------------------------------------------------------------------------
def _iou(logits: torch.Tensor, masks: torch.Tensor) -> float:
    pred = torch.sigmoid(logits) > 0.5
    truth = masks > 0.5
    return float((pred & truth).sum() / (pred | truth).sum().clamp(min=1))


def test_unet_learns_to_segment_a_bright_square():
    torch.manual_seed(0)
    model = get_spec("unet").make(base=8)  # wider than TINY_UNET: learns in fewer steps
    images, masks = with_square(clean_images(16, 32, seed=2), side=6, seed=3)[:2]
    test_images, test_masks = with_square(clean_images(8, 32, seed=5), side=6, seed=6)[:2]
    task = engine.TASKS.get("segmenter")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = batch_of(images, 1, masks)
    model.eval()
    with torch.no_grad():
        before = _iou(model(test_images), test_masks)
    model.train()
    for _ in range(40):
        opt.zero_grad()
        task.loss(model, batch).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        after = _iou(model(test_images), test_masks)
    # Chance (the square covers 3.5 % of the image) is an IoU of about 0.04.
    assert before < 0.1 and after > 0.5


# -- autoencoder learning and scoring ----------------------------------------------------------
def test_unet_ae_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    model = unet.UNetAutoencoder(**TINY_AE)
    batch = batch_of(clean_images(8, 32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        value = model.loss(batch)
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(float(value.detach()))
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0]


def test_unet_ae_loss_ignores_defective_images():
    torch.manual_seed(0)
    model = unet.UNetAutoencoder(**TINY_AE).eval()
    good = batch_of(clean_images(4, 32), label=0)
    mixed = batch_of(torch.cat([good["image"], torch.rand(4, 3, 32, 32)]))
    mixed["label"] = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert torch.allclose(model.loss(good), model.loss(mixed))
    mixed["label"][:] = 1
    zero = model.loss(mixed)
    assert float(zero.detach()) == 0.0 and zero.requires_grad


def _trained_ae(steps: int = 60, **overrides) -> unet.UNetAutoencoder:
    torch.manual_seed(0)
    model = unet.UNetAutoencoder(**{**TINY_AE, **overrides})
    batch = batch_of(clean_images(16, 32, seed=3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    return model.eval()


def test_unet_ae_scores_a_bright_square_higher_than_clean_images():
    clean = clean_images(8, 32, seed=11)
    defective, masks = with_square(clean, side=6)[:2]
    model = _trained_ae()
    clean_scores, clean_maps = model.score(clean)
    bad_scores, bad_maps = model.score(defective)
    assert float(bad_scores.min()) > float(clean_scores.max())
    # The map is the squared error averaged over channels, and it peaks on the square.
    with torch.no_grad():
        expected = (clean - model(clean)).pow(2).mean(dim=1)
    torch.testing.assert_close(clean_maps, expected)
    peak = bad_maps.flatten(1).argmax(dim=1)
    near = torch.nn.functional.max_pool2d(masks, 5, 1, 2)[:, 0]
    assert bool(near.flatten(1).gather(1, peak[:, None]).all())


# -- self-organising map -----------------------------------------------------------------------
def test_som_fit_lowers_the_quantisation_error_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    # Three clusters in 128 dimensions.
    centres = 3 * torch.randn(3, 128, generator=g)
    data = centres.repeat_interleave(20, dim=0) + 0.1 * torch.randn(60, 128, generator=g)
    model = unet.UNetAutoencoder(**TINY_AE)
    errors = model.fit_som(data)
    assert len(errors) == TINY_AE["som_epochs"] + 1 and errors == model.som_errors
    assert errors[-1] < 0.5 * errors[0]
    assert all(b < a for a, b in itertools.pairwise(errors))
    assert model.som_weights.shape == (9, 128) and model.som_fitted
    # Every cluster has a unit near it (compared with the cluster spacing); the same seed gives
    # the same map.
    nearest = torch.cdist(centres, model.som_weights).amin(dim=1)
    assert float(nearest.max()) < 0.1 * float(torch.pdist(centres).min())
    again = unet.UNetAutoencoder(**TINY_AE)
    again.fit_som(data)
    assert torch.equal(again.som_weights, model.som_weights)
    # Mini-batch updates learn too.
    batched = unet.UNetAutoencoder(**{**TINY_AE, "som_batch": 8, "som_epochs": 20})
    errors = batched.fit_som(data)
    assert errors[-1] < 0.5 * errors[0]


def test_som_reconstructs_the_nearest_unit_and_survives_a_state_dict_round_trip():
    model = _trained_ae(steps=20, som=True)
    loader = [batch_of(clean_images(8, 32, seed=s)) for s in (3, 4)]
    assert not model.som_fitted
    model.fit_after(loader, CPU)
    assert model.som_weights.shape == (9, 8 * 4 * 4) and model.training is False
    assert model.som_errors[-1] < model.som_errors[0]
    x = torch.cat([clean_images(3, 32, seed=11), with_square(clean_images(3, 32, seed=11))[0]])
    with torch.no_grad():
        code = model.encode(x)
        dists = ((code.flatten(1)[:, None] - model.som_weights[None]) ** 2).sum(dim=2)
        nearest = model.decode(model.som_weights[dists.argmin(dim=1)].view_as(code))
        plain = model(x)
    scores, maps = model.score(x)
    torch.testing.assert_close(maps, (x - nearest).pow(2).mean(dim=1))
    assert not torch.allclose(maps, (x - plain).pow(2).mean(dim=1))
    # The prototypes are a buffer: a fresh model loads them and scores the same.
    state = model.state_dict()
    assert "som_weights" in state
    fresh = unet.UNetAutoencoder(**{**TINY_AE, "som": True}).eval()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.som_weights, model.som_weights)
    torch.testing.assert_close(fresh.score(x)[0], scores)
    with pytest.raises(ConfigError, match="training size"):
        fresh.score(torch.rand(1, 3, 64, 64))


def test_som_is_a_no_op_when_disabled_or_unfitted():
    model = _trained_ae(steps=5)
    model.fit_after([batch_of(clean_images(4, 32))], CPU)
    assert not model.som_fitted
    x = clean_images(2, 32)
    unfitted = unet.UNetAutoencoder(**{**TINY_AE, "som": True}).eval()
    unfitted.load_state_dict(model.state_dict())
    torch.testing.assert_close(unfitted.score(x)[1], model.score(x)[1])


# -- engine ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "config"), [
    ("unet", TINY_UNET),
    ("unet_ae", TINY_AE),
    ("unet_ae", {**TINY_AE, "som": True}),
])
def test_engine_fits_one_epoch_and_reloads_the_checkpoint(tmp_path, name, config):
    spec = get_spec(name)
    train = SquareDataset(8, good_only=spec.kind == "anomaly")
    result = engine.fit(name, train, SquareDataset(6, seed=1), out_dir=tmp_path, epochs=1,
                        batch_size=4, device="cpu", config=config)
    row = result.history[0]
    assert np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"])
    out = engine.evaluate(result.model, spec, engine.make_loader(SquareDataset(6, seed=1), 4,
                                                                 device=CPU), CPU)
    assert out["scores"].shape == (6,) and out["maps"].shape == (6, 32, 32)
    assert out["labels"].tolist() == [0, 1, 0, 1, 0, 1]
    if config.get("som"):
        assert result.model.som_fitted
    model, _ = load_model(result.checkpoint)
    again = engine.evaluate(model, spec, engine.make_loader(SquareDataset(6, seed=1), 4,
                                                            device=CPU), CPU)
    np.testing.assert_allclose(again["maps"], out["maps"], rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_of_score_keeps_the_som(tmp_path):
    model = _trained_ae(steps=5, som=True)
    model.fit_after([batch_of(clean_images(8, 32, seed=3))], CPU)
    x = torch.cat([clean_images(2, 32, seed=9), with_square(clean_images(2, 32, seed=9))[0]])
    path = export(model, tmp_path / "score.pt", torch.rand(2, 3, 32, 32), "score")
    scores, maps = torch.jit.load(str(path))(x)
    ref_scores, ref_maps = model.score(x)
    torch.testing.assert_close(scores, ref_scores)
    torch.testing.assert_close(maps, ref_maps)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_export_of_the_segmenter(tmp_path):
    torch.manual_seed(0)
    model = get_spec("unet").make(**TINY_UNET).eval()
    path = export(model, tmp_path / "unet.pt", torch.rand(1, 3, 32, 32))
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(torch.jit.load(str(path))(x), model(x))
