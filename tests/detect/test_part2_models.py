"""Part 2 models: GAN family (latent search, encoder, discriminator), GANomaly, DRAEM and the
clustering baselines; owned training steps, checkpoints, thresholds and the PCA view."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from synthgen.detect.engine import evaluate, fit, make_loader  # noqa: E402
from synthgen.detect.metrics import between_classes, choose_threshold  # noqa: E402
from synthgen.detect.models import build_model, get_spec  # noqa: E402
from synthgen.detect.models.gan import latent_search  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402

from .images import clean_images, with_square  # noqa: E402

TINY_GAN = {"size": 16, "z_dim": 8, "width": 8, "search_steps": 3}
TINY = {
    "anogan": TINY_GAN,
    "fanogan": TINY_GAN,
    "dcgan": TINY_GAN,
    "ganomaly": {"size": 16, "z_dim": 8, "width": 8},
    "draem": {"base": 4, "depth": 2, "disc_base": 4, "disc_depth": 2},
    "kmeans": {},
    "birch": {},
}


def _samples(images, masks=None, label=0):
    masks = torch.zeros(len(images), 1, *images.shape[-2:]) if masks is None else masks
    return [{"image": images[i], "mask": masks[i], "label": torch.tensor(label),
             "index": i} for i in range(len(images))]


def test_latent_search_lowers_its_objective():
    torch.manual_seed(0)
    model = build_model("anogan", **TINY_GAN).eval()
    images = clean_images(4, 16)
    _, last, first = latent_search(model.generator, model.discriminator, images, steps=10,
                                   lam=0.1, lr=0.1, z_dim=8, seed=0)
    assert last.shape == (4,) and (last < first).all()
    _, none, start = latent_search(model.generator, model.discriminator, images, steps=0,
                                   z_dim=8, seed=0)
    assert torch.allclose(none, start) and torch.allclose(start, first)


@pytest.mark.parametrize("name", list(TINY))
def test_each_model_trains_and_scores(name, tmp_path):
    size = 32 if name in ("kmeans", "birch", "draem") else 16
    good = clean_images(8, size)
    bad, masks, _ = with_square(clean_images(4, size, seed=3), side=max(4, size // 4))
    if get_spec(name).synthetic_anomalies:
        from synthgen.detect.synthetic_anomalies import SyntheticAnomalies

        train = SyntheticAnomalies(_samples(good), seed=0)
    else:
        train = _samples(good)
    val = _samples(good[:4]) + _samples(bad, masks, 1)
    result = fit(name, train, val, tmp_path, epochs=1, batch_size=4, lr=1e-3, device="cpu",
                 config=TINY[name])
    assert (tmp_path / "last.pt").is_file()
    out = evaluate(result.model, result.spec, make_loader(val, 4, device=torch.device("cpu")),
                   torch.device("cpu"))
    assert out["scores"].shape == (8,) and np.isfinite(out["scores"]).all()
    assert out["maps"].shape == (8, size, size) and np.isfinite(out["maps"]).all()
    if name in ("kmeans", "birch"):
        assert out["embedding"].shape == (8, 2) and set(np.unique(out["cluster"])) <= {0, 1}


def test_gan_owns_two_optimisers_and_resumes_them(tmp_path):
    train = _samples(clean_images(8, 16))
    fit("dcgan", train, None, tmp_path, epochs=1, batch_size=4, device="cpu", config=TINY_GAN)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert set(ckpt["optimizer"]["optimizers"]) == {"generator", "discriminator"}
    before = ckpt["model"]["generator.project.0.weight"].clone()
    result = fit("dcgan", train, None, tmp_path, epochs=2, batch_size=4, device="cpu",
                 resume=True)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert not torch.equal(before, result.model.generator.project[0].weight.detach())


def test_gan_encoder_step_leaves_generator_and_discriminator_alone():
    torch.manual_seed(0)
    model = build_model("fanogan", **TINY_GAN)
    opts = model.configure_optimizers(1e-3)
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    e0 = [p.detach().clone() for p in model.encoder.parameters()]
    for p in model.parameters():
        p.grad = None
    loss = model.encoder_loss(clean_images(4, 16)).mean()
    opts["encoder"].zero_grad()
    loss.backward(inputs=list(model.encoder.parameters()))
    opts["encoder"].step()
    assert all(p.grad is None for p in model.generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(g0, model.generator.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(e0, model.encoder.parameters(), strict=True))


def test_gan_rejects_bad_sizes_and_modes():
    with pytest.raises(ConfigError, match="power-of-two"):
        build_model("anogan", size=24)
    with pytest.raises(ConfigError, match="score_by"):
        build_model("anogan", score_by="vibes")
    with pytest.raises(ConfigError, match="built for 16x16"):
        build_model("dcgan", **TINY_GAN).eval().score(clean_images(1, 32))


def test_draem_learns_to_find_synthetic_anomalies():
    from synthgen.detect.synthetic_anomalies import SyntheticAnomalies
    from synthgen.detect.torch_data import collate

    torch.manual_seed(0)
    model = build_model("draem", **TINY["draem"])
    data = SyntheticAnomalies(_samples(clean_images(16, 32)), probability=1.0, seed=0)
    batch = collate([{**data[i], "boxes": torch.zeros(0, 4),
                      "classes": torch.zeros(0, dtype=torch.int64)} for i in range(8)])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
    with torch.no_grad():
        scores, maps = model.eval().score(batch["image"])
    assert scores.shape == (8,) and maps.shape == (8, 32, 32)
    assert 0.0 <= float(maps.min()) and float(maps.max()) <= 1.0


def test_between_classes_threshold():
    labels = np.array([0, 0, 0, 1, 1, 1])
    # Equal spreads: the midpoint of the means (1 and 5).
    assert between_classes(labels, [0, 1, 2, 4, 5, 6]) == pytest.approx(3.0)
    # A wider defective spread moves the crossing towards the good class.
    t = choose_threshold(labels, [0.9, 1.0, 1.1, 2.0, 5.0, 8.0], "between")
    assert 1.0 < t < 3.0
    with pytest.raises(ValueError, match="both"):
        between_classes([0, 0], [1.0, 2.0])


def test_clustering_run_writes_the_pca_view(tmp_path):
    from PIL import Image

    from synthgen.detect.data import Item
    from synthgen.detect.run import evaluate_run, train_items

    good = clean_images(10, 32)
    bad, masks, _ = with_square(clean_images(6, 32, seed=4), side=10)
    items = []
    for i, (img, label) in enumerate([(g, 0) for g in good] + [(b, 1) for b in bad]):
        path = tmp_path / f"{i}.png"
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(path)
        mask = None
        if label:
            mask = tmp_path / f"{i}_mask.png"
            Image.fromarray((masks[i - 10, 0].numpy() * 255).astype(np.uint8)).save(mask)
        items.append(Item(image=path, mask=mask, label=label))
    train = items[:6] + items[10:13]
    val, test = items[6:8] + items[13:14], items[8:10] + items[14:]
    run = train_items("kmeans", train, val, test, tmp_path / "run", epochs=1, size=32,
                      batch_size=4)
    assert len(run["split"]["train"]) == 9  # unlabelled: good and defective together
    metrics = evaluate_run(tmp_path / "run", test)
    assert (tmp_path / "run" / "pca.png").is_file() and metrics["images"] == 4
    assert json.loads((tmp_path / "run" / "run.json").read_text())["model"] == "kmeans"


def test_cli_model_options_are_parsed_as_yaml_scalars():
    from synthgen.detect.models.registry import parse_model_options

    assert parse_model_options(["search_steps=500", "lam=0.1", "score_by=mse"]) == {
        "search_steps": 500, "lam": 0.1, "score_by": "mse"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_model_options(["search_steps"])
