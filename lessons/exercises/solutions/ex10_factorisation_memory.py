"""Reference solution of exercise 10.1."""
import numpy as np


def fullest_worker_bytes(layers: list[tuple[int, int]], D: int, T: int, P: int,
                         state_arrays: int) -> float:
    per_stage = []
    for stage in np.array_split(np.arange(len(layers)), P):
        count, first = 0.0, int(stage[0])
        pairs = (len(stage) // 2) if T > 1 else 0
        for q in range(pairs):                      # pair (a, a + 1): 1/T of its units
            (n_in, h), (_, n_out) = layers[first + 2 * q], layers[first + 2 * q + 1]
            count += (n_in * h + h + h * n_out) / T + n_out
        for l in stage[2 * pairs:]:                 # whole layers
            n_in, n_out = layers[l]
            count += n_in * n_out + n_out
        per_stage.append(count)
    # D replicas hold the same: a worker's parameters, gradient and optimizer state
    return max(per_stage) * 8 * (2 + state_arrays)
