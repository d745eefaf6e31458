"""The hit/miss POD fit against hand-checked data and independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthgen.validate.pod import Z95, false_call_rate, fit_pod, log_likelihood

# A hand-checked hit/miss data set: 8 sizes (mm), 5 views each; hits rise with size.
SIZES = np.repeat([0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8], 5)
HITS = np.array([
    0, 0, 0, 0, 0,   # 0.25: 0/5
    0, 0, 0, 0, 1,   # 0.35: 1/5
    0, 0, 1, 0, 0,   # 0.5:  1/5
    1, 0, 1, 0, 0,   # 0.7:  2/5
    1, 1, 0, 1, 0,   # 1.0:  3/5
    1, 1, 1, 0, 1,   # 1.4:  4/5
    1, 1, 1, 1, 1,   # 2.0:  5/5
    1, 1, 1, 1, 1,   # 2.8:  5/5
], dtype=bool)


def _grid_mle(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Brute force: the best (b0, b1) on a coarse grid, then two finer grids around it."""
    best = (0.0, 1.0)
    for half_b0, half_b1, centre in ((6.0, 10.0, None), (0.3, 0.5, 1), (0.02, 0.03, 1)):
        c0, c1 = (0.0, 10.0) if centre is None else best
        b0s = np.linspace(c0 - half_b0, c0 + half_b0, 241)
        b1s = np.linspace(max(c1 - half_b1, 1e-6), c1 + half_b1, 241)
        eta = b0s[:, None, None] + b1s[None, :, None] * x  # the same formula, on the grid
        values = np.sum(y * eta - np.logaddexp(0.0, eta), axis=2)
        i, j = np.unravel_index(np.argmax(values), values.shape)
        best = (float(b0s[i]), float(b1s[j]))
    return best


def test_fit_matches_a_brute_force_likelihood_grid():
    fit = fit_pod(SIZES, HITS)
    assert fit.ok and fit.n == 40 and fit.hits == 21
    b0, b1 = _grid_mle(np.log(SIZES), HITS.astype(float))
    a50 = math.exp(-b0 / b1)
    a90 = math.exp((math.log(9) - b0) / b1)
    assert fit.a50 == pytest.approx(a50, rel=0.01)
    assert fit.a90 == pytest.approx(a90, rel=0.01)
    # Hand check: 21 of 40 hit; the share hit passes 1/2 between 0.7 mm (2/5) and 1.0 mm
    # (3/5) and 0.9 between 1.4 mm (4/5) and 2.0 mm (5/5).
    assert 0.7 < fit.a50 < 1.0 and 1.4 < fit.a90 < 2.0
    assert fit.a90_lower < fit.a90 < fit.a90_95


def test_symmetric_data_put_a50_at_the_centre():
    # Mirror-symmetric in ln size about ln 1 (hits at a = misses at 1/a): the MLE has b0 = 0.
    sizes = np.array([0.25, 0.5, 0.5, 1.0, 1.0, 2.0, 2.0, 4.0])
    hits = np.array([0, 0, 1, 0, 1, 0, 1, 1], dtype=bool)
    fit = fit_pod(sizes, hits)
    assert fit.a50 == pytest.approx(1.0, abs=1e-9)
    assert fit.a90 == pytest.approx(math.exp(math.log(9) * fit.sigma), rel=1e-9)


def test_covariance_is_the_inverse_of_the_numerical_hessian():
    fit = fit_pod(SIZES, HITS)
    x, y, h = np.log(SIZES), HITS.astype(float), 1e-4
    beta = np.array([fit.b0, fit.b1])
    hessian = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            def f(di, dj, i=i, j=j):
                b = beta.copy()
                b[i] += di
                b[j] += dj
                return log_likelihood(b[0], b[1], x, y)
            hessian[i, j] = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
    np.testing.assert_allclose(np.linalg.inv(-hessian), fit.cov, rtol=1e-3)


def test_a90_95_is_where_the_lower_band_reaches_090():
    fit = fit_pod(SIZES, HITS)
    lower, upper = fit.band(np.array([fit.a90_95, fit.a90_lower]))
    assert lower[0] == pytest.approx(0.9, abs=1e-9)
    assert upper[1] == pytest.approx(0.9, abs=1e-9)
    # The band at the curve's own a90 straddles 0.9; the bound uses the one-sided 95% z.
    low, high = fit.band(np.array([fit.a90]))
    assert low[0] < 0.9 < high[0]
    assert Z95 == pytest.approx(1.6448536, abs=1e-6)


@pytest.mark.parametrize(("hits", "status", "words"), [
    ([1] * 6, "all_hits", "below the smallest size tested (0.5)"),
    ([0] * 6, "all_misses", "above the largest size tested (2)"),
    ([0, 0, 0, 1, 1, 1], "separated", "between"),
    ([1, 1, 1, 0, 0, 0], "decreasing", "falls with size"),
])
def test_degenerate_data_are_reported_not_fitted(hits, status, words):
    sizes = np.array([0.5, 0.7, 1.0, 1.4, 1.8, 2.0])
    fit = fit_pod(sizes, np.array(hits, dtype=bool))
    assert fit.status == status and not fit.ok
    assert words in fit.message
    assert fit.a50 is None and fit.a90 is None and fit.a90_95 is None
    with pytest.raises(ValueError, match="no POD curve"):
        fit.pod(sizes)


def test_separation_reports_its_bracket_and_bad_sizes_raise():
    fit = fit_pod([0.5, 0.7, 1.0, 1.0, 2.0], [False, False, False, True, True])
    assert fit.status == "separated" and fit.bracket == (1.0, 1.0)
    with pytest.raises(ValueError, match="positive"):
        fit_pod([0.0, 1.0], [False, True])
    with pytest.raises(ValueError, match="as many"):
        fit_pod([1.0, 2.0], [True])


def test_false_call_rate_and_its_clopper_pearson_bound():
    out = false_call_rate([False] * 19 + [True])
    assert out["rate"] == pytest.approx(0.05) and out["false_calls"] == 1
    # Exact one-sided bound for 0 of n: 1 - 0.05 ** (1 / n).
    none = false_call_rate([False] * 30)
    assert none["upper_95"] == pytest.approx(1 - 0.05 ** (1 / 30), rel=1e-9)
    assert false_call_rate([])["rate"] is None


def test_a_flat_curve_is_reported():
    # The same share hit at both sizes: the slope is zero, no size reaches 90%.
    fit = fit_pod([0.5] * 3 + [1.5] * 3, [False, False, True, True, False, False])
    assert fit.status in ("flat", "decreasing") and fit.a90 is None
    assert "size" in fit.message
