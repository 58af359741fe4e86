"""Communication graphs and mixing matrices for decentralized (gossip) training.

``neighbours(name, n)`` lists each node's neighbours on an undirected graph:

* ``ring``: ``i - 1`` and ``i + 1`` (mod n);
* ``torus``: ``rows x cols = n`` on a grid that wraps round (``simdml.topology.torus_shape``,
  the most square), four neighbours each;
* ``complete``: every other node;
* ``exponential``: ``i +- 2^k`` (mod n) for every ``2^k < n`` (the static exponential graph
  of Ying et al. 2021, made undirected): ``O(log n)`` neighbours, a large spectral gap;
* ``random_regular``: a random ``degree``-regular graph (stubs paired at random, never
  into a loop or a second edge; redrawn until connected), from ``np.random.default_rng(seed)``;
* ``edges``: the undirected graph of the ``edges`` given, ``[[a, b], ...]`` (any shape: a
  star, a line, a few racks joined by one link).

Every graph but ``edges`` is regular, and on a regular graph the two weights below are
the same; on an irregular one Metropolis gives an edge between two low-degree nodes
more weight than uniform does, and mixes faster.

``mixing_matrix(neighbours, weights)`` is the symmetric, doubly stochastic ``W`` that
gossip averages with: ``metropolis`` (Metropolis-Hastings, ``W_ij = 1 / (1 + max(d_i,
d_j))`` on an edge), or ``uniform`` (``1 / (1 + d_max)`` on every edge; on a regular
graph ``1 / (d + 1)``, so the complete graph's ``W`` is ``11' / n``); the diagonal takes the
rest of each row. ``second_eigenvalue(W)`` is ``lambda = max(|lambda_2|, |lambda_n|)``:
the disagreement between nodes shrinks by at least ``lambda`` per mixing step (spectral
gap ``1 - lambda``; Boyd et al. 2006).

References
----------
S. Boyd, A. Ghosh, B. Prabhakar and D. Shah (2006), "Randomized gossip algorithms", IEEE
Trans. Inf. Theory 52(6); L. Xiao and S. Boyd (2004), "Fast linear iterations for
distributed averaging" (Metropolis weights); B. Ying et al. (2021), "Exponential Graph is
Provably Efficient for Decentralized Deep Training", NeurIPS.
"""
from __future__ import annotations

import numpy as np

from .topology import torus_shape

__all__ = ["GRAPHS", "WEIGHTS", "neighbours", "mixing_matrix", "second_eigenvalue",
           "edges_problem"]

GRAPHS = ("ring", "torus", "complete", "exponential", "random_regular", "edges")
WEIGHTS = ("metropolis", "uniform")
_TRIES = 1000  # pairing-model draws before a random regular graph is given up


def edges_problem(edges, n: int) -> str | None:
    """Why ``edges`` is not a connected simple graph on ``n`` nodes, or None."""
    seen = set()
    for e in edges:
        if (not isinstance(e, (list, tuple)) or len(e) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in e)):
            return f"an edge is a pair of node indices [a, b]; got {e!r}"
        a, b = e
        if not (0 <= a < n and 0 <= b < n):
            return f"edge {list(e)} names a node outside 0..{n - 1}"
        if a == b:
            return f"edge {list(e)} joins a node to itself"
        if (min(a, b), max(a, b)) in seen:
            return f"edge {list(e)} is given twice"
        seen.add((min(a, b), max(a, b)))
    if n > 1 and not _connected(n, seen):
        return f"the {len(seen)} edges do not connect the {n} nodes (gossip would never agree)"
    return None


def neighbours(name: str, n: int, *, degree: int = 3, seed: int = 0,
               edges=()) -> list[list[int]]:
    """Each node's neighbours on the graph ``name`` over ``n`` nodes, in the order a node
    sends to them: on the ring, the torus and the exponential graph every node sends to
    the same offsets in the same order (right, then left; right, down, left, up; +1, +2,
    +4, ..., then -1, -2, ...), so that its neighbours' copies reach it one after the
    other; on the others in increasing order."""
    if name not in GRAPHS:
        raise ValueError(f"unknown graph {name!r}; known: {', '.join(GRAPHS)}")
    if name == "edges":
        problem = edges_problem(edges, n)
        if problem:
            raise ValueError(problem)
    if name in ("complete", "random_regular", "edges"):
        edges = ({(i, j) for i in range(n) for j in range(i + 1, n)} if name == "complete"
                 else _random_regular(n, degree, seed) if name == "random_regular"
                 else {tuple(e) for e in edges})
        out = [set() for _ in range(n)]
        for a, b in edges:
            out[a].add(b)
            out[b].add(a)
        return [sorted(v) for v in out]
    if name == "ring":
        offsets = [lambda i: (i + 1) % n, lambda i: (i - 1) % n]
    elif name == "torus":
        rows, cols = torus_shape(n)
        cell = lambda r, c: (r % rows) * cols + c % cols  # noqa: E731
        offsets = [lambda i, dr=dr, dc=dc: cell(i // cols + dr, i % cols + dc)
                   for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0))]
    else:
        steps = [1 << k for k in range((n - 1).bit_length()) if (1 << k) < n]
        offsets = ([lambda i, k=k: (i + k) % n for k in steps]
                   + [lambda i, k=k: (i - k) % n for k in steps])
    out = []
    for i in range(n):
        row = []
        for f in offsets:
            j = f(i)
            if j != i and j not in row:
                row.append(j)
        out.append(row)
    return out


def _random_regular(n: int, d: int, seed: int) -> set[tuple[int, int]]:
    if not 1 <= d < n or n * d % 2:
        raise ValueError(f"a random {d}-regular graph on {n} nodes needs 1 <= degree < n "
                         f"and n x degree even")
    rng = np.random.default_rng(seed)
    for _ in range(_TRIES):   # pair random free stubs, never a loop or a second edge
        stubs, pairs = [int(v) for v in np.repeat(np.arange(n), d)], set()
        while stubs:
            for _ in range(100):
                i, j = sorted(int(k) for k in rng.choice(len(stubs), 2, replace=False))
                edge = (min(stubs[i], stubs[j]), max(stubs[i], stubs[j]))
                if edge[0] != edge[1] and edge not in pairs:
                    break
            else:
                break                       # stuck: start again
            pairs.add(edge)
            del stubs[j], stubs[i]
        if not stubs and _connected(n, pairs):
            return pairs
    raise ValueError(f"no simple connected {d}-regular graph on {n} nodes found in "
                     f"{_TRIES} draws")


def _connected(n: int, edges) -> bool:
    out = [[] for _ in range(n)]
    for a, b in edges:
        out[a].append(b)
        out[b].append(a)
    seen, todo = {0}, [0]
    while todo:
        for v in out[todo.pop()]:
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return len(seen) == n


def mixing_matrix(nbrs: list[list[int]], weights: str = "metropolis") -> np.ndarray:
    """The symmetric doubly stochastic mixing matrix of the graph ``nbrs``."""
    if weights not in WEIGHTS:
        raise ValueError(f"unknown weights {weights!r}; known: {', '.join(WEIGHTS)}")
    n = len(nbrs)
    degree = [len(v) for v in nbrs]
    top = max(degree, default=0)
    W = np.zeros((n, n))
    for i, row in enumerate(nbrs):
        for j in row:
            W[i, j] = (1.0 / (1 + max(degree[i], degree[j])) if weights == "metropolis"
                       else 1.0 / (1 + top))
        W[i, i] = 1.0 - W[i].sum()
    return W


def second_eigenvalue(W: np.ndarray) -> float:
    """``max(|lambda_2|, |lambda_n|)`` of the symmetric ``W``: its rate of consensus."""
    values = np.sort(np.linalg.eigvalsh(W))
    if len(values) < 2:
        return 0.0
    return float(max(abs(values[0]), abs(values[-2])))
