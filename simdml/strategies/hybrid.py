"""Data, tensor and pipeline parallelism at once (``strategy.kind = "hybrid"``, "3D
parallelism"): ``data_parallel x tensor_parallel x pipeline_parallel`` workers.

Worker ``r`` sits at ``(d, s, k)`` with ``r = (d * P + s) * T + k`` (tensor rank
fastest, as Megatron places a tensor group on one host): replica ``d`` of the model,
pipeline stage ``s`` of it, tensor rank ``k`` within the stage.

* **Pipeline** (:mod:`~simdml.strategies.pipeline_parallel`): stage ``s`` holds a
  contiguous block of layers (``partition``); replica ``d``'s share of the batch (its
  rows of ``np.array_split`` over the D replicas) is cut into ``microbatches`` and runs
  the stage's plan (``gpipe``, ``1f1b``, or interleaved 1F1B with ``virtual_stages``:
  then the stage holds ``v`` model chunks and the last stage's chunk ``c`` feeds the
  first's ``c + 1``); activations go to ``(d, s + 1, k)``, their gradients to
  ``(d, s - 1, k)`` (modulo P when interleaved): every tensor rank sends its own copy (Megatron's
  scatter-gather optimisation, which sends 1/T each, is not modelled).
* **Tensor** (:mod:`~simdml.strategies.tensor_parallel`): within a stage the layers go in
  pairs ``(a, a + 1), ...`` from the stage's first layer; a pair is split over the T
  ranks of ``(d, s, *)`` Megatron-style, its partial sums all-reduced on their ring; an
  odd last layer of a stage is whole on each rank.
* **Data**: when a worker's plan is done, its accumulated gradient (its blocks, the same
  positions on every replica) is all-reduced over the D replicas ``(*, s, k)``; then it
  steps its blocks.

A worker receives pipeline activations only from ``(d, s - 1, k)``, their gradients only
from ``(d, s + 1, k)``, tensor chunks only from its left tensor neighbour and replica
chunks only from its left replica neighbour, each in the order it needs them: a
demultiplexer puts each arrival in the queue of its kind (messages are tagged; the tag
costs no bytes, a channel per peer needs none).

These processes run all three model-parallel strategies (``run_layout``): ``pipeline`` is
the layout ``1 x 1 x P`` (and the only one with ``recompute``), ``tensor`` is ``1 x T x 1``
with one micro-batch, ``hybrid`` any ``D x T x P``.

Contract (``tests/test_hybrid.py``): every factorisation of the workers trains the model
of one node on the same batches (1e-12); ``1 x 1 x P`` is the ``pipeline`` strategy and
``1 x T x 1`` the ``tensor`` strategy, bit for bit and second for second. Only time, bytes
and memory differ.

Simplifications: those of the pipeline and tensor strategies; no recomputation in the
hybrid's options; the replicas' all-reduce waits for the end of the flush (no overlap
with backward).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .. import _checks
from ..models.mlp import LayerCache
from ..phantom import Phantom, is_phantom
from ..collectives import Group, allreduce, check_collective
from .job import Job
from .joined import Board, SharedBatches, demultiplex, recorder
from .pipeline_parallel import (SCHEDULES, Bubble, check_partition, check_virtual_stages,
                                interleaving_fits, partition_counts_fit, partition_layers,
                                plan)

__all__ = ["HybridOptions", "Layout", "MODELS", "start", "start_pipeline", "start_tensor",
           "run_layout", "factors_fit", "coordinates"]

MODELS = ("mlp", "mlp_regression")


@dataclass(frozen=True, kw_only=True)
class HybridOptions:
    data_parallel: int = 1      # D: replicas of the model
    tensor_parallel: int = 1    # T: ranks that split each layer pair
    pipeline_parallel: int = 1  # P: stages
    microbatches: int = 1       # m: per replica and iteration
    schedule: str = "1f1b"      # gpipe | 1f1b
    partition: object = "uniform"  # the pipeline's: uniform | balanced | layer counts
    virtual_stages: int = 1     # v: model chunks per stage, interleaved (1f1b only)
    collective: str = "ring"    # the tensor ranks' and the replicas' all-reduce algorithm
    group_size: int = 1         # hierarchical: ranks per inner group (of both)

    def __post_init__(self):
        check_collective(self.collective, self.group_size)
        for name in ("data_parallel", "tensor_parallel", "pipeline_parallel", "microbatches"):
            _checks.integer(name, getattr(self, name), low=1)
        _checks.choice("schedule", self.schedule, SCHEDULES)
        check_partition(self.partition)
        check_virtual_stages(self.virtual_stages, self.schedule)


def group_size_fits_the_factors(s) -> None:
    """A scenario rule: the hierarchical all-reduce's groups tile the tensor ranks and the
    replicas (each of the two that has more than one member)."""
    o = s.strategy.options
    g = o.get("group_size", 1)
    for key in ("tensor_parallel", "data_parallel"):
        n = o.get(key, 1)
        if _checks.is_integer(g) and _checks.is_integer(n) and n > 1 and n % g:
            raise ValueError(f"strategy.group_size={g} must divide strategy.{key}={n}: the "
                             f"hierarchical all-reduce's groups tile its ranks")


def factors_fit(s) -> None:
    """A scenario rule: D x T x P = cluster.workers, a layer per stage, a hidden unit per
    tensor rank in every paired width."""
    o = s.strategy.options
    D, T, P = (o.get(k, 1) for k in ("data_parallel", "tensor_parallel", "pipeline_parallel"))
    if not all(_checks.is_integer(x) for x in (D, T, P)):
        return                                   # the options' own checks say what is wrong
    if D * T * P != s.cluster.workers:
        raise ValueError(f"strategy.data_parallel x tensor_parallel x pipeline_parallel must "
                         f"equal cluster.workers={s.cluster.workers}; got {D} x {T} x {P} = "
                         f"{D * T * P}")
    hidden = list(s.model.options.get("hidden", (64, 64)))
    n_layers = len(hidden) + 1
    if n_layers < P:
        raise ValueError(f"strategy.pipeline_parallel={P} puts at least one layer on each "
                         f"stage; the MLP has {n_layers} layers")
    m, b = o.get("microbatches", 1), s.strategy.batch_size
    v = o.get("virtual_stages", 1)
    interleaving_fits(n_layers, P, v, m, "strategy.pipeline_parallel")
    if _checks.is_integer(m) and b is not None and m * D > b:
        raise ValueError(f"strategy.microbatches={m} on each of the data_parallel={D} "
                         f"replicas needs {m * D} rows; strategy.batch_size={b}")
    partition_counts_fit(o.get("partition"), n_layers, P, v, "pipeline_parallel")


def coordinates(r: int, T: int, P: int) -> tuple[int, int, int]:
    """``(d, s, k)`` of worker ``r``: ``r = (d * P + s) * T + k``.

    >>> coordinates(5, 2, 2)
    (1, 0, 1)
    """
    return r // (P * T), (r // T) % P, r % T


class Unit(NamedTuple):
    """One step of a stage: a layer pair split over the tensor ranks, or a whole layer."""

    a: int
    b: int | None      # None: the whole layer ``a``
    units: slice | None  # my block of the pair's hidden units


def units_of(model, layers: range, k: int, T: int) -> list[Unit]:
    """The stage's layers in pairs from its first, my block of each; an odd last whole
    (with ``T = 1``, every layer whole: the pipeline's own steps)."""
    if T == 1:
        return [Unit(a, None, None) for a in layers]
    out = []
    for a in range(layers.start, layers.stop - 1, 2):
        _, ba = model.layer_slices(a)
        block = np.array_split(np.arange(ba.stop - ba.start), T)[k]
        if block.size == 0:
            raise ValueError(f"strategy.tensor_parallel={T} splits the {ba.stop - ba.start} "
                             f"units after layer {a}: each rank needs one (model.hidden)")
        out.append(Unit(a, a + 1, slice(int(block[0]), int(block[-1]) + 1)))
    if len(layers) % 2:
        out.append(Unit(layers.stop - 1, None, None))
    return out


def owned(model, units: list[Unit], shape_only: bool = False) -> np.ndarray:
    """My positions in the flat vector, unit by unit: a pair's W_a columns and b_a
    entries of my block, W_b's rows of it and b_b whole; a whole layer whole.
    ``shape_only``: a ``Phantom`` of as many (a timing-only run's)."""
    if shape_only:
        return Phantom((sum(_unit_size(model, u) for u in units),), np.intp)
    parts = []
    for u in units:
        wa, ba = model.layer_slices(u.a)
        if u.b is None:
            parts.append(np.arange(wa.start, ba.stop))
            continue
        wb, bb = model.layer_slices(u.b)
        h, n_out = ba.stop - ba.start, bb.stop - bb.start
        mine = np.arange(u.units.start, u.units.stop)
        parts += [(wa.start + np.arange((wa.stop - wa.start) // h)[:, None] * h + mine).ravel(),
                  ba.start + mine,
                  np.arange(wb.start + u.units.start * n_out, wb.start + u.units.stop * n_out),
                  np.arange(bb.start, bb.stop)]
    return np.concatenate(parts)


class _Links(NamedTuple):
    prev: object          # the node of (d, s - 1, k), or None
    next: object          # the node of (d, s + 1, k), or None
    tensor: Group         # (d, s, *), tagged "tp"
    replicas: Group       # (*, s, k), tagged "dp"
    k: int                # my place in the tensor ring
    d: int                # ... and in the replicas' ring
    collective: str = "ring"   # the all-reduce of both (simdml.collectives)
    size: int = 1              # ... its hierarchical group size

    def allreduce(self, group: Group, i: int, vector):
        """Process: ``vector`` summed over ``group`` (the tensor ranks or the replicas)."""
        return allreduce(self.collective, group, i, vector, size=self.size)


class Layout(NamedTuple):
    """How a model-parallel run is laid out: the three factors and the pipeline's plan."""

    D: int
    T: int
    P: int
    m: int                  # micro-batches per replica
    schedule: str
    partition: object
    recompute: bool
    kind: str               # the strategy.kind it runs (for its messages)
    v: int = 1              # model chunks per stage (interleaved 1F1B when > 1)
    collective: str = "ring"  # the all-reduce of the tensor ranks and of the replicas
    size: int = 1             # ... its hierarchical group size


def start(job: Job):
    """``strategy.kind = "hybrid"``: the layout of its options."""
    o = job.options
    return run_layout(job, Layout(o.data_parallel, o.tensor_parallel, o.pipeline_parallel,
                                  o.microbatches, o.schedule, o.partition, False, "hybrid",
                                  o.virtual_stages, o.collective, o.group_size))


def start_pipeline(job: Job):
    """``strategy.kind = "pipeline"``: ``1 x 1 x P``, P the workers."""
    o, p = job.options, len(job.workers)
    job.stats.counters["stages"] = p
    return run_layout(job, Layout(1, 1, p, o.microbatches, o.schedule, o.partition,
                                  o.recompute, "pipeline", o.virtual_stages))


def start_tensor(job: Job):
    """``strategy.kind = "tensor"``: ``1 x T x 1``, T the workers, the batch whole."""
    o = job.options
    return run_layout(job, Layout(1, len(job.workers), 1, 1, "1f1b", "uniform", False,
                                  "tensor", 1, o.collective, o.group_size))


def run_layout(job: Job, layout: Layout):
    """The workers, their demultiplexers and the recorder (which ends training)."""
    model = job.model
    D, T, P, m = layout.D, layout.T, layout.P, layout.m
    if not hasattr(model, "forward_layer"):
        raise ValueError(f"strategy.kind={layout.kind!r} needs a model with layers "
                         f"(model.kind in {', '.join(map(repr, MODELS))}); got a "
                         f"{type(model).__name__}")
    X, y = job.monitor.X_train, job.monitor.y_train
    rows = job.batch_size if job.batch_size is not None and job.batch_size < y.size else y.size
    if m * D > rows:
        raise ValueError(f"strategy.microbatches={m} is more than the {rows} rows of a "
                         f"batch: each micro-batch needs a row" if D == 1 else
                         f"strategy.microbatches={m} on each of the data_parallel={D} "
                         f"replicas needs {m * D} rows; a batch has {rows}")
    v = layout.v
    if v > 1 and (P < 2 or m % P):
        raise ValueError(f"strategy.virtual_stages={v} interleaves the chunks of "
                         f"{P} stage{'s' if P > 1 else ''}: it needs two or more stages and "
                         f"strategy.microbatches={m} a multiple of them")
    flops = [f + b for f, b in model.layer_flops(max(1, rows // (D * m)))]
    chunks = partition_layers(flops, P * v, layout.partition)  # virtual stage c P + s
    workers = job.workers
    queues = [{tag: job.sim.store(f"{tag}@{n.name}") for tag in ("F", "B", "tp", "dp")}
              for n in workers]
    rank = lambda d, s, k: (d * P + s) * T + k  # noqa: E731
    plans, indices = [], []
    groups = {}  # one Group per ring, shared by its members (a stepped piece names it)

    def group(ranks, tag):
        if (tag, ranks[0]) not in groups:
            groups[(tag, ranks[0])] = Group([workers[j] for j in ranks], tag,
                                            [queues[j][tag] for j in ranks])
        return groups[(tag, ranks[0])]
    for r in range(len(workers)):
        d, s, k = coordinates(r, T, P)
        tensor = [rank(d, s, j) for j in range(T)]
        replicas = [rank(e, s, k) for e in range(D)]
        wrap = v > 1                # the last stage's chunk c feeds the first's c + 1
        links = _Links(workers[rank(d, (s - 1) % P, k)] if s > 0 or wrap else None,
                       workers[rank(d, (s + 1) % P, k)] if s < P - 1 or wrap else None,
                       group(tensor, "tp"), group(replicas, "dp"), k, d,
                       layout.collective, layout.size)
        units = [units_of(model, chunks[c * P + s], k, T) for c in range(v)]
        plans.append((d, s, units, links))
        indices.append(owned(model, [u for chunk in units for u in chunk],
                             is_phantom(job.params)))
    board = Board(job.sim, indices, job.params.size)
    process = job.sim.process(recorder(job, board, lambda v: v * rows / y.size),
                              name=f"{layout.kind} recorder")
    batches = SharedBatches(job, y.size, len(workers))
    clock = Bubble(job)
    job.own_data = True                      # each worker books the data it holds
    for r, node in enumerate(workers):
        node.start(demultiplex, node, queues[r], {"F": "activations", "B": "buffers"})
        node.start(worker, job, r, layout, plans[r], indices[r], board, batches, (X, y),
                   queues[r], clock)
    return process


def worker(job: Job, r: int, layout: Layout, where, index: np.ndarray, board: Board,
           batches: SharedBatches, data, inbox: dict, clock: Bubble):
    """Worker ``r``: its stage's plan for its replica's micro-batches, tensor-split; the
    replicas' all-reduce; the step of its blocks. ``where`` has the units of each of
    its model chunks (one, unless interleaved), its positions chunk after chunk."""
    d, s, chunks, links = where
    node, model, opt = job.workers[r], job.model, job.optimizer
    D, T, P, m, v = layout.D, layout.T, layout.P, layout.m, layout.v
    memory = node.memory
    X, y = data
    memory.set("shard", (X.nbytes if s == 0 else 0) + (y.nbytes if s == P - 1 else 0))
    full = job.params.copy()          # the layers index the whole vector: only mine is read
    params = full[index]
    state = opt.init_state(params)
    memory.set("params", params.nbytes)
    memory.set("optimizer", state.nbytes)
    ops = plan(layout.schedule, s, P, m, v)
    sizes = [[_unit_size(model, u) for u in units] for units in chunks]
    ends = np.cumsum([sum(c) for c in sizes]).tolist()   # where each chunk's positions end
    version = 0
    while True:
        full[index] = params
        rows = batches.rows(version)
        batch = np.arange(y.size) if rows is None else rows
        weight = job.weight_of(y[batch])
        mine = np.array_split(batch, D)[d]
        parts = np.array_split(mine, m)
        grad = np.zeros_like(params)
        memory.set("grads", grad.nbytes)
        kept, heads = {}, {}
        for op in ops:
            part = parts[op.j]
            share = job.weight_of(y[part]) / weight
            flops = model.layer_flops(part.size)
            units, key = chunks[op.c], (op.j, op.c)
            first, last = s == 0 and op.c == 0, s == P - 1 and op.c == v - 1
            if op.kind == "F":
                if first:
                    A = X[part[0]:part[-1] + 1] if rows is None else X[part]
                else:
                    A = yield inbox["F"].get()
                stage_input = A
                A, caches = yield from _stage_forward(job, model, full, units, A, links, flops,
                                                      T, node)
                if layout.recompute:                          # keep only the input
                    caches = None
                kept[key] = (stage_input, caches)
                held = 0 if caches is None else _cached(caches, stage_input)
                if first and rows is not None:
                    held += stage_input.nbytes                # a drawn batch is a copy
                memory.hold("activations", held)
                if last:
                    _, heads[op.j] = model.loss_head(A, y[part], job.row_weights(y[part]),
                                                     with_loss=False)
                    memory.hold("activations", heads[op.j].nbytes)  # until its backward
                else:
                    node.post(links.next, ("F", A), A.nbytes)
            else:
                if last:
                    dA = heads.pop(op.j)
                    memory.release("activations", dA.nbytes)
                else:
                    dA = yield inbox["B"].get()
                    memory.release("buffers", dA.nbytes)
                stage_input, caches = kept.pop(key)
                if caches is None:                            # the forward again
                    _, caches = yield from _stage_forward(job, model, full, units,
                                                          stage_input, links, flops, T, node)
                    memory.hold("activations", _cached(caches, stage_input))
                held = _cached(caches, stage_input)          # released with the input
                at = ends[op.c]
                for u, cache, size in zip(reversed(units), reversed(caches),
                                          reversed(sizes[op.c])):
                    dA, g = yield from _backward(job, model, full, u, cache, dA, links, flops,
                                                 T, node)
                    grad[at - size:at] += share * g
                    at -= size
                memory.release("activations", held + (0 if first and rows is None
                                                      else stage_input.nbytes))
                if not first:
                    node.post(links.prev, ("B", dA), dA.nbytes)
        if D > 1:                                             # the replicas' sum
            grad = yield from links.allreduce(links.replicas, links.d, grad)
        yield node.compute(opt.flops(params.size))
        params, state = opt.step(params, grad, state, version)
        memory.free("grads")
        memory.set("optimizer", state.nbytes)
        version += 1
        board.put(version, r, params)
        clock.stepped()


def _unit_size(model, u: Unit) -> int:
    """How many of my positions a unit has (its part of ``owned``)."""
    wa, ba = model.layer_slices(u.a)
    if u.b is None:
        return ba.stop - wa.start
    wb, bb = model.layer_slices(u.b)
    h, n_out = ba.stop - ba.start, bb.stop - bb.start
    width = u.units.stop - u.units.start
    return ((wa.stop - wa.start) // h + 1) * width + width * n_out + n_out


def _stage_forward(job, model, full, units: list[Unit], A, links: _Links, flops, T, node):
    """Process: the stage's forward on one micro-batch; returns its output and the
    caches of its units."""
    caches = []
    for u in units:
        A, cache = yield from _forward(job, model, full, u, A, links, flops, T, node)
        caches.append(cache)
    return A, caches


def _forward(job, model, full, u: Unit, A, links: _Links, flops, T, node):
    """Process: one unit's forward (a pair's partial sum all-reduced over the tensor
    ranks); returns its output and its cache."""
    if u.b is None:
        out, cache = model.forward_layer(u.a, full, A)
        yield node.compute(flops[u.a][0])
        return out, cache
    Wa, ba = model.layer_params(u.a, full)
    Wb, bb = model.layer_params(u.b, full)
    Ai, slope_a = model.activate(A @ Wa[:, u.units] + ba[u.units])
    partial = Ai @ Wb[u.units, :]
    yield node.compute((flops[u.a][0] + flops[u.b][0]) / T)
    Z = (yield from links.allreduce(links.tensor, links.k, partial)) + bb
    if u.b == model.n_layers - 1:
        return Z, (LayerCache(A, slope_a), LayerCache(Ai, None))
    out, slope_b = model.activate(Z)
    return out, (LayerCache(A, slope_a), LayerCache(Ai, slope_b))


def _backward(job, model, full, u: Unit, cache, dA, links: _Links, flops, T, node):
    """Process: one unit's backward; returns the gradient of its input (all-reduced over
    the tensor ranks for a pair; None below layer 0) and my part of its gradient."""
    if u.b is None:
        dA, g = model.backward_layer(u.a, full, cache, dA)
        yield node.compute(flops[u.a][1])
        return dA, g
    cache_a, cache_b = cache
    Wa, _ = model.layer_params(u.a, full)
    Wb, _ = model.layer_params(u.b, full)
    dAi, gb = model.backward_dense(Wb[u.units, :], cache_b, dA)
    part, ga = model.backward_dense(Wa[:, u.units], cache_a, dAi, input_grad=u.a > 0)
    yield node.compute((flops[u.a][1] + flops[u.b][1]) / T)
    if u.a > 0:
        part = yield from links.allreduce(links.tensor, links.k, part)
    return part, np.concatenate([ga, gb])


def _cached(caches, stage_input) -> int:
    """Bytes the caches keep beyond the stage's input (booked apart: received, or the
    rows)."""
    arrays = {}
    for cache in caches:
        for c in ((cache,) if isinstance(cache, LayerCache) else cache):
            for a in (c.inputs, c.slope):
                if a is not None and a is not stage_input:
                    arrays[id(a)] = a.nbytes
    return sum(arrays.values())
