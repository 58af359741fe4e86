"""Exercise 6.1 -- aggregate without the stragglers (lesson 3).

With ``wait_for = k`` the server closes a round with the first k gradients. Average the
ones that arrived, weighted by their shard shares, re-normalized over the workers that
answered: ``g = sum_{i in S} w_i g_i / sum_{i in S} w_i``.

Implement ``aggregate(grads, weights)``: ``grads`` maps worker index -> gradient
(ndarray) for the workers that answered; ``weights[i]`` is worker i's share n_i / n of
the data (all workers). Sum in worker order, so that arrival order cannot change the
result.

Check it with:  python -m simdml.check ex06
"""


def aggregate(grads, weights):
    raise NotImplementedError("Exercise 6.1: the re-normalized weighted average")
