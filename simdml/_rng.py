"""The one place where a run's seed becomes random streams.

A run has one root, ``Scenario.seed``. Each purpose gets its own named stream, in a fixed
order, and each node its own child of the per-node streams, keyed by the node's index, so
that adding a node changes no other node's numbers.

>>> s = Streams(0)
>>> bool(s.rng("data").random() == Streams(0).rng("data").random())
True
"""
from __future__ import annotations

import numpy as np

__all__ = ["STREAMS", "Streams"]

STREAMS = ("data", "init", "compute", "network", "faults", "policy")


class Streams:
    """Named, reproducible ``numpy.random.Generator`` streams derived from one seed."""

    def __init__(self, seed: int):
        self.seed = seed

    def _key(self, name: str) -> tuple[int, ...]:
        try:
            return (STREAMS.index(name),)
        except ValueError:
            raise ValueError(f"unknown random stream {name!r}; known: {', '.join(STREAMS)}") from None

    def rng(self, name: str) -> np.random.Generator:
        """The stream for a purpose (``data``, ``init``, ...), the same on every call."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=self._key(name)))

    def node_rng(self, name: str, index: int) -> np.random.Generator:
        """Node ``index``'s child of stream ``name``."""
        key = self._key(name) + (int(index),)
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def child_seeds(self, n: int) -> list[int]:
        """``n`` independent seeds for sub-runs (replications of a sweep)."""
        children = np.random.SeedSequence(self.seed, spawn_key=(len(STREAMS),)).spawn(n)
        return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1)) for c in children]
