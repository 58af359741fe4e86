"""Exercise 7.1 -- the time of one DDP iteration with overlap, on paper (lesson 10).

An iteration of ``strategy.kind = "ddp"`` with ``overlap = true``, on identical workers
with equal shards: the forward pass takes ``forward`` s; then backward runs from the
last layer down to layer 0, layer l taking ``backward[l]`` s. The gradient is cut into
buckets of whole layers, ``buckets[k]`` a tuple of layer indices, listed in the order
backward makes them ready (the last layer's bucket first, e.g. ``[(5, 4), (3, 2),
(1, 0)]``). Bucket k's all-reduce takes ``allreduce[k]`` s (for the ring,
``2 (n - 1) (latency + nbytes / (n bandwidth))``). When all buckets are summed, the
optimizer's step takes ``step`` s. Return how long the iteration lasts, in s.

Mind when a bucket may start, and what else may be on the network at that moment.

Check your answer with:  python -m simdml.check ex07
"""


def iteration_time(forward: float, backward: list[float], buckets: list[tuple[int, ...]],
                   allreduce: list[float], step: float) -> float:
    raise NotImplementedError("Exercise 7.1: the time of a ddp iteration with overlap "
                              "(see the docstring)")
