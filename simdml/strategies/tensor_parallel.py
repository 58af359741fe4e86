"""Tensor parallelism (``strategy.kind = "tensor"``): every dense layer pair split over the
``t`` workers, Megatron-style.

The MLP's layers go in pairs ``(0, 1), (2, 3), ...`` (an odd last layer is kept whole,
on every worker). In a pair ``(a, b)`` with ``h`` hidden units between them (Shoeybi et
al. 2019, Sec. 3, the MLP block), worker ``i`` holds a block of ``h / t`` of them
(``np.array_split``): **the columns** of ``W_a`` and ``b_a`` that make those units, and
**the rows** of ``W_b`` that read them; ``b_b`` it holds whole. On one batch (every
worker the same rows: the whole training set, or ``strategy.batch_size`` rows of the
shared plan):

* forward: ``A_i = act(A_in @ W_a[:, i] + b_a[i])`` -- no communication, the activation
  being elementwise -- then the partial sum ``A_i @ W_b[i, :]``, **all-reduced** over the
  ring (Megatron's ``g``), plus ``b_b``: the pair's output, the same on every worker;
* backward: from the output's gradient (the same everywhere), each worker computes the
  gradients of its blocks and ``b_b`` (the same everywhere) and its partial sum of the
  input's gradient, ``dZ_a[i] @ W_a[:, i]'``, **all-reduced** (Megatron's ``f``) --
  except for pair ``(0, 1)``, whose input is the data (no gradient needed);
* each worker steps its blocks and its copies of the whole parts (identically
  everywhere).

The partial sums are the only messages; the model is the unsplit network's (to the
rounding of the partial sums). Bytes per step, per worker: each all-reduce of an ``n x
c`` array costs ``2 (t - 1) / t * 8 n c`` on the ring; a step has one per pair forward
(``c`` the pair's outputs) and one per pair backward but the first (``c`` its inputs).
Parameters per worker: ``1 / t`` of the paired weights; the ``b_b`` and an unpaired last
layer whole.

Simplifications: a split layer's flops are its ``layer_flops`` over ``t`` (the
replicated bias add and activation of ``b``, and the loss head, are counted split too);
the partial sums cost no flops.

References
----------
Shoeybi et al. (2019), "Megatron-LM: Training Multi-Billion Parameter Language Models
Using Model Parallelism", arXiv:1909.08053, Sec. 3 and Figure 3 (the ``f`` and ``g``
operators).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..models.mlp import LayerCache
from .allreduce import ring_allreduce
from .job import Job
from .joined import Board, SharedBatches, recorder

__all__ = ["TensorOptions", "MODELS", "start", "pairs_of", "bytes_per_step",
           "pairs_fit_the_workers"]

MODELS = ("mlp", "mlp_regression")


@dataclass(frozen=True, kw_only=True)
class TensorOptions:
    pass


def pairs_fit_the_workers(s) -> None:
    """A scenario rule: every paired hidden layer has a unit for each worker."""
    hidden = list(s.model.options.get("hidden", (64, 64)))
    t = s.cluster.workers
    paired = hidden[0::2]        # the units between layers 2q and 2q + 1
    narrow = [h for h in paired if h < t]
    if narrow:
        raise ValueError(f"strategy.kind='tensor' splits the units between each layer pair "
                         f"over cluster.workers={t}; model.hidden={hidden} has paired widths "
                         f"{paired}, {narrow} narrower than {t}")


class Pair(NamedTuple):
    a: int            # the layer split by columns
    b: int            # the layer split by rows
    units: slice      # my block of the h units between them


def pairs_of(n_layers: int, widths: list[int], i: int, t: int) -> list[Pair]:
    """Worker ``i``'s block of units in each pair (``widths[q]``: pair ``q``'s ``h``)."""
    out = []
    for q, a in enumerate(range(0, n_layers - 1, 2)):
        block = np.array_split(np.arange(widths[q]), t)[i]
        out.append(Pair(a, a + 1, slice(int(block[0]), int(block[-1]) + 1)))
    return out


def _owned(model, pairs: list[Pair]) -> np.ndarray:
    """My positions in the flat vector: per pair, W_a's columns and b_a's entries of my
    units, W_b's rows of them and b_b whole; an unpaired last layer whole."""
    parts = []
    for pair in pairs:
        (wa, ba), (wb, bb) = model.layer_slices(pair.a), model.layer_slices(pair.b)
        h = ba.stop - ba.start
        n_in = (wa.stop - wa.start) // h
        units = np.arange(pair.units.start, pair.units.stop)
        n_out = bb.stop - bb.start
        parts += [(wa.start + np.arange(n_in)[:, None] * h + units).ravel(),
                  ba.start + units,
                  np.arange(wb.start + pair.units.start * n_out, wb.start + pair.units.stop * n_out),
                  np.arange(bb.start, bb.stop)]
    if model.n_layers % 2:
        w, b = model.layer_slices(model.n_layers - 1)
        parts.append(np.arange(w.start, b.stop))
    return np.concatenate(parts)


def bytes_per_step(model, n_rows: int, t: int) -> float:
    """Bytes a worker sends per step (the module docstring's count)."""
    total = 0
    for a in range(0, model.n_layers - 1, 2):
        wa, ba = model.layer_slices(a)
        wb, bb = model.layer_slices(a + 1)
        n_in = (wa.stop - wa.start) // (ba.stop - ba.start)
        total += n_rows * (bb.stop - bb.start)                     # forward: the outputs
        if a > 0:
            total += n_rows * n_in                                 # backward: the inputs
    return 2 * (t - 1) / t * model.float_dtype.itemsize * total


def start(job: Job):
    """The workers and the recorder (which ends training)."""
    model, t = job.model, len(job.workers)
    if not hasattr(model, "forward_layer"):
        raise ValueError(f"strategy.kind='tensor' needs a model with layers (model.kind in "
                         f"{', '.join(map(repr, MODELS))}); got a {type(model).__name__}")
    widths = [model.layer_slices(a)[1].stop - model.layer_slices(a)[1].start
              for a in range(0, model.n_layers - 1, 2)]
    pairs = [pairs_of(model.n_layers, widths, i, t) for i in range(t)]
    owned = [_owned(model, p) for p in pairs]
    y = job.monitor.y_train
    rows = job.batch_size if job.batch_size is not None and job.batch_size < y.size else y.size
    board = Board(job.sim, owned, job.params.size)
    process = job.sim.process(recorder(job, board, lambda v: v * rows / y.size),
                              name="tensor recorder")
    batches = SharedBatches(job, y.size, t)
    job.own_data = True                      # every worker books the whole batch's rows
    for i, node in enumerate(job.workers):
        node.start(worker, job, i, pairs[i], owned[i], board, batches)
    return process


def worker(job: Job, i: int, pairs: list[Pair], owned: np.ndarray, board: Board,
           batches: SharedBatches):
    """Worker ``i``: forward and backward pair by pair, its partial sums all-reduced, the
    step of its blocks."""
    node, model, opt = job.workers[i], job.model, job.optimizer
    t, memory = len(job.workers), node.memory
    X, y = job.monitor.X_train, job.monitor.y_train
    memory.set("shard", X.nbytes + y.nbytes)                  # every worker reads the batch
    full = job.params.copy()         # the layers index the whole vector: only mine is read
    params = full[owned]
    state = opt.init_state(params)
    memory.set("params", params.nbytes)
    memory.set("optimizer", state.nbytes)
    last = model.n_layers - 1
    version = 0
    while True:
        full[owned] = params
        rows = batches.rows(version)
        Xb, yb = (X, y) if rows is None else (X[rows], y[rows])
        flops = model.layer_flops(yb.size)
        A, caches = Xb, []
        for pair in pairs:                                    # 1. forward, pair by pair
            Wa, ba = model.layer_params(pair.a, full)
            Wb, bb = model.layer_params(pair.b, full)
            Ai, slope_a = model.activate(A @ Wa[:, pair.units] + ba[pair.units])
            partial = Ai @ Wb[pair.units, :]
            yield node.compute((flops[pair.a][0] + flops[pair.b][0]) / t)
            Z = (yield from ring_allreduce(job, i, partial)) + bb
            if pair.b == last:
                caches.append((LayerCache(A, slope_a), LayerCache(Ai, None)))
                A = Z
            else:
                Ab, slope_b = model.activate(Z)
                caches.append((LayerCache(A, slope_a), LayerCache(Ai, slope_b)))
                A = Ab
        if model.n_layers % 2:                                # an unpaired last layer
            A, cache = model.forward_layer(last, full, A)
            caches.append(cache)
            yield node.compute(flops[last][0])
        memory.set("activations", _nbytes(caches, X))  # a drawn batch's copy is a cache input
        _, dA = model.loss_head(A, yb, job.row_weights(yb))
        grad = np.empty_like(params)
        memory.set("grads", grad.nbytes)
        at = len(owned)                                       # fill from the end backward
        if model.n_layers % 2:                                # 2. backward
            dA, g = model.backward_layer(last, full, caches.pop(), dA)
            yield node.compute(flops[last][1])
            grad[at - g.size:at] = g
            at -= g.size
        for pair in reversed(pairs):
            cache_a, cache_b = caches.pop()
            Wa, _ = model.layer_params(pair.a, full)
            Wb, _ = model.layer_params(pair.b, full)
            dAi, gb = model.backward_dense(Wb[pair.units, :], cache_b, dA)
            dA_part, ga = model.backward_dense(Wa[:, pair.units], cache_a, dAi,
                                               input_grad=pair.a > 0)
            yield node.compute((flops[pair.a][1] + flops[pair.b][1]) / t)
            # my order: W_a's block, b_a's, W_b's rows, b_b: ga then gb, as they come
            grad[at - gb.size - ga.size:at - gb.size] = ga
            grad[at - gb.size:at] = gb
            at -= gb.size + ga.size
            if pair.a > 0:
                dA = yield from ring_allreduce(job, i, dA_part)
        memory.free("activations")
        yield node.compute(opt.flops(params.size))            # 3. the step of my blocks
        params, state = opt.step(params, grad, state, version)
        memory.free("grads")
        memory.set("optimizer", state.nbytes)
        version += 1
        board.put(version, i, params)


def _nbytes(caches, X: np.ndarray) -> int:
    """Bytes the caches keep (the batch's own rows excluded: they are the shard)."""
    arrays = {}
    for entry in caches:
        for cache in ((entry,) if isinstance(entry, LayerCache) else entry):
            for a in (cache.inputs, cache.slope):
                if a is not None and a is not X:
                    arrays[id(a)] = a.nbytes
    return sum(arrays.values())
