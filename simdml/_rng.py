"""The one place where a run's seed becomes random streams.

A run has one root, ``Scenario.seed``. Each purpose gets its own named stream, in a fixed
order, and each node its own child of the per-node streams, keyed by the node's index, so
that adding a node changes no other node's numbers.

>>> s = Streams(0)
>>> bool(s.rng("data").random() == Streams(0).rng("data").random())
True
"""
from __future__ import annotations

import operator

import numpy as np

__all__ = ["STREAMS", "NodeStreams", "Streams"]

STREAMS = ("data", "init", "compute", "network", "faults", "policy")
# streams added later, keyed after the sweeps' (len(STREAMS),): no earlier key moves
LATER_STREAMS = ("compression", "clients", "attack", "privacy")


class Streams:
    """Named, reproducible ``numpy.random.Generator`` streams derived from one seed."""

    def __init__(self, seed: int):
        self.seed = seed

    def _key(self, name: str) -> tuple[int, ...]:
        if name in LATER_STREAMS:
            return (len(STREAMS) + 1 + LATER_STREAMS.index(name),)
        try:
            return (STREAMS.index(name),)
        except ValueError:
            raise ValueError(f"unknown random stream {name!r}; known: "
                             f"{', '.join(STREAMS + LATER_STREAMS)}") from None

    def rng(self, name: str) -> np.random.Generator:
        """The stream for a purpose (``data``, ``init``, ...), the same on every call."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=self._key(name)))

    def node_rng(self, name: str, index: int) -> np.random.Generator:
        """Node ``index``'s child of stream ``name``."""
        key = self._key(name) + (int(index),)
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def child(self, name: str, *indices: int) -> np.random.Generator:
        """The child of stream ``name`` at ``indices`` (e.g. a client and a round)."""
        key = self._key(name) + tuple(int(i) for i in indices)
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def node_rngs(self, name: str, n: int) -> NodeStreams:
        """Nodes ``0 .. n-1``'s children of stream ``name``, each made when first used
        (perf: making 10,000 generators nobody draws from took half a second)."""
        return NodeStreams(self, name, n)

    def child_seeds(self, n: int) -> list[int]:
        """``n`` independent seeds for sub-runs (replications of a sweep)."""
        children = np.random.SeedSequence(self.seed, spawn_key=(len(STREAMS),)).spawn(n)
        return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]


class NodeStreams:
    """``node_rng(name, i)`` for ``i`` in ``range(n)`` as a sequence, each generator made
    on first access and then kept (so it is the same stream on every access)."""

    def __init__(self, streams: Streams, name: str, n: int):
        streams._key(name)  # an unknown name fails now, not at first use
        self._streams, self._name = streams, name
        self._made: list[np.random.Generator | None] = [None] * n

    def __len__(self) -> int:
        return len(self._made)

    def __getitem__(self, index: int) -> np.random.Generator:
        index = operator.index(index)  # a node's index; not a slice
        rng = self._made[index]
        if rng is None:
            rng = self._made[index] = self._streams.node_rng(self._name, index % len(self))
        return rng
