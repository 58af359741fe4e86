"""Exercise 12.1 -- FedBuff's staleness weight and its buffered step (lesson 17).

In FedBuff (Nguyen et al. 2022, ``strategy.mode = "buffered"``) clients train at once,
each from the model of the version it started on, and the server steps whenever ``K``
reports are in its buffer. A report that comes back ``s`` versions after it started
(its *staleness*) was computed on an old model, so it counts less.

1. ``weight(s)``: the weight of an update ``s`` versions old, FedBuff's
   ``1 / sqrt(1 + s)``: a fresh update (``s = 0``) weighs 1, and older ones less.
2. ``buffered_change(changes, rows, stalenesses)``: the server's change from a full
   buffer, ``sum_i (n_i / sum_j n_j) weight(s_i) Delta_i``: ``changes[i]`` is client i's
   model change (an ndarray), ``rows[i]`` its rows ``n_i``, ``stalenesses[i]`` its
   ``s_i``. The shares divide by the rows only, so a stale buffer steps less than a fresh
   one. Sum in the order given.

The checker compares both with simdml's, names a common slip, and then runs a FedBuff
simulation with your weight in place of simdml's (``simdml.run(s, staleness=weight)``).

Check it with:  python -m simdml.check ex12
"""


def weight(s):
    raise NotImplementedError("Exercise 12.1: the weight of an update s versions old")


def buffered_change(changes, rows, stalenesses):
    raise NotImplementedError("Exercise 12.1: the buffer's staleness-weighted average")
