"""The alpha-beta costs of the collectives of ``simdml.collectives`` (its docstring
derives them): ``p`` nodes, ``n`` bytes, a message costs ``alpha + n beta`` with ``alpha``
the latency and ``beta`` 1 / bandwidth, free compute (Thakur, Rabenseifner & Gropp 2005,
"Optimization of Collective Communication Operations in MPICH", IJHPCA 19(1), Sec. 4).
"""
from __future__ import annotations

import math

__all__ = ["NAMES", "ALIASES", "allreduce_time", "allgather_time", "tree_time",
           "hierarchical_time"]

#: the all-reduce algorithms (``collective = NAME``; ``collectives.ALLREDUCE`` runs them)
NAMES = ("ring", "tree", "recursive_doubling", "rabenseifner", "hierarchical")
#: other names of the same algorithms
ALIASES = {"halving_doubling": "rabenseifner"}


def allgather_time(p: int, nbytes: float, latency: float, bandwidth: float) -> float:
    """The ring all-gather of one ``nbytes`` item from each of ``p`` nodes: ``(p - 1)
    (alpha + n beta)`` (Thakur et al. 2005, Sec. 4.1: ``(p - 1)`` steps of ``n`` bytes,
    ``n`` being each node's piece)."""
    return (p - 1) * (latency + nbytes / bandwidth)


def hierarchical_time(p: int, size: int, nbytes: float, inner: tuple[float, float],
                      outer: tuple[float, float]) -> float:
    """``hierarchical``'s cost: ``inner`` and ``outer`` are ``(latency, bandwidth)`` of the
    links inside and between the groups; exact when ``p`` divides the vector."""
    g, G = size, p // size
    (a_i, b_i), (a_o, b_o) = inner, outer
    return (2 * (g - 1) * (a_i + nbytes / g / b_i) + 2 * (G - 1) * (a_o + nbytes / p / b_o))


def tree_time(p: int, nbytes: float, latency: float, bandwidth: float) -> float:
    """A binomial ``reduce`` or ``broadcast``: ``ceil(log2 p) (alpha + n beta)``."""
    return (p - 1).bit_length() * (latency + nbytes / bandwidth)


def allreduce_time(name: str, p: int, nbytes: float, latency: float, bandwidth: float,
                   size: int = 1) -> float:
    """The alpha-beta cost of an all-reduce of ``nbytes`` over ``p`` nodes (free compute;
    the module docstring's formulas, Thakur et al. 2005), ``alpha = latency``, ``beta =
    1 / bandwidth``; the ring's and Rabenseifner's bandwidth terms assume ``p`` (``p'``)
    divides the vector's elements.

    >>> allreduce_time("ring", 4, 800, 1e-3, 1e6), allreduce_time("tree", 4, 800, 1e-3, 1e6)
    (0.0072, 0.0072)
    """
    name = ALIASES.get(name, name)
    if p == 1:
        return 0.0
    if name == "hierarchical":                  # one kind of link: inside = between
        return hierarchical_time(p, size, nbytes, (latency, bandwidth), (latency, bandwidth))
    a, n = latency, nbytes / bandwidth
    q = 1 << (p.bit_length() - 1)
    extra = 0.0 if q == p else 2 * (a + n)
    steps = int(math.log2(q))
    if name == "ring":
        return 2 * (p - 1) * a + 2 * (p - 1) / p * n
    if name == "tree":
        return 2 * tree_time(p, nbytes, latency, bandwidth)
    if name == "recursive_doubling":
        return steps * (a + n) + extra
    if name == "rabenseifner":
        return 2 * steps * a + 2 * (q - 1) / q * n + extra
    raise ValueError(f"no all-reduce algorithm {name!r}; known: "
                     f"{', '.join(map(repr, [*NAMES, *ALIASES]))}")
