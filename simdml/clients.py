"""Client populations for federated learning: who the clients are, which are
available, which a round samples.

A ``Population`` of ``n`` clients holds arrays of ``n`` numbers, never ``n`` objects: each
client's rows (its shard is an index range of the training rows, ``data.partition``
over ``n`` parts), and its profile, drawn once from the ``clients`` stream:

* speed ``speed * exp(speed_sigma z)`` and bandwidth ``bandwidth * exp(bandwidth_sigma
  z')`` (lognormal, of median ``speed`` / ``bandwidth``; ``z, z'`` standard normal), with
  no draw where the sigma is 0;
* availability: ``always``, or ``on_off``: each client alternates on and off periods,
  exponential with means ``on_time`` and ``off_time`` (a two-state Markov chain,
  stationary at time 0). It is evaluated lazily, only for the clients a round looks at:
  with ``a = 1 / on_time``, ``b = 1 / off_time`` and ``pi = on_time / (on_time +
  off_time)`` the long-run share of time on, a client last seen in state ``x`` (1 on,
  0 off) at time ``s`` is on at ``t`` with probability ``pi + (x - pi) e^{-(a + b)(t - s)}``
  (a client never seen: ``pi``);
* ``diurnal``: a day of ``on_time + off_time`` seconds, each client on for ``on_time`` of
  it from its own phase (drawn once, uniform over the day: its time zone and habits),
  ``((t + phase_c) mod day) < on_time`` -- on at the same hours every day.

Sampling (``sample``): candidates are drawn one after another, uniformly or with
probability proportional to their rows (``by_size``), a client already looked at in
this round skipped -- sequential sampling without replacement -- and the first ``m``
that are available are taken. The cost is the candidates drawn, not ``n`` (a round of
100 among a million clients looks at about ``100 / pi`` of them); it stops when every
client has been looked at.

References
----------
K. Bonawitz et al. (2019), "Towards Federated Learning at Scale: System Design", MLSys
(selection among the available devices, over-selection, deadlines).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["AVAILABILITY", "SAMPLING", "Population"]

AVAILABILITY = ("always", "on_off", "diurnal")
SAMPLING = ("uniform", "by_size")


class Population:
    """``n`` clients: their rows (``sizes``), speeds, bandwidths and availability."""

    def __init__(self, sizes, *, speed: float, speed_sigma: float = 0.0,
                 bandwidth: float, bandwidth_sigma: float = 0.0,
                 availability: str = "always", on_time: float = 1.0, off_time: float = 1.0,
                 rng: np.random.Generator):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.n = n = self.sizes.size
        if availability not in AVAILABILITY:
            raise ValueError(f"unknown availability {availability!r}; known: "
                             f"{', '.join(AVAILABILITY)}")
        self.speeds = _lognormal(speed, speed_sigma, n, rng)
        self.bandwidths = _lognormal(bandwidth, bandwidth_sigma, n, rng)
        self.availability = availability
        self.on_share = on_time / (on_time + off_time)
        self._rate = 1 / on_time + 1 / off_time
        self._seen_at = np.full(n, -math.inf) if availability == "on_off" else None
        self._on = np.zeros(n, dtype=bool) if availability == "on_off" else None
        self._cdf = None                           # by_size: the rows' cumulative shares
        self.on_time, self.day = on_time, on_time + off_time
        self._phase = (rng.uniform(0, self.day, n) if availability == "diurnal" else None)

    def is_available(self, c: int, t: float, rng: np.random.Generator) -> bool:
        """Whether client ``c`` is available at time ``t`` (on_off: drawn given what was
        last seen of it, and remembered)."""
        if self._phase is not None:
            return bool((t + self._phase[c]) % self.day < self.on_time)
        if self._on is None:
            return True
        seen = self._seen_at[c]
        pi = self.on_share
        p = pi if seen == -math.inf else pi + (self._on[c] - pi) * math.exp(
            -self._rate * (t - seen))
        self._on[c] = on = bool(rng.random() < p)
        self._seen_at[c] = t
        return on

    def sample(self, m: int, t: float, rng: np.random.Generator,
               by_size: bool = False, exclude=()) -> list[int]:
        """Up to ``m`` distinct clients available at time ``t``, in the order drawn (the
        module docstring's sequential sampling), none of ``exclude``; fewer when fewer
        are available."""
        chosen: list[int] = []
        looked: set[int] = set(exclude)
        n = self.n
        while len(chosen) < m and len(looked) < n:
            wanted = m - len(chosen)
            share = 1.0 if self.availability == "always" else self.on_share
            batch = max(8, int(2 * wanted / max(share, 1e-3)))
            for c in self._draw(batch, rng, by_size):
                if c in looked:
                    continue
                looked.add(c)
                if self.is_available(c, t, rng):
                    chosen.append(c)
                    if len(chosen) == m:
                        break
                if len(looked) == n:
                    break
        return chosen

    def _draw(self, k: int, rng: np.random.Generator, by_size: bool) -> list[int]:
        """``k`` candidates, with replacement: uniform, or in proportion to the rows."""
        if not by_size:
            return rng.integers(0, self.n, size=k).tolist()
        if self._cdf is None:
            self._cdf = np.cumsum(self.sizes, dtype=np.float64)
            self._cdf /= self._cdf[-1]
        return np.searchsorted(self._cdf, rng.random(k), side="right").tolist()


def _lognormal(median: float, sigma: float, n: int, rng: np.random.Generator) -> np.ndarray:
    if sigma == 0:
        return np.full(n, float(median))
    return median * np.exp(sigma * rng.standard_normal(n))
