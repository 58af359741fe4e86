"""The pieces of a multilayer perceptron: activations, initialisation, the loss heads.

Each activation returns its value and its *slope* (its derivative at the
pre-activation), which is all that backpropagation through it needs; the slope is what
a layer keeps for its backward pass, so its dtype decides the activation's memory
(relu keeps a boolean mask, 1 byte per entry, whatever the model's dtype; tanh and gelu
keep an array of the pre-activation's dtype, float64 or float32).

Every function keeps the dtype of its scores: float32 in, float32 out (a Python float
scalar does not promote a numpy array). The loss itself, a reported number that never
travels, is summed in float64 from the row losses.

Operation counts are per entry, with the convention of the linear learners: a multiply,
an add, a compare or a transcendental (``exp``, ``tanh``) is 1 flop.

References
----------
.. [1] D. Hendrycks and K. Gimpel, "Gaussian Error Linear Units (GELUs)", 2016,
   Sec. 2: ``gelu(z) ~ 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3)))``.
.. [2] K. He et al., "Delving Deep into Rectifiers", ICCV 2015, eq. (10): weights of
   variance ``2 / n_in`` before a ReLU.
.. [3] X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
   feedforward neural networks", AISTATS 2010, eq. (16): ``U(-a, a)`` with
   ``a = sqrt(6 / (n_in + n_out))``.
"""
from __future__ import annotations

import math

import numpy as np

ACTIVATIONS = ("relu", "tanh", "gelu")

_GELU_C = math.sqrt(2.0 / math.pi)  # the tanh form of gelu (Hendrycks & Gimpel, Sec. 2)
_GELU_A = 0.044715


def _relu(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # slope 1 where z > 0, else 0 (the subgradient 0 at z = 0, as PyTorch takes)
    return np.maximum(Z, 0.0), Z > 0.0


def _tanh(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    A = np.tanh(Z)
    return A, 1.0 - A * A  # d tanh(z) / dz = 1 - tanh(z)^2


def _gelu(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gelu in its tanh form, ``g(z) = 0.5 z (1 + t)`` with ``t = tanh(u)``,
    ``u = c (z + a z^3)``; its exact derivative (of this form, not of the erf form) is
    ``g'(z) = 0.5 (1 + t) + 0.5 z (1 - t^2) c (1 + 3 a z^2)``."""
    Z2 = Z * Z                                   # 1 flop
    t = np.tanh(_GELU_C * Z * (1.0 + _GELU_A * Z2))  # 4 + tanh 1
    half = 0.5 * (1.0 + t)                       # 2
    A = Z * half                                 # 1
    du = 1.0 + (3.0 * _GELU_A) * Z2              # 2
    slope = (0.5 * _GELU_C) * Z * (1.0 - t * t) * du + half  # 6
    return A, slope


ACTIVATE = {"relu": _relu, "tanh": _tanh, "gelu": _gelu}

#: flop per entry of a hidden layer's forward activation: its value and its slope
#: (relu: a max and a compare; tanh: tanh, a multiply, a subtract; gelu: as counted
#: line by line in ``_gelu``)
ACTIVATION_FLOPS = {"relu": 2, "tanh": 3, "gelu": 17}


def init_weights(rng: np.random.Generator, n_in: int, n_out: int, rule: str) -> np.ndarray:
    """A weight matrix of shape (n_in, n_out): ``"he"`` draws ``N(0, 2 / n_in)``,
    ``"glorot"`` draws ``U(-a, a)``, ``a = sqrt(6 / (n_in + n_out))``."""
    if rule == "he":
        return rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_in, n_out))
    bound = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-bound, bound, size=(n_in, n_out))


def _f64(a: np.ndarray) -> np.ndarray:
    """``a`` as float64 for a sum that is reported, not sent (no copy when it already is)."""
    return a.astype(np.float64, copy=False)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise ``exp(z) / sum exp(z)``, shifted by the row's maximum (stable); a new
    array, rows summing to 1."""
    Z = scores - scores.max(axis=1, keepdims=True)
    P = np.exp(Z)
    P /= P.sum(axis=1, keepdims=True)
    return P


def softmax_cross_entropy(scores: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None,
                          with_loss: bool = True) -> tuple[float | None, np.ndarray]:
    """Mean cross-entropy of ``softmax(scores)`` against class indices ``y``, and its
    derivative in the scores, ``s_i (softmax(z_i) - onehot(y_i))`` with row weights
    ``s_i = w_i / sum w`` (``1 / n`` by default). About ``5 n k`` flop (max, subtract,
    exp, sum, divide), the count of ``LogisticRegression``. ``with_loss=False``: None for
    the loss, not computed (the derivative's bits are the same).

    References: C. M. Bishop, *Pattern Recognition and Machine Learning*, 2006, eq. (4.109).
    """
    n_samples = scores.shape[0]
    Z = scores - np.maximum.reduce(scores, axis=1)[:, None]  # stable: exp(.) <= 1
    P = np.exp(Z)
    norm = np.add.reduce(P, axis=1)
    rows = np.arange(n_samples)
    row_loss = np.log(norm) - Z[rows, y] if with_loss else None
    P /= norm[:, None]
    P[rows, y] -= 1.0
    return _weighted_mean(row_loss, P, sample_weight)


def squared_error(scores: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None,
                  with_loss: bool = True) -> tuple[float | None, np.ndarray]:
    """Half mean squared error ``0.5 sum_i s_i (z_i - y_i)^2`` of one output column,
    and its derivative ``s_i (z_i - y_i)``, in the dtype of ``scores`` (``y`` and the
    weights are cast to it); about ``4 n`` flop, the count of ``LinearRegression``.
    ``with_loss=False``: None for the loss, not computed."""
    residual = scores[:, 0] - y.astype(scores.dtype, copy=False)
    if sample_weight is None:
        G = residual * (1.0 / scores.shape[0])
    else:
        G = residual * (sample_weight / sample_weight.sum()).astype(scores.dtype, copy=False)
    loss = 0.5 * float(_f64(G) @ _f64(residual)) if with_loss else None
    return loss, G[:, None]


def _weighted_mean(row_loss, G, sample_weight) -> tuple[float, np.ndarray]:
    """The (weighted) mean of the row losses, summed in float64; ``G``, one row per
    sample, scaled in place (keeping its dtype). ``row_loss = None``: None for the loss."""
    n_samples = G.shape[0]
    if sample_weight is None:
        G *= 1.0 / n_samples
        return (None if row_loss is None
                else float(np.add.reduce(_f64(row_loss)) / n_samples)), G
    scale = sample_weight / sample_weight.sum()
    G *= scale[:, None]
    return (None if row_loss is None else float(_f64(row_loss) @ scale)), G


#: flop per output entry of each loss head (see the functions above)
HEAD_FLOPS = {"softmax": 5, "squared": 4}
