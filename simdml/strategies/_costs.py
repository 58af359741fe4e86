"""What the arithmetic of a model update costs, in flops, wherever it runs.

One count per operation, one number per vector entry: a weighted sum of n vectors is
n multiply-adds per entry, a step ``w - lr * g`` a multiply and a subtract. The counts
are a model of the work, not a measurement; what matters is that every strategy charges
the same operation the same.
"""
from __future__ import annotations

__all__ = ["step_flops", "aggregate_flops"]

STEP_PASSES = 2     # w - lr * g: a multiply and a subtract per entry
AVERAGE_PASSES = 1  # an average of models: one pass to write the new model


def step_flops(size: int) -> int:
    """A gradient step ``w - lr * g`` on ``size`` parameters.

    Parameters
    ----------
    size : int
        Number of parameters.

    Returns
    -------
    int
        ``2 * size`` flops.
    """
    return STEP_PASSES * size


def aggregate_flops(n_terms: int, size: int, *, average: bool = False,
                    step: int | None = None) -> int:
    """A server's update from ``n_terms`` vectors of ``size`` entries: their weighted sum
    (``n_terms`` multiply-adds per entry), then a gradient step (``step`` flops: the
    optimizer's, ``Optimizer.flops``; None: plain SGD's 2 per entry) or, with
    ``average``, the averaged model written out (1 per entry).

    Parameters
    ----------
    n_terms : int
        Number of gradients (or models, with ``average``) summed.
    size : int
        Number of parameters.
    average : bool
        The terms are models and their weighted sum is the new model (model averaging),
        rather than gradients to step along.
    step : int or None
        The flops of the step; None: ``step_flops(size)``.

    Returns
    -------
    int
        ``(n_terms + 2) * size``, or ``(n_terms + 1) * size`` with ``average``.

    Examples
    --------
    >>> aggregate_flops(4, 10), aggregate_flops(4, 10, average=True)
    (60, 50)
    """
    if average:
        return (n_terms + AVERAGE_PASSES) * size
    return n_terms * size + (step_flops(size) if step is None else step)
