"""Compute-time distributions: each maps a job's nominal duration ``t0 = flops / speed``
(s) and a dispersion parameter ``jitter`` to one sampled duration (``Node.compute``).

``shifted_exponential``: ``t0`` plus an exponential of mean ``jitter * t0``; ``lognormal``
and ``pareto``: mean ``t0`` and coefficient of variation ``jitter``; ``exponential``:
mean ``t0``.
"""
from __future__ import annotations

import math

__all__ = ["COMPUTE_TIMES"]


def _deterministic(t0, jitter, rng):
    return t0


def _exponential(t0, jitter, rng):
    return rng.exponential(t0)


def _shifted_exponential(t0, jitter, rng):
    return t0 + rng.exponential(jitter * t0) if jitter > 0 else t0


def _lognormal(t0, jitter, rng):
    # mean t0 and coefficient of variation `jitter`: sigma^2 = log(1 + cv^2),
    # mu = log(t0) - sigma^2 / 2 (moments of the lognormal distribution).
    if jitter <= 0 or t0 <= 0:
        return t0
    s2 = math.log1p(jitter * jitter)
    return rng.lognormal(math.log(t0) - s2 / 2, math.sqrt(s2))


def _pareto(t0, jitter, rng):
    # Pareto type I with mean t0 and coefficient of variation `jitter`:
    # cv^2 = 1 / (a (a - 2))  =>  a = 1 + sqrt(1 + 1/cv^2);  mean = a x_m / (a - 1).
    if jitter <= 0 or t0 <= 0:
        return t0
    a = 1.0 + math.sqrt(1.0 + 1.0 / (jitter * jitter))
    x_m = t0 * (a - 1.0) / a
    return x_m * (1.0 + rng.pareto(a))


COMPUTE_TIMES = {
    "deterministic": _deterministic,
    "exponential": _exponential,
    "shifted_exponential": _shifted_exponential,
    "lognormal": _lognormal,
    "pareto": _pareto,
}
