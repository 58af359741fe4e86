"""The pieces of the SMO solver behind :class:`simdml.models.KernelSVM`: kernels, a
cached provider of kernel rows, the binary SMO loop and the bias.

References
----------
R.-E. Fan, P.-H. Chen and C.-J. Lin, "Working Set Selection Using Second Order
Information for Training Support Vector Machines", JMLR 6, 2005 (the pair selection).
C.-C. Chang and C.-J. Lin, "LIBSVM: A Library for Support Vector Machines", ACM TIST 2,
2011 (the bias from the free support vectors, and its fallback).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

TAU = 1e-12  # libsvm's stand-in for a non-positive curvature K_ii + K_jj - 2 K_ij


# ------------------------------------------------------------------------ kernels


def _kernel(A, B, *, kernel: str, gamma: float, degree: int, coef0: float) -> np.ndarray:
    """Kernel matrix ``K[a, b] = k(A[a], B[b])`` of shape (len(A), len(B)).

    ``linear``: ``x.z``; ``rbf``: ``exp(-gamma ||x - z||^2)``; ``poly``:
    ``(gamma x.z + coef0)^degree`` -- scikit-learn's (and libsvm's) definitions.
    """
    dots = A @ B.T
    if kernel == "linear":
        return dots
    if kernel == "poly":
        return _poly(dots, gamma=gamma, degree=degree, coef0=coef0)
    sq_dist = np.einsum("ij,ij->i", A, A)[:, None] + np.einsum("ij,ij->i", B, B)[None, :]
    sq_dist -= 2.0 * dots
    np.maximum(sq_dist, 0.0, out=sq_dist)  # rounding can make a tiny distance negative
    return np.exp(-gamma * sq_dist)


def _kernel_diag(X, *, kernel: str, gamma: float, degree: int, coef0: float) -> np.ndarray:
    """``K[i, i] = k(X[i], X[i])`` for every row, of shape (len(X),)."""
    if kernel == "rbf":
        return np.ones(X.shape[0])
    norms = np.einsum("ij,ij->i", X, X)
    return norms if kernel == "linear" else _poly(norms, gamma=gamma, degree=degree, coef0=coef0)


def _poly(dots, *, gamma: float, degree: int, coef0: float) -> np.ndarray:
    """``(gamma dots + coef0)^degree``; FloatingPointError if a value is beyond float64
    (a high degree of a number above 1), rather than infinities that poison the solver."""
    with np.errstate(over="ignore", invalid="ignore"):
        K = (gamma * dots + coef0) ** degree
    if not np.isfinite(K).all():
        raise FloatingPointError(
            f"the polynomial kernel (gamma x.z + coef0)^degree overflows float64 on these "
            f"data with gamma={gamma:.4g}, coef0={coef0:g}, degree={degree}: lower "
            f"model.degree or model.gamma")
    return K


class _KernelRows:
    """Rows ``K[i, :]`` of one binary problem, computed on demand, cached LRU.

    Holds at most ``cache_bytes // (8 n)`` rows (a row of n float64 is 8n bytes), at
    least one. ``n_evals`` counts kernel entries computed, cache misses only, including
    the diagonal computed up front.
    """

    def __init__(self, X: np.ndarray, cache_bytes: int, kernel_args: dict):
        self.X = X
        self.kernel_args = kernel_args
        self.capacity = max(1, cache_bytes // (8 * X.shape[0]))
        self.cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.diag = _kernel_diag(X, **kernel_args)
        self.n_evals = X.shape[0]
        # perf: the squared norms of an rbf row's distances, once per problem instead of
        # once per row
        self.sq_norms = np.einsum("ij,ij->i", X, X) if kernel_args["kernel"] == "rbf" else None

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """``K[:, idx]`` of shape (n, len(idx)), computed at once, not cached."""
        self.n_evals += self.X.shape[0] * idx.size
        return _kernel(self.X, self.X[idx], **self.kernel_args)

    def _compute(self, i: int) -> np.ndarray:
        if self.sq_norms is None:
            return _kernel(self.X, self.X[i:i + 1], **self.kernel_args)[:, 0]
        sq_dist = self.sq_norms + self.sq_norms[i] - 2.0 * (self.X @ self.X[i])
        np.maximum(sq_dist, 0.0, out=sq_dist)  # rounding can make a tiny distance negative
        return np.exp(-self.kernel_args["gamma"] * sq_dist)

    def row(self, i: int) -> np.ndarray:
        row = self.cache.get(i)
        if row is not None:
            self.cache.move_to_end(i)
            return row
        row = self._compute(i)
        self.n_evals += row.size
        self.cache[i] = row
        if len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
        return row


# ---------------------------------------------------------------------- binary SMO


def _smo(rows: _KernelRows, y: np.ndarray, C: np.ndarray, tol: float, max_iter: int,
         alpha: np.ndarray | None = None):
    """Solve one binary dual by SMO with second-order working-set selection.

    Minimizes ``f(alpha) = 1/2 alpha' Q alpha - sum(alpha)``, ``Q_ij = y_i y_j K_ij``
    (i.e. maximizes ``W = -f``), keeping the gradient ``G = Q alpha - 1`` up to date.
    Each step picks ``i`` maximizing ``-y_i G_i`` over the variables free to go up,
    and ``j`` maximizing the second-order gain ``b_ij^2 / a_ij`` over those free to go
    down (``b_ij = -y_i G_i + y_j G_j > 0``, ``a_ij = K_ii + K_jj - 2 K_ij``), then
    moves along ``alpha_i += y_i t``, ``alpha_j -= y_j t`` (which keeps ``y' alpha``)
    by the clipped Newton step ``t = b_ij / a_ij``. It stops when the maximal KKT
    violation ``m - M`` drops below ``tol``. Ties go to the lowest index.

    Parameters
    ----------
    rows : _KernelRows
        Kernel rows of the n samples of the problem.
    y : ndarray of shape (n,)
        Labels +1 / -1, float64.
    C : ndarray of shape (n,)
        Upper bounds of alpha, >= 0.
    alpha : ndarray of shape (n,), optional
        A feasible start (``0 <= alpha <= C``, ``y' alpha = 0``); zeros by default. Its
        gradient costs one kernel row per non-zero entry.

    Returns
    -------
    alpha : ndarray of shape (n,)
    G : ndarray of shape (n,)
        Gradient of ``f`` at ``alpha``.
    n_iter : int
        Steps taken.
    is_converged : bool

    References
    ----------
    .. [1] J. C. Platt, "Fast Training of Support Vector Machines using Sequential
       Minimal Optimization", in *Advances in Kernel Methods*, MIT Press, 1999.
    .. [2] R.-E. Fan, P.-H. Chen and C.-J. Lin, "Working Set Selection Using Second
       Order Information for Training Support Vector Machines", *JMLR* 6, 2005:
       Algorithm 1 (SMO-type decomposition), WSS 1 (the maximal violating pair and
       the stopping rule) and WSS 2 (the second-order choice of ``j``).
    """
    n = y.size
    G, K_diag = -np.ones(n), rows.diag
    if alpha is None:
        alpha = np.zeros(n)
    else:
        alpha = alpha.copy()
        nz = np.flatnonzero(alpha)  # G = Q alpha - 1: a column of K per non-zero alpha
        G += y * (rows.rows(nz) @ (y[nz] * alpha[nz]))
    is_pos = y > 0
    for n_iter in range(max_iter + 1):
        # 1. the maximal violating pair: m = max over I_up, M = min over I_low of -y G
        minus_yG = -y * G
        below, above = alpha < C, alpha > 0
        is_up = np.where(is_pos, below, above)
        is_low = np.where(is_pos, above, below)
        up_scores = np.where(is_up, minus_yG, -np.inf)
        i = int(np.argmax(up_scores))
        m, M = up_scores[i], np.min(np.where(is_low, minus_yG, np.inf))
        if m - M < tol or n_iter == max_iter:
            return alpha, G, n_iter, bool(m - M < tol)
        # 2. second-order choice of j among the violators in I_low
        K_i = rows.row(i)
        b = m - minus_yG
        a = K_diag[i] + K_diag - 2.0 * K_i
        a[a <= 0] = TAU
        gains = np.where(is_low & (b > 0), b * b / a, -np.inf)
        j = int(np.argmax(gains))
        K_j = rows.row(j)
        # 3. Newton step along (y_i, -y_j), clipped to the box [0, C]
        t = b[j] / a[j]
        room_i = C[i] - alpha[i] if is_pos[i] else alpha[i]
        room_j = alpha[j] if is_pos[j] else C[j] - alpha[j]
        t = min(t, room_i, room_j)
        old_i, old_j = alpha[i], alpha[j]
        alpha[i] = (C[i] if is_pos[i] else 0.0) if t == room_i else old_i + y[i] * t
        alpha[j] = (0.0 if is_pos[j] else C[j]) if t == room_j else old_j - y[j] * t
        # 4. G += Q_i d_i + Q_j d_j, with Q_i = y_i y K_i
        G += y * ((y[i] * (alpha[i] - old_i)) * K_i + (y[j] * (alpha[j] - old_j)) * K_j)
    raise AssertionError("unreachable")  # the loop returns at n_iter == max_iter


def _intercept(alpha: np.ndarray, G: np.ndarray, y: np.ndarray, C: np.ndarray) -> float:
    """Bias ``b`` of ``f(x) = sum_i alpha_i y_i K(x_i, x) + b``, as libsvm sets it.

    A free support vector (``0 < alpha_t < C_t``) satisfies ``y_t f(x_t) = 1``, i.e.
    ``b = -y_t G_t``; ``b`` is their mean. Without one, the midpoint of the interval
    that the bounded variables allow.
    """
    minus_yG = -y * G
    is_free = (alpha > 0) & (alpha < C)
    if is_free.any():
        return float(minus_yG[is_free].mean())
    # KKT without free vectors: -y_t G_t <= b on I_up, b <= -y_t G_t on I_low.
    is_pos, below, above = y > 0, alpha < C, alpha > 0
    lo = np.max(minus_yG[np.where(is_pos, below, above)], initial=-np.inf)
    hi = np.min(minus_yG[np.where(is_pos, above, below)], initial=np.inf)
    bounds = [v for v in (lo, hi) if np.isfinite(v)]
    return float(np.mean(bounds)) if bounds else 0.0
