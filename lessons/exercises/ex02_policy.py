"""Exercise 2.1 -- write a scheduling policy (lesson 6).

`Threshold` gives the blocks of a round to the workers in proportion to their stated
speeds (``state.speeds[w]``, flop/s), like ``proportional`` -- but a worker slower than
``MIN_SHARE`` times the fastest gets no block at all: one block on a very slow worker
can hold up the whole round.

Implement ``assign``: return ``{worker: deque(block ids)}`` for every worker in
``workers`` (an empty deque for the ones left out); every block in ``blocks`` must be
in exactly one queue. ``state.sizes[b]`` is the number of rows of block b.

Check it with:  python -m simdml.check ex02
"""
from collections import deque  # noqa: F401 -- you will need it

from simdml.scheduling import Policy

MIN_SHARE = 0.1


class Threshold(Policy):
    name = "threshold"

    def assign(self, blocks, workers, state):
        raise NotImplementedError("Exercise 2.1: assign the blocks (see the docstring)")
