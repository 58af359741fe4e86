"""Reference solution of exercise 2.1."""
from collections import deque

import numpy as np

from simdml.scheduling import Policy

MIN_SHARE = 0.1


class Threshold(Policy):
    name = "threshold"

    def assign(self, blocks, workers, state):
        speeds = np.array([state.speeds[w] for w in workers], dtype=float)
        speeds[speeds < MIN_SHARE * speeds.max()] = 0.0   # too slow: no work at all
        rows = state.sizes[blocks]
        target = np.cumsum(speeds) / speeds.sum() * rows.sum()
        queues = {w: deque() for w in workers}
        for b, mid in zip(blocks, np.cumsum(rows) - rows / 2):
            j = min(int(np.searchsorted(target, mid)), len(workers) - 1)
            while speeds[j] == 0.0:  # never hand a block to a skipped worker
                j -= 1 if j > 0 else -1
            queues[workers[j]].append(b)
        return queues
