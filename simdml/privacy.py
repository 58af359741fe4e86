"""Differential privacy: the Rényi-DP accountant of the sampled Gaussian mechanism, and
the clipping and noise of DP-SGD.

**The mechanism** (DP-SGD, Abadi et al. 2016): each step samples every example with
probability ``q`` (Poisson), clips each example's gradient to norm ``clip``, sums them and
adds ``N(0, (noise_multiplier clip)^2)`` to every entry. DP-FedAvg (McMahan et al. 2018)
is the same at the level of clients: each sampled client's change is clipped, the server
adds the noise to their sum.

**The accountant** (Mironov, Talwar and Zhang 2019, "Rényi Differential Privacy of the
Sampled Gaussian Mechanism"): one step is ``(alpha, eps(alpha))``-RDP with
``eps(alpha) = log(A_alpha) / (alpha - 1)``,

    A_alpha = E_{z ~ N(0, sigma^2)} [((1 - q) + q exp((2 z - 1) / (2 sigma^2)))^alpha]

(``sigma = noise_multiplier``). For an integer ``alpha`` the binomial expansion is exact,
``A_alpha = sum_k C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2))``
(their Sec. 3.3), summed in log space; for a fractional ``alpha`` the expectation is
integrated numerically (the log of the integrand on a grid of 20,001 points wide enough
to hold its mass, summed in log space; ``tests/test_privacy.py`` checks it against the
exact sum at integer orders). RDP composes by addition over steps; ``epsilon(delta)``
converts with Balle et al. (2020)'s bound, ``eps = min_alpha (T eps(alpha) + log((alpha -
1) / alpha) - (log delta + log alpha) / (alpha - 1))``, or Mironov (2017)'s looser ``T
eps(alpha) + log(1 / delta) / (alpha - 1)``, over ``ORDERS`` (those of TensorFlow
Privacy's accountant: 1.1 .. 10.9 by 0.1, then 12 .. 63).

References
----------
M. Abadi et al. (2016), "Deep Learning with Differential Privacy", CCS; I. Mironov (2017),
"Rényi Differential Privacy", CSF; B. Balle, G. Barthe, M. Gaboardi, J. Hsu and T. Sato
(2020), "Hypothesis Testing Interpretations and Renyi Differential Privacy", AISTATS;
I. Mironov, K. Talwar and L. Zhang (2019), "Rényi
Differential Privacy of the Sampled Gaussian Mechanism", arXiv:1908.10530; H. B. McMahan
et al. (2018), "Learning Differentially Private Recurrent Language Models", ICLR.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["ORDERS", "CONVERSIONS", "rdp", "epsilon", "clip_rows", "clipped_outer_sum", "Accountant", "Mechanism"]

ORDERS = tuple([1 + x / 10 for x in range(1, 100)] + list(range(12, 64)))


def _log_add(a: np.ndarray) -> float:
    top = float(np.max(a))
    return top if top == -math.inf else top + math.log(float(np.sum(np.exp(a - top))))


def _log_a_int(q: float, sigma: float, alpha: int) -> float:
    k = np.arange(alpha + 1)
    log_binom = (math.lgamma(alpha + 1) - np.array([math.lgamma(i + 1) for i in k])
                 - np.array([math.lgamma(alpha - i + 1) for i in k]))
    terms = (log_binom + (alpha - k) * math.log1p(-q) + k * math.log(q)
             + (k * k - k) / (2 * sigma**2))
    return _log_add(terms)


def _log_a_frac(q: float, sigma: float, alpha: float) -> float:
    # the integrand's mass lies near 0 (the N(0, sigma^2) factor) and, for large alpha,
    # out to where the ratio's growth meets the Gaussian's decay: z ~ alpha + a few sigma
    lo, hi = -12 * sigma, 12 * sigma + alpha + 1
    z = np.linspace(lo, hi, 20_001)
    log_ratio = np.logaddexp(math.log1p(-q), math.log(q) + (2 * z - 1) / (2 * sigma**2))
    log_f = -z * z / (2 * sigma**2) - math.log(sigma * math.sqrt(2 * math.pi)) + alpha * log_ratio
    return _log_add(log_f) + math.log(z[1] - z[0])


def rdp(q: float, sigma: float, steps: int = 1, orders=ORDERS) -> np.ndarray:
    """``steps`` compositions of the sampled Gaussian mechanism's RDP at each order."""
    if not 0 <= q <= 1:
        raise ValueError(f"the sampling rate q must be in [0, 1]; got {q!r}")
    if sigma <= 0:
        raise ValueError(f"noise_multiplier must be > 0 for a finite epsilon; got {sigma!r}")
    out = []
    for a in orders:
        if q == 0:
            out.append(0.0)
            continue
        if q == 1:                                 # the Gaussian mechanism itself
            out.append(a / (2 * sigma**2))
            continue
        log_a = _log_a_int(q, sigma, int(a)) if float(a).is_integer() else \
            _log_a_frac(q, sigma, a)
        out.append(log_a / (a - 1))
    return steps * np.array(out)


CONVERSIONS = ("balle2020", "mironov2017")


def epsilon(rdp_values, delta: float, orders=ORDERS,
            conversion: str = "balle2020") -> tuple[float, float]:
    """``(epsilon, the order that gives it)`` for ``delta`` from RDP values at ``orders``:
    ``min_alpha (r + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1))``
    (Balle et al. 2020, Thm. 21: the tighter conversion of today's accountants), or
    ``conversion = "mironov2017"``, ``min_alpha (r + log(1 / delta) / (alpha - 1))``
    (Mironov 2017, Prop. 3: the one TensorFlow Privacy's early tables used)."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1); got {delta!r}")
    if conversion not in CONVERSIONS:
        raise ValueError(f"unknown conversion {conversion!r}; known: {', '.join(CONVERSIONS)}")
    a = np.asarray(orders, dtype=float)
    r = np.asarray(rdp_values, dtype=float)
    if conversion == "mironov2017":
        eps = r + math.log(1 / delta) / (a - 1)
    else:
        eps = r + np.log1p(-1 / a) - (math.log(delta) + np.log(a)) / (a - 1)
    best = int(np.argmin(eps))
    return max(float(eps[best]), 0.0), float(a[best])


def clip_rows(G: np.ndarray, clip: float) -> np.ndarray:
    """Each row of ``G`` (an example's gradient) scaled to norm at most ``clip``."""
    norms = np.sqrt(np.einsum("ij,ij->i", G, G))
    return G * np.minimum(1.0, clip / np.maximum(norms, 1e-300))[:, None]


def clipped_outer_sum(X: np.ndarray, R: np.ndarray, clip: float,
                      row_sq: np.ndarray | None = None) -> np.ndarray:
    """DP-SGD's clipped sum for a learner whose example gradients are outer products:
    ``sum_i s_i [x_i, 1] R[:, i]'`` with ``s_i = min(1, clip / ||[x_i, 1] R[:, i]'||)``,
    flattened in the layout of the linear learners' parameters (``R`` class-major,
    (n_columns, n_samples), from the learner's ``per_example_factors``).

    The norm of an outer product is the product of its factors' norms,
    ``||u v'|| = ||u|| ||v||`` (Goodfellow 2015, "Efficient per-example gradient
    computations"), so the n x (d + 1) k gradients are never made: one pass for the rows'
    norms and one product ``[X, 1]' (R s)'``, as ``loss_grad`` does. Equal to
    ``clip_rows(per_example_grads).sum(0)`` in exact arithmetic; in floating point to
    rounding (another order of summation; tests/test_privacy.py holds 1e-12).
    ``row_sq``: the rows' squared norms ``||x_i||^2`` if known (a shard's are the same at
    every step; computing them is the most of this function's own cost).
    """
    if row_sq is None:
        row_sq = np.einsum("ij,ij->i", X, X)
    norms = np.sqrt((row_sq + 1.0) * np.einsum("ki,ki->i", R, R))
    S = R * np.minimum(1.0, clip / np.maximum(norms, 1e-300))
    out = np.empty((X.shape[1] + 1, R.shape[0]))
    np.matmul(X.T, S.T, out=out[:-1])
    np.add.reduce(S, axis=1, out=out[-1])
    return out.reshape(-1)


class Accountant:
    """The privacy spent so far by a run's steps of one sampled Gaussian mechanism."""

    def __init__(self, q: float, sigma: float, delta: float):
        self.q, self.sigma, self.delta = q, sigma, delta
        self._one = rdp(q, sigma) if sigma > 0 else None
        self.steps = 0

    def step(self, n: int = 1) -> None:
        self.steps += n

    def epsilon(self) -> float:
        """The epsilon spent (``inf`` without noise)."""
        if self._one is None:
            return math.inf
        if self.steps == 0:
            return 0.0
        return epsilon(self.steps * self._one, self.delta)[0]


class Mechanism:
    """A run's sampled Gaussian mechanism: its clipping, its noise (stream ``privacy``)
    and its accountant."""

    def __init__(self, *, clip: float, sigma: float, q: float, delta: float,
                 rng: np.random.Generator):
        self.clip, self.sigma, self.q, self.rng = clip, sigma, q, rng
        self.accountant = Accountant(q, sigma, delta)

    def clipped_sum(self, X: np.ndarray, R: np.ndarray, row_sq=None) -> np.ndarray:
        """The sum of the rows' gradients ``[x_i, 1] R[:, i]'``, each clipped."""
        return clipped_outer_sum(X, R, self.clip, row_sq)

    def clip_vector(self, v: np.ndarray) -> np.ndarray:
        return v if self.clip == math.inf else clip_rows(v[None, :], self.clip)[0]

    def noised(self, total: np.ndarray) -> np.ndarray:
        """``total`` plus ``N(0, (sigma clip)^2)`` in every entry, and a step accounted."""
        self.accountant.step()
        if not self.sigma:
            return total
        return total + (self.sigma * self.clip) * self.rng.standard_normal(total.shape)

    def history(self) -> dict:
        """The history's column: the epsilon spent so far (none without noise)."""
        return {} if not self.sigma else {"epsilon": self.accountant.epsilon()}
