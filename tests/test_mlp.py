"""Contracts of the multilayer perceptron: exact gradients, a per-layer face whose
composition is ``loss_grad`` bit for bit, flop and memory counts by hand, the linear
learners as its special case, and training from a scenario under every gradient strategy.
"""
import math
import re

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.experiment import prepare_data
from simdml.models import (
    LayerCache, LinearRegression, LogisticRegression, MLPClassifier, MLPRegressor,
)

ACTIVATIONS = ["relu", "tanh", "gelu"]
HEADS = {"softmax": MLPClassifier, "squared": MLPRegressor}


def _problem(head, activation="tanh", *, hidden=(6, 5), l2=0.1, seed=0, n_samples=25,
             n_features=4, n_classes=3):
    """A learner bound to a small random problem and random parameters around its init:
    ``(model, X, y, params, sample_weight)``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    model = HEADS[head](hidden=list(hidden), activation=activation, l2=l2, seed=seed)
    if head == "softmax":
        y = rng.integers(0, n_classes, size=n_samples)
        params = model.init_params(n_features, n_classes)
    else:
        y = rng.normal(size=n_samples)
        params = model.init_params(n_features)
    params = params + rng.normal(scale=0.3, size=params.size)  # biases away from 0 too
    return model, X, y, params, rng.uniform(0.1, 3.0, size=n_samples)


def _central_differences(model, params, X, y, w, h=1e-6):
    grad = np.empty_like(params)
    for j in range(params.size):
        step = np.zeros_like(params)
        step[j] = h
        grad[j] = (model.loss_grad(params + step, X, y, w)[0]
                   - model.loss_grad(params - step, X, y, w)[0]) / (2 * h)
    return grad


def _pre_activations(model, params, X):
    """Z of every hidden layer, from the public face."""
    A, out = X, []
    for l in range(model.n_layers - 1):
        W, b = model.layer_params(l, params)
        out.append(A @ W + b)
        A, _ = model.forward_layer(l, params, A)
    return out


# ------------------------------------------------------------------ exact gradients


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("is_weighted", [False, True])
def test_gradient_matches_central_finite_differences(head, activation, is_weighted):
    """Backpropagation equals central finite differences to relative error 1e-6 (float64),
    for every activation and both losses, with L2 and with sample weights."""
    model, X, y, params, weights = _problem(head, activation)
    if activation == "relu":  # differentiable only away from its kink at 0
        assert min(np.abs(Z).min() for Z in _pre_activations(model, params, X)) > 1e-4
    w = weights if is_weighted else None
    _, grad = model.loss_grad(params, X, y, w)
    expected = _central_differences(model, params, X, y, w)
    assert np.linalg.norm(grad - expected) / np.linalg.norm(expected) < 1e-6


def test_gelu_is_the_tanh_form_close_to_the_erf_form():
    """gelu is 0.5 z (1 + tanh(sqrt(2/pi)(z + 0.044715 z^3))), within 1e-3 of z Phi(z)."""
    model = MLPClassifier(hidden=[1], activation="gelu")
    model.init_params(1, 2)
    params = np.zeros(model.n_params)
    w, _ = model.layer_slices(0)
    params[w] = 1.0  # the hidden unit is gelu(x)
    z = np.linspace(-4, 4, 17)
    A, _ = model.forward_layer(0, params, z[:, None])
    tanh_form = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
                 for v in z]
    np.testing.assert_allclose(A[:, 0], tanh_form, rtol=1e-15, atol=1e-15)
    erf_form = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in z]
    assert np.abs(A[:, 0] - erf_form).max() < 1e-3


# --------------------------------------------------------------- the per-layer face


def _composed(model, params, X, y, w=None):
    """loss_grad spelled out with the public per-layer face."""
    A, caches = X, []
    for l in range(model.n_layers):
        A, cache = model.forward_layer(l, params, A)
        caches.append(cache)
    loss, dA = model.loss_head(A, y, w)
    grad = np.zeros_like(params)
    for l in reversed(range(model.n_layers)):
        dA, grad_l = model.backward_layer(l, params, caches[l], dA)
        weights, bias = model.layer_slices(l)
        grad[weights.start:bias.stop] = grad_l
    return loss + model.penalty(params), grad


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(), (6,), (6, 5, 4)])
def test_per_layer_passes_compose_to_loss_grad_bit_for_bit(head, activation, hidden):
    """forward_layer, loss_head, backward_layer (and penalty) compose to loss_grad exactly:
    a strategy that schedules the layers itself gets the very same bits."""
    model, X, y, params, weights = _problem(head, activation, hidden=hidden)
    for w in (None, weights):
        loss, grad = model.loss_grad(params, X, y, w)
        c_loss, c_grad = _composed(model, params, X, y, w)
        assert c_loss == loss
        assert c_grad.tobytes() == grad.tobytes()


def test_layer_slices_tile_the_vector_and_layer_params_are_views():
    """The layers' W and b slices cover the flat vector in order, without gaps; W_l has
    shape (n_in, n_out) and is a view, so writing it writes params."""
    model = MLPClassifier(hidden=[5, 4])
    params = model.init_params(3, 2)
    assert model.layer_sizes_ == (3, 5, 4, 2) and model.n_layers == 3
    assert model.layer_shapes == [(3, 5), (5, 4), (4, 2)]
    ends = 0
    for l, (n_in, n_out) in enumerate(model.layer_shapes):
        w, b = model.layer_slices(l)
        middle = ends + n_in * n_out
        assert (w.start, w.stop, b.start, b.stop) == (ends, middle, middle, middle + n_out)
        ends = b.stop
        W, bias = model.layer_params(l, params)
        assert W.shape == (n_in, n_out) and bias.shape == (n_out,)
        assert np.shares_memory(W, params) and np.shares_memory(bias, params)
    assert ends == params.size == model.n_params == 4 * 5 + 6 * 4 + 5 * 2
    with pytest.raises(IndexError, match=r"^layer 3 of MLPClassifier: there are 3 layers, 0 .. 2$"):
        model.layer_slices(3)


def test_backward_of_the_first_layer_computes_no_input_gradient():
    """Layer 0's dA_in is None (nothing below needs it); the others return (n_rows, n_in)."""
    model, X, y, params, _ = _problem("softmax", hidden=(6, 5))
    A, caches = X, []
    for l in range(3):
        A, cache = model.forward_layer(l, params, A)
        caches.append(cache)
    _, dA = model.loss_head(A, y)
    shapes = []
    for l in (2, 1, 0):
        dA, grad_l = model.backward_layer(l, params, caches[l], dA)
        shapes.append(None if dA is None else dA.shape)
    assert shapes == [(25, 5), (25, 6), None]


@pytest.mark.parametrize("dtype, s", [("float64", 8), ("float32", 4)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_bytes_are_the_bytes_the_caches_hold(activation, dtype, s):
    """activation_bytes(n) is the nbytes of each layer's cache: its input (s bytes a
    number: 8 float64, 4 float32) and, on hidden layers, the slope (relu: a boolean mask,
    1 byte an entry in either dtype; else s); activation_nbytes leaves out the input."""
    slope_bytes = 1 if activation == "relu" else s
    model, X, _, params, _ = _problem("softmax", activation, hidden=(6, 5))
    if dtype == "float32":
        model = MLPClassifier(hidden=[6, 5], activation=activation, dtype=dtype)
        model.init_params(4, 3)
        X, params = X.astype(np.float32), params.astype(np.float32)
    A, held = X, []
    for l in range(model.n_layers):
        A_in = A
        A, cache = model.forward_layer(l, params, A_in)
        assert isinstance(cache, LayerCache) and cache.inputs is A_in  # kept, not copied
        held.append(cache.inputs.nbytes + (0 if cache.slope is None else cache.slope.nbytes))
    n = 25
    assert held == model.activation_bytes(n) == [s * n * 4 + slope_bytes * n * 6,
                                                 s * n * 6 + slope_bytes * n * 5, s * n * 5]
    assert model.activation_nbytes(n) == sum(held) - X.nbytes


# ------------------------------------------------------------------- operation counts


def test_layer_flops_match_a_hand_count_of_a_tiny_net():
    """n=5 rows, 2 features, hidden [3] (relu), 2 classes; one multiply-add = 2 flop, the
    bias an input column of ones."""
    model = MLPClassifier(hidden=[3])
    model.init_params(2, 2)
    layer0 = (2 * 5 * (2 + 1) * 3 + 2 * 5 * 3,          # X W + b, relu value and mask
              5 * 3 + 2 * 5 * (2 + 1) * 3 + 2 * 2 * 3)  # dZ, dW and db, L2; no dX
    layer1 = (2 * 5 * (3 + 1) * 2 + 5 * 5 * 2,          # A W + b, softmax cross-entropy
              2 * 5 * (3 + 1) * 2 + 2 * 3 * 2 + 2 * 5 * 3 * 2)  # dW and db, L2, dA
    assert model.layer_flops(5) == [(120.0, 117.0), (130.0, 152.0)] == [layer0, layer1]
    assert model.grad_flops(5) == 519.0


@pytest.mark.parametrize("activation, per_entry", [("relu", 2), ("tanh", 3), ("gelu", 17)])
def test_the_activation_counts_only_its_own_flops(activation, per_entry):
    """Changing the activation changes only the hidden layers' forward count, by
    per_entry x n x width; the regressor's head is 4 flop per row."""
    model = MLPRegressor(hidden=[3], activation=activation)
    model.init_params(2)
    relu = MLPRegressor(hidden=[3])
    relu.init_params(2)
    (f0, b0), (f1, b1) = model.layer_flops(5)
    (r0, rb0), (r1, rb1) = relu.layer_flops(5)
    assert (f0 - r0, b0, f1, b1) == ((per_entry - 2) * 5 * 3, rb0, r1, rb1)
    assert f1 == 2 * 5 * (3 + 1) * 1 + 4 * 5


# ----------------------------------------------------------- the linear special case


def test_no_hidden_layer_is_logistic_regression():
    """hidden=[] has LogisticRegression's layout, loss, gradient and flop count."""
    model, X, y, params, weights = _problem("softmax", hidden=())
    logistic = LogisticRegression(l2=0.1)
    logistic.init_params(4, 3)
    for w in (None, weights):
        loss, grad = model.loss_grad(params, X, y, w)
        ref_loss, ref_grad = logistic.loss_grad(params, X, y, w)
        assert loss == pytest.approx(ref_loss, rel=1e-14)
        np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.decision_function(X, params),
                               logistic.decision_function(X, params), rtol=1e-14)
    assert model.grad_flops(25) == logistic.grad_flops(25)


def test_no_hidden_layer_is_linear_regression():
    """hidden=[] in the regressor has LinearRegression's layout, loss, gradient, flops."""
    model, X, y, params, weights = _problem("squared", hidden=())
    linear = LinearRegression(l2=0.1)
    linear.init_params(4)
    for w in (None, weights):
        loss, grad = model.loss_grad(params, X, y, w)
        ref_loss, ref_grad = linear.loss_grad(params, X, y, w)
        assert loss == pytest.approx(ref_loss, rel=1e-14)
        np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-15)
    assert model.grad_flops(25) == linear.grad_flops(25)


def test_l2_penalizes_every_weight_matrix_but_no_bias():
    """The L2 term adds l2 W_l to each weight slice and nothing to the biases."""
    model0, X, y, params, _ = _problem("softmax", l2=0.0)
    model1, *_ = _problem("softmax", l2=0.7)
    diff = model1.loss_grad(params, X, y)[1] - model0.loss_grad(params, X, y)[1]
    for l in range(model0.n_layers):
        w, b = model0.layer_slices(l)
        np.testing.assert_allclose(diff[w], 0.7 * params[w], atol=1e-15)
        np.testing.assert_allclose(diff[b], 0.0, atol=1e-15)


# ------------------------------------------------------------------- initialisation


def test_the_same_seed_gives_the_same_bytes_and_another_seed_differs():
    """init_params draws from default_rng(seed): the same bytes every time."""
    a = MLPClassifier(seed=3).init_params(8, 3)
    assert a.tobytes() == MLPClassifier(seed=3).init_params(8, 3).tobytes()
    assert not np.array_equal(a, MLPClassifier(seed=4).init_params(8, 3))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_init_is_he_before_relu_and_gelu_glorot_before_tanh_and_the_output(activation):
    """Hidden weights: He N(0, 2/n_in) (relu, gelu) or Glorot U(+-sqrt(6/(n_in+n_out)))
    (tanh); the output layer Glorot; biases 0. The He std is within 3 % on 40,000 draws
    (the std of a sample std is ~ 1/sqrt(2N) = 0.35 %)."""
    model = MLPClassifier(hidden=[200], activation=activation)
    params = model.init_params(200, 10)
    W0, b0 = model.layer_params(0, params)
    W1, b1 = model.layer_params(1, params)
    assert not b0.any() and not b1.any()
    assert np.abs(W1).max() <= math.sqrt(6 / 210)
    if activation == "tanh":
        bound = math.sqrt(6 / 400)
        assert np.abs(W0).max() <= bound and np.abs(W0).max() > 0.99 * bound
    else:
        assert W0.std() == pytest.approx(math.sqrt(2 / 200), rel=0.03)


# ------------------------------------------------------------------ from a scenario


DIGITS = {"data.dataset": "digits", "model.kind": "mlp", "model.hidden": [32],
          "cluster.workers": 4, "strategy.lr": 0.5, "stop.rounds": 100, "eval_every": 10}


def test_a_run_from_toml_trains_an_mlp_on_digits(tmp_path):
    """model.kind = "mlp", hidden = [32] on digits under sync: the loss falls at every
    evaluation and the test accuracy passes 93 % (measured: 95.3 % after 100 rounds)."""
    path = tmp_path / "digits_mlp.toml"
    path.write_text('seed = 0\neval_every = 10\n[cluster]\nworkers = 4\n'
                    '[data]\ndataset = "digits"\n[model]\nkind = "mlp"\nhidden = [32]\n'
                    '[strategy]\nkind = "sync"\nlr = 0.5\n[stop]\nrounds = 100\n')
    from simdml import load_scenario
    result = run(load_scenario(path))
    losses = [row["loss"] for row in result.history]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert result.history[-1]["accuracy"] > 0.93


def test_sync_equals_allreduce_and_centralized_gradient_descent():
    """On an MLP, sync and the ring all-reduce give the same losses (1e-12), and both the
    model of centralized full-batch gradient descent from the same seeded start."""
    s = Scenario().replace(**{**DIGITS, "stop.rounds": 15, "eval_every": 1})
    sync, ring = run(s), run(s.replace(**{"strategy.kind": "allreduce"}))
    np.testing.assert_allclose([r["loss"] for r in ring.history],
                               [r["loss"] for r in sync.history], rtol=0, atol=1e-12)
    split = prepare_data(s)
    reference = MLPClassifier(hidden=[32], lr=0.5, n_iter=15).fit(split.X_train, split.y_train)
    for result in (sync, ring):
        np.testing.assert_allclose(result.model.params_, reference.params_, rtol=0, atol=1e-12)


def test_an_mlp_steps_with_any_optimizer_the_same_under_sync_and_allreduce():
    """[optimizer] adam on an MLP: the loss falls, and the ring gives sync's losses."""
    s = Scenario().replace(**{**DIGITS, "stop.rounds": 15, "eval_every": 1, "strategy.lr": 0.01,
                              "optimizer.kind": "adam"})
    sync, ring = run(s), run(s.replace(**{"strategy.kind": "allreduce"}))
    losses = [r["loss"] for r in sync.history]
    assert losses[-1] < 0.3 * losses[0]
    np.testing.assert_allclose([r["loss"] for r in ring.history], losses, rtol=0, atol=1e-12)


@pytest.mark.parametrize("changes", [
    {"strategy.kind": "async"}, {"strategy.kind": "ssp", "strategy.staleness": 1},
    {"strategy.kind": "local_sgd", "strategy.local_steps": 3},
    {"strategy.kind": "sync", "strategy.batch_size": 16},
], ids=["async", "ssp", "local_sgd", "sync-minibatch"])
def test_every_gradient_strategy_trains_an_mlp(changes):
    """The strategies that train through loss_grad train an MLP unchanged: loss falls."""
    s = Scenario().replace(**{"model.kind": "mlp", "model.hidden": [16],
                              "model.activation": "gelu", "stop.rounds": 30, **changes})
    losses = [row["loss"] for row in run(s).history]
    assert losses[-1] < 0.6 * losses[0]


def test_the_regressor_trains_from_a_scenario():
    """model.kind = "mlp_regression" on synthetic regression: R^2 climbs past 0.9
    (measured: from -0.69 to 0.977 in 100 rounds)."""
    s = Scenario().replace(**{"model.kind": "mlp_regression", "model.hidden": [16],
                              "model.activation": "tanh", "data.dataset": "synthetic_regression",
                              "strategy.lr": 0.05, "stop.rounds": 100})
    result = run(s)
    assert result.history[-1]["r2"] > 0.9 > result.history[0]["r2"]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("options, message", [
    ({"hidden": [0]}, "The 'hidden' parameter of MLPClassifier must be a list of ints >= 1 "
                      "(the width of each hidden layer; [] for none). Got [0] instead."),
    ({"hidden": 64}, "The 'hidden' parameter of MLPClassifier must be a list of ints >= 1 "
                     "(the width of each hidden layer; [] for none). Got 64 instead."),
    ({"hidden": [32, 2.5]}, "The 'hidden' parameter of MLPClassifier must be a list of ints "
                            ">= 1 (the width of each hidden layer; [] for none). "
                            "Got [32, 2.5] instead."),
    ({"activation": "sigmoid"}, "The 'activation' parameter of MLPClassifier must be one of "
                                "'relu', 'tanh', 'gelu'. Got 'sigmoid' instead."),
    ({"seed": -1}, "The 'seed' parameter of MLPClassifier must be an int >= 0. Got -1 instead."),
    ({"dtype": "float16"}, "The 'dtype' parameter of MLPClassifier must be one of 'float64', "
                           "'float32' (a name, as TOML writes it). Got 'float16' instead."),
])
def test_bad_parameters_name_the_key_in_fit_and_in_a_scenario(options, message):
    """fit and a scenario refuse each bad setting with the house message; the scenario's
    names the dotted key first."""
    X, y = np.random.default_rng(0).normal(size=(6, 2)), [0, 1] * 3
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        MLPClassifier(**options).fit(X, y)
    key = next(iter(options))
    with pytest.raises(ScenarioError, match=f"^model.{key}: {re.escape(message)}$"):
        Scenario().replace(**{"model.kind": "mlp", **{f"model.{k}": v for k, v in options.items()}})


def test_params_of_the_wrong_size_are_refused():
    """A vector that is not this net's says which sizes it expected."""
    model = MLPClassifier(hidden=[3])
    model.init_params(2, 2)
    with pytest.raises(ValueError, match=r"^params has size 5; MLPClassifier with layer "
                       r"sizes \[2, 3, 2\] expects 17[.]$"):
        model.loss_grad(np.zeros(5), np.zeros((1, 2)), np.zeros(1, dtype=int))


def test_predict_proba_rows_sum_to_one_and_predict_is_their_argmax():
    """The classifier's probabilities are a softmax of its scores."""
    model, X, y, params, _ = _problem("softmax")
    P = model.predict_proba(X, params)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(model.predict(X, params), P.argmax(axis=1))


@pytest.fixture
def one_gigabyte(monkeypatch):
    """A budget of 1 GB whatever the machine, so that the refusals are deterministic."""
    import simdml._checks
    monkeypatch.setattr(simdml._checks, "memory_budget", lambda: 1e9)


@pytest.mark.parametrize("changes, message", [
    ({"model.hidden": [10**5, 10**5], "cluster.workers": 3},
     r"^cluster.workers=3 with data.dataset='iris' and model.hidden=\[100000, 100000\] needs "
     r"about 1.28 TB \(4 models of 10,000,900,003 numbers per node\)"),
    ({"model.hidden": [35_000], "data.dataset": "digits"},
     r"^model.hidden=\[35000\] with data.dataset='digits' needs about 1.01 GB \(the "
     r"activations of 1,797 rows x 35,000 hidden units, 16 bytes each\)"),
])
def test_a_net_too_large_for_this_machine_is_refused_with_the_estimate(one_gigabyte, changes,
                                                                         message):
    """The run's memory guard counts a net's parameters and activations, not a linear
    model's (found before the run, not by running out of memory)."""
    with pytest.raises(ScenarioError, match=message):
        Scenario().replace(**{"model.kind": "mlp", **changes})
