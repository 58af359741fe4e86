"""The network of the virtual cluster: latency, bandwidth and loss per link, partitions,
and how many bytes a payload takes on the wire.

A message of ``b`` bytes from ``a`` to ``c`` takes ``latency(a, c) + b / bandwidth(a, c)``
(the alpha-beta model); the NIC queues that make incast and pipelining emerge are the
nodes' (:mod:`simdml.cluster`).
"""
from __future__ import annotations

import math
from numbers import Number

import numpy as np

from . import _checks

__all__ = ["Network", "payload_nbytes"]

_INF = math.inf


_SIZED_TUPLES: set[type] = set()  # tuple types seen stating their own nbytes: the messages


def payload_nbytes(payload) -> int:
    """Bytes on the wire for a payload: arrays by ``.nbytes``, numbers 8 bytes each, an
    object that states its own integer ``nbytes`` by that (the messages of
    ``simdml.messages``, fitted learners), strings by length, containers the sum of
    their items, ``None`` nothing."""
    # perf: exact-type checks first for what is sent most (arrays, messages, flat tuples
    # of ints and arrays), before the general isinstance chain (an ABC check per call); a
    # message type is looked up in a set once it has stated its size
    kind = type(payload)
    if kind is np.ndarray:
        return payload.nbytes
    if kind in _SIZED_TUPLES:
        return payload.nbytes
    if kind is tuple:
        total = 0
        for item in payload:
            k = type(item)
            if k is np.ndarray:
                total += item.nbytes
            elif k is int or k is float:
                total += 8
            else:
                total += payload_nbytes(item)
        return total
    if isinstance(payload, tuple):  # a message of simdml.messages: it states its size
        nbytes = getattr(payload, "nbytes", None)
        if nbytes is not None:
            _SIZED_TUPLES.add(kind)
            return nbytes
    if kind is int or kind is float:
        return 8
    if payload is None:
        return 0
    if isinstance(payload, (Number, np.generic)):  # before nbytes: np.int32(1).nbytes is 4
        return 8
    nbytes = getattr(payload, "nbytes", None)  # an array, a fitted model
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(payload, (bytes, bytearray, str)):
        return len(payload)
    if isinstance(payload, (tuple, list)):
        return sum(payload_nbytes(p) for p in payload)
    if isinstance(payload, dict):
        return sum(payload_nbytes(v) for v in payload.values())
    raise TypeError(f"cannot tell the size of a {type(payload).__name__} payload; "
                    f"pass nbytes= to send()")


class Network:
    """Latency (s), bandwidth (bytes/s, ``inf`` allowed) and loss probability, with
    per-link overrides ``links[(src_index, dst_index)] = (latency, bandwidth)``, or a
    ``topology`` whose routed links every message crosses (``simdml.topology``)."""

    def __init__(self, *, latency: float = 1e-4, bandwidth: float = 1.25e9, loss: float = 0.0,
                 links: dict | None = None, rng: np.random.Generator | None = None,
                 topology=None):
        _checks.finite_number("latency", latency, low=0, unit="s")
        _checks.number("bandwidth", bandwidth, low=0, strict_low=True, finite=False,
                       unit="bytes/s")
        if not (_checks.is_real(loss) and 0 <= loss < 1):
            raise ValueError(f"loss must be a probability in [0, 1); got {loss!r}")
        if loss > 0 and rng is None:
            raise ValueError("a network with message loss needs an rng")
        self.latency = float(latency)
        self.bandwidth = float(bandwidth)
        self.loss = float(loss)
        self.links = dict(links or {})
        self.rng = rng
        self._default = (self.latency, self.bandwidth)
        self.topology = topology  # a simdml.topology.Topology; None: every NIC on one switch
        self.partitions: list[list] = []  # active: [node indices of one side, heals at (s)]

    def link(self, src: int, dst: int) -> tuple[float, float]:
        """``(latency, bandwidth)`` of the link from node index ``src`` to ``dst``."""
        if self.links:
            return self.links.get((src, dst), self._default)
        return self._default

    def transfer_time(self, nbytes: int, src: int = 0, dst: int = 1) -> float:
        """The alpha-beta cost ``latency + nbytes / bandwidth`` of one message alone (on
        a topology: over the links of its route, ``Topology.time_alone``)."""
        if self.topology is not None:
            return self.topology.time_alone(nbytes, src, dst)
        latency, bandwidth = self.link(src, dst)
        return latency + nbytes / bandwidth

    def drops(self) -> bool:
        """Whether the next message is lost (drawn from the network stream)."""
        return self.loss > 0 and self.rng.random() < self.loss

    def cut(self, src: int, dst: int, *, for_good: bool = False) -> bool:
        """Whether an active partition separates node indices ``src`` and ``dst`` (one
        inside a side, the other outside); ``for_good``: one that never heals."""
        return any((src in side) != (dst in side) and (not for_good or heals == _INF)
                   for side, heals in self.partitions)
