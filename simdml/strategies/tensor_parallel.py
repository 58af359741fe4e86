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
  ring (Megatron's ``g``; or ``strategy.collective``), plus ``b_b``: the pair's output,
  the same on every worker;
* backward: from the output's gradient (the same everywhere), each worker computes the
  gradients of its blocks and ``b_b`` (the same everywhere) and its partial sum of the
  input's gradient, ``dZ_a[i] @ W_a[:, i]'``, **all-reduced** (Megatron's ``f``) --
  except for pair ``(0, 1)``, whose input is the data (no gradient needed);
* each worker steps its blocks and its copies of the whole parts (identically
  everywhere).

The processes are those of :mod:`~simdml.strategies.hybrid` laid out ``1 x t x 1``. The
partial sums are the only messages; the model is the unsplit network's (to the
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

from ..collectives import check_collective

__all__ = ["TensorOptions", "MODELS", "bytes_per_step", "pairs_fit_the_workers"]

MODELS = ("mlp", "mlp_regression")


@dataclass(frozen=True, kw_only=True)
class TensorOptions:
    collective: str = "ring"    # the partial sums' all-reduce (simdml.collectives.ALLREDUCE)
    group_size: int = 1         # hierarchical: ranks per inner group

    def __post_init__(self):
        check_collective(self.collective, self.group_size)


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
