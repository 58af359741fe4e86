"""Multinomial (softmax) logistic regression with an L2 penalty, in numpy.

Two faces. The centralized one is scikit-learn-like (``fit``, ``predict``, ``score``).
The strategy face is a set of pure functions of their inputs -- ``init_params``,
``loss_grad``, ``grad_flops`` -- that distributed strategies call on shards.

Parameter layout: one flat float64 vector of size ``(n_features + 1) * n_classes``;
``params.reshape(n_features + 1, n_classes)`` gives the weights ``W`` in the first
``n_features`` rows and the intercept ``b`` in the last row. A flat vector is what a
node sends over the simulated network and what a server averages.
"""

from __future__ import annotations

import numpy as np

from simdml.models._base import (
    LinearClassifier, _class_major_scores, _max, _outer_rows, _split, _sum, _target_index,
)
from simdml.models._layers import softmax


class LogisticRegression(LinearClassifier):
    """Multinomial logistic regression trained by full-batch gradient descent.

    Minimizes the (weighted) mean cross-entropy of the softmax model plus
    ``0.5 * l2 * ||W||^2``; the intercept is not penalized.

    Parameters
    ----------
    lr : float, default=0.5
        Gradient-descent step size, > 0. 0.5 is safe on standardized features: the
        loss is L-smooth with L <= 0.5 * lambda_max(X'X / n) + l2, about 2 on iris,
        and descent is monotone for lr < 2 / L.
    n_iter : int, default=300
        Number of full-batch steps, >= 1. There is no early stopping: the cost of a
        fit is known in advance, which is what a simulator needs.
    l2 : float, default=1e-4
        L2 penalty strength, >= 0. Small: it keeps the weights bounded on separable
        data without changing accuracy.

    class_weight : None, "balanced" or dict, default=None
        Weights per class index, applied as row weights of the loss (``"balanced"``:
        ``n / (k n_c)``, so each class carries the same total weight).

    Attributes
    ----------
    params_ : ndarray of shape ((n_features + 1) * n_classes,)
        Fitted parameters, laid out as described in the module docstring.
    classes_ : ndarray of shape (n_classes,)
        Sorted class labels seen in ``fit`` (``arange(n_classes)`` after ``init_params``).
    n_features_in_ : int
    n_classes_ : int
    n_iter_ : int
        Steps taken (always ``n_iter``).
    loss_curve_ : list of float
        Loss before each step, length ``n_iter``.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> LogisticRegression(lr=1.0, n_iter=200).fit(X, y).predict(X)
    array([0, 0, 1, 1])

    References
    ----------
    .. [1] C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer, 2006,
       Sec. 4.3.4, eqs. (4.104)-(4.109): softmax model, cross-entropy and its gradient.
    .. [2] K. P. Murphy, *Probabilistic Machine Learning: An Introduction*, MIT Press,
       2022, Sec. 10.3 (multinomial logistic regression) and Sec. 2.5.4 (log-sum-exp).
    """

    def __init__(self, *, lr: float = 0.5, n_iter: int = 300, l2: float = 1e-4,
                 class_weight=None):
        self.lr = lr
        self.n_iter = n_iter
        self.l2 = l2
        self.class_weight = class_weight

    # ----------------------------------------------------------------- strategy face

    def loss_grad(
        self,
        params: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        """Regularized cross-entropy on the rows ``X`` and its gradient.

        ``loss = sum_i w_i * (logsumexp(z_i) - z_i[y_i]) / sum_i w_i + 0.5 * l2 * ||W||^2``
        with ``z_i = x_i @ W + b`` and ``w_i = 1`` by default. Its gradient is
        ``X' G + l2 W`` for ``W`` and ``sum_i G_i`` for ``b``, where
        ``G_i = w_i * (softmax(z_i) - onehot(y_i)) / sum_i w_i``.

        Because the data term is a mean, shard gradients recombine exactly:
        ``sum_s (n_s / N) * grad_s == grad`` (weights ``sum_s w / sum w`` when weighted).

        Parameters
        ----------
        params : ndarray of shape ((n_features + 1) * n_classes,)
            Not modified.
        X : ndarray of shape (n_samples, n_features), float64
            Not validated (hot path); a view of a larger array is fine, no copy is made.
        y : ndarray of shape (n_samples,), int
            Class *indices* in ``0 .. n_classes - 1`` (not labels).
        sample_weight : ndarray of shape (n_samples,), optional
            Non-negative, positive sum.

        Returns
        -------
        loss : float
        grad : ndarray of the shape of ``params``

        References
        ----------
        .. [1] Bishop (2006), eq. (4.109): gradient ``sum_n (y_nj - t_nj) phi_n``.
        """
        return self._loss_grad(params, X, y, sample_weight)

    def _scores_grad(self, Z, y, with_loss):
        """Each row's cross-entropy (None without ``with_loss``) and its derivative in the
        row's scores, ``softmax(z_i) - onehot(y_i)``, both from the class-major scores
        ``Z`` (n_classes, n_samples), which it overwrites (``LinearClassifier``'s step)."""
        Z -= _max(Z, axis=0)  # stable: exp(.) <= 1, and lse - z_y is unchanged
        P = np.exp(Z)
        norm = _sum(P, axis=0)
        target = _target_index(y, Z.shape[1])
        row_loss = np.log(norm) - Z.reshape(-1)[target] if with_loss else None
        P /= norm  # softmax probabilities
        P.reshape(-1)[target] -= 1.0  # minus the one-hot target, by indexing
        return row_loss, P

    def per_example_factors(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``R``, class-major (n_classes, n_samples): row ``i``'s gradient of its own
        cross-entropy (no mean, no L2) is the outer product ``[x_i, 1] R[:, i]'`` in the
        layout of ``params`` (``per_example_grads`` spells them out; DP-SGD's clipped sum
        needs only ``R``, ``privacy.clipped_outer_sum``)."""
        W, b = _split(params, X.shape[1])
        return self._scores_grad(_class_major_scores(X, W, b), y, False)[1]

    def per_example_grads(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each row's gradient of its own cross-entropy (no mean, no L2): shape
        (n_samples, params.size), row ``i`` being ``[x_i, 1] (softmax(z_i) - onehot(y_i))'``
        flattened in the layout of ``params`` (their mean plus ``reg_grad`` is
        ``loss_grad``'s gradient)."""
        return _outer_rows(X, self.per_example_factors(params, X, y))

    def reg_grad(self, params: np.ndarray) -> np.ndarray:
        """The gradient of the L2 term alone (the intercepts are not penalized)."""
        out = np.zeros_like(params)
        W, _ = _split(out, self.n_features_in_)
        W += self.l2 * _split(params, self.n_features_in_)[0]
        return out

    def grad_flops(self, n_rows: int) -> float:
        """Floating-point operations of one ``loss_grad`` call on ``n_rows`` rows.

        With ``d = n_features_in_`` and ``k = n_classes_`` (one multiply-add = 2 flop):
        forward ``X @ W + b`` is ``2 n (d + 1) k``; softmax and loss (max, subtract,
        exp, sum, divide) about ``5 n k``; backward ``X' G`` and the intercept sum
        ``2 n (d + 1) k``; the L2 term ``2 d k``. Total
        ``4 n (d + 1) k + 5 n k + 2 d k``, affine in ``n_rows``.

        Raises
        ------
        ValueError
            If the problem shape is unknown (neither ``init_params`` nor ``fit`` called).

        References
        ----------
        .. [1] J. Kaplan et al., "Scaling Laws for Neural Language Models", 2020,
           Sec. 2.1: forward ~ 2 flop and backward ~ 4 flop per parameter per example;
           here the backward pass needs only the parameter gradient, ~ 2.
        """
        self._check_shape_known("n_classes_", "n_features, n_classes")
        n, d, k = n_rows, self.n_features_in_, self.n_classes_
        return float(4 * n * (d + 1) * k + 5 * n * k + 2 * d * k)

    # -------------------------------------------------------------- centralized face

    def predict_proba(self, X, params: np.ndarray | None = None) -> np.ndarray:
        """Softmax probabilities of shape (n_samples, n_classes); rows sum to 1."""
        return softmax(self.decision_function(X, params))
