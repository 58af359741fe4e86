"""Pipeline parallelism (``strategy.kind = "pipeline"``): the layers cut into stages, one
node each, a mini-batch cut into micro-batches that flow through them.

This module holds the plan (the partition, the schedules, their time model); the
processes are those of :mod:`~simdml.strategies.hybrid` laid out ``1 x 1 x p``, which
runs the three model-parallel strategies.

Stage ``s`` of ``p`` (worker ``s``) holds a contiguous block of the MLP's layers (the
``partition``), their parameters and their optimizer state. An iteration takes the
batch -- the whole training set, or ``strategy.batch_size`` rows drawn from it -- and
cuts it into ``microbatches = m`` micro-batches (``np.array_split``). Stage 0 reads them
(it holds the features), the last stage holds the labels. For micro-batch ``j``:

* **forward** ``F_j``: stage 0 runs its layers on the rows; every other stage on the
  activation it receives from stage ``s - 1``; each stage sends its output to ``s + 1``
  and keeps what its layers need for backward; the last stage ends with the loss head;
* **backward** ``B_j``: the last stage starts from the loss's derivative, every other
  stage from the activation gradient it receives from ``s + 1``; it runs its layers
  backward, adds ``share_j`` times their gradients to its accumulated gradient
  (``share_j`` is ``j``'s weight in the batch: its rows over the batch's, or its class
  weights'), frees ``j``'s activations, and sends the gradient of its input to ``s - 1``.

When a stage has run every ``B_j`` it steps its block (a flush: the next iteration
starts from the new model, as in GPipe and PipeDream-Flush). The accumulated gradient is
the batch's, so the trained model is that of single-node training on the same batches
(to rounding).

Schedules, the order of each stage's operations (the same plan every iteration):

* ``gpipe`` (Huang et al. 2019): ``F_0 .. F_{m-1}``, then ``B_{m-1} .. B_0``;
* ``1f1b`` (PipeDream-Flush, Narayanan et al. 2021): ``w_s = min(p - s - 1, m)`` forwards
  of warm-up, then one forward and one backward in turn, then the last backwards; its
  plan keeps at most ``w_s + 1`` micro-batches' activations, ``min(p, m)`` on stage 0,
  where GPipe keeps ``m`` (a later stage may hold one input more: one that arrived
  before its turn; nothing holds its sender back).

* interleaved 1F1B (``virtual_stages = v > 1``; Narayanan et al. 2021, Sec. 2.2.2): the
  layers are cut into ``p v`` model chunks and stage ``s`` holds chunks ``s, s + p, ...,
  s + (v - 1) p``, so a micro-batch crosses every stage ``v`` times (the last stage's
  chunk ``c`` feeds the first stage's ``c + 1``); the order is Megatron-LM's
  (``interleaved``); ``m`` must be a multiple of ``p``. Each chunk's forward is ``1/v`` of
  the stage's, so the bubble's time is divided by ``v``, at the price of ``v`` times the
  messages.

With ``recompute = true`` (Chen et al. 2016) a stage keeps only each micro-batch's input
from its forward and runs the forward again, layer by layer, at the start of the
backward: more flops, less memory.

Messages: stage ``s`` receives activations only from ``s - 1`` and gradients only from
``s + 1``, each in the order its neighbour sends them, which is the order it needs them
(micro-batches in plan order); a demultiplexer per stage puts each arrival in the queue
of its kind. A payload is ``(kind, array)`` and costs the array's bytes (a point-to-point
channel per neighbour needs no tag).

Time model (deterministic compute, free communication: ``latency = 0``, infinite
bandwidth). Each operation starts when its stage is free and its input is there:
``start(F_j, s) = max(free_s, end(F_j, s - 1))``, ``start(B_j, s) = max(free_s,
end(B_j, s + 1))``, each lasting its stage's ``t_f`` or ``t_b``; a stage steps after its
plan and then starts the next iteration (``schedule_time`` runs this recurrence). With equal stages
both schedules take ``(m + p - 1)(t_f + t_b)`` before the step, and the **bubble
fraction** -- the share of that time a stage idles -- is ``(p - 1) / (m + p - 1)``
(Huang et al. 2019; Narayanan et al. 2021, Sec. 2.2); interleaved, with equal chunks,
``(v m + p - 1)(t_f + t_b) / v`` and a bubble of ``(p - 1) / (v m + p - 1)``
(``schedule_time(..., v=v)`` runs the recurrence over the virtual stages, ``q = c p + s``).
Every run reports the measured
``bubble_fraction``: ``1 - sum_s busy_s / (p T)`` over the iterations, the step
included in ``busy`` and ``T``.

References
----------
Huang et al. (2019), "GPipe: Efficient Training of Giant Neural Networks using Pipeline
Parallelism", NeurIPS; Narayanan et al. (2021), "Efficient Large-Scale Language Model
Training on GPU Clusters Using Megatron-LM", SC'21, Sec. 2.2 (PipeDream-Flush / 1F1B,
the bubble); Chen et al. (2016), "Training Deep Nets with Sublinear Memory Cost",
arXiv:1604.06174 (recomputation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import _checks
from .job import Job

__all__ = ["PipelineOptions", "SCHEDULES", "MODELS", "Bubble", "plan", "interleaved",
           "partition_layers", "schedule_time", "bubble_fraction", "stages_fit_the_layers",
           "interleaving_fits", "check_virtual_stages", "partition_counts_fit"]

SCHEDULES = ("gpipe", "1f1b")
PARTITIONS = ("uniform", "balanced")
MODELS = ("mlp", "mlp_regression")


@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    microbatches: int = 4       # m: micro-batches per iteration
    schedule: str = "1f1b"      # gpipe | 1f1b
    partition: object = "uniform"  # uniform (by layer count) | balanced (by flops) | a
                                   # list of layer counts, one per stage
    recompute: bool = False     # keep only each stage's inputs; forward again in backward
    virtual_stages: int = 1     # v: model chunks per stage, interleaved (1f1b only)

    def __post_init__(self):
        _checks.integer("microbatches", self.microbatches, low=1)
        _checks.choice("schedule", self.schedule, SCHEDULES)
        _checks.flag("recompute", self.recompute)
        check_partition(self.partition)
        check_virtual_stages(self.virtual_stages, self.schedule)


def check_virtual_stages(v, schedule: str) -> None:
    """``virtual_stages``: an integer >= 1; above 1 the schedule is interleaved 1F1B."""
    _checks.integer("virtual_stages", v, low=1)
    if v > 1 and schedule != "1f1b":
        raise ValueError(f"virtual_stages={v} interleaves the 1f1b schedule; got "
                         f"schedule={schedule!r} (use schedule = '1f1b', or virtual_stages = 1)")


def check_partition(value) -> None:
    """``partition``: ``uniform``, ``balanced``, or a list of layer counts (each >= 1)."""
    if isinstance(value, str):
        _checks.choice("partition", value, PARTITIONS)
    elif (not isinstance(value, (list, tuple)) or not value
          or not all(_checks.is_integer(c) and c >= 1 for c in value)):
        raise ValueError(f"partition must be 'uniform', 'balanced' or a list of layer "
                         f"counts (each >= 1), one per stage (per model chunk with "
                         f"virtual_stages); got {_checks.shown(value)}")


def stages_fit_the_layers(s) -> None:
    """A scenario rule: every stage needs a layer, and an explicit partition has one
    count per stage that add up to the layers."""
    n_layers = len(s.model.options.get("hidden", (64, 64))) + 1
    p, v = s.cluster.workers, s.strategy.options.get("virtual_stages", 1)
    m, b = s.strategy.options.get("microbatches", 4), s.strategy.batch_size
    if n_layers < p:
        raise ValueError(f"strategy.kind='pipeline' puts at least one layer on each of the "
                         f"cluster.workers={p} stages; the MLP has {n_layers} "
                         f"layer{'s' if n_layers > 1 else ''} "
                         f"(model.hidden has {n_layers - 1}): use fewer workers or more layers")
    interleaving_fits(n_layers, p, v, m, "cluster.workers")
    if _checks.is_integer(m) and b is not None and m > b:
        raise ValueError(f"strategy.microbatches={m} is more than strategy.batch_size={b}: "
                         f"each micro-batch needs a row")
    partition_counts_fit(s.strategy.options.get("partition"), n_layers, p, v,
                         "cluster.workers")


def partition_counts_fit(part, n_layers: int, p: int, v, key: str) -> None:
    """An explicit partition has one layer count per stage (per model chunk, ``p v`` of
    them, when interleaved) adding up to the layers; ``key`` names where ``p`` comes from."""
    chunks = p * v if _checks.is_integer(v) else p
    if isinstance(part, (list, tuple)) and (len(part) != chunks or sum(part) != n_layers):
        raise ValueError("strategy.partition must have one layer count per "
                         + ("stage" if chunks == p else f"model chunk ({p} stages x "
                            f"virtual_stages={v})")
                         + f" ({key}={p}) adding up to the {n_layers} layers; got "
                         f"{list(part)}")


def interleaving_fits(n_layers: int, p: int, v, m, key: str) -> None:
    """With ``virtual_stages = v > 1``: two stages or more, ``m`` a multiple of ``p``, a
    layer per chunk (Megatron-LM's requirements of the interleaved schedule)."""
    if not (_checks.is_integer(v) and v > 1 and _checks.is_integer(m)):
        return
    if p < 2:
        raise ValueError(f"strategy.virtual_stages={v} interleaves the chunks of two or more "
                         f"stages; {key}={p}")
    if m % p:
        raise ValueError(f"strategy.virtual_stages={v} needs strategy.microbatches={m} to be "
                         f"a multiple of the {p} stages ({key})")
    if n_layers < p * v:
        raise ValueError(f"strategy.virtual_stages={v} on {p} stages makes {p * v} model "
                         f"chunks of at least one layer each; the MLP has {n_layers}")


# -- the plan -------------------------------------------------------------------------

def partition_layers(costs: list[float], p: int, how="uniform") -> list[range]:
    """The layers of each of ``p`` stages, contiguous, in order.

    ``uniform``: by count (``np.array_split``: the first stages take one more);
    ``balanced``: the split whose most expensive stage (by ``costs``, one per layer) is
    cheapest -- the linear-partition dynamic programme, ties to the earliest cut; a list:
    those counts.

    >>> partition_layers([1, 1, 1, 5], 2, "balanced")
    [range(0, 3), range(3, 4)]
    """
    L = len(costs)
    if not isinstance(how, str):
        counts = list(how)
    elif how == "uniform":
        counts = [len(c) for c in np.array_split(np.arange(L), p)]
    else:
        prefix = np.concatenate([[0.0], np.cumsum(costs)])
        # best[k][i]: the least max-stage cost of layers 0..i-1 on k stages; cut[k][i]
        best = [[np.inf] * (L + 1) for _ in range(p + 1)]
        cut = [[0] * (L + 1) for _ in range(p + 1)]
        best[0][0] = 0.0
        for k in range(1, p + 1):
            for i in range(k, L + 1):
                for j in range(k - 1, i):
                    cost = max(best[k - 1][j], prefix[i] - prefix[j])
                    if cost < best[k][i]:
                        best[k][i], cut[k][i] = cost, j
        ends, i = [], L
        for k in range(p, 0, -1):
            ends.append(i)
            i = cut[k][i]
        ends = ends[::-1]
        counts = [b - a for a, b in zip([0] + ends[:-1], ends)]
    starts = np.cumsum([0] + counts).tolist()
    return [range(a, b) for a, b in zip(starts[:-1], starts[1:])]


class Op(NamedTuple):
    kind: str   # "F" or "B"
    j: int      # the micro-batch
    c: int = 0  # the model chunk (interleaved: the stage's c-th of v; else 0)


def plan(schedule: str, s: int, p: int, m: int, v: int = 1) -> list[Op]:
    """Stage ``s``'s operations of one iteration, in order (``v > 1``: the interleaved
    1F1B schedule, ``interleaved``).

    >>> [f"{o.kind}{o.j}" for o in plan("1f1b", 0, 3, 4)]
    ['F0', 'F1', 'F2', 'B0', 'F3', 'B1', 'B2', 'B3']
    """
    if v > 1:
        check_virtual_stages(v, schedule)
        return interleaved(s, p, m, v)
    if schedule == "gpipe":
        return [Op("F", j) for j in range(m)] + [Op("B", j) for j in reversed(range(m))]
    warmup = min(p - s - 1, m)
    ops = [Op("F", j) for j in range(warmup)]
    for k in range(m - warmup):
        ops += [Op("F", warmup + k), Op("B", k)]
    return ops + [Op("B", j) for j in range(m - warmup, m)]


def interleaved(s: int, p: int, m: int, v: int) -> list[Op]:
    """Stage ``s``'s operations under the interleaved 1F1B schedule (Narayanan et al.
    2021, Sec. 2.2.2, as Megatron-LM orders them): the stage holds ``v`` model chunks,
    the virtual stages ``c p + s``; the ``m v`` forwards go in groups of ``p``
    micro-batches, chunk by chunk (virtual forward ``k``: micro-batch ``(k // (p v)) p +
    k % p`` of chunk ``(k % (p v)) // p``; the backwards the same with the chunks
    reversed); ``2 (p - s - 1) + (v - 1) p`` forwards of warm-up (all of them when
    ``m = p``), then one forward and one backward in turn. ``m`` must be a multiple of
    ``p``.

    >>> [f"{o.kind}{o.j}.{o.c}" for o in interleaved(1, 2, 2, 2)]
    ['F0.0', 'F1.0', 'F0.1', 'F1.1', 'B0.1', 'B1.1', 'B0.0', 'B1.0']
    """
    if m % p:
        raise ValueError(f"the interleaved schedule needs microbatches={m} to be a multiple "
                         f"of the {p} stages")
    total, group = m * v, p * v

    def forward(k: int) -> Op:
        return Op("F", (k // group) * p + k % p, (k % group) // p)

    def backward(k: int) -> Op:
        return Op("B", (k // group) * p + k % p, v - 1 - (k % group) // p)
    warmup = total if m == p else min(2 * (p - s - 1) + (v - 1) * p, total)
    ops = [forward(k) for k in range(warmup)]
    for k in range(total - warmup):
        ops += [forward(warmup + k), backward(k)]
    return ops + [backward(k) for k in range(total - warmup, total)]


def schedule_time(schedule: str, m: int, forward: list[float], backward: list[float],
                  step: list[float] | None = None, iterations: int = 1,
                  v: int = 1) -> list[float]:
    """When each of ``iterations`` iterations ends (s: its last stage's step done), with
    free communication: the recurrence of the module docstring. ``forward[q]`` and
    ``backward[q]`` are virtual stage ``q``'s times for one micro-batch (``v = 1``: stage
    ``q``'s; with ``v`` chunks, ``p v`` of them, stage ``s`` holding ``c p + s``), ``step[s]``
    stage ``s``'s optimizer step (none: 0); a stage starts its next iteration after its
    step. An operation of virtual stage ``q`` waits for its input from ``q - 1``
    (forward) or ``q + 1`` (backward; the last from its own forward).

    >>> schedule_time("gpipe", 4, [1.0] * 3, [2.0] * 3)   # (m + p - 1)(t_f + t_b)
    [18.0]
    >>> schedule_time("1f1b", 4, [0.5] * 4, [1.0] * 4, v=2)   # (v m + p - 1)(t_f + t_b)
    [13.5]
    """
    n = len(forward)
    if n % v or len(backward) != n:
        raise ValueError(f"forward and backward need one time per virtual stage, p x v of "
                         f"them (v={v}); got {n} and {len(backward)}")
    p = n // v
    step = step or [0.0] * p
    plans = [plan(schedule, s, p, m, v) for s in range(p)]
    free, ends = [0.0] * p, []
    for _ in range(iterations):
        done: dict[tuple[str, int, int], float] = {}
        nxt = [0] * p
        while any(nxt[s] < len(plans[s]) for s in range(p)):
            progressed = False
            for s in range(p):
                while nxt[s] < len(plans[s]):
                    op = plans[s][nxt[s]]
                    q = op.c * p + s
                    need = (("F", op.j, q - 1) if op.kind == "F" and q > 0 else
                            ("B", op.j, q + 1) if op.kind == "B" and q < n - 1 else
                            ("F", op.j, q) if op.kind == "B" else None)
                    if need is not None and need not in done:
                        break
                    begin = max(free[s], done[need] if need else 0.0)
                    free[s] = begin + (forward[q] if op.kind == "F" else backward[q])
                    done[(op.kind, op.j, q)] = free[s]
                    nxt[s] += 1
                    progressed = True
            if not progressed:
                raise RuntimeError(f"the {schedule} plan deadlocks")  # not for these plans
        free = [f + t for f, t in zip(free, step)]
        ends.append(max(free))
    return ends


def bubble_fraction(p: int, m: int, v: int = 1) -> float:
    """``(p - 1) / (v m + p - 1)``: the idle share of each of ``p`` equal stages with
    ``m`` micro-batches, ``v`` interleaved chunks each (1: not interleaved; Narayanan et
    al. 2021, Sec. 2.2.2: interleaving divides the bubble's time by ``v``)."""
    return (p - 1) / (v * m + p - 1)


# -- what a run reports ------------------------------------------------------------------

class Bubble:
    """The measured bubble of a strategy whose workers all step once per iteration:
    ``1 - sum_s busy_s / (n t)`` when the last of the ``n`` has stepped (at ``t``), with
    ``busy_s`` node ``s``'s compute time so far; into the summary as ``bubble_fraction``
    (observation)."""

    def __init__(self, job: Job):
        self.job, self.n, self.steps = job, len(job.workers), 0

    def stepped(self) -> None:
        self.steps += 1
        if self.steps % self.n == 0:                  # every worker has stepped
            busy = sum(w.totals["compute"] for w in self.job.workers)
            self.job.stats.counters["bubble_fraction"] = max(0.0, 1 - busy / (
                self.n * self.job.sim.now))           # (1 stage: 0, not a rounding below)
