"""Exercise 10.1 -- which factorisations fit in a worker's memory, on paper (lesson 13).

An MLP's layers are ``layers[l] = (n_in, n_out)``, layer after layer (each has an
``n_in x n_out`` weight matrix and ``n_out`` biases). It trains with
``strategy.kind = "hybrid"`` on ``D x T x P`` workers, in float64 (8 bytes a number),
with an optimizer whose state is ``state_arrays`` arrays of the parameters' size
(sgd: 0, momentum: 1, Adam: 2):

* the layers are cut into ``P`` stages by count (``np.array_split`` of the layer
  indices: the first stages take one more);
* within a stage the layers go in pairs from the stage's first layer, ``(a, a + 1)``:
  each of the ``T`` tensor ranks holds ``1/T`` of the pair's hidden units -- their
  columns of ``W_a``, their entries of ``b_a``, their rows of ``W_b`` -- and ``b_b`` whole.
  An odd last layer of a stage is whole on every rank. (Assume ``T`` divides every
  paired width.) With ``T = 1`` every layer is simply whole;
* every one of the ``D`` replicas holds the same.

A worker holds its parameters, their gradient and the optimizer state of them. Return
the bytes the fullest worker holds of those three together.

Check your answer with:  python -m simdml.check ex10
"""


def fullest_worker_bytes(layers: list[tuple[int, int]], D: int, T: int, P: int,
                         state_arrays: int) -> float:
    raise NotImplementedError("Exercise 10.1: the bytes of parameters, gradients and "
                              "optimizer state on the fullest worker (see the docstring)")
