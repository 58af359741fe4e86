"""Scheduling policies: who computes which data block of a round.

A task-based round splits the training rows into ``B`` blocks; a scheduler at the
server hands them to workers. A policy decides two things, and nothing else:

- ``assign(blocks, workers, state)``: the queues at the start of a round (block ids per
  worker); blocks it leaves out go to a shared pool;
- ``next_block(w, queues, pool)``: which block an idle worker ``w`` gets next -- from
  its own queue, the pool, or (work stealing) another worker's queue.

Blocks of a crashed worker go back to the pool, so every policy finishes every round.
The math does not depend on the policy: the server sums the block gradients in block
order, so the model is the same under every policy; only the time changes.

Policies are small classes registered by name in ``POLICIES``; a custom one is
registered from Python (``POLICIES["mine"] = Mine``), never resolved from a file.

References
----------
R. L. Graham, "Bounds on Multiprocessing Timing Anomalies", SIAM J. Appl. Math. 17,
1969 (LPT list scheduling); H. Topcuoglu, S. Hariri and M.-Y. Wu, "Performance-Effective
and Low-Complexity Task Scheduling for Heterogeneous Computing", IEEE TPDS 13, 2002
(earliest finish time); R. D. Blumofe and C. E. Leiserson, "Scheduling Multithreaded
Computations by Work Stealing", JACM 46, 1999; M. Mitzenmacher, "The Power of Two
Choices in Randomized Load Balancing", IEEE TPDS 12, 2001; T. H. Tzen and L. M. Ni,
"Trapezoid Self-Scheduling", IEEE TPDS 4, 1993 (self-scheduling: pull).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

__all__ = ["POLICIES", "Policy", "RoundState"]


@dataclass
class RoundState:
    """What a policy may know when it assigns a round: block sizes (rows), the workers'
    nominal speeds (flop/s, from the scenario) and the seconds per row it has observed
    (``None`` until a worker finished a block)."""

    sizes: np.ndarray                       # rows per block
    speeds: np.ndarray                      # nominal flop/s per worker
    seconds_per_row: dict = field(default_factory=dict)  # worker -> observed, smoothed
    rng: np.random.Generator | None = None


class Policy:
    """Base: static assignment by ``assign``; idle workers take their own queue first,
    then the pool (re-queued blocks)."""

    name = "base"

    def assign(self, blocks: list[int], workers: list[int], state: RoundState) -> dict:
        raise NotImplementedError

    def next_block(self, w: int, queues: dict, pool: deque) -> tuple[int, bool] | None:
        """The block for idle worker ``w`` and whether it was moved from another
        worker's queue; None: nothing for it."""
        if queues.get(w):
            return queues[w].popleft(), False
        if pool:
            return pool.popleft(), False
        return None


def _queues(workers, order) -> dict:
    return {w: deque(order.get(w, [])) for w in workers}


class RoundRobin(Policy):
    """Block b to worker b mod K (speed-oblivious, static)."""

    name = "round_robin"

    def assign(self, blocks, workers, state):
        order = {}
        for j, b in enumerate(blocks):
            order.setdefault(workers[j % len(workers)], []).append(b)
        return _queues(workers, order)


class Random(Policy):
    """Each block to a worker drawn uniformly at random (static)."""

    name = "random"

    def assign(self, blocks, workers, state):
        order = {}
        for b in blocks:
            order.setdefault(workers[int(state.rng.integers(len(workers)))], []).append(b)
        return _queues(workers, order)


class Proportional(Policy):
    """Consecutive blocks to each worker, as many rows as its share of the nominal
    speed (static, speed-aware; it cannot see a slowdown it was not told about)."""

    name = "proportional"

    def assign(self, blocks, workers, state):
        speeds = state.speeds[workers]
        target = np.cumsum(speeds) / speeds.sum() * state.sizes[blocks].sum()
        done, order = np.cumsum(state.sizes[blocks]) - state.sizes[blocks] / 2, {}
        for b, mid in zip(blocks, done):
            w = workers[min(int(np.searchsorted(target, mid)), len(workers) - 1)]
            order.setdefault(w, []).append(b)
        return _queues(workers, order)


class LeastLoaded(Policy):
    """Graham's LPT: blocks from largest to smallest, each to the worker with the
    fewest rows assigned so far (static, speed-oblivious)."""

    name = "least_loaded"

    def assign(self, blocks, workers, state):
        load = {w: 0 for w in workers}
        order = {}
        for b in sorted(blocks, key=lambda b: (-state.sizes[b], b)):
            w = min(workers, key=lambda w: (load[w], w))
            load[w] += state.sizes[b]
            order.setdefault(w, []).append(b)
        return _queues(workers, {w: sorted(bs) for w, bs in order.items()})


class EarliestFinish(Policy):
    """Each block to the worker that would finish it first, by the seconds per row
    observed in earlier blocks (static per round, learning; HEFT's rule). Before a
    worker has been observed it is assumed as fast as the fastest known."""

    name = "earliest_finish"

    def assign(self, blocks, workers, state):
        seen = [state.seconds_per_row[w] for w in workers if w in state.seconds_per_row]
        default = min(seen) if seen else 1.0
        rate = {w: state.seconds_per_row.get(w, default) for w in workers}
        finish = {w: 0.0 for w in workers}
        order = {}
        for b in blocks:
            w = min(workers, key=lambda w: (finish[w] + rate[w] * state.sizes[b], w))
            finish[w] += rate[w] * state.sizes[b]
            order.setdefault(w, []).append(b)
        return _queues(workers, order)


class PowerOfTwo(Policy):
    """Each block samples two workers and goes to the one with fewer rows assigned
    (static, randomized)."""

    name = "power_of_two"

    def assign(self, blocks, workers, state):
        load = {w: 0 for w in workers}
        order = {}
        for b in blocks:
            a, c = (workers[int(i)] for i in state.rng.integers(len(workers), size=2))
            w = a if (load[a], a) <= (load[c], c) else c
            load[w] += state.sizes[b]
            order.setdefault(w, []).append(b)
        return _queues(workers, order)


class Pull(Policy):
    """Self-scheduling: every block in a shared queue; an idle worker takes the next."""

    name = "pull"

    def assign(self, blocks, workers, state):
        return {w: deque() for w in workers}  # everything stays in the pool


class WorkStealing(Policy):
    """Round-robin queues; a worker whose queue and the pool are empty steals the last
    block of the longest queue (Blumofe and Leiserson)."""

    name = "work_stealing"

    def assign(self, blocks, workers, state):
        return RoundRobin().assign(blocks, workers, state)

    def next_block(self, w, queues, pool):
        got = super().next_block(w, queues, pool)
        if got is not None or not queues:
            return got
        victim = max(queues, key=lambda v: (len(queues[v]), -v))
        if len(queues[victim]) > 0:
            return queues[victim].pop(), True
        return None


POLICIES: dict[str, type] = {p.name: p for p in (RoundRobin, Random, Proportional, LeastLoaded,
                                                 EarliestFinish, Pull, WorkStealing, PowerOfTwo)}
