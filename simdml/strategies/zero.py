"""ZeRO: data parallelism with the optimizer state, the gradients and the parameters
sharded over the workers (``strategy.kind = "ddp"`` with ``zero = 1 | 2 | 3``).

Plain DDP keeps on every one of the ``n`` workers the whole model (``Psi`` parameters),
its whole gradient and its whole optimizer state. ZeRO (Rajbhandari et al. 2020) keeps on
each worker only its **shard** of what it partitions; the layers, the buckets and the
single communication stream are those of :mod:`~simdml.strategies.ddp`:

* every bucket is cut into ``n`` chunks (``np.array_split``: equal when ``n`` divides the
  bucket) and worker ``i`` owns one chunk of every bucket -- the chunk the
  reduce-scatter leaves summed on it: ``owned_chunk(i, n)`` on the ring (the default),
  chunk ``i`` with ``collective = "rabenseifner"`` (``collectives.HALVES``: recursive
  halving and doubling, on a power-of-two number of workers; the other all-reduces are
  not a reduce-scatter and an all-gather, and are refused). Its shard is those chunks, one per
  bucket, and its optimizer state is the state of its shard only (``Psi / n``
  parameters, stepped by the same elementwise rule: the same bits as a whole step);
* **stage 1** (optimizer state sharded): backward as in DDP, each bucket
  **reduce-scattered** as soon as it is ready (into the full gradient every worker still
  holds); each worker steps its shard, then each bucket is **all-gathered** so that every
  worker holds the whole new model;
* **stage 2** (and the gradients): the same messages, but a bucket's full gradient lives
  only from its first layer's backward to the end of its reduce-scatter (booked as
  ``unsharded``); a worker keeps only its shard of the summed gradient;
* **stage 3** (and the parameters): a worker holds only its shard of the parameters.
  Before a bucket's layers run forward, and again before they run backward, the bucket
  is all-gathered (``unsharded`` while it is used, freed at once after); its gradient is
  reduce-scattered after its backward. With ``overlap = true`` the stream fetches the
  next bucket while the current one computes (one ahead, as FSDP's prefetch); with
  ``overlap = false`` each all-gather is issued when its layers need it and every
  reduce-scatter waits for the end of backward (so the gradients are all held unsharded
  at once: stage 2 and 3 save gradient memory only with overlap).

Communication per worker and step, in parameters (ring halves of ``(n - 1) / n`` each):
``2 (n - 1) / n Psi`` for stages 0, 1, 2 (a reduce-scatter and an all-gather, as the
all-reduce) and ``3 (n - 1) / n Psi`` for stage 3 (two all-gathers and a
reduce-scatter). Memory per worker with Adam in float64 (8-byte parameters and
gradients, 16 bytes of moments per parameter), besides activations and buffers:
``32 Psi`` (stage 0), ``16 Psi + 16 Psi / n`` (1), ``8 Psi + 24 Psi / n`` (2),
``32 Psi / n`` (3) -- ``memory_per_worker`` computes it for any optimizer.

The model of version ``v`` exists once every worker holds its part of it: the whole model,
after the all-gather (stages 1, 2, as in DDP), or its shard, after its step (stage 3). A
recorder (observation, costing no simulated time) joins the shards then and hands them
to the monitor: every stage records the same models as plain DDP, at its own times.

Time model (deterministic compute, identical workers). With ``RS_k = AG_k = (n - 1)
(alpha + (b_k / n) / beta)`` a bucket's ring half (Rabenseifner's: ``log2 n alpha +
(n - 1) / n b_k / beta``), ``S`` the step of a shard, and the
other symbols of :mod:`~simdml.strategies.ddp`:

    stage 1, 2, overlap:     T = max_k (r_k + RS_k + ... + RS_{K-1}) + S + sum_k AG_k
    stage 1, 2, no overlap:  T = F + B + sum_k RS_k + S + sum_k AG_k
    stage 3, no overlap:     T = F + B + 2 sum_k AG_k + sum_k RS_k + S

and stage 3 with overlap is the recurrence of ``iteration_time`` (each gather starts when
the stream is free and the unit before it starts computing). ``tests/test_zero.py``
checks them against the simulation.

The buckets are stage 3's units: a model that fits one bucket (the default 25 MiB holds a
small one whole) is gathered whole before every layer; set ``bucket_size`` to a layer's
bytes or a few.

Simplifications: every worker holds its whole shard of the data and the activations of
its whole batch (ZeRO-R's activation partitioning is not modelled); the bucket
boundaries are the units of stage 3 (FSDP's wrapped modules); the last forward bucket is
gathered again for backward (FSDP keeps the root's parameters; ZeRO's count of 3 Psi
does not); the chunk additions and copies cost no simulated time.

References
----------
Rajbhandari, Rasley, Ruwase & He (2020), "ZeRO: Memory Optimizations Toward Training
Trillion Parameter Models", SC'20, Sec. 5 (the stages and their memory, Figure 1) and
Sec. 7 (communication volume); Zhao et al. (2023), "PyTorch FSDP: Experiences on
Scaling Fully Sharded Data Parallel", PVLDB 16(12) (units, prefetching).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..collectives import ALIASES, HALVES
from .job import Job
from .joined import Board, recorder

__all__ = ["STAGES", "Shard", "chunk_slices", "start", "memory_per_worker", "iteration_time"]

STAGES = (0, 1, 2, 3)  # 0: plain ddp


def chunk_slices(span: slice, n: int) -> list[slice]:
    """``np.array_split``'s ``n`` chunks of ``span`` of the flat vector, as slices.

    >>> chunk_slices(slice(10, 17), 3)
    [slice(10, 13, None), slice(13, 15, None), slice(15, 17, None)]
    """
    q, r = divmod(span.stop - span.start, n)
    starts = [span.start + j * q + min(j, r) for j in range(n + 1)]
    return [slice(starts[j], starts[j + 1]) for j in range(n)]


class Shard:
    """What worker ``i`` of ``n`` owns: its chunk of every bucket.

    Attributes
    ----------
    chunks : list of list of slice
        Per bucket, its ``n`` chunks in the flat vector.
    mine : list of slice
        Per bucket, my chunk in the flat vector.
    local : list of slice
        Per bucket, where my chunk sits in my shard (the chunks one after another).
    index : ndarray of int
        My shard's positions in the flat vector.
    """

    def __init__(self, buckets, i: int, n: int, owner=HALVES["ring"][2]):
        self.chunks = [chunk_slices(b.span, n) for b in buckets]
        self.mine = [c[owner(i, n)] for c in self.chunks]
        sizes = [s.stop - s.start for s in self.mine]
        ends = np.cumsum([0] + sizes).tolist()
        self.local = [slice(a, b) for a, b in zip(ends[:-1], ends[1:])]
        self.index = np.concatenate([np.arange(s.start, s.stop) for s in self.mine])
        self.size = int(ends[-1])


def start(job: Job, buckets: list):
    """One process per worker and the recorder, whose end ends training."""
    n = len(job.workers)
    halves = _halves(job)
    shards = [Shard(buckets, i, n, halves[2]) for i in range(n)]
    # each bucket's chunks before an all-gather: of the right lengths (recursive doubling
    # splits what it receives by them), holding nothing (a zero stride), shared by all
    blanks = [[np.broadcast_to(np.float64(0), (c.stop - c.start,)) for c in chunks]
              for chunks in shards[0].chunks]
    board = Board(job.sim, [shard.index for shard in shards], job.params.size)
    # the recorder first: it records version 0 before any worker draws a batch
    process = job.sim.process(recorder(job, board, job.epoch_after), name="zero recorder")
    for i, node in enumerate(job.workers):
        node.start(worker, job, i, buckets, shards[i], board, blanks)
    return process


def worker(job: Job, i: int, buckets: list, mine: Shard, board: Board, blanks: list):
    """Worker ``i``: forward, backward, reduce-scatter, the step of its shard, and (stages
    1 and 2) the all-gather of the new model, iteration after iteration."""
    node, model, opt, sim = job.workers[i], job.model, job.optimizer, job.sim
    stage, overlap = job.options.zero, job.options.overlap
    memory, n, K = node.memory, len(job.workers), len(buckets)
    halves = _halves(job)
    me = halves[2](i, n)
    bucket_of = {l: k for k, b in enumerate(buckets) for l in b.layers}
    # stages 1, 2: the whole model; stage 3: a vector the layers read, in which only the
    # buckets gathered (and booked ``unsharded``) are ever read
    params = job.params.copy()
    own = params[mine.index]                                  # my shard of the parameters
    state = opt.init_state(own)                               # ... and of the optimizer
    memory.set("params", (params if stage < 3 else own).nbytes)
    memory.set("optimizer", state.nbytes)
    units = list(reversed(range(K))) + list(range(K))         # stage 3: forward, backward
    timing = _Timing(job) if i == 0 else None
    version = 0
    while True:
        began, busy, spans = sim.now, [0.0], []

        def compute(flops):
            work = node.compute(flops)
            busy[0] += work.delay
            return work

        scatter, gather, ops = _collectives(sim, stage, overlap, K, halves)
        stream = sim.process(_stream(job, i, ops, spans), name=f"stream@{node.name}")

        def fetch(j):
            """Stage 3: issue the all-gather of the bucket of unit ``j``."""
            k = units[j]
            chunks = list(blanks[k])
            chunks[me] = own[mine.local[k]]
            memory.hold("unsharded", _nbytes(buckets[k], own))

            def arrived(gathered, span=buckets[k].span):
                params[span] = np.concatenate(gathered)
            gather[j].trigger.succeed((chunks, arrived))

        def done_with(j):
            memory.release("unsharded", _nbytes(buckets[units[j]], own))

        X, y = job.batch(i)
        flops = model.layer_flops(y.shape[0])
        A, caches = X, []
        if stage < 3:                                         # 1. forward, layer by layer
            for l in range(model.n_layers):
                A, cache = model.forward_layer(l, params, A)
                caches.append(cache)
                yield compute(flops[l][0])
        else:                                                 #    ... bucket by bucket
            fetch(0)
            for j, k in enumerate(units[:K]):
                yield gather[j].done
                if overlap:
                    fetch(j + 1)                              #    (prefetch, one ahead)
                for l in reversed(buckets[k].layers):
                    A, cache = model.forward_layer(l, params, A)
                    caches.append(cache)
                    yield compute(flops[l][0])
                done_with(j)
                if not overlap:
                    fetch(j + 1)
        copied = job.copied_nbytes(i, X, y)
        memory.set("activations", copied + job.activation_nbytes(y.shape[0]))
        _, dA = model.loss_head(A, y, job.row_weights(y), with_loss=False)
        grad = np.empty_like(params) if stage == 1 else None  # stage 1: the whole gradient
        g_own = np.empty_like(own) if grad is None else None  # else my shard of the sum
        memory.set("grads", (g_own if grad is None else grad).nbytes)
        buffers = {}                                          # stages 2, 3: open buckets
        for l in reversed(range(model.n_layers)):             # 2. backward, layer by layer
            k = bucket_of[l]
            bucket = buckets[k]
            if stage == 3 and l == bucket.layers[0]:
                yield gather[K + k].done
                if overlap and K + k + 1 < len(units):
                    fetch(K + k + 1)
            dA, grad_l = model.backward_layer(l, params, caches.pop(), dA)
            yield compute(flops[l][1])
            w, b = model.layer_slices(l)
            if grad is not None:
                grad[w.start:b.stop] = job.shard_weights[i] * grad_l
            else:
                if l == bucket.layers[0]:                     #    the bucket's buffer opens
                    buffers[k] = np.empty_like(params, shape=bucket.span.stop - bucket.span.start)
                    memory.hold("unsharded", buffers[k].nbytes)
                at = bucket.span.start
                buffers[k][w.start - at:b.stop - at] = job.shard_weights[i] * grad_l
            if l == bucket.first:
                if stage == 3:
                    done_with(K + k)
                    if not overlap and K + k + 1 < len(units):
                        fetch(K + k + 1)
                if overlap:                                   # 3. its reduce-scatter
                    _scatter(scatter[k], bucket, mine, grad, buffers, k, g_own, me, memory)
        memory.free("activations")
        if not overlap:
            for k, bucket in enumerate(buckets):
                _scatter(scatter[k], bucket, mine, grad, buffers, k, g_own, me, memory)
        for op in scatter:
            yield op.done
        yield compute(opt.flops(mine.size))                   # 4. the step of my shard
        own, state = opt.step(own, g_own if grad is None else grad[mine.index], state, version)
        memory.free("grads")
        memory.set("optimizer", state.nbytes)
        version += 1
        if stage == 3:
            board.put(version, i, own)                        #    ... all that I hold
        else:                                         # 5. everyone's new model
            for k, op in enumerate(gather):
                chunks = list(blanks[k])
                chunks[me] = own[mine.local[k]]

                def arrived(gathered, span=buckets[k].span):
                    params[span] = np.concatenate(gathered)
                op.trigger.succeed((chunks, arrived))
        yield stream
        if stage < 3:
            board.put(version, i, own)
        if timing is not None:
            timing.add(sim.now - began, busy[0], spans)


def _halves(job: Job) -> tuple:
    """The reduce-scatter, the all-gather and the chunk each worker owns of the
    ``collective`` (``collectives.HALVES``: the ring's, or Rabenseifner's)."""
    name = job.options.collective
    return HALVES[ALIASES.get(name, name)]


def _collectives(sim, stage: int, overlap: bool, K: int,
                 halves: tuple) -> tuple[list, list, list]:
    """One iteration's collectives: the reduce-scatter of each bucket, the all-gathers
    (stages 1, 2: each bucket's new parameters; stage 3: each unit's, forward then
    backward), and the order the stream runs them in -- the same on every worker."""
    reduce_scatter, allgather = halves[:2]
    scatter = [_Op(sim, reduce_scatter) for _ in range(K)]
    if stage < 3:
        gather = [_Op(sim, allgather) for _ in range(K)]
        return scatter, gather, scatter + gather
    gather = [_Op(sim, allgather) for _ in range(2 * K)]
    if not overlap:                            # each gather on demand, the scatters after
        return scatter, gather, gather + scatter
    order = gather[:K + 1]                     # forward, and backward's first (one ahead)
    for k in range(K):                         # the next unit's gather before my scatter
        order += gather[K + 1 + k:K + 2 + k] + [scatter[k]]
    return scatter, gather, order


def _nbytes(bucket, like: np.ndarray) -> int:
    """Bytes of a bucket's whole parameters (or gradient), of ``like``'s dtype."""
    return (bucket.span.stop - bucket.span.start) * like.itemsize


def _scatter(op, bucket, mine, grad, buffers, k, g_own, me, memory):
    """Hand bucket ``k``'s gradient to the stream's reduce-scatter, in place: in the whole
    ``grad`` (stage 1), or in the bucket's buffer, whose chunk of mine is copied into my
    shard ``g_own`` and which is freed when it is done (stages 2, 3)."""
    if grad is not None:
        views = [grad[s] for s in mine.chunks[k]]
    else:
        at = bucket.span.start
        views = [buffers[k][s.start - at:s.stop - at] for s in mine.chunks[k]]

    def reduced(views):
        if grad is None:
            g_own[mine.local[k]] = views[me]
            memory.release("unsharded", buffers.pop(k).nbytes)
    op.trigger.succeed((views, reduced))


class _Op:
    """One collective of the stream: ``trigger`` fires with its chunks and what to do with
    them once it is done (at that moment); ``done`` fires after that."""

    __slots__ = ("collective", "trigger", "done")

    def __init__(self, sim, collective: Callable):
        self.collective, self.trigger, self.done = collective, sim.event(), sim.event()


def _stream(job: Job, i: int, ops: list[_Op], spans: list):
    """Process: one communication stream. The collectives of one iteration one after
    another, in the order of ``ops``, each once it is triggered; each one's ``(start,
    end)`` goes into ``spans``."""
    for op in ops:
        chunks, then = yield op.trigger
        begin = job.sim.now
        yield from op.collective(job.group, i, chunks)
        then(chunks)
        spans.append((begin, job.sim.now))
        op.done.succeed()


class _Timing:
    """Worker 0's communication per iteration, as means into the summary: the stream's
    busy time, and the time the iteration was not computing (observation)."""

    def __init__(self, job: Job):
        self.counters, self.n = job.stats.counters, 0
        self.comm = self.exposed = 0.0

    def add(self, elapsed: float, busy: float, spans: list[tuple[float, float]]) -> None:
        self.n += 1
        self.comm += sum(end - begin for begin, end in spans)
        self.exposed += max(0.0, elapsed - busy)
        self.counters["comm_per_iteration"] = self.comm / self.n
        self.counters["exposed_comm_per_iteration"] = self.exposed / self.n


# -- what the stages cost, on paper -----------------------------------------------------

def memory_per_worker(stage: int, n_params: int, n: int, state_per_param: int = 2,
                      itemsize: int = 8) -> dict[str, float]:
    """Bytes of parameters, gradients and optimizer state per worker (Rajbhandari et al.'s
    accounting, Sec. 5, for ``state_per_param`` arrays of optimizer state: Adam's 2).

    >>> psi = 1000
    >>> [sum(memory_per_worker(s, psi, 4).values()) / psi for s in STAGES]
    [32.0, 20.0, 14.0, 8.0]
    """
    full, shard = n_params * itemsize, n_params * itemsize / n
    return {"params": shard if stage >= 3 else full,
            "grads": shard if stage >= 2 else full,
            "optimizer": state_per_param * (shard if stage >= 1 else full)}


def iteration_time(stage: int, forward: list[float], backward: list[float], buckets: list,
                   half: list[float], step: float, overlap: bool = True) -> float:
    """Seconds of one ZeRO iteration (the module docstring's ``T``).

    Parameters
    ----------
    stage : {1, 2, 3}
    forward, backward : list of float
        Each layer's forward and backward (s), layer 0 first.
    buckets : list of Bucket
        In the order they become ready (``ddp.buckets_of``).
    half : list of float
        Each bucket's reduce-scatter (= its all-gather) time (s): half a ring all-reduce.
    step : float
        The optimizer's step of one shard (s).
    overlap : bool
    """
    K = len(buckets)
    unit = lambda times, k: sum(times[l] for l in buckets[k].layers)  # noqa: E731
    F, B = sum(forward), sum(backward)
    if stage < 3:
        if not overlap:
            return F + B + 2 * sum(half) + step
        end = 0.0
        for k, bucket in enumerate(buckets):
            end = max(end, F + sum(backward[bucket.first:])) + half[k]
        return end + step + sum(half)
    if not overlap:
        return F + B + 3 * sum(half) + step
    # stage 3, one ahead: a gather starts when the stream is free and the unit before it
    # in compute order starts computing; a unit computes once its gather is done
    units = [(k, unit(forward, k)) for k in reversed(range(K))] + \
            [(k, unit(backward, k)) for k in range(K)]
    stream = clock = 0.0
    gathered = [0.0] * len(units)
    gathered[0] = stream = half[units[0][0]]
    for j, (k, seconds) in enumerate(units):
        begin = max(clock, gathered[j])
        if j + 1 < len(units):                                # prefetch the next unit
            gathered[j + 1] = stream = max(stream, begin) + half[units[j + 1][0]]
        clock = begin + seconds
        if j >= K:                                            # its reduce-scatter
            stream = max(stream, clock) + half[k]
    return max(clock, stream) + step
