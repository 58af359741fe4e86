"""The model of a strategy whose nodes each hold a part of it (ZeRO's shards, a
pipeline's stages, tensor parallelism's slices), joined for the monitor when every part
of a version is there; and the batches such nodes all work on (``SharedBatches``).

Observation only: joining costs no simulated time and sends no message. A strategy
starts ``recorder(job, board)`` *before* its nodes (so that version 0 is recorded before
any batch is drawn) and returns it from its ``start``: training ends when the monitor
says so.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .job import Job

__all__ = ["Board", "SharedBatches", "recorder", "demultiplex"]


class Board:
    """Where the nodes leave their parts: ``put(version, i, part)``; ``event(version)``
    fires with the whole vector once every node has put its part of that version.

    Parameters
    ----------
    sim : Simulator
    indices : list of ndarray of int
        Node ``i``'s positions in the whole vector (together, a partition of it).
    size : int
        The whole vector's length.
    """

    def __init__(self, sim, indices: list[np.ndarray], size: int):
        self.sim, self.indices, self.size = sim, indices, size
        self.parts: dict[int, dict[int, np.ndarray]] = {}
        self.events: dict[int, object] = {}

    def event(self, version: int):
        if version not in self.events:
            self.events[version] = self.sim.event()
        return self.events[version]

    def put(self, version: int, i: int, part: np.ndarray) -> None:
        parts = self.parts.setdefault(version, {})
        parts[i] = part
        if len(parts) == len(self.indices):
            joined = np.empty_like(part, shape=self.size)  # a phantom's, for phantoms
            for j, p in parts.items():
                joined[self.indices[j]] = p
            del self.parts[version]
            self.event(version).succeed(joined)


def recorder(job: Job, board: Board, epoch: Callable[[int], float]):
    """Process: the monitor's view of training, every version's joined model; ``epoch(v)``
    is the work done by version ``v``, in passes over the training set."""
    if job.monitor.update(job.params.copy(), 0, epoch=0.0):
        return
    version = 0
    while True:
        version += 1
        params = yield board.event(version)
        board.events.pop(version)
        if job.monitor.update(params, version, epoch=epoch(version)):
            return


class SharedBatches:
    """Every iteration's rows, the same for all ``p`` nodes that work on one batch (a
    pipeline's stages, tensor parallelism's slices): drawn once from the run's first
    batch stream -- the data loader's plan every node knows -- or None: the whole set of
    ``n`` rows. ``rows(version)`` is asked once per node and iteration."""

    def __init__(self, job: Job, n: int, p: int):
        self.job, self.n, self.p = job, n, p
        self.drawn: dict[int, list] = {}  # version -> [rows, nodes that took them]

    def rows(self, version: int) -> np.ndarray | None:
        b = self.job.batch_size
        if b is None or b >= self.n:
            return None
        if version not in self.drawn:
            self.drawn[version] = [self.job.batch_rngs[0].choice(self.n, b, replace=False), 0]
        entry = self.drawn[version]
        entry[1] += 1
        if entry[1] == self.p:
            del self.drawn[version]
        return entry[0]


def demultiplex(node, queues: dict, book: dict):
    """Process: every ``(kind, array)`` message to ``node`` into ``queues[kind]``, for a
    node that hears from several peers (a pipeline stage's neighbours, its rings). The
    array is booked on the node's memory as ``book[kind]`` (a category, or None: not
    booked). Listening is not waiting: the node waits when one of its processes waits on
    a queue, and that time counts as its ``wait``, as a mailbox's does."""
    while True:
        get = node.recv()
        get.since = math.inf                # this getter's waiting is not the node's
        kind, array = yield get
        if book.get(kind) is not None:
            node.memory.hold(book[kind], array.nbytes)
        queues[kind].put(array, waited=node.waited)
