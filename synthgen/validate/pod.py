"""Hit/miss probability of detection (POD), as in MIL-HDBK-1823A.

The model is the logit link on log size:

    POD(a) = 1 / (1 + exp(-(b0 + b1 ln a))) = F((ln a - mu) / sigma),
    mu = -b0 / b1,  sigma = 1 / b1,  F the standard logistic function,

fitted by maximum likelihood (Newton-Raphson on the Bernoulli log-likelihood). Then

- a50 = exp(mu), the size detected half of the time;
- a90 = exp(mu + sigma ln 9), the size detected 90% of the time;
- a90/95 = the size at which the lower 95% confidence bound of POD reaches 0.9, i.e. the
  upper 95% confidence bound on a90.

Confidence bounds are Wald bounds on the linear predictor eta(x) = b0 + b1 x (x = ln a):
with V the inverse of the Fisher information at the maximum, se(x)^2 = [1, x] V [1, x]^T,
and the one-sided 95% lower bound is F(eta(x) - 1.645 se(x)) (the upper one
F(eta(x) + 1.645 se(x))). These are pointwise bounds. Data the model cannot be fitted to (all
hits, all misses, perfect separation, POD falling with size) gets a `status` and a
`message` saying so, and no numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Z95 = 1.6448536269514722
"""One-sided 95% standard normal quantile."""

LOGIT90 = math.log(9.0)
"""logit(0.9)."""

MAX_LOG_SIZE = 50.0
"""|ln size| beyond which a fitted size is reported as meaningless (a flat curve)."""


@dataclass(frozen=True)
class PodFit:
    """The fitted POD curve of one detector on one defect sweep.

    Attributes:
        status: "ok"; "all_hits", "all_misses", "separated" (every miss smaller than every
            hit: POD jumps from 0 to 1 somewhere between them), "decreasing" (hits at small
            sizes, misses at large ones, or a fitted slope <= 0), "flat" (a slope so small
            that a50 or a90 lie beyond e^50) or "too_few" (fewer than two distinct sizes).
        message: one sentence for the report (what the numbers mean, or why there are none).
        n: number of hit/miss observations; hits: how many were hits.
        b0, b1: logit intercept and slope on ln(size) (None unless status is "ok").
        mu, sigma: location and scale of the POD curve in ln(size).
        cov: 2x2 covariance of (b0, b1), the inverse Fisher information, as nested lists.
        a50, a90, a90_95: sizes (the unit of the swept parameter, mm); a90_95 is None when the
            lower confidence bound never reaches 0.9.
        a90_lower: the lower 95% confidence bound on a90 (where the upper band reaches 0.9).
        size_range: (smallest, largest) size tested.
        bracket: for "separated": (largest missed size, smallest hit size).
    """

    status: str
    message: str
    n: int
    hits: int
    size_range: tuple[float, float]
    b0: float | None = None
    b1: float | None = None
    mu: float | None = None
    sigma: float | None = None
    cov: list[list[float]] | None = None
    a50: float | None = None
    a90: float | None = None
    a90_95: float | None = None
    a90_lower: float | None = None
    bracket: tuple[float, float] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)

    def pod(self, sizes: np.ndarray) -> np.ndarray:
        """(N,) float64 POD at `sizes` (> 0, swept unit); needs status "ok"."""
        return _logistic(self._eta(sizes))

    def band(self, sizes: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) pointwise one-sided Wald bounds of POD at `sizes`, each (N,)."""
        eta, se = self._eta(sizes), self._se(sizes)
        return _logistic(eta - z * se), _logistic(eta + z * se)

    def _eta(self, sizes: np.ndarray) -> np.ndarray:
        if not self.ok:
            raise ValueError(f"no POD curve: {self.message}")
        return self.b0 + self.b1 * np.log(np.asarray(sizes, dtype=np.float64))

    def _se(self, sizes: np.ndarray) -> np.ndarray:
        x = np.log(np.asarray(sizes, dtype=np.float64))
        (v00, v01), (_, v11) = self.cov
        return np.sqrt(np.maximum(v00 + 2 * v01 * x + v11 * x * x, 0.0))


def _logistic(eta: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(eta, dtype=np.float64)))


def log_likelihood(b0: float, b1: float, x: np.ndarray, y: np.ndarray) -> float:
    """Bernoulli log-likelihood of hits `y` (N,) {0, 1} at log sizes `x` (N,) under the
    logit model b0 + b1 x (numerically stable form)."""
    eta = b0 + b1 * np.asarray(x, dtype=np.float64)
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


def fit_logit(x: np.ndarray, y: np.ndarray, iterations: int = 100) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Maximum-likelihood logistic regression of y on x by Newton-Raphson with step halving.

    Args:
        x: (N,) float64 predictor (here ln size).
        y: (N,) 0/1 outcomes; both values must occur and not be separated by x.

    Returns:
        beta (2,) = (b0, b1) and its covariance (2, 2), the inverse Fisher information
        (X^T W X)^-1 at the maximum.

    Raises:
        ArithmeticError: no convergence (which separated data would cause).
    """
    design = np.column_stack([np.ones_like(x), x])
    rate = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
    beta = np.array([math.log(rate / (1 - rate)), 0.0])
    current = log_likelihood(beta[0], beta[1], x, y)
    for _ in range(iterations):
        p = _logistic(design @ beta)
        gradient = design.T @ (y - p)
        information = design.T @ (design * (p * (1 - p))[:, None])
        step = np.linalg.solve(information, gradient)
        for _ in range(40):  # halve the step until the likelihood does not drop
            trial = beta + step
            value = log_likelihood(trial[0], trial[1], x, y)
            if value >= current - 1e-12:
                break
            step = step / 2
        beta, gained, current = trial, value - current, value
        if abs(gained) < 1e-12 and np.max(np.abs(step)) < 1e-9:
            p = _logistic(design @ beta)
            information = design.T @ (design * (p * (1 - p))[:, None])
            return beta, np.linalg.inv(information)
    raise ArithmeticError("the POD fit did not converge")


def _degenerate(sizes: np.ndarray, hits: np.ndarray) -> tuple[str, str, tuple | None] | None:
    """(status, message, bracket) when the logistic MLE does not exist, else None."""
    lo, hi = float(sizes.min()), float(sizes.max())
    if len(np.unique(sizes)) < 2:
        return "too_few", "all observations have one size: sweep at least two sizes", None
    if hits.all():
        return ("all_hits", f"every defect was detected: a90 is below the smallest size "
                f"tested ({lo:.4g}); sweep smaller sizes", None)
    if not hits.any():
        return ("all_misses", f"no defect was detected: a50 is above the largest size tested "
                f"({hi:.4g}); sweep larger sizes or check the detector", None)
    largest_miss, smallest_hit = float(sizes[~hits].max()), float(sizes[hits].min())
    if largest_miss <= smallest_hit:
        return ("separated", f"perfect separation: every size up to {largest_miss:.4g} was "
                f"missed and every size from {smallest_hit:.4g} detected, so POD jumps from 0 "
                f"to 1 in between and its slope cannot be estimated; a90 <= {smallest_hit:.4g}"
                f"; sweep more sizes between them", (largest_miss, smallest_hit))
    if float(sizes[hits].max()) <= float(sizes[~hits].min()):
        return ("decreasing", "every hit is smaller than every miss: detection falls with "
                "size, which the POD model cannot describe; check the detector", None)
    return None


def fit_pod(sizes: Sequence[float] | np.ndarray, hits: Sequence[bool] | np.ndarray) -> PodFit:
    """Fit the hit/miss POD curve (logit link on ln size) by maximum likelihood.

    Args:
        sizes: (N,) defect sizes, > 0 (the swept parameter's unit, mm).
        hits: (N,) bool, whether the detector called each defect.

    Returns:
        The fit with a50, a90 and a90/95, or a PodFit whose status says why there are none.

    Raises:
        ValueError: sizes that are not positive and finite, or mismatched lengths.
    """
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1)
    hits = np.asarray(hits, dtype=bool).reshape(-1)
    if sizes.shape != hits.shape or len(sizes) == 0:
        raise ValueError(f"need as many hits as sizes (> 0), got {len(sizes)} and {len(hits)}")
    if not (np.isfinite(sizes).all() and (sizes > 0).all()):
        raise ValueError("POD sizes must be positive and finite (the fit is on ln size)")
    common = {"n": len(sizes), "hits": int(hits.sum()),
              "size_range": (float(sizes.min()), float(sizes.max()))}
    bad = _degenerate(sizes, hits)
    if bad is not None:
        status, message, bracket = bad
        return PodFit(status, message, bracket=bracket, **common)
    try:
        beta, cov = fit_logit(np.log(sizes), hits.astype(np.float64))
    except (ArithmeticError, np.linalg.LinAlgError) as error:
        return PodFit("separated", f"the fit did not converge ({error})", **common)
    b0, b1 = (float(v) for v in beta)
    if b1 <= 0:
        return PodFit("decreasing", f"the fitted POD falls with size (slope {b1:.3g} on ln "
                      "size); the detector does not find larger defects more often", **common)
    mu, sigma = -b0 / b1, 1.0 / b1
    if max(abs(mu), abs(mu + sigma * LOGIT90)) > MAX_LOG_SIZE:
        return PodFit("flat", f"the fitted POD hardly changes with size (slope {b1:.3g} on ln "
                      "size): a50 and a90 lie far outside the sizes tested", **common)
    a90_95, a90_lower = _a90_bounds(b0, b1, cov)
    fit = PodFit("ok", "", b0=b0, b1=b1, mu=mu, sigma=sigma, cov=cov.tolist(),
                 a50=math.exp(mu), a90=math.exp(mu + sigma * LOGIT90), a90_95=a90_95,
                 a90_lower=a90_lower, **common)
    return PodFit(**{**fit.as_dict(), "message": _describe(fit)})


def _a90_bounds(b0: float, b1: float, cov: np.ndarray) -> tuple[float | None, float | None]:
    """(a90/95, lower bound on a90): where the lower / upper Wald band of eta equals
    logit(0.9); None where that band never reaches it.

    Solves b0 + b1 x - c = -/+ z sqrt(v00 + 2 v01 x + v11 x^2) by squaring:
    (b1^2 - z^2 v11) x^2 + 2 (b1 (b0 - c) - z^2 v01) x + (b0 - c)^2 - z^2 v00 = 0.
    """
    (v00, v01), (_, v11) = np.asarray(cov, dtype=np.float64)
    d, z2 = b0 - LOGIT90, Z95 * Z95
    a, b, c = b1 * b1 - z2 * v11, 2 * (b1 * d - z2 * v01), d * d - z2 * v00
    if a <= 0:  # the slope is not significant: the lower band levels off below 0.9
        return None, None
    disc = b * b - 4 * a * c
    if disc < 0:
        return None, None
    roots = [(-b + s * math.sqrt(disc)) / (2 * a) for s in (1.0, -1.0)]
    upper = [r for r in roots if b1 * r + d >= 0]  # lower band: eta above logit(0.9)
    lower = [r for r in roots if b1 * r + d <= 0]  # upper band: eta below it
    upper = [r for r in upper if abs(r) <= MAX_LOG_SIZE]
    lower = [r for r in lower if abs(r) <= MAX_LOG_SIZE]
    return (math.exp(max(upper)) if upper else None, math.exp(min(lower)) if lower else None)


def _describe(fit: PodFit) -> str:
    lo, hi = fit.size_range
    notes = []
    if fit.a90 > hi:
        notes.append(f"a90 lies beyond the largest size tested ({hi:.4g}): extrapolated")
    if fit.a50 < lo:
        notes.append(f"a50 lies below the smallest size tested ({lo:.4g}): extrapolated")
    if fit.a90_95 is None:
        notes.append("the lower 95% bound never reaches 90%: too few observations or too "
                     "shallow a curve to state an a90/95")
    elif fit.a90_95 > hi:
        notes.append("a90/95 lies beyond the largest size tested")
    return "; ".join(notes) if notes else "fitted"


def false_call_rate(called: Sequence[bool] | np.ndarray) -> dict[str, float | int | None]:
    """False calls on good parts: the rate and its one-sided 95% upper Clopper-Pearson bound.

    Args:
        called: (M,) bool, whether the detector called each good part defective.

    Returns:
        {"good": M, "false_calls": k, "rate": k / M, "upper_95": bound}; rate and bound
        are None when M is 0.
    """
    from scipy.special import betaincinv

    called = np.asarray(called, dtype=bool).reshape(-1)
    m, k = len(called), int(called.sum())
    if m == 0:
        return {"good": 0, "false_calls": 0, "rate": None, "upper_95": None}
    upper = 1.0 if k == m else float(betaincinv(k + 1, m - k, 0.95))
    return {"good": m, "false_calls": k, "rate": k / m, "upper_95": upper}
