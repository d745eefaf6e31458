"""FID and KID against known values; LPIPS and the extractors (seeded random PROXIES)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthgen.translate.metrics import (
    LPIPS,
    PROXY,
    InceptionExtractor,
    MissingWeights,
    ProxyExtractor,
    evaluate_images,
    features,
    fid_from_features,
    frechet_distance,
    kid_from_features,
    polynomial_mmd2,
)


def test_frechet_distance_of_diagonal_gaussians_in_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # 5 + 6
    assert expected == pytest.approx(11.0)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(11.0)
    assert frechet_distance(mu1, np.diag(v1), mu1, np.diag(v1)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_full_covariance_matches_scipy_sqrtm():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + np.eye(5), b @ b.T + np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    root = linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_samples_approaches_the_population_value():
    rng = np.random.default_rng(1)
    real = rng.normal(0, 1, size=(20000, 2))
    fake = rng.normal([3, 0], [1, 2], size=(20000, 2))
    assert fid_from_features(real, fake) == pytest.approx(9 + 1, rel=0.03)


def test_kid_unbiased_estimator_on_a_tiny_set_by_hand():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [0.0, 0.0]])
    k = lambda x, y: (x @ y / 2 + 1) ** 3  # noqa: E731
    kaa = sum(k(a[i], a[j]) for i in range(3) for j in range(3) if i != j) / 6
    kbb = sum(k(b[i], b[j]) for i in range(2) for j in range(2) if i != j) / 2
    kab = sum(k(x, y) for x in a for y in b) / 6
    assert polynomial_mmd2(a, b) == pytest.approx(kaa + kbb - 2 * kab)
    mean, std = kid_from_features(a, b, subsets=3, subset_size=2,
                                  rng=np.random.default_rng(0))
    assert np.isfinite(mean) and std >= 0


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    rng = np.random.default_rng(2)
    same = kid_from_features(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)), 10, 100, rng)
    other = kid_from_features(rng.normal(size=(200, 8)), rng.normal(1, 1, (200, 8)), 10, 100,
                              rng)
    assert abs(same[0]) < 0.05 < other[0]


def test_missing_weights_name_the_file(tmp_path):
    with pytest.raises(MissingWeights, match=r"inception_v3.*--inception-weights"):
        InceptionExtractor(None)
    with pytest.raises(MissingWeights, match="does not exist"):
        InceptionExtractor(tmp_path / "nope.pth")
    with pytest.raises(MissingWeights, match=r"alexnet.*--lpips-backbone"):
        LPIPS.from_files(None, None)


def test_lpips_loads_local_files_and_proxy_behaves(tmp_path):
    from torchvision import models

    torch.manual_seed(0)
    alex = models.alexnet(weights=None)
    torch.save(alex.state_dict(), tmp_path / "alex_backbone.pth")
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1)
             for k, c in enumerate((64, 192, 384, 256, 256))}
    torch.save(heads, tmp_path / "alex.pth")
    lp = LPIPS.from_files(tmp_path / "alex_backbone.pth", tmp_path / "alex.pth")
    assert lp.label == "lpips-alex"
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    d = lp(a, b)
    assert d.shape == (2,) and (d > 0).all() and torch.allclose(lp(a, a), torch.zeros(2))
    proxy = LPIPS.proxy(0)
    assert proxy.label == PROXY
    near = proxy(a, (a + 0.02 * b).clamp(0, 1))
    far = proxy(a, b)
    assert (near < far).all()


def test_evaluate_images_with_proxies_is_labelled_and_orders_sets():
    rng = np.random.default_rng(0)

    def blobs(n, value):
        out = []
        for _ in range(n):
            im = np.clip(rng.normal(120, 10, (32, 32, 3)), 0, 255).astype(np.uint8)
            r, c = rng.integers(8, 24, 2)
            im[r - 4:r + 4, c - 4:c + 4] = value
            out.append(im)
        return out

    real, close, far = blobs(12, 20), blobs(12, 25), blobs(12, 250)
    extractor, lpips = ProxyExtractor(0), LPIPS.proxy(0)
    good = evaluate_images(real, close, real[:4], extractor, lpips, size=32)
    bad = evaluate_images(real, far, real[:4], extractor, None, size=32)
    assert good["extractor"] == PROXY and good["lpips"] == PROXY
    assert good["fid"] < bad["fid"] and good["kid"] < bad["kid"]
    assert good["lpips_diversity"] > 0 and good["lpips_nearest_train"] > 0
    f = features(extractor, real, size=32)
    assert f.shape == (12, 32)
    assert np.array_equal(f, features(ProxyExtractor(0), real, size=32))
