"""Contracts of KernelSVM: an optimal dual (KKT, duality gap, naive reference), a cache
that changes the cost but not the answer, accuracies on the bundled datasets, clear errors.

The accuracy thresholds are scikit-learn's SVC (libsvm) test accuracies with the same
C, kernel and gamma on the same split -- iris 0.897 (35/39), wine 0.978 (44/45),
breast_cancer 0.965 (137/142), digits 0.982 (443/451) -- less one or two test rows,
about a point on the larger sets (one row of iris is 2.6 points).
"""

import math
import re
import warnings

import numpy as np
import pytest

from simdml.data import load, standardize, train_test_split
from simdml.models import NotFittedError
from simdml.models import _smo
from simdml.models.kernel_svm import ConvergenceWarning, KernelSVM


def _blobs(seed=0, n_samples=40, n_features=2, shift=1.0):
    """A small overlapping binary problem: labels 0 / 1, class 1 shifted by ``shift``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % 2
    X = rng.normal(size=(n_samples, n_features)) + shift * y[:, None]
    return X, y


def _alphas(model, n_samples):
    """alpha_i y_i of a binary fit, as a dense vector over the training rows."""
    coef = np.zeros(n_samples)
    coef[model.support_] = model.dual_coef_[0]
    return coef


# ------------------------------------------------------------------ optimality


@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly"])
@pytest.mark.parametrize("is_weighted", [False, True])
def test_kkt_conditions_hold_at_the_solution(kernel, is_weighted):
    """At the solution 0 <= alpha <= C_i, sum alpha y = 0, and every margin meets KKT to tol."""
    X, y = _blobs()
    C = 2.0 * (np.random.default_rng(1).uniform(0.2, 2.0, size=y.size) if is_weighted else 1)
    tol = 1e-3
    model = KernelSVM(C=2.0, kernel=kernel, coef0=1.0, tol=tol)
    model.fit(X, y, sample_weight=C / 2.0 if is_weighted else None)
    signed = _alphas(model, y.size)
    alpha, t = np.abs(signed), np.where(y == 1, 1.0, -1.0)
    assert np.all(np.sign(signed[alpha > 0]) == t[alpha > 0])
    assert np.all(alpha >= 0) and np.all(alpha <= C)
    assert abs(signed.sum()) <= 1e-10
    margin = t * model.decision_function(X)
    is_zero, is_upper = alpha == 0, alpha == C
    is_free = ~is_zero & ~is_upper
    assert is_free.any() and is_upper.any()
    assert np.all(margin[is_zero] >= 1 - tol)
    assert np.all(np.abs(margin[is_free] - 1) <= tol)
    assert np.all(margin[is_upper] <= 1 + tol)


def test_linear_dual_objective_equals_primal_objective():
    """Linear kernel: the primal 1/2 ||w||^2 + C sum hinge at (w, b) equals the dual W (no gap)."""
    X, y = _blobs(seed=3, n_samples=20)
    C = 0.5
    model = KernelSVM(C=C, kernel="linear", tol=1e-9).fit(X, y)
    w = model.dual_coef_[0] @ model.support_vectors_
    t = np.where(y == 1, 1.0, -1.0)
    hinge = np.maximum(0.0, 1.0 - t * (X @ w + model.intercept_[0]))
    primal = 0.5 * w @ w + C * hinge.sum()
    dual = model.dual_objective_[0]
    # weak duality: primal(any w, b) >= optimum >= dual(any feasible alpha)
    assert 0 <= primal - dual <= 1e-7 * primal


def _naive_smo(K, t, C, tol):
    """Reference with Python loops: Platt's pair update on the maximal violating pair,
    with the gradient recomputed from scratch each step. Returns (alpha, W).

    Like Platt's, it snaps an alpha within 1e-12 of a bound onto it: ``C - 2e-16`` would
    stay "free to grow" and be selected forever with no room to move.
    """
    n = len(t)
    alpha = [0.0] * n
    while True:
        G = [t[i] * sum(alpha[j] * t[j] * K[i][j] for j in range(n)) - 1 for i in range(n)]
        up = [k for k in range(n) if (alpha[k] < C if t[k] > 0 else alpha[k] > 0)]
        low = [k for k in range(n) if (alpha[k] > 0 if t[k] > 0 else alpha[k] < C)]
        i = max(up, key=lambda k: -t[k] * G[k])
        j = min(low, key=lambda k: -t[k] * G[k])
        if -t[i] * G[i] + t[j] * G[j] < tol:
            return alpha, sum(alpha) - 0.5 * sum(a * (g + 1) for a, g in zip(alpha, G))
        eta = K[i][i] + K[j][j] - 2 * K[i][j]
        if t[i] != t[j]:
            low_j, high_j = max(0.0, alpha[j] - alpha[i]), min(C, C + alpha[j] - alpha[i])
        else:
            low_j, high_j = max(0.0, alpha[i] + alpha[j] - C), min(C, alpha[i] + alpha[j])
        new_j = alpha[j] + t[j] * (t[i] * G[i] - t[j] * G[j]) / eta
        new_j = min(max(new_j, low_j), high_j)
        alpha[i] += t[i] * t[j] * (alpha[j] - new_j)
        alpha[j] = new_j
        for k in (i, j):
            alpha[k] = 0.0 if alpha[k] < 1e-12 else C if alpha[k] > C - 1e-12 else alpha[k]


def test_rbf_solution_matches_naive_reference_smo():
    """RBF kernel: alpha and the dual objective equal those of a naive Python-loop SMO."""
    X, y = _blobs(seed=5, n_samples=20)
    gamma, C = 0.7, 1.5
    K = [[math.exp(-gamma * sum((a - b) ** 2 for a, b in zip(u, v))) for v in X] for u in X]
    t = [1.0 if label == 1 else -1.0 for label in y]
    alpha, W = _naive_smo(K, t, C, tol=1e-10)
    model = KernelSVM(C=C, gamma=gamma, tol=1e-10).fit(X, y)
    np.testing.assert_allclose(np.abs(_alphas(model, y.size)), alpha, rtol=0, atol=1e-7)
    assert model.dual_objective_[0] == pytest.approx(W, rel=1e-10)


def test_linear_kernel_recovers_the_max_margin_separator():
    """Separable 2-D data: w = sum alpha_i y_i x_i is the known max-margin normal, b = 0."""
    u, v = np.array([0.6, 0.8]), np.array([-0.8, 0.6])  # unit normal and direction
    on_margin = [(1, -1.0), (1, 2.0), (-1, -2.0), (-1, 1.0)]  # (side, position along v)
    far = [(1, 0.5, 2.0), (1, -3.0, 1.5), (-1, 0.0, 3.0), (-1, 2.5, 1.2)]  # side, pos, extra
    X = np.array([s * u + p * v for s, p in on_margin] + [s * (1 + e) * u + p * v
                                                          for s, p, e in far])
    y = np.array([s for s, _ in on_margin] + [s for s, _, _ in far])
    model = KernelSVM(C=1e3, kernel="linear", tol=1e-10).fit(X, y)
    w = model.dual_coef_[0] @ model.support_vectors_
    np.testing.assert_allclose(w, u, atol=1e-8)  # margin 1 / ||w|| = 1
    assert model.intercept_[0] == pytest.approx(0.0, abs=1e-8)
    assert model.support_.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(model.predict(X), y)


def test_refit_on_support_vectors_gives_the_same_model():
    """Fitting on (support_vectors_, support_labels_) with gamma_ reproduces the decision
    function: non-support vectors do not matter, the property a cascade SVM relies on."""
    X, y = _blobs(seed=2, n_samples=60, n_features=3)
    y = y + (X[:, 2] > 1)  # three classes
    model = KernelSVM(tol=1e-8).fit(X, y)
    np.testing.assert_array_equal(model.support_vectors_, X[model.support_])
    np.testing.assert_array_equal(model.support_labels_, y[model.support_])
    assert model.n_support_.sum() == model.support_.size < y.size
    again = KernelSVM(gamma=model.gamma_, tol=1e-8).fit(model.support_vectors_,
                                                        model.support_labels_)
    np.testing.assert_allclose(again.decision_function(X), model.decision_function(X),
                               atol=1e-6)
    np.testing.assert_allclose(again.dual_objective_, model.dual_objective_, rtol=1e-9)


# ------------------------------------------------------------------- sample weights


def test_zero_weight_equals_removing_the_row_and_weight_two_equals_a_copy():
    """sample_weight scales C per row: weight 0 drops a row, weight 2 equals two copies."""
    X, y = _blobs(seed=4, n_samples=30)
    weights = np.ones(30)
    weights[[3, 8]] = 0.0
    weights[[5, 6]] = 2.0
    keep = weights > 0
    grid = np.random.default_rng(9).normal(size=(50, 2))
    weighted = KernelSVM(gamma=0.5, tol=1e-10).fit(X, y, sample_weight=weights)
    rows = np.concatenate([np.flatnonzero(keep), [5, 6]])
    copied = KernelSVM(gamma=0.5, tol=1e-10).fit(X[rows], y[rows])
    np.testing.assert_allclose(weighted.decision_function(grid), copied.decision_function(grid),
                               atol=1e-7)
    assert weighted.dual_objective_[0] == pytest.approx(copied.dual_objective_[0], rel=1e-9)


# ------------------------------------------------------------------------ the cache


def test_tiny_cache_gives_the_same_solution_at_more_kernel_evaluations():
    """A one-row cache changes only the cost: identical alphas, more kernel evaluations."""
    X, y = _blobs(seed=6, n_samples=80)
    big = KernelSVM().fit(X, y)
    tiny = KernelSVM(cache_bytes=8 * 80).fit(X, y)
    np.testing.assert_array_equal(tiny.dual_coef_, big.dual_coef_)
    np.testing.assert_array_equal(tiny.intercept_, big.intercept_)
    np.testing.assert_array_equal(tiny.n_iter_, big.n_iter_)
    assert tiny.n_kernel_evals_ > big.n_kernel_evals_
    assert tiny.flops_ > big.flops_


def test_big_cache_computes_each_kernel_row_at_most_once(monkeypatch):
    """With a cache that holds every row, no kernel row is computed twice in a problem."""
    X, y = _blobs(seed=7, n_samples=80)
    computed = []
    original = _smo._KernelRows._compute

    def spy(self, i):
        computed.append((id(self), i, self))  # holding self keeps the ids unique
        return original(self, i)

    monkeypatch.setattr(_smo._KernelRows, "_compute", spy)
    model = KernelSVM(cache_bytes=8 * 80 * 80).fit(X, y)
    keys = [c[:2] for c in computed]
    assert len(keys) == len(set(keys)) > 1
    assert model.n_kernel_evals_ == 80 * (1 + len(computed))  # the diagonal, then rows
    computed.clear()
    KernelSVM(cache_bytes=8 * 80).fit(X, y)
    keys = [c[:2] for c in computed]
    assert len(keys) > len(set(keys))


def test_flops_follow_the_documented_formula():
    """flops_ = (2 d + c_kernel) n_kernel_evals_ + 20 sum_p n_p n_iter_p (ovo problems)."""
    X, y = _blobs(seed=8, n_samples=45, n_features=3)
    y = y + 2 * (X[:, 0] > 0.5)  # four classes, six pairwise problems
    for kernel, extra in [("linear", 0), ("poly", 3), ("rbf", 5)]:
        model = KernelSVM(kernel=kernel).fit(X, y)
        counts = np.bincount(y)
        sizes = [counts[a] + counts[b] for a in range(4) for b in range(a + 1, 4)]
        expected = (6 + extra) * model.n_kernel_evals_ + 20 * np.dot(sizes, model.n_iter_)
        assert model.flops_ == pytest.approx(expected, rel=1e-15)
        assert model.predict_flops(10) == 10 * model.support_.size * (6 + extra + 2 * 6)


# -------------------------------------------------------------- bundled datasets


@pytest.fixture(scope="module")
def splits():
    """Each bundled dataset split (seed 0, 25 % test) and standardized with train stats."""
    out = {}
    for name in ("iris", "wine", "breast_cancer", "digits"):
        ds = load(name)
        X_tr, X_te, y_tr, y_te = train_test_split(ds.X, ds.y, rng=np.random.default_rng(0))
        X_tr, X_te = standardize(X_tr, X_te)
        out[name] = X_tr, X_te, y_tr, y_te
    return out


@pytest.mark.parametrize("name, threshold", [
    ("iris", 0.87), ("wine", 0.95), ("breast_cancer", 0.95), ("digits", 0.97),
])
def test_accuracy_on_bundled_datasets_matches_libsvm(splits, name, threshold):
    """Default (RBF) KernelSVM is within a test row or two of libsvm's accuracy."""
    X_tr, X_te, y_tr, y_te = splits[name]
    model = KernelSVM().fit(X_tr, y_tr)
    assert model.score(X_te, y_te) >= threshold
    assert np.all(model.dual_objective_ > 0)


def test_one_vs_rest_is_accurate_and_scores_one_column_per_class(splits):
    """multiclass='ovr' solves one problem per class and is as accurate on wine."""
    X_tr, X_te, y_tr, y_te = splits["wine"]
    ovr = KernelSVM(multiclass="ovr").fit(X_tr, y_tr)
    ovo = KernelSVM().fit(X_tr, y_tr)
    assert ovr.decision_function(X_te).shape == (y_te.size, 3) == ovo.decision_function(X_te).shape
    assert ovr.dual_coef_.shape[0] == 3 and ovr.score(X_te, y_te) >= 0.95
    assert KernelSVM().fit(*splits["iris"][::2]).dual_coef_.shape[0] == 3  # iris: 3 pairs


# ----------------------------------------------------------- the estimator's face


def test_fit_returns_self_stores_arguments_and_is_deterministic():
    """__init__ stores its keyword arguments as given; fitting twice gives identical results."""
    model = KernelSVM(C="anything", kernel=3)
    assert (model.C, model.kernel) == ("anything", 3)
    with pytest.raises(TypeError):
        KernelSVM(1.0)
    X, y = _blobs(seed=10)
    model = KernelSVM()
    assert model.fit(X, y) is model
    again = KernelSVM().fit(X, y)
    np.testing.assert_array_equal(model.dual_coef_, again.dual_coef_)
    np.testing.assert_array_equal(model.intercept_, again.intercept_)


def test_binary_labels_and_gamma_scale():
    """Any two labels: decision > 0 means classes_[1]; gamma='scale' is 1 / (d X.var())."""
    X, y01 = _blobs(seed=11, n_features=3)
    y = np.where(y01 == 1, 7, 3)
    model = KernelSVM().fit(X, y)
    np.testing.assert_array_equal(model.classes_, [3, 7])
    scores = model.decision_function(X)
    assert scores.shape == (y.size,)
    np.testing.assert_array_equal(model.predict(X), np.where(scores > 0, 7, 3))
    assert model.gamma_ == 1 / (3 * X.var())
    assert model.score(X, y) == np.mean(model.predict(X) == y)


def test_max_iter_reached_warns():
    """Stopping at max_iter before tol is reached warns with ConvergenceWarning."""
    X, y = _blobs(seed=12)
    with pytest.warns(ConvergenceWarning, match=r"^KernelSVM: SMO stopped at max_iter=2 "):
        model = KernelSVM(max_iter=2).fit(X, y)
    assert model.n_iter_.tolist() == [2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KernelSVM().fit(X, y)


_BAD_PARAMS = [
    ({"C": 0}, "The 'C' parameter of KernelSVM must be > 0. Got 0 instead."),
    ({"C": -1}, "The 'C' parameter of KernelSVM must be > 0. Got -1 instead."),
    ({"kernel": "sigmoid"}, "The 'kernel' parameter of KernelSVM must be one of 'linear', "
                            "'poly', 'rbf'. Got 'sigmoid' instead."),
    ({"gamma": 0}, "The 'gamma' parameter of KernelSVM must be 'scale' or a real number > 0. "
                   "Got 0 instead."),
    ({"gamma": "auto"}, "The 'gamma' parameter of KernelSVM must be 'scale' or a real "
                        "number > 0. Got 'auto' instead."),
    ({"degree": 0}, "The 'degree' parameter of KernelSVM must be an int >= 1. Got 0 instead."),
    ({"coef0": float("nan")}, "The 'coef0' parameter of KernelSVM must be a finite real "
                              "number. Got nan instead."),
    ({"tol": 0}, "The 'tol' parameter of KernelSVM must be > 0. Got 0 instead."),
    ({"max_iter": 0}, "The 'max_iter' parameter of KernelSVM must be an int >= 1. "
                      "Got 0 instead."),
    ({"cache_bytes": 100}, "The 'cache_bytes' parameter of KernelSVM must be an int >= 320 "
                           "(one kernel row: 8 bytes x 40 samples). Got 100 instead."),
    ({"multiclass": "crammer"}, "The 'multiclass' parameter of KernelSVM must be one of "
                                "'ovo', 'ovr'. Got 'crammer' instead."),
]


@pytest.mark.parametrize("kwargs, message", _BAD_PARAMS)
def test_invalid_parameters_raise_in_fit(kwargs, message):
    """__init__ stores anything; fit rejects each invalid parameter, naming value and rule."""
    X, y = _blobs()
    model = KernelSVM(**kwargs)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        model.fit(X, y)


def test_data_errors_and_predict_before_fit():
    """predict before fit, one class, bad weights and a wrong feature count say what is wrong."""
    X, y = _blobs()
    with pytest.raises(NotFittedError, match=r"^KernelSVM is not fitted yet; call fit\(X, y\) "
                       r"first[.]$"):
        KernelSVM().predict(X)
    with pytest.raises(ValueError, match=r"^y must hold at least 2 classes; got only \[0\][.]$"):
        KernelSVM().fit(X, np.zeros(40, dtype=int))
    with pytest.raises(ValueError, match=r"^sample_weight must have shape \(40,\); got \(3,\)"):
        KernelSVM().fit(X, y, sample_weight=np.ones(3))
    model = KernelSVM().fit(X, y)
    with pytest.raises(ValueError, match="^X has 1 features, but KernelSVM is expecting 2 "
                       "features[.]$"):
        model.predict(X[:, :1])


@pytest.mark.parametrize("multiclass", ["ovo", "ovr"])
@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_primal_objective_equals_dual_at_the_solution(kernel, multiclass):
    """Weak and strong duality: on its training set the primal objective of each problem
    is above its dual_objective_, by at most the gap a KKT violation of tol allows
    (tol * C per row of the problem)."""
    d = load("wine")
    X = (d.X - d.X.mean(axis=0)) / d.X.std(axis=0)
    model = KernelSVM(kernel=kernel, multiclass=multiclass, tol=1e-4, max_iter=10**6).fit(X, d.y)
    gap = model.primal_objective(X, d.y) - model.dual_objective_
    n_rows = [rows.size for _, rows, _ in model._problems(np.searchsorted(model.classes_, d.y), 3)]
    assert np.all(gap >= -1e-9) and np.all(gap <= 1e-4 * model.C * np.array(n_rows))
    assert model.training_loss(X, d.y) == pytest.approx(model.primal_objective(X, d.y).sum())
    with pytest.raises(ValueError, match=r"y holds labels the model was not fitted on: \[7\]"):
        model.primal_objective(X[:1], [7])


@pytest.mark.parametrize("multiclass", ["ovo", "ovr"])
def test_class_scores_rank_the_predicted_class_first(multiclass):
    """class_scores is (n, k) and its argmax is predict's class (ovr exactly; ovo mostly:
    summed margins are not counted votes), and nbytes counts the fitted arrays."""
    d = load("iris")
    model = KernelSVM(multiclass=multiclass).fit(d.X, d.y)
    scores = model.class_scores(d.X)
    assert scores.shape == (150, 3)
    agree = np.mean(model.classes_[np.argmax(scores, axis=1)] == model.predict(d.X))
    assert agree == 1.0 if multiclass == "ovr" else agree > 0.9
    expected = model.support_vectors_.nbytes + model.dual_coef_.nbytes + model.intercept_.nbytes
    assert model.nbytes == expected


def _wine():
    d = load("wine")
    return (d.X - d.X.mean(axis=0)) / d.X.std(axis=0), d.y


def test_warm_start_from_the_solution_needs_no_steps_and_keeps_it():
    """Started at its own solution, SMO stops at once with the same dual objective."""
    X, y = _wine()
    model = KernelSVM(tol=1e-4).fit(X, y)
    start = {}
    for key, alpha in model.support_alpha().items():
        dense = np.zeros(len(y))
        dense[model.support_] = alpha
        start[key] = dense
    again = KernelSVM(tol=1e-4).fit(X, y, alpha_init=start)
    assert again.n_iter_.max() <= 2
    np.testing.assert_allclose(again.dual_objective_, model.dual_objective_, rtol=1e-9)


def test_warm_start_from_half_the_data_reaches_the_same_optimum_with_less_work():
    """A feasible start (the solution on half the rows, 0 elsewhere) gives the same
    optimum as a cold start, within the tolerance, in fewer SMO steps."""
    X, y = _wine()
    half = np.arange(0, len(y), 2)
    part = KernelSVM(gamma=0.1, tol=1e-4).fit(X[half], y[half])
    start = {}
    for key, alpha in part.support_alpha().items():
        dense = np.zeros(len(y))
        dense[half[part.support_]] = alpha
        start[key] = dense
    cold = KernelSVM(gamma=0.1, tol=1e-4).fit(X, y)
    warm = KernelSVM(gamma=0.1, tol=1e-4).fit(X, y, alpha_init=start)
    np.testing.assert_allclose(warm.dual_objective_, cold.dual_objective_, rtol=1e-3)
    assert warm.n_iter_.sum() < cold.n_iter_.sum()


def test_an_infeasible_warm_start_is_refused():
    X, y = _wine()
    bad = np.zeros(len(y))
    bad[np.flatnonzero(y == 1)[0]] = 0.5  # one positive alpha: sum t alpha != 0
    with pytest.raises(ValueError, match=r"alpha_init\[\(0, 1\)\] must satisfy sum_i t_i alpha_i = 0"):
        KernelSVM().fit(X, y, alpha_init={(0, 1): bad})
    with pytest.raises(ValueError, match=r"alpha_init\[\(0, 1\)\] must lie in \[0, C\]"):
        KernelSVM().fit(X, y, alpha_init={(0, 1): -bad})
    with pytest.raises(ValueError, match=r"alpha_init\[\(0, 1\)\] must have shape \(178,\)"):
        KernelSVM().fit(X, y, alpha_init={(0, 1): bad[:3]})
