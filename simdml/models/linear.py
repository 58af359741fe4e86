"""Linear least squares (ridge when ``l2 > 0``), trained by full-batch gradient descent.

Follows :mod:`simdml.models.logistic`: a scikit-learn-like centralized face (``fit``,
``predict``, ``score`` = R^2) and a strategy face of pure functions of their inputs
(``init_params``, ``loss_grad``, ``grad_flops``) that distributed strategies call on
shards. The loss is a (weighted) mean over rows, so shard gradients recombine exactly:
``sum_s (n_s / N) * grad_s == grad``.

Parameter layout: one flat float64 vector of size ``n_features + 1``; ``params[:-1]``
is the weight vector ``w`` and ``params[-1]`` the intercept ``b`` -- the layout of
``LogisticRegression`` with a single column.
"""

from __future__ import annotations

import numpy as np

from simdml.models._base import GradientRegressor, _outer_rows, _split
from simdml.models._validation import _check_int


class LinearRegression(GradientRegressor):
    """Least-squares linear regression (ridge when ``l2 > 0``) by full-batch gradient descent.

    Minimizes ``0.5 * mean_i (x_i @ w + b - y_i)^2 + 0.5 * l2 * ||w||^2``; the intercept
    ``b`` is not penalized. The objective is convex and, for ``l2 > 0`` or full-rank
    ``X``, has a unique minimizer, the ridge solution of the normal equations.

    Parameters
    ----------
    lr : float, default=0.1
        Gradient-descent step size, > 0. The loss is L-smooth with
        ``L = lambda_max(X1' X1 / n) + l2``, ``X1 = [X, 1]``; descent is monotone for
        ``lr < 2 / L``. On standardized features ``L <= n_features + 1 + l2``, so 0.1
        is safe up to about 18 features, and larger steps converge faster when safe.
    n_iter : int, default=300
        Number of full-batch steps, >= 1. There is no early stopping: the cost of a
        fit is known in advance, which is what a simulator needs.
    l2 : float, default=0.0
        L2 (ridge) penalty strength, >= 0. scikit-learn's ``Ridge(alpha)`` minimizes
        ``||X w + b - y||^2 + alpha ||w||^2``, so ``alpha = n_samples * l2``.

    Attributes
    ----------
    params_ : ndarray of shape (n_features + 1,)
        Fitted ``[w, b]``: weights, then the intercept.
    n_features_in_ : int
    n_iter_ : int
        Steps taken (always ``n_iter``).
    loss_curve_ : list of float
        Loss before each step, length ``n_iter``.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = 2 * X[:, 0] + 1
    >>> LinearRegression(n_iter=2000).fit(X, y).params_.round(6)
    array([2., 1.])

    References
    ----------
    .. [1] T. Hastie, R. Tibshirani and J. Friedman, *The Elements of Statistical
       Learning*, 2nd ed., Springer, 2009, Sec. 3.2 (least squares) and Sec. 3.4.1,
       eq. (3.41) (ridge, intercept not penalized).
    .. [2] S. Boyd and L. Vandenberghe, *Convex Optimization*, Cambridge University
       Press, 2004, Sec. 9.3: gradient descent on a smooth convex function.
    """

    def __init__(self, *, lr: float = 0.1, n_iter: int = 300, l2: float = 0.0):
        self.lr = lr
        self.n_iter = n_iter
        self.l2 = l2

    # ----------------------------------------------------------------- strategy face

    def init_params(self, n_features: int, n_outputs: int = 1) -> np.ndarray:
        """Bind the learner to a problem shape and return zero parameters.

        Parameters
        ----------
        n_features : int
            Number of input columns, >= 1. Sets ``n_features_in_``.
        n_outputs : int, default=1
            Number of targets; only 1 is supported. A strategy that passes the number
            of classes of a classification dataset here gets a clear error.

        Returns
        -------
        ndarray of shape (n_features + 1,), float64
            Zeros; ``params[:-1]`` is ``w`` and ``params[-1]`` is ``b``.
        """
        _check_int(self, "n_features", n_features, low=1)
        if n_outputs != 1:
            raise ValueError(
                "The 'n_outputs' parameter of LinearRegression must be 1 (one real-valued "
                f"target). Got {n_outputs!r} instead."
            )
        self.n_features_in_ = int(n_features)
        return np.zeros(n_features + 1, dtype=np.float64)

    def loss_grad(
        self,
        params: np.ndarray,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        """Regularized half mean squared error on the rows ``X`` and its gradient.

        ``loss = 0.5 * sum_i s_i r_i^2 + 0.5 * l2 * ||w||^2`` with residuals
        ``r_i = x_i @ w + b - y_i`` and row weights ``s_i = w_i / sum_i w_i`` (``1 / n``
        by default). Its gradient is ``X' (s * r) + l2 w`` for ``w`` and
        ``sum_i s_i r_i`` for ``b``.

        Because the data term is a mean, shard gradients recombine exactly:
        ``sum_s (n_s / N) * grad_s == grad`` (weights ``sum_s w / sum w`` when weighted).

        Parameters
        ----------
        params : ndarray of shape (n_features + 1,)
            Not modified.
        X : ndarray of shape (n_samples, n_features), float64
            Not validated (hot path); a view of a larger array is fine, no copy is made.
        y : ndarray of shape (n_samples,)
            Real-valued targets.
        sample_weight : ndarray of shape (n_samples,), optional
            Non-negative, positive sum.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_features + 1,)

        References
        ----------
        .. [1] Hastie, Tibshirani and Friedman (2009), eq. (3.4): the gradient of the
           residual sum of squares, ``-2 X' (y - X beta)``, here halved and averaged.
        """
        return self._loss_grad(params, X, y, sample_weight)

    def _loss_grad(self, params, X, y, sample_weight=None, *, with_loss: bool = True):
        n_samples, n_features = X.shape
        if params.size != n_features + 1:
            raise ValueError(
                f"params has size {params.size}; LinearRegression expects "
                f"n_features + 1 = {n_features + 1}."
            )
        w, b = params[:-1], params[-1]
        residual = X @ w
        residual += b - y
        if sample_weight is None:
            G = residual * (1.0 / n_samples)
        else:
            G = residual * (sample_weight / sample_weight.sum())
        loss = 0.5 * (G @ residual) if with_loss else None
        grad = np.empty_like(w, shape=n_features + 1)
        np.matmul(X.T, G, out=grad[:-1])
        grad[-1] = G.sum()
        if self.l2:
            if with_loss:
                loss += 0.5 * self.l2 * (w @ w)
            grad[:-1] += self.l2 * w
        return (float(loss) if with_loss else None), grad

    def stacked_grads(self, params: np.ndarray, X: np.ndarray, y: np.ndarray,
                      m: int) -> np.ndarray:
        """The gradients of ``len(y) // m`` shards of ``m`` rows each (``X, y`` one shard
        after the other), row ``s`` being ``grad`` on shard ``s`` (unweighted), bit for
        bit: each shard's own BLAS products in numpy's stacked ``matmul``."""
        n, d = X.shape
        K = n // m
        w, b = params[:-1], params[-1]
        X3 = X.reshape(K, m, d)
        residual = np.matmul(X3, w)                     # (K, m)
        residual += b - y.reshape(K, m)
        G = residual * (1.0 / m)
        out = np.empty((K, d + 1))
        np.matmul(X3.transpose(0, 2, 1), G[:, :, None], out=out[:, :-1, None])
        np.add.reduce(G, axis=1, out=out[:, -1])
        if self.l2:
            out[:, :-1] += self.l2 * w
        return out

    def per_example_factors(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``R`` of shape (1, n_samples), the residuals ``r_i = x_i w + b - y_i``: row
        ``i``'s gradient of its own data term ``0.5 r_i^2`` (no mean, no L2) is
        ``[x_i, 1] r_i`` (``per_example_grads`` spells them out; DP-SGD's clipped sum
        needs only ``R``, ``privacy.clipped_outer_sum``)."""
        residual = X @ params[:-1]
        residual += params[-1] - y
        return residual[None, :]

    def per_example_grads(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each row's gradient of its own data term ``0.5 r_i^2`` (no mean, no L2): shape
        (n_samples, n_features + 1), row ``i`` being ``r_i [x_i, 1]`` (their mean plus
        ``reg_grad`` is ``loss_grad``'s gradient)."""
        return _outer_rows(X, self.per_example_factors(params, X, y))

    def reg_grad(self, params: np.ndarray) -> np.ndarray:
        """The gradient of the L2 term alone (the intercept is not penalized)."""
        out = np.zeros_like(params)
        out[:-1] = self.l2 * params[:-1]
        return out

    def grad_flops(self, n_rows: int) -> float:
        """Floating-point operations of one ``loss_grad`` call on ``n_rows`` rows.

        With ``d = n_features_in_`` (one multiply-add = 2 flop): forward ``X @ w + b``
        is ``2 n (d + 1)``; residual, row scaling and the loss dot product about
        ``4 n``; backward ``X' G`` and the intercept sum ``2 n (d + 1)``; the L2 term
        ``2 d``. Total ``4 n (d + 1) + 4 n + 2 d``, affine in ``n_rows``: the count of
        ``LogisticRegression`` with one column.

        Raises
        ------
        ValueError
            If the problem shape is unknown (neither ``init_params`` nor ``fit`` called).

        References
        ----------
        .. [1] J. Kaplan et al., "Scaling Laws for Neural Language Models", 2020,
           Sec. 2.1: ~ 2 flop per parameter per example for each pass.
        """
        self._check_shape_known("n_features_in_", "n_features")
        n, d = n_rows, self.n_features_in_
        return float(4 * n * (d + 1) + 4 * n + 2 * d)

    def activation_nbytes(self, n_rows: int) -> int:
        """Bytes a gradient on ``n_rows`` rows keeps from its forward pass for its backward:
        the scaled residuals ``G``, float64 of shape (n_rows,), which ``X' G`` needs (the
        rows themselves are the caller's)."""
        return 8 * n_rows

    # -------------------------------------------------------------- centralized face

    def predict(self, X, params: np.ndarray | None = None) -> np.ndarray:
        """Predicted targets ``X @ w + b``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        params : ndarray of shape (n_features + 1,), optional
            Defaults to the fitted ``params_``.

        Returns
        -------
        ndarray of shape (n_samples,), float64
        """
        params = self._resolve_params(params)
        X = self._check_predict_X(X)
        w, b = _split(params, X.shape[1])
        if w.shape[1] != 1:
            raise ValueError(
                f"params has size {params.size}; LinearRegression expects "
                f"n_features + 1 = {X.shape[1] + 1}."
            )
        return X @ w[:, 0] + b[0]
