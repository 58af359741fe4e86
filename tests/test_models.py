"""Contracts of the learners: exact gradients, exact sharding, clear errors, iris accuracy."""

import math
from pathlib import Path

import numpy as np
import pytest

from simdml.models import MODELS, LogisticRegression, NotFittedError

IRIS_CSV = Path(__file__).resolve().parents[1] / "simdml" / "datasets" / "iris.csv"


# ------------------------------------------------------------------------ fixtures


def _problem(seed=0, n_samples=30, n_features=4, n_classes=3):
    """A small random problem: X, class indices y, random params, positive weights."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    params = rng.normal(scale=0.5, size=(n_features + 1) * n_classes)
    weights = rng.uniform(0.1, 3.0, size=n_samples)
    return X, y, params, weights


def _bound(l2=0.1, n_features=4, n_classes=3):
    model = LogisticRegression(l2=l2)
    model.init_params(n_features, n_classes)
    return model


@pytest.fixture(scope="module")
def iris():
    """Iris standardized with train statistics; every 4th row of each class is test."""
    data = np.loadtxt(IRIS_CSV, skiprows=1, delimiter=",")
    X, y = data[:, :-1], data[:, -1].astype(int)
    # rank of each row within its class: stratified without drawing random numbers
    rank = np.zeros(len(y), dtype=int)
    for c in np.unique(y):
        rank[y == c] = np.arange(np.sum(y == c))
    is_test = rank % 4 == 0
    mean, std = X[~is_test].mean(axis=0), X[~is_test].std(axis=0)
    X = (X - mean) / std
    return X[~is_test], y[~is_test], X[is_test], y[is_test]


@pytest.fixture(scope="module")
def iris_model(iris):
    X_train, y_train, _, _ = iris
    return LogisticRegression().fit(X_train, y_train)


# -------------------------------------------------------------- gradient is exact


def _finite_difference(model, params, X, y, sample_weight, h=1e-6):
    grad = np.empty_like(params)
    for j in range(params.size):
        step = np.zeros_like(params)
        step[j] = h
        up, _ = model.loss_grad(params + step, X, y, sample_weight)
        down, _ = model.loss_grad(params - step, X, y, sample_weight)
        grad[j] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("is_weighted", [False, True])
def test_gradient_matches_central_finite_differences(is_weighted):
    """The analytic gradient equals central finite differences to relative error 1e-6."""
    X, y, params, weights = _problem()
    model = _bound(l2=0.1)
    sample_weight = weights if is_weighted else None
    _, grad = model.loss_grad(params, X, y, sample_weight)
    expected = _finite_difference(model, params, X, y, sample_weight)
    assert np.linalg.norm(grad - expected) / np.linalg.norm(expected) < 1e-6


def _naive_loss_grad(params, X, y, l2):
    """Reference: the same loss and gradient with Python loops and math.exp."""
    n_samples, n_features = len(X), len(X[0])
    n_classes = len(params) // (n_features + 1)
    at = lambda j, c: params[j * n_classes + c]  # noqa: E731  row j, column c
    loss, grad = 0.0, [0.0] * len(params)
    for x, target in zip(X, y):
        z = [sum(x[j] * at(j, c) for j in range(n_features)) + at(n_features, c)
             for c in range(n_classes)]
        top = max(z)
        lse = top + math.log(sum(math.exp(v - top) for v in z))
        loss += (lse - z[target]) / n_samples
        for c in range(n_classes):
            delta = (math.exp(z[c] - lse) - (c == target)) / n_samples
            for j in range(n_features):
                grad[j * n_classes + c] += delta * x[j]
            grad[n_features * n_classes + c] += delta
    for j in range(n_features):
        for c in range(n_classes):
            loss += 0.5 * l2 * at(j, c) ** 2
            grad[j * n_classes + c] += l2 * at(j, c)
    return loss, grad


def test_trained_iris_model_matches_naive_reference(iris, iris_model):
    """At the trained iris params, loss_grad on 5 rows equals a naive loop implementation."""
    X_train, y_train, _, _ = iris
    rows = [0, 30, 60, 80, 110]
    X, y = X_train[rows], y_train[rows]
    params = iris_model.params_
    loss, grad = iris_model.loss_grad(params, X, y)
    ref_loss, ref_grad = _naive_loss_grad(params.tolist(), X.tolist(), y.tolist(), 1e-4)
    assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


def test_loss_matches_naive_reference_with_large_logits():
    """The stable softmax agrees with the naive reference even when logits are ~1e3."""
    X, y, params, _ = _problem(seed=3, n_samples=5)
    params = params * 2000.0
    loss, grad = _bound(l2=0.0).loss_grad(params, X, y)
    ref_loss, ref_grad = _naive_loss_grad(params.tolist(), X.tolist(), y.tolist(), 0.0)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------- sharding is exact


@pytest.mark.parametrize(
    "cuts", [[10, 20], [1, 4, 25], [29]], ids=["equal", "unequal", "one-row"]
)
def test_sharded_weighted_average_equals_full_gradient(cuts):
    """sum_s (n_s / N) * grad_s equals the full-data gradient to 1e-12, loss too."""
    X, y, params, _ = _problem(n_samples=30)
    model = _bound(l2=0.1)
    full_loss, full_grad = model.loss_grad(params, X, y)
    loss, grad = 0.0, np.zeros_like(params)
    for X_s, y_s in zip(np.split(X, cuts), np.split(y, cuts)):
        shard_loss, shard_grad = model.loss_grad(params, X_s, y_s)
        loss += len(y_s) / len(y) * shard_loss
        grad += len(y_s) / len(y) * shard_grad
    np.testing.assert_allclose(grad, full_grad, rtol=0, atol=1e-12)
    assert loss == pytest.approx(full_loss, rel=0, abs=1e-12)


def test_sharded_weighted_gradient_with_sample_weight():
    """With sample weights, shards recombine by their weight mass: sum_s (W_s / W) grad_s."""
    X, y, params, weights = _problem(n_samples=30)
    model = _bound(l2=0.1)
    _, full_grad = model.loss_grad(params, X, y, weights)
    grad = np.zeros_like(params)
    for idx in np.split(np.arange(30), [7, 19]):
        _, shard_grad = model.loss_grad(params, X[idx], y[idx], weights[idx])
        grad += weights[idx].sum() / weights.sum() * shard_grad
    np.testing.assert_allclose(grad, full_grad, rtol=0, atol=1e-12)


# ----------------------------------------------------------------- sample weights


def test_uniform_sample_weight_equals_unweighted():
    """Uniform sample weights (of any scale) give the unweighted loss and gradient."""
    X, y, params, _ = _problem()
    model = _bound()
    loss, grad = model.loss_grad(params, X, y)
    for scale in (1.0, 3.5):
        w_loss, w_grad = model.loss_grad(params, X, y, np.full(len(y), scale))
        assert w_loss == pytest.approx(loss, rel=1e-14)
        np.testing.assert_allclose(w_grad, grad, rtol=0, atol=1e-15)


def test_integer_weight_equals_repeating_the_row():
    """A sample weight of 2 on a row equals having that row twice."""
    X, y, params, _ = _problem()
    model = _bound()
    weights = np.ones(len(y))
    weights[5] = 2.0
    w_loss, w_grad = model.loss_grad(params, X, y, weights)
    rows = np.r_[np.arange(len(y)), 5]
    loss, grad = model.loss_grad(params, X[rows], y[rows])
    assert w_loss == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(w_grad, grad, rtol=0, atol=1e-14)


def test_loss_grad_does_not_modify_its_inputs():
    """loss_grad is pure: params, X, y and sample_weight are unchanged after the call."""
    X, y, params, weights = _problem()
    copies = [a.copy() for a in (params, X, y, weights)]
    _bound().loss_grad(params, X, y, weights)
    for before, after in zip(copies, (params, X, y, weights)):
        np.testing.assert_array_equal(before, after)


def test_l2_penalizes_weights_but_not_intercept():
    """Only the weight rows carry the l2 term: the intercept gradient ignores l2."""
    X, y, params, _ = _problem()
    _, grad0 = _bound(l2=0.0).loss_grad(params, X, y)
    _, grad1 = _bound(l2=0.7).loss_grad(params, X, y)
    diff = (grad1 - grad0).reshape(5, 3)
    np.testing.assert_allclose(diff[:-1], 0.7 * params.reshape(5, 3)[:-1], atol=1e-15)
    np.testing.assert_allclose(diff[-1], 0.0, atol=1e-15)


# --------------------------------------------------------------- centralized face


def test_fit_on_iris_reaches_93_percent_test_accuracy(iris, iris_model):
    """With default parameters, iris test accuracy is >= 0.93."""
    _, _, X_test, y_test = iris
    assert iris_model.score(X_test, y_test) >= 0.93


def test_loss_decreases_monotonically_for_small_lr(iris):
    """Gradient descent with a small step never increases the training loss."""
    X_train, y_train, _, _ = iris
    model = LogisticRegression(lr=0.1, n_iter=100).fit(X_train, y_train)
    assert len(model.loss_curve_) == 100
    assert model.loss_curve_[0] == pytest.approx(math.log(3))
    assert np.all(np.diff(model.loss_curve_) < 0)


def test_fitted_attributes(iris, iris_model):
    """fit sets params_, classes_, n_features_in_, n_classes_, n_iter_ and loss_curve_."""
    assert iris_model.params_.shape == (15,)
    np.testing.assert_array_equal(iris_model.classes_, [0, 1, 2])
    assert (iris_model.n_features_in_, iris_model.n_classes_) == (4, 3)
    assert iris_model.n_iter_ == 300 and len(iris_model.loss_curve_) == 300


def test_labels_are_mapped_back_to_classes(iris):
    """fit accepts any integer labels, and predict returns those labels."""
    X_train, y_train, X_test, y_test = iris
    labels = np.array([-7, 10, 42])
    model = LogisticRegression().fit(X_train, labels[y_train])
    np.testing.assert_array_equal(model.classes_, labels)
    assert set(model.predict(X_test)) <= set(labels)
    assert model.score(X_test, labels[y_test]) >= 0.93


def test_predict_proba_rows_sum_to_one(iris, iris_model):
    """predict_proba has shape (n, k), rows sum to 1, and its argmax is predict."""
    _, _, X_test, _ = iris
    proba = iris_model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-14)
    np.testing.assert_array_equal(proba.argmax(axis=1), iris_model.predict(X_test))


def test_params_layout():
    """init_params gives (d + 1) * k zeros; reshaped to (d + 1, k), the last row is the intercept."""
    model = LogisticRegression()
    params = model.init_params(n_features=2, n_classes=3)
    assert params.dtype == np.float64 and params.shape == (9,) and not params.any()
    assert (model.n_features_in_, model.n_classes_) == (2, 3)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    X = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    table = params.reshape(3, 3)
    table[-1] = [0.0, 1.0, 0.0]  # intercept favours class 1 ...
    table[0, 2] = 1.0  # ... feature 0 pushes to class 2
    table[1, 0] = 1.0  # ... feature 1 pushes to class 0
    np.testing.assert_array_equal(model.predict(X, params), [1, 2, 0])


def test_predict_with_explicit_params_needs_no_fit():
    """Strategy face: after init_params only, predict and score use the params passed in."""
    X, y, params, _ = _problem()
    model = _bound()
    expected = np.argmax(X @ params.reshape(5, 3)[:-1] + params.reshape(5, 3)[-1], axis=1)
    np.testing.assert_array_equal(model.predict(X, params), expected)
    assert model.score(X, y, params) == np.mean(expected == y)


def test_grad_flops_is_positive_and_affine_in_rows():
    """grad_flops is positive, grows linearly with n_rows, and matches the documented count."""
    model = _bound(n_features=4, n_classes=3)
    flops = [model.grad_flops(n) for n in (0, 10, 20, 30)]
    assert all(f > 0 for f in flops)
    assert np.diff(flops).tolist() == [np.diff(flops)[0]] * 3
    assert model.grad_flops(10) == 4 * 10 * 5 * 3 + 5 * 10 * 3 + 2 * 4 * 3


# ------------------------------------------------------------------------- errors


def test_predict_before_fit_raises():
    """predict without fit and without params says how to fix it."""
    X, _, _, _ = _problem()
    with pytest.raises(NotFittedError, match=r"LogisticRegression is not fitted yet; "
                       r"call fit\(X, y\) or pass params"):
        LogisticRegression().predict(X)


def test_grad_flops_before_shape_is_known_raises():
    """grad_flops needs init_params or fit first."""
    with pytest.raises(ValueError, match=r"call init_params\(n_features, n_classes\)"):
        LogisticRegression().grad_flops(10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -1}, "The 'lr' parameter of LogisticRegression must be > 0. Got -1 instead."),
        ({"lr": 0}, "The 'lr' parameter of LogisticRegression must be > 0. Got 0 instead."),
        ({"lr": float("nan")},
         "The 'lr' parameter of LogisticRegression must be finite. Got nan instead."),
        ({"lr": "big"},
         "The 'lr' parameter of LogisticRegression must be a real number > 0. "
         "Got 'big' instead."),
        ({"n_iter": 0},
         "The 'n_iter' parameter of LogisticRegression must be an int >= 1. Got 0 instead."),
        ({"n_iter": 2.5},
         "The 'n_iter' parameter of LogisticRegression must be an int >= 1. Got 2.5 instead."),
        ({"l2": -1},
         "The 'l2' parameter of LogisticRegression must be >= 0. Got -1 instead."),
        ({"l2": float("inf")},
         "The 'l2' parameter of LogisticRegression must be finite. Got inf instead."),
    ],
)
def test_invalid_parameters_raise_in_fit(kwargs, message):
    """__init__ stores anything; fit rejects each invalid parameter, naming value and rule."""
    X, y, _, _ = _problem()
    model = LogisticRegression(**kwargs)  # no error here: __init__ only stores
    with pytest.raises(ValueError, match=f"^{message.replace('.', '[.]')}$"):
        model.fit(X, y)


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.zeros((3, 2)), np.zeros(4), "X has 3 rows but y has 4 entries"),
        (np.array([[1.0, 2.0], [3.0, np.nan]]), [0, 1],
         r"X contains NaN or infinity in column 1 \(first at row 1: nan\)"),
        (np.array([[1.0, np.inf]]), [0], "in column 1"),
        (np.zeros(3), [0, 1, 0], r"X must be 2-D of shape \(n_samples, n_features\)"),
        (np.zeros((0, 2)), np.zeros(0), "X has 0 rows"),
        ([["a", "b"]], [0], "X must hold numbers"),
        (np.zeros((2, 2)), [[0], [1]], "y must be 1-D"),
        (np.zeros((2, 2)), [0, 0.5], "y must hold integer class labels; got 0.5 at index 1"),
        (np.zeros((2, 2)), ["a", "b"], "y must hold integer class labels; got dtype"),
        (np.zeros((2, 2)), [1, 1], r"y must hold at least 2 classes; got only \[1\]"),
    ],
)
def test_bad_X_or_y_raise_in_fit(X, y, message):
    """fit rejects malformed X or y with a message naming what is wrong."""
    with pytest.raises(ValueError, match=message):
        LogisticRegression().fit(X, y)


def test_bad_sample_weight_and_feature_count_raise():
    """fit rejects bad sample weights; predict rejects X with the wrong number of features."""
    X, y, _, _ = _problem()
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(30,\)"):
        LogisticRegression().fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="sample_weight must be finite and >= 0"):
        LogisticRegression().fit(X, y, sample_weight=-np.ones(30))
    model = LogisticRegression(n_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but LogisticRegression "
                       "is expecting 4 features"):
        model.predict(X[:, :2])


# ------------------------------------------------------- common checks, every model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_common_fit_returns_self_and_is_deterministic(name):
    """Every registered learner: fit returns self, and fitting twice gives identical params."""
    X, y, _, _ = _problem(seed=1)
    model = MODELS[name]()
    assert model.fit(X, y) is model
    again = MODELS[name]().fit(X, y)
    np.testing.assert_array_equal(model.params_, again.params_)
    assert model.loss_curve_ == again.loss_curve_


@pytest.mark.parametrize("name", sorted(MODELS))
def test_common_init_stores_arguments_as_given(name):
    """Every registered learner's keyword-only __init__ stores its arguments unchanged."""
    cls = MODELS[name]
    model = cls(lr="anything", n_iter=-5)
    assert (model.lr, model.n_iter) == ("anything", -5)
    with pytest.raises(TypeError):
        cls(0.1)  # positional arguments are refused
