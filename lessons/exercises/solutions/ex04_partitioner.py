"""Reference solution of exercise 4.1."""
import numpy as np


def sorted_by_label(y, n_parts, rng):
    order = np.argsort(np.asarray(y), kind="stable").astype(np.int64)
    return np.array_split(order, n_parts)
