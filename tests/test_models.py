"""Contracts of the learners: exact gradients, exact sharding, clear errors, known accuracies.

The common checks at the top run on every learner registered in ``MODELS``; the
sections after them hold each learner's own oracles (naive references, closed forms,
accuracy on bundled datasets).
"""

import inspect
import math
import re
from pathlib import Path

import numpy as np
import pytest

from simdml.data import load, standardize, train_test_split
from simdml.models import GRADIENT_MODELS, MODELS, LinearRegression, LinearSVM, LogisticRegression, NotFittedError

IRIS_CSV = Path(__file__).resolve().parents[1] / "simdml" / "datasets" / "iris.csv"
NAMES = sorted(GRADIENT_MODELS)  # the gradient face; KernelSVM has its own tests
# the learners laid out as one table, reshape(n_features + 1, -1) with the intercept last;
# the multilayer perceptrons check their layer-by-layer layout in tests/test_mlp.py
ONE_TABLE = [n for n in NAMES if not hasattr(MODELS[n], "forward_layer")]
# a small net keeps the finite differences (two losses per parameter) quick
SMALL = {"mlp": {"hidden": [7, 5]}, "mlp_regression": {"hidden": [7, 5]}}


# ------------------------------------------------------------------------ fixtures


def _setup(name, *, seed=0, n_samples=30, n_features=4, n_classes=3, l2=0.1):
    """Any registered learner bound to a small random problem.

    Returns ``(model, X, y, params, weights)``: y holds class indices for a classifier
    and real numbers for a regressor; params are random, of the learner's size.
    """
    cls = MODELS[name]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    model = cls(l2=l2, **SMALL.get(name, {}))
    if cls.is_classifier:
        y = rng.integers(0, n_classes, size=n_samples)
        size = model.init_params(n_features, n_classes).size
    else:
        y = rng.normal(size=n_samples)
        size = model.init_params(n_features).size
    params = rng.normal(scale=0.5, size=size)
    weights = rng.uniform(0.1, 3.0, size=n_samples)
    return model, X, y, params, weights


def _hinge_distance_to_kink(params, X, y):
    """Smallest |1 - t_ic z_ic| of a one-vs-rest hinge: how far from the kink we are."""
    table = params.reshape(X.shape[1] + 1, -1)
    Z = X @ table[:-1] + table[-1]
    T = -np.ones_like(Z)
    T[np.arange(len(y)), y] = 1.0
    return np.abs(1.0 - T * Z).min()


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


# ------------------------------------------------- common checks: gradient is exact


def _finite_difference(model, params, X, y, sample_weight, h=1e-6):
    grad = np.empty_like(params)
    for j in range(params.size):
        step = np.zeros_like(params)
        step[j] = h
        up, _ = model.loss_grad(params + step, X, y, sample_weight)
        down, _ = model.loss_grad(params - step, X, y, sample_weight)
        grad[j] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("is_weighted", [False, True])
def test_gradient_matches_central_finite_differences(name, is_weighted):
    """The analytic gradient equals central finite differences to relative error 1e-6."""
    model, X, y, params, weights = _setup(name)
    if name == "svm":  # the hinge is differentiable only away from its kink
        assert _hinge_distance_to_kink(params, X, y) > 1e-4
    sample_weight = weights if is_weighted else None
    _, grad = model.loss_grad(params, X, y, sample_weight)
    expected = _finite_difference(model, params, X, y, sample_weight)
    assert np.linalg.norm(grad - expected) / np.linalg.norm(expected) < 1e-6


# ------------------------------------------------- common checks: sharding is exact


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "cuts", [[10, 20], [1, 4, 25], [29]], ids=["equal", "unequal", "one-row"]
)
def test_sharded_weighted_average_equals_full_gradient(name, cuts):
    """sum_s (n_s / N) * grad_s equals the full-data gradient to 1e-12, loss too."""
    model, X, y, params, _ = _setup(name, n_samples=30)
    full_loss, full_grad = model.loss_grad(params, X, y)
    loss, grad = 0.0, np.zeros_like(params)
    for X_s, y_s in zip(np.split(X, cuts), np.split(y, cuts)):
        shard_loss, shard_grad = model.loss_grad(params, X_s, y_s)
        loss += len(y_s) / len(y) * shard_loss
        grad += len(y_s) / len(y) * shard_grad
    np.testing.assert_allclose(grad, full_grad, rtol=0, atol=1e-12)
    assert loss == pytest.approx(full_loss, rel=0, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_sharded_weighted_gradient_with_sample_weight(name):
    """With sample weights, shards recombine by their weight mass: sum_s (W_s / W) grad_s."""
    model, X, y, params, weights = _setup(name, n_samples=30)
    _, full_grad = model.loss_grad(params, X, y, weights)
    grad = np.zeros_like(params)
    for idx in np.split(np.arange(30), [7, 19]):
        _, shard_grad = model.loss_grad(params, X[idx], y[idx], weights[idx])
        grad += weights[idx].sum() / weights.sum() * shard_grad
    np.testing.assert_allclose(grad, full_grad, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if MODELS[n].is_classifier])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_loss_grad_takes_class_indices_of_any_integer_dtype(name, dtype):
    """Class indices of a narrow dtype give the same loss and gradient: the flat index
    of each row's true class (``y_i * n + i``) must not wrap around in that dtype
    (300 rows x class 2 = 600 does not fit in uint8)."""
    model, X, y, params, _ = _setup(name, n_samples=300)
    loss, grad = model.loss_grad(params, X, y)
    narrow_loss, narrow_grad = model.loss_grad(params, X, y.astype(dtype))
    assert narrow_loss == loss
    np.testing.assert_array_equal(narrow_grad, grad)


# ---------------------------------------------- common checks: sample weights, purity


@pytest.mark.parametrize("name", NAMES)
def test_uniform_sample_weight_equals_unweighted(name):
    """Uniform sample weights (of any scale) give the unweighted loss and gradient."""
    model, X, y, params, _ = _setup(name)
    loss, grad = model.loss_grad(params, X, y)
    for scale in (1.0, 3.5):
        w_loss, w_grad = model.loss_grad(params, X, y, np.full(len(y), scale))
        assert w_loss == pytest.approx(loss, rel=1e-14)
        np.testing.assert_allclose(w_grad, grad, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_integer_weight_equals_repeating_the_row(name):
    """A sample weight of 2 on a row equals having that row twice."""
    model, X, y, params, _ = _setup(name)
    weights = np.ones(len(y))
    weights[5] = 2.0
    w_loss, w_grad = model.loss_grad(params, X, y, weights)
    rows = np.r_[np.arange(len(y)), 5]
    loss, grad = model.loss_grad(params, X[rows], y[rows])
    assert w_loss == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(w_grad, grad, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_loss_grad_does_not_modify_its_inputs(name):
    """loss_grad is pure: params, X, y and sample_weight are unchanged after the call."""
    model, X, y, params, weights = _setup(name)
    copies = [a.copy() for a in (params, X, y, weights)]
    model.loss_grad(params, X, y, weights)
    for before, after in zip(copies, (params, X, y, weights)):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("name", ONE_TABLE)
def test_l2_penalizes_weights_but_not_intercept(name):
    """Only the weight rows carry the l2 term: the intercept gradient ignores l2."""
    model0, X, y, params, _ = _setup(name, l2=0.0)
    model1, _, _, _, _ = _setup(name, l2=0.7)
    _, grad0 = model0.loss_grad(params, X, y)
    _, grad1 = model1.loss_grad(params, X, y)
    diff = (grad1 - grad0).reshape(X.shape[1] + 1, -1)
    table = params.reshape(X.shape[1] + 1, -1)
    np.testing.assert_allclose(diff[:-1], 0.7 * table[:-1], atol=1e-15)
    np.testing.assert_allclose(diff[-1], 0.0, atol=1e-15)


# ---------------------------------------------------- common checks: centralized face


def _fit_data(name, seed=1):
    """X and y for fitting a registered learner (real y for a regressor)."""
    _, X, y, _, _ = _setup(name, seed=seed)
    return X, y


@pytest.mark.parametrize("name", NAMES)
def test_common_fit_returns_self_and_is_deterministic(name):
    """Every registered learner: fit returns self, and fitting twice gives identical params."""
    X, y = _fit_data(name)
    model = MODELS[name]()
    assert model.fit(X, y) is model
    again = MODELS[name]().fit(X, y)
    np.testing.assert_array_equal(model.params_, again.params_)
    assert model.loss_curve_ == again.loss_curve_


@pytest.mark.parametrize("name", NAMES)
def test_common_init_stores_arguments_as_given(name):
    """Every registered learner's keyword-only __init__ stores its arguments unchanged."""
    cls = MODELS[name]
    model = cls(lr="anything", n_iter=-5)
    assert (model.lr, model.n_iter) == ("anything", -5)
    with pytest.raises(TypeError):
        cls(0.1)  # positional arguments are refused


@pytest.mark.parametrize("name", ONE_TABLE)
def test_common_fitted_attributes(name):
    """fit sets params_ (of the init_params size), n_features_in_, n_iter_, loss_curve_."""
    X, y = _fit_data(name)
    model = MODELS[name](n_iter=7).fit(X, y)
    assert model.params_.dtype == np.float64 and model.params is model.params_
    assert model.n_features_in_ == 4 and model.n_iter_ == 7 and len(model.loss_curve_) == 7
    if model.is_classifier:
        assert model.params_.shape == (5 * 3,)
        np.testing.assert_array_equal(model.classes_, [0, 1, 2])
        assert model.n_classes_ == 3
    else:
        assert model.params_.shape == (5,)


@pytest.mark.parametrize("name", NAMES)
def test_common_score_name_says_what_score_measures(name):
    """is_classifier and score_name agree, and score(X, y, params) is that metric."""
    model, X, y, params, _ = _setup(name)
    assert model.score_name == ("accuracy" if model.is_classifier else "r2")
    prediction = model.predict(X, params)
    if model.is_classifier:
        expected = np.mean(prediction == y)
    else:
        expected = 1 - np.sum((y - prediction) ** 2) / np.sum((y - y.mean()) ** 2)
    assert model.score(X, y, params) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ONE_TABLE)
def test_common_predict_with_explicit_params_needs_no_fit(name):
    """Strategy face: after init_params only, predict uses the params passed in."""
    model, X, _, params, _ = _setup(name)
    table = params.reshape(5, -1)
    scores = X @ table[:-1] + table[-1]
    expected = np.argmax(scores, axis=1) if model.is_classifier else scores[:, 0]
    np.testing.assert_allclose(model.predict(X, params), expected, rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_common_grad_flops_is_positive_and_affine_in_rows(name):
    """grad_flops is positive and grows by the same amount for every 10 rows."""
    model, *_ = _setup(name)
    flops = [model.grad_flops(n) for n in (0, 10, 20, 30)]
    assert all(f > 0 for f in flops)
    assert np.diff(flops).tolist() == [np.diff(flops)[0]] * 3


# -------------------------------------------------------------- common checks: errors


_BAD_PARAMS = [
    ({"lr": -1}, "The 'lr' parameter of {} must be > 0. Got -1 instead."),
    ({"lr": 0}, "The 'lr' parameter of {} must be > 0. Got 0 instead."),
    ({"lr": float("nan")}, "The 'lr' parameter of {} must be finite. Got nan instead."),
    ({"lr": "big"}, "The 'lr' parameter of {} must be a real number > 0. Got 'big' instead."),
    ({"n_iter": 0}, "The 'n_iter' parameter of {} must be an int >= 1. Got 0 instead."),
    ({"n_iter": 2.5}, "The 'n_iter' parameter of {} must be an int >= 1. Got 2.5 instead."),
    ({"l2": -1}, "The 'l2' parameter of {} must be >= 0. Got -1 instead."),
    ({"l2": float("inf")}, "The 'l2' parameter of {} must be finite. Got inf instead."),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kwargs, message", _BAD_PARAMS)
def test_invalid_parameters_raise_in_fit(name, kwargs, message):
    """__init__ stores anything; fit rejects each invalid parameter, naming value and rule."""
    cls = MODELS[name]
    if not set(kwargs) <= set(inspect.signature(cls).parameters):
        pytest.skip(f"{cls.__name__} has no parameter {kwargs}")
    X, y = _fit_data(name)
    model = cls(**kwargs)  # no error here: __init__ only stores
    with pytest.raises(ValueError, match=f"^{re.escape(message.format(cls.__name__))}$"):
        model.fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises(name):
    """predict without fit and without params says how to fix it."""
    cls = MODELS[name]
    X, _ = _fit_data(name)
    with pytest.raises(NotFittedError, match=f"^{cls.__name__} is not fitted yet; "
                       r"call fit\(X, y\) or pass params[.]$"):
        cls().predict(X)


@pytest.mark.parametrize("name, shape", [
    ("logistic", "n_features, n_classes"), ("svm", "n_features, n_classes"),
    ("linear", "n_features"), ("mlp", "n_features, n_classes"), ("mlp_regression", "n_features"),
])
def test_grad_flops_before_shape_is_known_raises(name, shape):
    """grad_flops needs init_params or fit first, and says so."""
    cls = MODELS[name]
    message = (f"{cls.__name__}.grad_flops needs the problem shape; "
               f"call init_params({shape}) or fit(X, y) first.")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        cls().grad_flops(10)


def test_every_learner_is_checked_for_grad_flops_before_shape():
    """The parametrization above covers every registered learner."""
    assert {"logistic", "svm", "linear", "mlp", "mlp_regression"} == set(GRADIENT_MODELS)


@pytest.mark.parametrize("name, args, message", [
    ("logistic", (0, 3), "The 'n_features' parameter of LogisticRegression must be an int "
                         ">= 1. Got 0 instead."),
    ("logistic", (4, 1), "The 'n_classes' parameter of LogisticRegression must be an int "
                         ">= 2. Got 1 instead."),
    ("svm", (0, 3), "The 'n_features' parameter of LinearSVM must be an int >= 1. "
                    "Got 0 instead."),
    ("svm", (4, 1), "The 'n_classes' parameter of LinearSVM must be an int >= 2. "
                    "Got 1 instead."),
    ("linear", (0,), "The 'n_features' parameter of LinearRegression must be an int >= 1. "
                     "Got 0 instead."),
    ("linear", (4, 3), "The 'n_outputs' parameter of LinearRegression must be 1 (one "
                       "real-valued target). Got 3 instead."),
    ("mlp", (0, 3), "The 'n_features' parameter of MLPClassifier must be an int >= 1. "
                    "Got 0 instead."),
    ("mlp", (4, 1), "The 'n_classes' parameter of MLPClassifier must be an int >= 2. "
                    "Got 1 instead."),
    ("mlp_regression", (4, 3), "The 'n_outputs' parameter of MLPRegressor must be 1 (one "
                               "real-valued target). Got 3 instead."),
])
def test_init_params_rejects_bad_shapes(name, args, message):
    """init_params names the bad shape argument, its rule and its value."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        MODELS[name]().init_params(*args)


@pytest.mark.parametrize("name", NAMES)
def test_bad_sample_weight_and_feature_count_raise(name):
    """fit rejects bad sample weights; predict rejects X with the wrong number of features."""
    cls = MODELS[name]
    X, y = _fit_data(name)
    with pytest.raises(ValueError, match=r"^sample_weight must have shape \(30,\); got \(3,\)[.]$"):
        cls().fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="^sample_weight must be finite and >= 0, with a "
                       "positive sum[.]$"):
        cls().fit(X, y, sample_weight=-np.ones(30))
    model = cls(n_iter=1).fit(X, y)
    with pytest.raises(ValueError, match=f"^X has 2 features, but {cls.__name__} "
                       "is expecting 4 features[.]$"):
        model.predict(X[:, :2])


# --------------------------------------------------------- LogisticRegression oracles


def _naive_linear_classifier(row_loss_grad, params, X, y, l2):
    """Reference with Python loops: mean_i row loss at z_i = x_i W + b, plus 0.5 l2 ||W||^2.

    ``row_loss_grad(z, target)`` returns one row's loss and its gradient in ``z``; the
    chain rule through ``z = x W + b`` and the penalty are spelled out here.
    """
    n_samples, n_features = len(X), len(X[0])
    n_classes = len(params) // (n_features + 1)
    at = lambda j, c: params[j * n_classes + c]  # noqa: E731  row j, column c
    loss, grad = 0.0, [0.0] * len(params)
    for x, target in zip(X, y):
        z = [sum(x[j] * at(j, c) for j in range(n_features)) + at(n_features, c)
             for c in range(n_classes)]
        row_loss, dz = row_loss_grad(z, target)
        loss += row_loss / n_samples
        for c in range(n_classes):
            for j in range(n_features):
                grad[j * n_classes + c] += dz[c] / n_samples * x[j]
            grad[n_features * n_classes + c] += dz[c] / n_samples
    for j in range(n_features):
        for c in range(n_classes):
            loss += 0.5 * l2 * at(j, c) ** 2
            grad[j * n_classes + c] += l2 * at(j, c)
    return loss, grad


def _naive_loss_grad(params, X, y, l2):
    """Reference: the softmax cross-entropy, lse(z) - z[y], with loops and math.exp."""

    def row_loss_grad(z, target):
        top = max(z)
        lse = top + math.log(sum(math.exp(v - top) for v in z))
        return lse - z[target], [math.exp(v - lse) - (c == target) for c, v in enumerate(z)]

    return _naive_linear_classifier(row_loss_grad, params, X, y, l2)


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
    model, X, y, params, _ = _setup("logistic", seed=3, n_samples=5, l2=0.0)
    params = params * 2000.0
    loss, grad = model.loss_grad(params, X, y)
    ref_loss, ref_grad = _naive_loss_grad(params.tolist(), X.tolist(), y.tolist(), 0.0)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)


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


def test_logistic_grad_flops_matches_documented_count():
    """LogisticRegression.grad_flops is 4 n (d + 1) k + 5 n k + 2 d k."""
    model = LogisticRegression()
    model.init_params(4, 3)
    assert model.grad_flops(10) == 4 * 10 * 5 * 3 + 5 * 10 * 3 + 2 * 4 * 3


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
@pytest.mark.parametrize("name", ["logistic", "svm"])
def test_bad_X_or_y_raise_in_classifier_fit(name, X, y, message):
    """A classifier's fit rejects malformed X or y with a message naming what is wrong."""
    with pytest.raises(ValueError, match=message):
        MODELS[name]().fit(X, y)


# ----------------------------------------------------------- LinearRegression oracles


def _linear_data(seed=0, n_samples=40, noise=0.0):
    """X ~ N(0, 1), y = X w_true + b_true (+ noise); returns X, y, w_true, b_true."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 3))
    w_true, b_true = np.array([1.5, -2.0, 0.5]), 0.7
    y = X @ w_true + b_true + noise * rng.normal(size=n_samples)
    return X, y, w_true, b_true


def _ridge_closed_form(X, y, l2, sample_weight=None):
    """Solve the normal equations of 0.5 sum_i s_i (x_i w + b - y_i)^2 + 0.5 l2 ||w||^2."""
    n_samples, n_features = X.shape
    s = np.full(n_samples, 1.0 / n_samples) if sample_weight is None else (
        sample_weight / sample_weight.sum())
    X1 = np.hstack([X, np.ones((n_samples, 1))])
    penalty = np.diag([l2] * n_features + [0.0])  # the intercept is not penalized
    return np.linalg.solve(X1.T @ (s[:, None] * X1) + penalty, X1.T @ (s * y))


def test_linear_regression_recovers_w_true_on_noiseless_data():
    """On noiseless data, enough gradient steps recover w_true and b_true to 1e-6."""
    X, y, w_true, b_true = _linear_data()
    model = LinearRegression(n_iter=3000).fit(X, y)
    np.testing.assert_allclose(model.params_, np.r_[w_true, b_true], rtol=0, atol=1e-6)
    assert model.score(X, y) == pytest.approx(1.0, abs=1e-12)


def test_linear_regression_matches_least_squares():
    """Without penalty, the fit equals numpy's least-squares solution to 1e-6."""
    X, y, _, _ = _linear_data(noise=0.5)
    model = LinearRegression(n_iter=3000).fit(X, y)
    X1 = np.hstack([X, np.ones((len(X), 1))])
    expected, *_ = np.linalg.lstsq(X1, y, rcond=None)
    np.testing.assert_allclose(model.params_, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("is_weighted", [False, True])
def test_linear_regression_matches_closed_form_ridge(is_weighted):
    """With l2 > 0, the fit equals the ridge normal-equations solution to 1e-6."""
    X, y, _, _ = _linear_data(noise=0.5)
    weights = np.random.default_rng(1).uniform(0.1, 3.0, size=len(y)) if is_weighted else None
    model = LinearRegression(l2=0.5, n_iter=2000).fit(X, y, sample_weight=weights)
    expected = _ridge_closed_form(X, y, 0.5, weights)
    np.testing.assert_allclose(model.params_, expected, rtol=0, atol=1e-6)


def test_linear_regression_loss_starts_at_half_mean_square_and_decreases():
    """From zero params the loss is 0.5 mean(y^2); with lr < 2 / L it never increases."""
    X, y, _, _ = _linear_data(noise=0.5)
    model = LinearRegression(n_iter=50).fit(X, y)
    assert model.loss_curve_[0] == pytest.approx(0.5 * np.mean(y**2), rel=1e-14)
    assert np.all(np.diff(model.loss_curve_) < 0)


def test_r2_is_one_for_perfect_and_zero_for_mean_prediction():
    """R^2 is 1 for the exact params, 0 for predicting mean(y), negative for worse."""
    X, y, w_true, b_true = _linear_data()
    model = LinearRegression()
    model.init_params(3)
    assert model.score(X, y, np.r_[w_true, b_true]) == pytest.approx(1.0, abs=1e-12)
    assert model.score(X, y, np.r_[0.0, 0.0, 0.0, y.mean()]) == pytest.approx(0.0, abs=1e-12)
    assert model.score(X, y, np.r_[-w_true, b_true]) < 0


def test_r2_of_a_constant_target_is_one_if_perfect_else_zero():
    """With SS_tot = 0, R^2 is 1.0 for a perfect prediction and 0.0 otherwise."""
    X, _, _, _ = _linear_data()
    y = np.full(len(X), 2.0)
    model = LinearRegression()
    model.init_params(3)
    assert model.score(X, y, np.r_[0.0, 0.0, 0.0, 2.0]) == 1.0
    assert model.score(X, y, np.r_[0.0, 0.0, 0.0, 3.0]) == 0.0


def test_linear_regression_predict_shape_and_int_targets():
    """predict returns a float vector of shape (n_samples,); integer y is accepted."""
    X, y, _, _ = _linear_data()
    model = LinearRegression(n_iter=5).fit(X, np.round(y).astype(int))
    prediction = model.predict(X)
    assert prediction.shape == (len(X),) and prediction.dtype == np.float64


def test_linear_regression_grad_flops_matches_documented_count():
    """LinearRegression.grad_flops is 4 n (d + 1) + 4 n + 2 d."""
    model = LinearRegression()
    model.init_params(4)
    assert model.grad_flops(10) == 4 * 10 * 5 + 4 * 10 + 2 * 4


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.zeros((3, 2)), np.zeros(4), "^X has 3 rows but y has 4 entries[.]$"),
        (np.zeros((2, 2)), [[0.0], [1.0]], r"^y must be 1-D of shape \(n_samples,\)"),
        (np.zeros((2, 2)), ["a", "b"], "^y must hold real numbers; got dtype <U1[.]$"),
        (np.zeros((2, 2)), [True, False], "^y must hold real numbers; got dtype bool[.]$"),
        (np.zeros((2, 2)), [0.5, np.nan],
         r"^y contains NaN or infinity at index 1 \(nan\)[.]$"),
        (np.array([[1.0, np.inf]]), [0.5], "in column 1"),
    ],
)
def test_bad_X_or_y_raise_in_regressor_fit(X, y, message):
    """LinearRegression.fit rejects malformed X or y with a message naming what is wrong."""
    with pytest.raises(ValueError, match=message):
        LinearRegression().fit(X, y)


def test_linear_regression_predict_rejects_params_of_another_size():
    """predict with classifier-sized params says which size it expects."""
    X, _, _, _ = _linear_data()
    with pytest.raises(ValueError, match=r"^params has size 8; LinearRegression expects "
                       r"n_features \+ 1 = 4[.]$"):
        LinearRegression().predict(X, np.zeros(8))


# ------------------------------------------------------------------ LinearSVM oracles


def _naive_hinge_loss_grad(params, X, y, l2):
    """Reference: the one-vs-rest hinge sum_c max(0, 1 - t_c z_c) and its subgradient."""

    def row_loss_grad(z, target):
        t = [1.0 if c == target else -1.0 for c in range(len(z))]
        loss = sum(max(0.0, 1.0 - t_c * z_c) for t_c, z_c in zip(t, z))
        return loss, [-t_c if 1.0 - t_c * z_c > 0 else 0.0 for t_c, z_c in zip(t, z)]

    return _naive_linear_classifier(row_loss_grad, params, X, y, l2)


def test_svm_loss_grad_matches_naive_reference():
    """At a random point, the vectorized hinge loss and subgradient equal a loop version."""
    model, X, y, params, _ = _setup("svm", seed=4, l2=0.3)
    loss, grad = model.loss_grad(params, X, y)
    ref_loss, ref_grad = _naive_hinge_loss_grad(params.tolist(), X.tolist(), y.tolist(), 0.3)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_svm_subgradient_is_zero_at_the_kink():
    """A margin of exactly 1 contributes no loss and the subgradient 0; just inside, it does."""
    model = LinearSVM(l2=0.0)
    model.init_params(1, 2)
    X, y = np.array([[2.0]]), np.array([0])
    on_kink = np.array([0.5, -0.5, 0.0, 0.0])  # z = (1, -1): margins t z = 1 in both columns
    loss, grad = model.loss_grad(on_kink, X, y)
    assert loss == 0.0 and not grad.any()
    loss, grad = model.loss_grad(0.75 * on_kink, X, y)  # margins 0.75 < 1
    assert loss == pytest.approx(0.5)
    np.testing.assert_array_equal(grad, [-2.0, 2.0, -1.0, 1.0])


def test_svm_on_iris_reaches_90_percent_test_accuracy(iris):
    """With default parameters, the one-vs-rest SVM's iris test accuracy is >= 0.9."""
    X_train, y_train, X_test, y_test = iris
    assert LinearSVM().fit(X_train, y_train).score(X_test, y_test) >= 0.9


@pytest.fixture(scope="module")
def breast_cancer():
    """breast_cancer, split 75/25 with seed 0 and standardized with train statistics."""
    ds = load("breast_cancer")
    X_train, X_test, y_train, y_test = train_test_split(ds.X, ds.y, rng=np.random.default_rng(0))
    X_train, X_test = standardize(X_train, X_test)
    return X_train, y_train, X_test, y_test


def test_svm_on_breast_cancer_reaches_95_percent_test_accuracy(breast_cancer):
    """With default parameters, the SVM's breast_cancer test accuracy is >= 0.95."""
    X_train, y_train, X_test, y_test = breast_cancer
    assert LinearSVM().fit(X_train, y_train).score(X_test, y_test) >= 0.95


def test_binary_svm_columns_mirror_each_other(breast_cancer):
    """With two classes, the second column stays the negative of the first (one binary SVM)."""
    X_train, y_train, X_test, _ = breast_cancer
    model = LinearSVM(n_iter=50).fit(X_train, y_train)
    table = model.params_.reshape(-1, 2)
    np.testing.assert_allclose(table[:, 1], -table[:, 0], rtol=0, atol=1e-12)
    scores = model.decision_function(X_test)
    np.testing.assert_array_equal(model.predict(X_test), (scores[:, 0] < 0).astype(int))


def test_svm_labels_are_mapped_back_to_classes(iris):
    """fit accepts any integer labels, and predict returns those labels."""
    X_train, y_train, X_test, y_test = iris
    labels = np.array([-7, 10, 42])
    model = LinearSVM().fit(X_train, labels[y_train])
    np.testing.assert_array_equal(model.classes_, labels)
    assert model.score(X_test, labels[y_test]) >= 0.9


def test_svm_grad_flops_matches_documented_count():
    """LinearSVM.grad_flops is 4 n (d + 1) k + 6 n k + 2 d k."""
    model = LinearSVM()
    model.init_params(4, 3)
    assert model.grad_flops(10) == 4 * 10 * 5 * 3 + 6 * 10 * 3 + 2 * 4 * 3


@pytest.mark.parametrize("make, n_outputs", [
    (lambda: LogisticRegression(l2=1e-3), 3), (lambda: LogisticRegression(l2=0.0), 2),
    (lambda: LinearSVM(l2=1e-3), 3), (lambda: LinearRegression(l2=1e-3), 1)])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_gradient_alone_is_loss_grad_s_gradient_bit_for_bit(make, n_outputs, weighted):
    """``grad`` skips the loss (a worker sends only the gradient) and keeps every bit of
    ``loss_grad``'s gradient, with and without row weights."""
    rng = np.random.default_rng(22)
    X = rng.normal(size=(57, 4))
    model = make()
    regression = n_outputs == 1
    y = X @ rng.normal(size=4) if regression else rng.integers(0, n_outputs, 57)
    params = rng.normal(size=5 if regression else 5 * n_outputs)
    w = rng.uniform(0.5, 2.0, 57) if weighted else None
    loss, expected = model.loss_grad(params, X, y, w)
    assert isinstance(loss, float)
    assert np.array_equal(model.grad(params, X, y, w), expected)


@pytest.mark.parametrize("regressor", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_network_s_gradient_alone_is_loss_grad_s_bit_for_bit(regressor, dtype, weighted):
    """The MLPs' ``grad`` (the loss head and the penalty skipped) keeps every bit."""
    from simdml.models import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(23)
    X = rng.normal(size=(41, 4))
    model = (MLPRegressor if regressor else MLPClassifier)(hidden=[6, 5], l2=1e-3, dtype=dtype)
    params = model.init_params(4, 1 if regressor else 3)
    y = X @ rng.normal(size=4) if regressor else rng.integers(0, 3, 41)
    w = rng.uniform(0.5, 2.0, 41) if weighted else None
    loss, expected = model.loss_grad(params, X, y, w)
    assert isinstance(loss, float) and loss > 0
    got = model.grad(params, X, y, w)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
