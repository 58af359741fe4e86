"""Exercise 5.1 -- gradient compression by top-k sparsification (lessons 2 and 5).

Send only the k entries of a gradient with the largest magnitude, as (indices, values);
the receiver puts them back into a vector of zeros.

Implement ``compress(grad, k) -> (indices, values)`` (indices int64, sorted increasingly;
values float64; ties in magnitude: the lower index) and ``decompress(indices, values,
size) -> ndarray``.

Check it with:  python -m simdml.check ex05
Once it passes, the checker runs it inside a simulation -- four workers of a sync
parameter server sending your top-5 % with error feedback -- and prints the bytes sent
and the final loss beside no compression and simdml's own top-k (``simdml.run(scenario,
compression=Compression.custom(compress, decompress, ratio=0.05))`` does the same).
"""


def compress(grad, k):
    raise NotImplementedError("Exercise 5.1: keep the k largest entries")


def decompress(indices, values, size):
    raise NotImplementedError("Exercise 5.1: rebuild the dense vector")
