"""Kernel support vector machine solved by SMO, in numpy, with an operation count.

The binary solver is sequential minimal optimization (SMO) on the dual problem

    maximize    W(alpha) = sum_i alpha_i - 1/2 sum_ij alpha_i alpha_j y_i y_j K_ij
    subject to  0 <= alpha_i <= C_i,  sum_i y_i alpha_i = 0,

choosing each pair of variables by the second-order working-set selection of Fan, Chen
and Lin (2005), as libsvm does. Kernel rows are computed on demand and kept in an LRU
cache of ``cache_bytes``; every kernel entry computed and every SMO step is counted,
so that a strategy can charge the fit to simulated time:
``yield node.compute(model.flops_)``.

Omitted from libsvm, on purpose: shrinking (a speed heuristic that does not change the
solution) and probability estimates.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from simdml._checks import is_integer, is_real
from simdml.models._validation import (
    NotFittedError, _check_class_weight, _check_fitted_X, _check_int, _check_positive,
    _check_sample_weight, _check_X_y, _show, class_weights,
)
from simdml.models._smo import _intercept, _kernel, _KernelRows, _smo

KERNELS = ("linear", "poly", "rbf")
MULTICLASS = ("ovo", "ovr")
# flop per kernel entry beyond the 2d of its dot product: rbf adds ||x||^2 + ||z||^2,
# -2 x.z, times -gamma and one exp; poly scales, shifts and raises to a power.
KERNEL_EXTRA_FLOPS = {"linear": 0, "poly": 3, "rbf": 5}
# flop per sample per SMO step: ~12 to select the pair (masks, -y G, max, min,
# second-order gains) and ~8 to update the gradient G += y (d_i K_i + d_j K_j).
STEP_FLOPS_PER_SAMPLE = 20


def _check_alpha_init(key, alpha, rows, signs, C, n_samples) -> np.ndarray:
    """The warm start of one problem on its rows, checked for feasibility."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.shape != (n_samples,):
        raise ValueError(f"alpha_init[{key}] must have shape ({n_samples},); got {alpha.shape}")
    alpha = alpha[rows]
    box = C[rows]
    if np.any(alpha < 0) or np.any(alpha > box * (1 + 1e-12)):
        raise ValueError(f"alpha_init[{key}] must lie in [0, C] on the problem's rows")
    if abs(signs @ alpha) > 1e-9 * max(1.0, box.sum()):
        raise ValueError(f"alpha_init[{key}] must satisfy sum_i t_i alpha_i = 0; "
                         f"got {signs @ alpha:.3g}")
    return np.minimum(alpha, box)


class ConvergenceWarning(UserWarning):
    """SMO stopped at ``max_iter`` before its KKT violation fell below ``tol``."""


class KernelSVM:
    """Kernel support vector machine trained by SMO, with an operation count.

    Each binary problem is the soft-margin SVM dual (see the module docstring), solved
    by SMO with second-order working-set selection [2]_; the decision function is
    ``f(x) = sum_i alpha_i y_i K(x_i, x) + b``.

    Multiclass, ``"ovo"`` (default, as in libsvm): one binary problem per pair of
    classes ``(c, c')``, ``c < c'``, in lexicographic order, trained on those two
    classes only, with ``c'`` as +1; ``predict`` takes a vote, ties going to the lower
    class. Why: SMO's work grows faster than linearly with the problem size, so
    ``k(k-1)/2`` problems on ``2n/k`` samples each cost less than ``k`` problems on all
    ``n`` [3]_. ``"ovr"``: class ``c`` (+1) against the rest, one problem per class;
    ``predict`` takes the largest score. Two classes make one problem either way, with
    ``classes_[1]`` as +1.

    Parameters
    ----------
    C : float, default=1.0
        Box constraint, > 0: the cost of a margin violation.
    kernel : {"rbf", "linear", "poly"}, default="rbf"
    gamma : "scale" or float, default="scale"
        Kernel width of ``rbf`` and scale of ``poly``. ``"scale"`` is
        ``1 / (n_features * X.var())`` over all entries of the training ``X`` (1 if
        that variance is 0), as in scikit-learn. It depends on the data: to fit
        subsets with one kernel (a cascade SVM), pass a float.
    degree : int, default=3
        Degree of ``poly``, >= 1.
    coef0 : float, default=0.0
        Constant of ``poly``, finite.
    tol : float, default=1e-3
        Stop when the maximal KKT violation ``m - M`` is below ``tol`` (libsvm's
        ``eps``); then every training margin satisfies the KKT conditions to ``tol``.
    max_iter : int, default=100_000
        SMO steps per binary problem, >= 1; hitting it warns ``ConvergenceWarning``.
    cache_bytes : int, default=64 MiB
        Kernel-row cache per binary problem, at least one row (8 bytes per sample).
        A smaller cache gives the same solution with more kernel evaluations.
    multiclass : {"ovo", "ovr"}, default="ovo"
    class_weight : None, "balanced" or dict, default=None
        Weights per class index (in the order of the sorted labels): class c's rows get
        the box ``C * w_c``, as libsvm's ``-wi``; ``"balanced"`` is ``n / (k n_c)``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    gamma_ : float
        The ``gamma`` used (``"scale"`` resolved).
    support_ : ndarray of shape (n_SV,)
        Sorted training-row indices of the support vectors of any problem.
    support_vectors_ : ndarray of shape (n_SV, n_features)
    support_labels_ : ndarray of shape (n_SV,)
        Their labels ``y[support_]``: what a cascade SVM passes on.
    n_support_ : ndarray of shape (n_classes,)
        Support vectors per class.
    dual_coef_ : ndarray of shape (n_problems, n_SV)
        ``alpha_i y_i`` of each problem (0 where a vector is not one of its SVs).
        Not scikit-learn's compressed one-vs-one layout.
    intercept_ : ndarray of shape (n_problems,)
    dual_objective_ : ndarray of shape (n_problems,)
        ``W(alpha) = sum_i alpha_i - 1/2 alpha' Q alpha`` at the solution, the dual
        maximum (> 0); ``W`` equals the primal ``1/2 ||w||^2 + sum_i C_i hinge_i`` at
        the optimum. libsvm prints ``obj = -W``.
    n_iter_ : ndarray of shape (n_problems,)
        SMO steps per problem.
    problem_keys_ : list of tuple
        Each problem's key, in the order of ``dual_coef_``: ``(c, c')`` labels for a
        one-vs-one pair (and for two classes), ``(c,)`` for one-vs-rest.
    n_kernel_evals_ : int
        Kernel entries computed (cache misses and diagonals), all problems.
    flops_ : float
        Operation count of the fit: ``(2 d + c_kernel) * n_kernel_evals_ +
        20 * sum_p n_p * n_iter_[p]``, with ``d = n_features``, ``n_p`` the samples of
        problem ``p``, ``c_kernel`` 0 (linear), 3 (poly) or 5 (rbf; exp and power count
        as one flop each) and ~20 flop per sample per SMO step (pair selection and
        gradient update). For ``yield node.compute(model.flops_)``.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
    >>> KernelSVM(kernel="linear").fit(X, y).predict(X)
    array([0, 0, 1, 1])

    References
    ----------
    .. [1] C. Cortes and V. Vapnik, "Support-Vector Networks", *Machine Learning* 20,
       1995: the soft-margin dual.
    .. [2] R.-E. Fan, P.-H. Chen and C.-J. Lin, "Working Set Selection Using Second
       Order Information for Training Support Vector Machines", *JMLR* 6, 2005.
    .. [3] C.-W. Hsu and C.-J. Lin, "A Comparison of Methods for Multiclass Support
       Vector Machines", *IEEE Trans. Neural Networks* 13(2), 2002.
    .. [4] C.-C. Chang and C.-J. Lin, "LIBSVM: A Library for Support Vector Machines",
       *ACM TIST* 2(3), 2011, Sec. 4.1 (stopping, bias) and 7 (multiclass).
    """

    is_classifier = True
    score_name = "accuracy"

    def __init__(self, *, C: float = 1.0, kernel: str = "rbf", gamma: str | float = "scale",
                 degree: int = 3, coef0: float = 0.0, tol: float = 1e-3,
                 max_iter: int = 100_000, cache_bytes: int = 64 * 2**20,
                 multiclass: str = "ovo", class_weight=None):
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.tol = tol
        self.max_iter = max_iter
        self.cache_bytes = cache_bytes
        self.multiclass = multiclass
        self.class_weight = class_weight

    def validate_params(self, n_samples: int | None = None) -> None:
        """Check the hyper-parameters; ``cache_bytes`` against one kernel row of
        ``n_samples`` when it is known."""
        name = type(self).__name__
        _check_positive(self, "C", self.C)
        for param, allowed in (("kernel", KERNELS), ("multiclass", MULTICLASS)):
            if getattr(self, param) not in allowed:
                raise ValueError(f"The {param!r} parameter of {name} must be one of "
                                 f"{', '.join(map(repr, allowed))}. "
                                 f"Got {_show(getattr(self, param))} instead.")
        if not (isinstance(self.gamma, str) and self.gamma == "scale"):
            if not (is_real(self.gamma) and np.isfinite(self.gamma) and self.gamma > 0):
                raise ValueError(f"The 'gamma' parameter of {name} must be 'scale' or a real "
                                 f"number > 0. Got {_show(self.gamma)} instead.")
        _check_int(self, "degree", self.degree, low=1)
        if not (is_real(self.coef0) and np.isfinite(self.coef0)):
            raise ValueError(f"The 'coef0' parameter of {name} must be a finite real number. "
                             f"Got {_show(self.coef0)} instead.")
        _check_positive(self, "tol", self.tol)
        _check_int(self, "max_iter", self.max_iter, low=1)
        _check_class_weight(self, self.class_weight)
        row_nbytes = 8 * (n_samples or 1)
        if not (is_integer(self.cache_bytes) and self.cache_bytes >= row_nbytes):
            raise ValueError(f"The 'cache_bytes' parameter of {name} must be an int >= "
                             f"{row_nbytes} (one kernel row: 8 bytes x {n_samples} samples). "
                             f"Got {_show(self.cache_bytes)} instead.")

    def fit(self, X, y, sample_weight=None, *, alpha_init: dict | None = None):
        """Solve one binary SMO problem per pair of classes (or per class).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Integer class labels, at least two distinct values.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative; row ``i`` gets the box ``C * sample_weight[i]``, as in libsvm.
        alpha_init : dict, optional
            A warm start: problem key (see ``problem_keys_``) -> ``alpha`` of shape
            (n_samples,) over the rows of ``X`` (0 for rows outside the problem). Each
            must be feasible -- ``0 <= alpha_i <= C_i`` and ``sum_i t_i alpha_i = 0``
            over the problem's rows -- else ValueError. A problem without a key starts
            from zero. The solution is the same (to ``tol``); the work is less when the
            start is close (a cascade SVM warm-starts its merges this way).

        Returns
        -------
        self
        """
        X, y = _check_X_y(X, y)
        self.validate_params(X.shape[0])
        C = np.full(X.shape[0], float(self.C))
        if sample_weight is not None:
            C *= _check_sample_weight(sample_weight, X.shape[0])
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"y must hold at least 2 classes; got only {classes.tolist()}.")
        if self.class_weight is not None:  # libsvm's -wi: class c's box is C * w_c
            C *= class_weights(self.class_weight, np.bincount(y_index))[y_index]
        if isinstance(self.gamma, str):  # "scale", as in scikit-learn
            variance = X.var()
            self.gamma_ = 1.0 / (X.shape[1] * variance) if variance > 0 else 1.0
        else:
            self.gamma_ = float(self.gamma)
        self._kernel_args = dict(kernel=self.kernel, gamma=self.gamma_, degree=self.degree,
                                 coef0=float(self.coef0))
        self.classes_, self.n_features_in_ = classes, X.shape[1]
        self._is_ovr = classes.size > 2 and self.multiclass == "ovr"  # predict's rule
        self.problem_keys_ = []
        solutions = []
        for key, rows, signs in self._problems(y_index, classes.size):
            start = None if alpha_init is None or key not in alpha_init else \
                _check_alpha_init(key, alpha_init[key], rows, signs, C, X.shape[0])
            solutions.append(self._solve(X[rows], signs, C[rows], start) + (rows,))
            self.problem_keys_.append(key)
        self._collect(X, y, solutions)
        return self

    def _problems(self, y_index: np.ndarray, n_classes: int):
        """Yield ``(key, rows, signs)`` per binary problem: its key (class labels),
        training rows and their +1 / -1."""
        labels = [self.classes_[c].item() for c in range(n_classes)]
        if not self._is_ovr:
            for c, c_pos in itertools.combinations(range(n_classes), 2):
                rows = np.flatnonzero((y_index == c) | (y_index == c_pos))
                yield (labels[c], labels[c_pos]), rows, np.where(y_index[rows] == c_pos, 1.0, -1.0)
        else:
            for c in range(n_classes):
                yield (labels[c],), np.arange(y_index.size), np.where(y_index == c, 1.0, -1.0)

    def _solve(self, X: np.ndarray, y: np.ndarray, C: np.ndarray, alpha=None) -> tuple:
        """One binary problem: ``(alpha * y, b, W(alpha), n_iter, n_kernel_evals)``."""
        rows = _KernelRows(X, self.cache_bytes, self._kernel_args)
        alpha, G, n_iter, is_converged = _smo(rows, y, C, self.tol, self.max_iter, alpha)
        if not is_converged:
            warnings.warn(f"{type(self).__name__}: SMO stopped at max_iter={self.max_iter} "
                          f"with a KKT violation above tol={self.tol}; raise max_iter or tol.",
                          ConvergenceWarning, stacklevel=3)
        dual_objective = 0.5 * (alpha.sum() - alpha @ G)  # W = e'a - 1/2 a'(G + e)
        return alpha * y, _intercept(alpha, G, y, C), dual_objective, n_iter, rows.n_evals

    def _collect(self, X: np.ndarray, y: np.ndarray, solutions: list) -> None:
        """Set the fitted attributes from the per-problem ``_solve`` results + rows."""
        is_sv = np.zeros(X.shape[0], dtype=bool)
        for coef, *_, rows in solutions:
            is_sv[rows[coef != 0]] = True
        self.support_ = np.flatnonzero(is_sv)
        self.support_vectors_ = X[self.support_]
        self.support_labels_ = y[self.support_]
        self.n_support_ = np.array([np.sum(self.support_labels_ == c) for c in self.classes_])
        column = np.cumsum(is_sv) - 1  # training row -> column of dual_coef_
        self.dual_coef_ = np.zeros((len(solutions), self.support_.size))
        for p, (coef, *_, rows) in enumerate(solutions):
            self.dual_coef_[p, column[rows[coef != 0]]] = coef[coef != 0]
        self.intercept_ = np.array([s[1] for s in solutions])
        self.dual_objective_ = np.array([s[2] for s in solutions])
        self.n_iter_ = np.array([s[3] for s in solutions])
        self.n_kernel_evals_ = int(sum(s[4] for s in solutions))
        row_flops = 2 * X.shape[1] + KERNEL_EXTRA_FLOPS[self.kernel]
        step_flops = STEP_FLOPS_PER_SAMPLE * sum(s[3] * s[5].size for s in solutions)
        self.flops_ = float(row_flops * self.n_kernel_evals_ + step_flops)

    # ------------------------------------------------------------------- prediction

    def _check_fitted_X(self, X) -> np.ndarray:
        return _check_fitted_X(self, X, "dual_coef_")

    def decision_function(self, X) -> np.ndarray:
        """Scores ``f_p(x) = sum_i dual_coef_[p, i] K(sv_i, x) + intercept_[p]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) for two classes (> 0 means ``classes_[1]``);
        (n_samples, n_classes * (n_classes - 1) / 2) for ``"ovo"``, one column per pair
        ``(c, c')`` in lexicographic order (> 0 means ``c'``); (n_samples, n_classes)
        for ``"ovr"``.
        """
        X = self._check_fitted_X(X)
        K = _kernel(X, self.support_vectors_, **self._kernel_args)
        scores = K @ self.dual_coef_.T + self.intercept_
        return scores[:, 0] if self.classes_.size == 2 else scores

    def predict(self, X) -> np.ndarray:
        """Class labels: the sign for two classes, else the one-vs-one vote or the
        one-vs-rest argmax (ties to the lower class).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        k = self.classes_.size
        if k == 2:
            return self.classes_[(scores > 0).astype(int)]
        if self._is_ovr:
            return self.classes_[np.argmax(scores, axis=1)]
        votes = np.zeros((scores.shape[0], k), dtype=np.int64)
        for p, (c, c_pos) in enumerate(itertools.combinations(range(k), 2)):
            wins = scores[:, p] > 0
            votes[:, c_pos] += wins
            votes[:, c] += ~wins
        return self.classes_[np.argmax(votes, axis=1)]

    def score(self, X, y) -> float:
        """Accuracy: the fraction of rows whose predicted label equals ``y``."""
        X, y = _check_X_y(X, y)
        return float(np.mean(self.predict(X) == y))

    def class_scores(self, X) -> np.ndarray:
        """One score per class, larger is likelier: what soft voting averages.

        Two classes: ``(-f, f)``; ``"ovr"``: the decision function; ``"ovo"``: for
        class ``c``, the sum of its pairwise scores, each signed towards ``c`` (a vote
        weighted by its margin).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        scores = self.decision_function(X)
        k = self.classes_.size
        if k == 2:
            return np.column_stack([-scores, scores])
        if self._is_ovr:
            return scores
        out = np.zeros((scores.shape[0], k))
        for p, (c, c_pos) in enumerate(itertools.combinations(range(k), 2)):
            out[:, c_pos] += scores[:, p]
            out[:, c] -= scores[:, p]
        return out

    def primal_objective(self, X, y) -> np.ndarray:
        """The primal objective of each binary problem on the rows ``(X, y)``:
        ``1/2 ||w_p||^2 + C sum_i max(0, 1 - t_i f_p(x_i))`` over the rows of the
        problem's classes (``t_i = +1`` for its positive class).

        On the training set at the solution it equals ``dual_objective_`` up to the
        tolerance (strong duality): the gap measures how far from optimal a model is,
        e.g. the top of a cascade SVM against the whole training set.

        Returns
        -------
        ndarray of shape (n_problems,)
        """
        X = self._check_fitted_X(X)
        y = np.asarray(y)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"y holds labels the model was not fitted on: "
                             f"{np.unique(y[unknown]).tolist()}; classes_ = {self.classes_.tolist()}")
        K_sv = _kernel(self.support_vectors_, self.support_vectors_, **self._kernel_args)
        half_norms = 0.5 * np.einsum("pi,ij,pj->p", self.dual_coef_, K_sv, self.dual_coef_)
        K = _kernel(X, self.support_vectors_, **self._kernel_args)
        scores = K @ self.dual_coef_.T + self.intercept_
        y_index = np.searchsorted(self.classes_, y)
        hinge = [np.maximum(0.0, 1.0 - signs * scores[rows, p]).sum()
                 for p, (_, rows, signs) in enumerate(self._problems(y_index, self.classes_.size))]
        return half_norms + float(self.C) * np.array(hinge)

    def training_loss(self, X, y) -> float:
        """The sum of the problems' primal objectives on ``(X, y)``: the ``loss`` a
        run's history records for a kernel SVM."""
        return float(self.primal_objective(X, y).sum())

    def support_alpha(self) -> dict:
        """Problem key -> ``alpha`` over the support vectors (``|dual_coef_|``), shape
        (n_SV,): with ``support_vectors_``, a warm start for a fit on a superset."""
        return {key: np.abs(coef) for key, coef in zip(self.problem_keys_, self.dual_coef_)}

    @property
    def nbytes(self) -> int:
        """Bytes of the fitted model on the wire: support vectors, dual coefficients
        and intercepts (float64)."""
        return int(self.support_vectors_.nbytes + self.dual_coef_.nbytes + self.intercept_.nbytes)

    def predict_flops(self, n_rows: int) -> float:
        """Operation count of ``decision_function`` on ``n_rows`` rows.

        ``n_rows * n_SV * (2 d + c_kernel)`` for the kernel matrix and
        ``2 * n_rows * n_SV * n_problems`` for its product with ``dual_coef_``.
        """
        if not hasattr(self, "dual_coef_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(X, y) first.")
        n_problems, n_sv = self.dual_coef_.shape
        row_flops = 2 * self.n_features_in_ + KERNEL_EXTRA_FLOPS[self._kernel_args["kernel"]]
        return float(n_rows * n_sv * (row_flops + 2 * n_problems))
