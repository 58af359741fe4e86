"""Exercise 8.1 -- what one worker holds under ZeRO, on paper (lesson 11).

A model of ``n_params`` parameters trains with ``strategy.kind = "ddp"`` on
``n_workers`` workers, in float64 (8 bytes a number), with an optimizer whose state is
``state_arrays`` arrays of the parameters' size (sgd: 0, momentum: 1, Adam: 2). Under
``strategy.zero = stage`` (0: plain ddp; 1 shards the optimizer state over the workers,
2 also the gradients, 3 also the parameters), how many bytes of parameters, of
gradients and of optimizer state does one worker hold? Assume that ``n_workers``
divides everything evenly.

Return a dict ``{"params": ..., "grads": ..., "optimizer": ...}`` in bytes.

Check your answer with:  python -m simdml.check ex08
"""


def memory_per_worker(stage: int, n_params: int, n_workers: int,
                      state_arrays: int) -> dict[str, float]:
    raise NotImplementedError("Exercise 8.1: the bytes of parameters, gradients and "
                              "optimizer state on one worker (see the docstring)")
