"""The layers of a multilayer perceptron and their face: ``_MLP``, the base of
``MLPClassifier`` and ``MLPRegressor`` (:mod:`simdml.models.mlp`, where the model, its
layout and the per-layer face are described).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from simdml._checks import is_integer
from simdml.models._base import GradientModel
from simdml.models._layers import (
    ACTIVATE, ACTIVATION_FLOPS, ACTIVATIONS, HEAD_FLOPS, init_weights,
)
from simdml.models._validation import MAX_INT, _check_int, _owner_name, _show
from simdml.phantom import Phantom

__all__ = ["DTYPES", "LayerCache"]

#: the float types an MLP computes in (``dtype``): float64 (the default, numpy's own), and
#: float32, which halves the parameters, gradients, optimizer state, activations, rows and
#: bytes on the wire
DTYPES = ("float64", "float32")


class LayerCache(NamedTuple):
    """What a layer's forward pass keeps for its backward pass."""

    inputs: np.ndarray         # A_in, (n_rows, n_in): for the weight gradient A_in' dZ
    slope: np.ndarray | None   # the activation's derivative at Z, (n_rows, n_out); None
                               # on the output layer (no activation)


class _MLP(GradientModel):
    """The layers, their face and the training loss; a subclass adds the loss head."""

    head: str  # "softmax" or "squared": the loss on the last layer's scores

    def validate_params(self) -> None:
        super().validate_params()
        name = _owner_name(self)
        hidden = self.hidden
        if (isinstance(hidden, (str, bytes)) or not isinstance(hidden, (list, tuple))
                or not all(is_integer(h) and 1 <= h <= MAX_INT for h in hidden)):
            raise ValueError(f"The 'hidden' parameter of {name} must be a list of ints >= 1 "
                             f"(the width of each hidden layer; [] for none). "
                             f"Got {_show(hidden)} instead.")
        if not isinstance(self.activation, str) or self.activation not in ACTIVATIONS:
            raise ValueError(f"The 'activation' parameter of {name} must be one of "
                             f"{', '.join(map(repr, ACTIVATIONS))}. "
                             f"Got {_show(self.activation)} instead.")
        _check_int(self, "seed", self.seed, low=0)
        if not isinstance(self.dtype, str) or self.dtype not in DTYPES:
            raise ValueError(f"The 'dtype' parameter of {name} must be one of "
                             f"{', '.join(map(repr, DTYPES))} (a name, as TOML writes it). "
                             f"Got {_show(self.dtype)} instead.")

    @property
    def float_dtype(self) -> np.dtype:
        """The numpy dtype of the parameters, gradients, activations and rows: ``dtype``."""
        return np.dtype(self.dtype)

    # ------------------------------------------------------------------ the shape

    def _bind(self, n_features: int, n_outputs: int, shape_only: bool = False) -> np.ndarray:
        """Set ``layer_sizes_`` (and ``layer_offsets_``, where each layer starts in the
        flat vector) and return the initial parameters, drawn from ``default_rng(seed)``:
        He normal before relu and gelu, Glorot uniform before tanh and on the output
        layer (which feeds the loss, not an activation); zero biases. The same seed
        gives the same bytes: the weights are drawn in float64 and then rounded to
        ``dtype``, so a float32 net starts from the float64 one, rounded. ``shape_only``:
        nothing is drawn, the parameters are a ``Phantom`` of their size (a timing-only
        run's)."""
        self.validate_params()
        _check_int(self, "n_features", n_features, low=1)
        self.n_features_in_ = int(n_features)
        self.layer_sizes_ = (int(n_features), *map(int, self.hidden), int(n_outputs))
        self.layer_offsets_ = tuple(np.cumsum([0] + [(n_in + 1) * n_out for n_in, n_out
                                                     in self.layer_shapes]).tolist())
        if shape_only:
            return Phantom((self.layer_offsets_[-1],), self.float_dtype)
        rng = np.random.default_rng(self.seed)
        hidden_rule = "glorot" if self.activation == "tanh" else "he"
        parts = []
        for l, (n_in, n_out) in enumerate(self.layer_shapes):
            rule = "glorot" if l == self.n_layers - 1 else hidden_rule
            parts += [init_weights(rng, n_in, n_out, rule).ravel(), np.zeros(n_out)]
        return np.concatenate(parts).astype(self.float_dtype, copy=False)

    def init_shape(self, n_features: int, n_outputs: int) -> Phantom:
        """``init_params(..., shape_only=True)``: the shape bound, nothing drawn."""
        return self.init_params(n_features, n_outputs, shape_only=True)

    def _sizes(self, method: str) -> tuple[int, ...]:
        sizes = getattr(self, "layer_sizes_", None)
        if sizes is None:
            raise ValueError(f"{type(self).__name__}.{method} needs the problem shape; "
                             f"call init_params({self._shape_args}) or fit(X, y) first.")
        return sizes

    @property
    def n_layers(self) -> int:
        """Dense layers: ``len(hidden) + 1`` (the output layer)."""
        sizes = getattr(self, "layer_sizes_", None)
        return len(self.hidden) + 1 if sizes is None else len(sizes) - 1

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """``(n_in, n_out)`` of each layer's weights, input layer first."""
        sizes = self._sizes("layer_shapes")
        return list(zip(sizes[:-1], sizes[1:]))

    @property
    def n_params(self) -> int:
        """Size of the flat parameter vector: ``sum_l (n_in + 1) n_out``."""
        self._sizes("n_params")
        return self.layer_offsets_[-1]

    def layer_slices(self, l: int) -> tuple[slice, slice]:
        """Where layer ``l``'s ``W_l`` and ``b_l`` sit in the flat vector (and in the flat
        gradient). They are adjacent: ``slice(w.start, b.stop)`` is the whole layer, the
        slice ``grad_l`` of ``backward_layer`` fills.

        >>> from simdml.models import MLPClassifier
        >>> m = MLPClassifier(hidden=[3]); _ = m.init_params(2, 4); m.layer_slices(1)
        (slice(9, 21, None), slice(21, 25, None))
        """
        sizes = self._sizes("layer_slices")
        if not (is_integer(l) and 0 <= l < len(sizes) - 1):
            raise IndexError(f"layer {l} of {type(self).__name__}: there are "
                             f"{self.n_layers} layers, 0 .. {self.n_layers - 1}")
        start = self.layer_offsets_[l]
        weights_end = start + sizes[l] * sizes[l + 1]
        return slice(start, weights_end), slice(weights_end, self.layer_offsets_[l + 1])

    def layer_params(self, l: int, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Views (not copies) of ``W_l`` (n_in, n_out) and ``b_l`` (n_out,) in ``params``."""
        if params.size != self.n_params:
            raise ValueError(f"params has size {params.size}; {type(self).__name__} with "
                             f"layer sizes {list(self.layer_sizes_)} expects {self.n_params}.")
        w, b = self.layer_slices(l)
        return params[w].reshape(self.layer_sizes_[l], self.layer_sizes_[l + 1]), params[b]

    # ------------------------------------------------------------- the layer face

    def forward_layer(self, l: int, params: np.ndarray,
                      A_in: np.ndarray) -> tuple[np.ndarray, LayerCache]:
        """Layer ``l``'s forward pass: ``Z = A_in @ W_l + b_l``, then the activation
        (none on the last layer, whose output is the scores).

        Parameters
        ----------
        l : int
            The layer, ``0 .. n_layers - 1``.
        params : ndarray of shape (n_params,)
        A_in : ndarray of shape (n_rows, n_in)
            ``X`` for layer 0, else the previous layer's output. Kept (not copied) in
            the cache.

        Returns
        -------
        A_out : ndarray of shape (n_rows, n_out)
        cache : LayerCache
            What ``backward_layer`` needs: ``A_in`` and the activation's slope.
        """
        W, b = self.layer_params(l, params)
        Z = A_in @ W
        Z += b
        if l == self.n_layers - 1:
            return Z, LayerCache(A_in, None)
        A, slope = ACTIVATE[self.activation](Z)
        return A, LayerCache(A_in, slope)

    def backward_layer(self, l: int, params: np.ndarray, cache: LayerCache,
                       dA_out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """Layer ``l``'s backward pass, from the loss's derivative in its output.

        ``dZ = dA_out * slope`` (the chain rule through the activation), then
        ``dW = A_in' dZ + l2 W``, ``db = sum_rows dZ``, ``dA_in = dZ W'``.

        Parameters
        ----------
        l : int
        params : ndarray of shape (n_params,)
        cache : LayerCache
            From ``forward_layer(l, params, A_in)``.
        dA_out : ndarray of shape (n_rows, n_out)
            From ``loss_head`` for the last layer, else from layer ``l + 1``'s backward.

        Returns
        -------
        dA_in : ndarray of shape (n_rows, n_in), or None for layer 0 (nothing below it
            needs it, and it is not computed: PyTorch skips it too)
        grad_l : ndarray of shape ((n_in + 1) * n_out,)
            This layer's slice of the flat gradient (``slice(w.start, b.stop)`` of
            ``layer_slices(l)``), with its L2 term.

        References
        ----------
        .. [1] D. E. Rumelhart, G. E. Hinton and R. J. Williams, "Learning
           representations by back-propagating errors", Nature 323, 1986, eqs. (4)-(7).
        """
        W, _ = self.layer_params(l, params)
        return self.backward_dense(W, cache, dA_out, input_grad=l != 0)

    def activate(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The hidden layers' activation of pre-activations ``Z`` (any block of a layer's
        columns: it is elementwise) and its slope."""
        return ACTIVATE[self.activation](Z)

    def backward_dense(self, W: np.ndarray, cache: LayerCache, dA_out: np.ndarray, *,
                       input_grad: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """The backward pass of a dense block ``A_in @ W + b`` (a layer, or a block of
        its columns or rows, as tensor parallelism splits them): ``dZ = dA_out * slope``,
        ``dW = A_in' dZ + l2 W``, ``db = sum_rows dZ``, and ``dA_in = dZ W'`` if
        ``input_grad``. Returns ``dA_in`` (or None) and ``[dW (row-major), db]``."""
        dZ = dA_out if cache.slope is None else dA_out * cache.slope
        n_in, n_out = W.shape
        grad = np.empty_like(W, shape=(n_in + 1) * n_out, order="C")  # a phantom W: a phantom
        dW = grad[:n_in * n_out].reshape(n_in, n_out)
        np.matmul(cache.inputs.T, dZ, out=dW)
        np.add.reduce(dZ, axis=0, out=grad[n_in * n_out:])
        if self.l2:
            dW += self.l2 * W
        return (dZ @ W.T if input_grad else None), grad

    def penalty(self, params: np.ndarray) -> float:
        """The L2 term of the loss, ``0.5 l2 sum_l ||W_l||^2`` (biases not penalized),
        summed in float64 whatever the dtype (a reported number, as the loss)."""
        if not self.l2:
            return 0.0
        total = 0.0
        for l in range(self.n_layers):
            W, _ = self.layer_params(l, params)
            W = W.astype(np.float64, copy=False)
            total += float(np.vdot(W, W))
        return 0.5 * self.l2 * total

    def layer_flops(self, n_rows: int) -> list[tuple[float, float]]:
        """``(forward, backward)`` flop of each layer on ``n_rows`` rows.

        With ``n`` rows, ``i = n_in``, ``o = n_out`` and one multiply-add = 2 flop, the
        bias counted as an input column of ones (the convention of the linear learners):

        - forward: ``2 n (i + 1) o`` for ``A_in @ W + b``; plus the activation's value
          and slope, ``c_act n o`` (``c_act`` = 2 relu, 3 tanh, 17 gelu); on the last
          layer instead the loss head, ``c_head n o`` (5 softmax, 4 squared);
        - backward: ``n o`` for ``dZ = dA * slope`` (hidden layers); ``2 n (i + 1) o``
          for ``dW`` and ``db``; ``2 i o`` for the L2 term (counted even at l2 = 0, as
          the linear learners do); ``2 n i o`` for ``dA_in``, except on layer 0.

        With ``hidden=[]`` the sum is ``LogisticRegression.grad_flops`` exactly
        (``LinearRegression``'s for the regressor).

        References
        ----------
        .. [1] J. Kaplan et al., "Scaling Laws for Neural Language Models", 2020,
           Sec. 2.1: forward ~ 2 and backward ~ 4 flop per parameter per example.
        """
        sizes = self._sizes("layer_flops")
        shapes = list(zip(sizes[:-1], sizes[1:]))
        n, last, out = n_rows, len(shapes) - 1, []
        for l, (i, o) in enumerate(shapes):
            matmul = 2 * n * (i + 1) * o
            per_entry = HEAD_FLOPS[self.head] if l == last else ACTIVATION_FLOPS[self.activation]
            forward = matmul + per_entry * n * o
            backward = ((0 if l == last else n * o) + matmul + 2 * i * o
                        + (0 if l == 0 else 2 * n * i * o))
            out.append((float(forward), float(backward)))
        return out

    def activation_bytes(self, n_rows: int) -> list[int]:
        """Bytes of the arrays each layer's cache keeps for the backward pass on
        ``n_rows`` rows, with ``s`` the dtype's itemsize (8 float64, 4 float32): its
        input, ``s n n_in``, and on hidden layers the activation's slope, ``n n_out``
        bytes for relu (a boolean mask, whatever the dtype) or ``s n n_out`` (tanh,
        gelu). Layer 0's input is the batch itself (a reference to it, no copy); layer
        ``l + 1``'s input is layer ``l``'s output, counted once, there. This is what a
        forward pass holds at its end, before backward frees it layer by layer.
        """
        sizes = self._sizes("activation_bytes")
        s = self.float_dtype.itemsize
        slope = 1 if self.activation == "relu" else s
        return [s * n_rows * sizes[l] + (slope * n_rows * sizes[l + 1]
                                         if l < len(sizes) - 2 else 0)
                for l in range(len(sizes) - 1)]

    def activation_nbytes(self, n_rows: int) -> int:
        """Bytes a gradient on ``n_rows`` rows keeps for its backward pass beyond its input
        (the caller's rows): the sum of ``activation_bytes`` less the input of layer 0."""
        n_features = self._sizes("activation_nbytes")[0]
        return sum(self.activation_bytes(n_rows)) - self.float_dtype.itemsize * n_rows * n_features

    # ---------------------------------------------------------- the strategy face

    def loss_grad(self, params: np.ndarray, X: np.ndarray, y: np.ndarray,
                  sample_weight: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """The regularized loss on the rows ``X`` and its gradient, by backpropagation:
        ``forward_layer`` for each layer, ``loss_head``, then ``backward_layer`` from the
        last layer down, each filling its slice of the gradient; plus ``penalty``.

        Parameters
        ----------
        params : ndarray of shape (n_params,)
            Not modified.
        X : ndarray of shape (n_samples, n_features), in ``dtype``
            Not validated (hot path). Rows of another dtype are cast to ``dtype`` (a
            copy per call: a run casts its shards once, when it binds them).
        y : ndarray of shape (n_samples,)
            Class indices (classifier) or real targets (regressor).
        sample_weight : ndarray of shape (n_samples,), optional
            Non-negative, positive sum. The data term is a (weighted) mean, so shard
            gradients recombine exactly: ``sum_s (n_s / N) grad_s == grad``.

        Returns
        -------
        loss : float
            Summed in float64 (a reported number, never sent).
        grad : ndarray of shape (n_params,), in ``dtype``
        """
        return self._loss_grad(params, X, y, sample_weight)

    def _loss_grad(self, params, X, y, sample_weight=None, *, with_loss: bool = True):
        dtype = self.float_dtype
        if X.dtype != dtype:
            X = X.astype(dtype)
        A, caches = X, []
        for l in range(self.n_layers):
            A, cache = self.forward_layer(l, params, A)
            caches.append(cache)
        loss, dA = self.loss_head(A, y, sample_weight, with_loss=with_loss)
        grad = np.empty_like(params, dtype=dtype, shape=self.n_params)
        for l in reversed(range(self.n_layers)):
            w, b = self.layer_slices(l)
            dA, grad[w.start:b.stop] = self.backward_layer(l, params, caches.pop(), dA)
        return (loss + self.penalty(params) if with_loss else None), grad

    def grad_flops(self, n_rows: int) -> float:
        """Flop of one ``loss_grad`` call on ``n_rows`` rows: the sum of ``layer_flops``,
        forward and backward (affine in ``n_rows``)."""
        self._sizes("grad_flops")
        return float(sum(f + b for f, b in self.layer_flops(n_rows)))

    def decision_function(self, X, params: np.ndarray | None = None) -> np.ndarray:
        """The last layer's scores, of shape (n_samples, n_outputs)."""
        params = self._resolve_params(params)
        A = self._check_predict_X(X)
        for l in range(self.n_layers):
            A, _ = self.forward_layer(l, params, A)
        return A
