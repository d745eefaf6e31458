"""Model presets: registry, shapes, SSIM, autoencoder learning and scoring, classifier weights."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

import torchvision  # noqa: E402

from synthgen.detect.models import (  # noqa: E402
    MODELS,
    ConvAutoencoder,
    ModelSpec,
    build_model,
    get_spec,
    model_names,
    register_model,
    ssim,
    ssim_map,
)
from synthgen.errors import ConfigError  # noqa: E402

from .images import batch_of, clean_images, with_square  # noqa: E402

TINY_AE = {"channels": (8, 8, 16, 16, 16), "latent": 8}








# -- registry --------------------------------------------------------------------------------
def test_registry_holds_the_builtin_presets():
    assert {"ae_l2", "ae_ssim", "resnet18", "densenet121"} <= set(model_names())
    for name in model_names():
        spec = get_spec(name)
        assert spec.name == name and spec.description and spec.needs
    assert get_spec("ae_ssim").kind == "anomaly" and get_spec("resnet18").kind == "classifier"
    assert get_spec("ae_l2").needs == "good images only"


def test_registry_rejects_unknown_names_options_kinds_and_duplicates():
    with pytest.raises(ConfigError, match="known"):
        get_spec("resnet9000")
    with pytest.raises(ConfigError, match="no option"):
        build_model("ae_l2", depth=3)
    with pytest.raises(ConfigError, match="kind"):
        ModelSpec("x", "regressor", build=lambda cfg: torch.nn.Identity())
    with pytest.raises(ValueError, match="already registered"):
        register_model(ModelSpec("ae_l2", "anomaly", build=lambda cfg: torch.nn.Identity()))
    assert "ae_l2" in MODELS


@pytest.mark.parametrize("name", ["ae_l2", "ae_ssim", "resnet18", "densenet121"])
def test_every_preset_builds_and_has_the_kind_shapes(name):
    spec = get_spec(name)
    torch.manual_seed(0)
    model = spec.make().eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        if spec.kind == "classifier":
            assert model(x).shape == (2, 2)
        else:
            assert model(x).shape == x.shape
            scores, maps = model.score(x)
            assert scores.shape == (2,) and maps.shape == (2, 64, 64)
            assert scores.dtype == torch.float32 and torch.isfinite(scores).all()


def test_autoencoder_rejects_sizes_not_divisible_by_32():
    model = ConvAutoencoder(**TINY_AE)
    with pytest.raises(ConfigError, match="divisible by 32"):
        model(torch.rand(1, 3, 48, 48))
    with pytest.raises(ConfigError, match="loss"):
        ConvAutoencoder(loss="l1")


# -- SSIM ------------------------------------------------------------------------------------
def test_ssim_is_one_for_identical_images_and_drops_with_noise():
    g = torch.Generator().manual_seed(0)
    x = clean_images(2, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert ssim_map(x, x).shape == (2, 32, 32)
    values = []
    for sigma in (0.02, 0.1, 0.3):
        noisy = (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)
        values.append(float(ssim(x, noisy).mean()))
    assert 1.0 > values[0] > values[1] > values[2]
    assert values[2] < 0.5


def test_ssim_map_is_low_exactly_where_images_differ():
    x = clean_images(1, 64)
    y = with_square(x, side=8)[0]
    changed = (x != y).any(dim=1)[0]
    m = ssim_map(x, y)[0]
    far = torch.ones_like(changed)
    ys, xs = torch.nonzero(changed, as_tuple=True)
    far[max(int(ys.min()) - 8, 0) : int(ys.max()) + 9, max(int(xs.min()) - 8, 0) :
        int(xs.max()) + 9] = False
    assert float(m[changed].mean()) < 0.9
    assert torch.allclose(m[far], torch.ones(()), atol=1e-4)


# -- autoencoder training and scoring ---------------------------------------------------------
@pytest.mark.parametrize("loss", ["l2", "ssim"])
def test_autoencoder_loss_decreases_on_a_fixed_batch(loss):
    torch.manual_seed(0)
    model = ConvAutoencoder(loss=loss, **TINY_AE)
    batch = batch_of(clean_images(8, 32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        value = model.loss(batch)
        opt.zero_grad()
        value.backward()
        opt.step()
        losses.append(float(value.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.7 * losses[0]


def test_autoencoder_loss_ignores_defective_images():
    torch.manual_seed(0)
    model = ConvAutoencoder(**TINY_AE)
    good = batch_of(clean_images(4, 32), label=0)
    mixed = batch_of(torch.cat([good["image"], torch.rand(4, 3, 32, 32)]))
    mixed["label"] = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    model.eval()
    assert torch.allclose(model.loss(good), model.loss(mixed))
    mixed["label"][:] = 1
    zero = model.loss(mixed)
    assert float(zero.detach()) == 0.0 and zero.requires_grad


def _train_on_clean(model: ConvAutoencoder, steps: int = 60) -> None:
    batch = batch_of(clean_images(16, 32, seed=3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model.loss(batch).backward()
        opt.step()
    model.eval()


@pytest.mark.parametrize("loss", ["l2", "ssim"])
def test_autoencoder_scores_a_bright_square_higher_than_clean_images(loss):
    clean = clean_images(8, 32, seed=11)
    defective = with_square(clean, side=6)[0]
    ratios = []
    for steps in (0, 60):
        torch.manual_seed(0)
        model = ConvAutoencoder(loss=loss, **TINY_AE)
        _train_on_clean(model, steps)
        clean_scores, _ = model.score(clean)
        bad_scores, bad_maps = model.score(defective)
        ratios.append(float(bad_scores.mean() / clean_scores.mean()))
    # After training on clean images every defective image scores above every clean one, and
    # training widened the gap (so the check is about learning, not the untrained output).
    assert float(bad_scores.min()) > float(clean_scores.max())
    assert ratios[1] > 1.2 * ratios[0]
    # The map points at the square: its peak lies inside (or next to) the changed pixels.
    changed = (defective != clean).any(dim=1)
    peak = bad_maps.flatten(1).argmax(dim=1)
    dilated = torch.nn.functional.max_pool2d(changed[:, None].float(), 5, 1, 2)[:, 0]
    assert bool(dilated.flatten(1).gather(1, peak[:, None]).all())


def test_latent_kde_is_fitted_saved_and_reloaded():
    torch.manual_seed(0)
    model = ConvAutoencoder(kde=True, kde_weight=0.5, **TINY_AE)
    _train_on_clean(model, steps=20)
    loader = [batch_of(clean_images(8, 32, seed=s)) for s in (3, 4)]
    model.fit_after(loader, torch.device("cpu"))
    assert model.kde_codes.shape == (16, 8) and float(model.kde_stats[5]) == 1.0
    x = torch.cat([clean_images(4, 32, seed=11), with_square(clean_images(4, 32, seed=11))[0]])
    scores, _ = model.score(x)
    assert torch.isfinite(scores).all()
    # z-scored: the training images score about 0 on average.
    train_scores, _ = model.score(torch.cat([b["image"] for b in loader]))
    assert abs(float(train_scores.mean())) < 0.5
    fresh = ConvAutoencoder(kde=True, kde_weight=0.5, **TINY_AE).eval()
    fresh.load_state_dict(model.state_dict())
    assert torch.allclose(fresh.score(x)[0], scores, atol=1e-5)


# -- classifiers -----------------------------------------------------------------------------
def test_classifier_loads_local_weights_and_keeps_a_random_two_class_head(tmp_path):
    torch.manual_seed(0)
    imagenet_like = torchvision.models.resnet18(weights=None)  # 1000-class head
    path = tmp_path / "resnet18.pth"
    torch.save(imagenet_like.state_dict(), path)
    model = build_model("resnet18", weights_path=str(path))
    assert torch.equal(model.backbone.conv1.weight, imagenet_like.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var,
                       imagenet_like.layer4[1].bn2.running_var)
    assert model.backbone.fc.weight.shape == (2, 512)
    # A whole-model state dict (e.g. from a synthgen run) loads head included.
    path2 = tmp_path / "whole.pth"
    torch.save({"model": model.state_dict(), "spec": "resnet18"}, path2)
    again = build_model("resnet18", weights_path=str(path2))
    assert torch.equal(again.backbone.fc.weight, model.backbone.fc.weight)


def test_classifier_weights_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build_model("resnet18", weights_path=str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"a.weight": torch.zeros(3)}, wrong)
    with pytest.raises(ConfigError, match="fits"):
        build_model("resnet18", weights_path=str(wrong))


def test_smoothed_map_score_prefers_a_compact_defect_to_one_noisy_pixel():
    from synthgen.detect.models.autoencoder import map_image_score

    maps = torch.zeros(2, 64, 64)
    maps[0, 10, 10] = 1.0  # one hot pixel: noise
    maps[1, 30:36, 30:36] = 0.5  # a 6x6 defect of moderate error
    plain = map_image_score(maps)
    smoothed = map_image_score(maps, smooth=5 / 64)
    assert plain[0] > plain[1]
    assert smoothed[1] > smoothed[0]
    assert torch.allclose(smoothed, torch.tensor([1 / 25, 0.5]))
    assert torch.allclose(map_image_score(maps, quantile=0.5), torch.zeros(2))
    with pytest.raises(ConfigError, match="score_smooth"):
        build_model("ae_ssim", score_smooth=1.5)
