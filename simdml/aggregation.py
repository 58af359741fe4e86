"""Byzantine-robust aggregation, and the attacks it is for.

A server that averages trusts every sender: one worker sending ``-100 g`` moves the mean
anywhere. A robust rule aggregates ``n`` vectors of which up to ``f`` may be crafted:

* ``mean``: the weighted mean (the dense path of every strategy, unchanged);
* ``median``: the coordinate-wise median (Yin et al. 2018);
* ``trimmed_mean``: per coordinate, drop the ``f`` largest and the ``f`` smallest values and
  average the other ``n - 2f`` (Yin et al. 2018; needs ``n > 2f``);
* ``krum``: the vector whose ``n - f - 2`` nearest others are nearest, by the sum of
  squared distances (Blanchard et al. 2017; needs ``n > 2f + 2``);
* ``multi_krum``: the mean of the ``selected`` vectors of lowest Krum score (``0``:
  ``n - f``).

The robust rules weigh every vector alike (they assume shards of like size). Attacks
(``faults.byzantine``: the attackers; they send their crafted vector through the same
messages as an honest one): ``sign_flip``, ``-scale v``; ``scaled``, ``scale v``;
``gaussian``, ``N(0, scale^2)`` in every entry (stream ``attack``), where ``v`` is what
the attacker would honestly have sent (a gradient, or a federated client's change).

References
----------
P. Blanchard, E. M. El Mhamdi, R. Guerraoui and J. Stainer (2017), "Machine Learning with
Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS; D. Yin, Y. Chen, K.
Ramchandran and P. Bartlett (2018), "Byzantine-Robust Distributed Learning: Towards
Optimal Statistical Rates", ICML.
"""
from __future__ import annotations

import numpy as np

__all__ = ["RULES", "ATTACKS", "Adversary", "aggregate", "attack", "krum_scores",
           "rule_problem"]

RULES = ("mean", "median", "trimmed_mean", "krum", "multi_krum")
ATTACKS = ("sign_flip", "scaled", "gaussian")


def rule_problem(rule: str, n: int, f: int) -> str | None:
    """Why ``rule`` cannot tolerate ``f`` of ``n`` vectors, or None."""
    if rule == "trimmed_mean" and n <= 2 * f:
        return f"trimmed_mean drops 2f = {2 * f} of the {n} vectors: it needs n > 2f"
    if rule in ("krum", "multi_krum") and n <= 2 * f + 2:
        return f"{rule} needs n > 2f + 2; got n = {n}, f = {f}"
    return None


def krum_scores(vectors: np.ndarray, f: int) -> np.ndarray:
    """Each vector's Krum score: the sum of its squared distances to its ``n - f - 2``
    nearest other vectors (rows of ``vectors``)."""
    n = vectors.shape[0]
    sq = np.einsum("ij,ij->i", vectors, vectors)
    d = np.maximum(sq[:, None] + sq[None, :] - 2 * vectors @ vectors.T, 0.0)
    np.fill_diagonal(d, np.inf)
    nearest = max(n - f - 2, 1)
    return np.sort(d, axis=1)[:, :nearest].sum(axis=1)


def aggregate(rule: str, vectors: list[np.ndarray], f: int = 0,
              selected: int = 0) -> np.ndarray:
    """The ``rule``'s aggregate of ``vectors`` (in the order given: the result does not
    depend on it but for the mean's rounding and Krum's ties, which go to the first)."""
    stack = np.stack(vectors)
    shape = stack.shape[1:]
    flat = stack.reshape(len(vectors), -1)
    n = flat.shape[0]
    if rule == "median":
        out = np.median(flat, axis=0)
    elif rule == "trimmed_mean":
        out = np.sort(flat, axis=0)[f:n - f].mean(axis=0)
    elif rule in ("krum", "multi_krum"):
        scores = krum_scores(flat, f)
        if rule == "krum":
            out = flat[int(np.argmin(scores))]
        else:
            m = selected or n - f
            out = flat[np.argsort(scores, kind="stable")[:m]].mean(axis=0)
    elif rule == "mean":
        out = flat.mean(axis=0)
    else:
        raise ValueError(f"unknown aggregation rule {rule!r}; known: {', '.join(RULES)}")
    return out.reshape(shape)


def attack(kind: str, v: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """What an attacker sends in place of ``v``."""
    if kind == "sign_flip":
        return -scale * v
    if kind == "scaled":
        return scale * v
    if kind == "gaussian":
        return scale * rng.standard_normal(v.shape)
    raise ValueError(f"unknown attack {kind!r}; known: {', '.join(ATTACKS)}")


class Adversary:
    """The attackers of a run: who they are, and what they send instead."""

    def __init__(self, members, kind: str, scale: float, rng: np.random.Generator):
        self.members, self.kind, self.scale, self.rng = frozenset(members), kind, scale, rng
        self.crafted = 0

    def craft(self, i: int, v: np.ndarray) -> np.ndarray:
        """What worker (or client) ``i`` sends in place of ``v``: ``v`` if it is honest."""
        if i not in self.members:
            return v
        self.crafted += 1
        return attack(self.kind, v, self.scale, self.rng)
