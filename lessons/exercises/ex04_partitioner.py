"""Exercise 4.1 -- write a partitioner (lesson 8).

The most extreme non-iid split: sort the samples by label (ties: by index) and cut the
sorted list into ``n_parts`` contiguous shards whose sizes differ by at most one (the
first shards the larger, as ``np.array_split`` does).

Implement ``sorted_by_label``: return a list of ``n_parts`` int64 index arrays into ``y``
that together hold every index exactly once.

Check it with:  python -m simdml.check ex04
"""


def sorted_by_label(y, n_parts, rng):
    raise NotImplementedError("Exercise 4.1: cut the label-sorted samples into shards")
