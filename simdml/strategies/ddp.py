"""Distributed data parallel (DDP): gradient buckets all-reduced while backward runs.

Every worker holds a full replica of the model and of its optimizer's state. An
iteration, on every worker at once:

1. forward, layer by layer, on my shard (each layer's real ``forward_layer`` and its
   flops from ``layer_flops``);
2. backward, layer by layer from the last; each layer's gradient, scaled by my shard's
   share ``n_i / n``, lands in its **bucket**. Buckets are fixed before training: the
   layers in *reverse* order (the order backward produces their gradients), each bucket
   filled up to ``bucket_size`` bytes; a layer that does not fit closes the bucket and
   opens the next, and a layer larger than ``bucket_size`` is a bucket of its own;
3. a bucket is **ready** when the backward of its first (lowest) layer is done; with
   ``overlap = true`` its all-reduce starts then, while backward goes on, and with
   ``overlap = false`` every bucket waits for the end of backward. Communication is one
   stream per worker (NCCL's one stream): buckets are all-reduced one after another, in
   the order they became ready -- the same order on every worker, since every worker
   has the same buckets -- each by the ring (or ``collective``, any algorithm of
   :mod:`~simdml.collectives`);
4. when the last bucket is summed, each worker holds the full-batch gradient and takes
   the same optimizer step; worker 0 records to the monitor.

Message order. A worker receives only from its left neighbour in the ring, and a link
delivers in the order it was sent (one NIC queue each way, one latency per link). Every
worker all-reduces bucket 0, then 1, ...; so the chunks from my left neighbour come in
exactly the order my ring consumes them -- bucket by bucket, step by step, iteration by
iteration -- and a chunk needs no bucket tag: it travels as the bare array, as in the
allreduce strategy (0 header bytes).

Time model (deterministic compute, identical workers and shards). Let ``F`` be the
forward time, ``B_l`` layer ``l``'s backward time, bucket ``k`` ready at
``r_k = F + sum of B_l over the layers from the last down to the bucket's first``,
its all-reduce ``A_k = 2 (n - 1) (alpha + (b_k / n) / beta)`` (``b_k`` its bytes, a
chunk of ``b_k / n`` bytes per step; another ``collective``: its
``collectives.allreduce_time``), and ``S`` the optimizer step. The stream ends at
``c_k = max(c_{k-1}, r_k) + A_k``, so an iteration lasts

    overlap:     T = max_k (r_k + A_k + A_{k+1} + ... + A_{K-1}) + S
    no overlap:  T = F + B + A_0 + ... + A_{K-1} + S

Compute-dominated (each all-reduce done before the next bucket is ready) the max is at
the last bucket: ``T = F + B + A_{K-1} + S``; communication-dominated (each bucket ready
before the previous one is summed) it is at the first: ``T = r_0 + sum_k A_k + S``.
``iteration_time`` computes ``T``; ``tests/test_ddp.py`` checks it against the
simulation, and ``python -m tests.test_ddp`` prints the two side by side.

**Exposed communication** (the summary's ``exposed_comm_per_iteration``, s): on worker
0, the time from the end of its backward to the end of its last all-reduce -- the
communication that the computation did not hide; ``T - (F + B + S)`` above. The summary
also has ``comm_per_iteration`` (s, the sum of worker 0's bucket all-reduces, each from
its start on the stream to its end) and ``n_buckets``.

With ``[compression]`` each bucket (its shares already in it) is compressed with a
residual of its own and all-gathered on the ring instead (``Job.all_gather_sum``): its
``A_k = collectives.allgather_time(n, c_k, ...)``, ``c_k`` its payload's bytes; the time
model above holds with those ``A_k``.

Simplifications: a bucket holds whole layers (a layer's weights and bias together;
PyTorch buckets parameter tensors, closes a bucket once it *reaches* the cap, and makes
the first bucket small, 1 MiB); the chunk additions cost no simulated time; a
communication stream and the computation never slow each other down. Only the MLPs
(``model.kind = "mlp"``, ``"mlp_regression"``) have the per-layer face; the linear
learners are an MLP with ``hidden = []`` (one layer, one bucket: the allreduce strategy).

References
----------
Li et al. (2020), "PyTorch Distributed: Experiences on Accelerating Data Parallel
Training", PVLDB 13(12), Sec. 3.2.2 (gradient bucketing), 3.2.3 (overlapping computation
with communication; buckets all-reduced in the same order on every process) and
Algorithm 1; Patarasuk & Yuan (2009) for the ring.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import _checks
from . import zero as _zero
from ..collectives import ALIASES, HALVES, allreduce, check_collective
from .job import Job

__all__ = ["DDPOptions", "Bucket", "DEFAULT_BUCKET_SIZE", "MODELS", "start", "worker",
           "bucket_layers", "buckets_of", "ring_time", "iteration_time",
           "zero_halves_fit_the_workers"]

DEFAULT_BUCKET_SIZE = 25 * 2**20  # bytes: PyTorch's bucket_cap_mb = 25
MODELS = ("mlp", "mlp_regression")  # the learners with a per-layer face


@dataclass(frozen=True, kw_only=True)
class DDPOptions:
    bucket_size: int = DEFAULT_BUCKET_SIZE  # bytes of gradient (8 per float64 parameter, 4 per float32)
    overlap: bool = True  # all-reduce a bucket once it is ready; false: after all backward
    zero: int = 0         # ZeRO stage: 0 none, 1 optimizer state, 2 + gradients, 3 + params
    collective: str = "ring"  # each bucket's all-reduce (simdml.collectives.ALLREDUCE)
    group_size: int = 1       # hierarchical: workers per inner group (a rack's hosts)

    def __post_init__(self):
        _checks.integer("bucket_size", self.bucket_size, low=1)
        _checks.flag("overlap", self.overlap)
        check_collective(self.collective, self.group_size)
        if self.zero and ALIASES.get(self.collective, self.collective) not in HALVES:
            raise ValueError(f"zero={self.zero} shards along an all-reduce's reduce-scatter "
                             f"and all-gather; collective={self.collective!r} has none (use "
                             f"collective = {' | '.join(map(repr, HALVES))}, or zero = 0)")
        if type(self.zero) is not int or self.zero not in _zero.STAGES:
            raise ValueError(f"zero must be one of {', '.join(map(str, _zero.STAGES))} (0: plain "
                             f"ddp; 1 shards the optimizer state, 2 also the gradients, 3 also "
                             f"the parameters); got {self.zero!r}")


class Bucket(NamedTuple):
    """Layers whose gradients are all-reduced together, in the order they become ready
    (the last layer first), and where they sit in the flat gradient (adjacent)."""

    layers: tuple[int, ...]
    span: slice

    @property
    def first(self) -> int:
        """The layer whose backward, the last of the bucket's, makes it ready."""
        return self.layers[-1]


def bucket_layers(layer_nbytes: list[int], bucket_size: int) -> list[tuple[int, ...]]:
    """The layers of each bucket: from the last layer down, each joins the open bucket
    if the bucket stays within ``bucket_size`` bytes, else it opens the next one (a layer
    larger than ``bucket_size`` alone).

    >>> bucket_layers([100, 30, 50, 200], 100)
    [(3,), (2, 1), (0,)]
    """
    buckets, current, size = [], [], 0
    for l in reversed(range(len(layer_nbytes))):
        if current and size + layer_nbytes[l] > bucket_size:
            buckets.append(tuple(current))
            current, size = [], 0
        current.append(l)
        size += layer_nbytes[l]
    return buckets + [tuple(current)]


def buckets_of(model, bucket_size: int) -> list[Bucket]:
    """The buckets of a bound MLP's gradient, in the order they become ready; a layer's
    bytes are its parameters times their itemsize (8 float64, 4 float32)."""
    spans = [model.layer_slices(l) for l in range(model.n_layers)]
    itemsize = model.float_dtype.itemsize
    nbytes = [itemsize * (b.stop - w.start) for w, b in spans]
    return [Bucket(layers, slice(spans[layers[-1]][0].start, spans[layers[0]][1].stop))
            for layers in bucket_layers(nbytes, bucket_size)]


def zero_halves_fit_the_workers(s) -> None:
    """A scenario rule: ZeRO along Rabenseifner's halves needs a power-of-two number of
    workers (recursive halving gives each rank one chunk only there)."""
    o = s.strategy.options
    name = ALIASES.get(o.get("collective", "ring"), o.get("collective", "ring"))
    n = s.cluster.workers
    if o.get("zero", 0) and name == "rabenseifner" and n & (n - 1):
        raise ValueError(f"strategy.zero={o['zero']} with strategy.collective="
                         f"{o['collective']!r} reduce-scatters by recursive halving, which "
                         f"needs a power-of-two cluster.workers; got {n} (use collective = "
                         f"'ring')")


def start(job: Job):
    """Fix the buckets, start one process per worker; worker 0's (which records) ends
    training."""
    if not hasattr(job.model, "forward_layer"):
        raise ValueError(f"strategy.kind='ddp' needs a model with layers (model.kind in "
                         f"{', '.join(map(repr, MODELS))}); got a "
                         f"{type(job.model).__name__}")
    buckets = buckets_of(job.model, job.options.bucket_size)
    job.stats.counters["n_buckets"] = len(buckets)
    if job.options.zero:
        return _zero.start(job, buckets)
    procs = [node.start(worker, job, i, buckets) for i, node in enumerate(job.workers)]
    return procs[0]


def worker(job: Job, i: int, buckets: list[Bucket]):
    """Worker ``i``: forward, backward with its buckets handed to its stream as they are
    ready, then the step on its own replica, iteration after iteration."""
    node, model, opt = job.workers[i], job.model, job.optimizer
    params, version = job.params.copy(), 0
    state = opt.init_state(params)                            # my replica of the state
    memory = node.memory
    memory.set("params", params.nbytes)
    memory.set("optimizer", state.nbytes)
    closes = {bucket.first: k for k, bucket in enumerate(buckets)}
    timing = _Timing(job) if i == 0 else None
    if i == 0 and job.monitor.update(params, version, epoch=0.0):
        return
    while True:
        X, y = job.batch(i)
        flops = model.layer_flops(y.shape[0])
        A, caches = X, []
        for l in range(model.n_layers):                       # 1. forward, layer by layer
            A, cache = model.forward_layer(l, params, A)
            caches.append(cache)
            yield node.compute(flops[l][0])
        copied = job.copied_nbytes(i, X, y)                       # a mini-batch's rows
        memory.set("activations", copied + job.activation_nbytes(y.shape[0]))
        _, dA = model.loss_head(A, y, job.row_weights(y), with_loss=False)
        grad = np.empty_like(params)                        # the buckets, all-reduced in place
        memory.set("grads", grad.nbytes)
        ready = [node.sim.event() for _ in buckets]
        # the stream is a process of its own, beside the computation (not a program of
        # the node to restart after a crash: ddp refuses faults)
        stream = node.sim.process(_stream(job, i, buckets, grad, ready, state.nbytes),
                                  name=f"stream@{node.name}")
        for l in reversed(range(model.n_layers)):             # 2. backward, layer by layer
            dA, grad_l = model.backward_layer(l, params, caches.pop(), dA)
            yield node.compute(flops[l][1])
            w, b = model.layer_slices(l)
            grad[w.start:b.stop] = job.shard_weights[i] * grad_l  # my share of the average
            if job.options.overlap and l in closes:
                ready[closes[l]].succeed()                    # 3. its all-reduce may start
        backward_end = node.sim.now
        memory.free("activations")                            #    (freed as backward ends)
        if not job.options.overlap:
            for event in ready:
                event.succeed()
        total, spans = yield stream                           #    ... wait for the last one
        yield node.compute(opt.flops(params.size))            # 4. the same step everywhere
        params, state = opt.step(params, total, state, version)
        memory.free("grads")
        job.book_optimizer(i, state.nbytes)
        version += 1
        if timing is not None:
            timing.add(backward_end, spans)
        if i == 0 and job.monitor.update(params, version,     # 5. worker 0 records
                                         epoch=job.epoch_after(version)):
            return


def _stream(job: Job, i: int, buckets: list[Bucket], grad: np.ndarray, ready: list,
            state_nbytes: int):
    """Process: one communication stream. All-reduce each bucket of ``grad`` once it is
    ``ready`` and the previous one is done, in place (the sum replaces the bucket, as
    DDP's buckets are); returns ``grad`` and each all-reduce's ``(start, end)``."""
    spans, ones = [], [1.0] * len(job.workers)     # compressed: the shares are in the bucket
    for k, (bucket, event) in enumerate(zip(buckets, ready)):
        yield event
        begin = job.sim.now
        if job.compression is None:
            grad[bucket.span] = yield from allreduce(job.options.collective, job.group, i,
                                                     grad[bucket.span], job.options.group_size)
        else:                        # compressed: all-gathered, a residual per bucket
            grad[bucket.span] = yield from job.all_gather_sum(i, grad[bucket.span], ones,
                                                              part=k, state_nbytes=state_nbytes)
        spans.append((begin, job.sim.now))
    return grad, spans


class _Timing:
    """Worker 0's communication per iteration, as means into the summary: observation,
    costing no simulated time."""

    def __init__(self, job: Job):
        self.counters, self.n = job.stats.counters, 0
        self.comm = self.exposed = 0.0

    def add(self, backward_end: float, spans: list[tuple[float, float]]) -> None:
        self.n += 1
        self.comm += sum(end - begin for begin, end in spans)
        self.exposed += max(0.0, spans[-1][1] - backward_end)
        self.counters["comm_per_iteration"] = self.comm / self.n
        self.counters["exposed_comm_per_iteration"] = self.exposed / self.n


# -- the time model --------------------------------------------------------------

def ring_time(n: int, nbytes: int, latency: float, bandwidth: float, header: int = 0) -> float:
    """Seconds of one ring all-reduce of ``nbytes`` over ``n`` workers in lockstep:
    ``2 (n - 1) (alpha + (nbytes / n + header) / beta)``; exact when ``n`` divides the
    vector (equal chunks). Each step's chunk leaves a NIC that is free (the previous
    chunk left it a step ago) and reaches one that is free: no queueing."""
    if n == 1:
        return 0.0
    return 2 * (n - 1) * (latency + (nbytes / n + header) / bandwidth)


def iteration_time(forward: float, backward: list[float], buckets: list[Bucket],
                   allreduce: list[float], step: float, overlap: bool = True) -> float:
    """Seconds of one DDP iteration (the module docstring's ``T``).

    Parameters
    ----------
    forward : float
        The whole forward pass (s).
    backward : list of float
        Each layer's backward (s), layer 0 first.
    buckets : list of Bucket
        In the order they become ready.
    allreduce : list of float
        Each bucket's all-reduce (s), e.g. ``ring_time``.
    step : float
        The optimizer's step (s).
    overlap : bool
    """
    if not overlap:
        return forward + sum(backward) + sum(allreduce) + step
    end = 0.0
    for bucket, seconds in zip(buckets, allreduce):
        ready = forward + sum(backward[bucket.first:])
        end = max(end, ready) + seconds
    return end + step
