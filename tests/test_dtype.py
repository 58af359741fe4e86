"""Contracts of ``model.dtype = "float32"`` for the MLPs: every array the net holds and
every byte it books or sends is half of float64's; its numbers differ from float64's by
rounding only, within tolerances derived below from float32's unit roundoff
``u = 2**-24 ~ 6.0e-8``; float64, the default, is untouched bit for bit.

Measured (numpy 2.4 on x86-64), against each tolerance: a layer's gradient <= 4 u
(tolerance 1e-5 ~ 170 u), ten optimizer steps 1.5 u (1e-6 ~ 17 u), fifty training
rounds 3-13 u (2.4e-5 = 400 u).
"""
import numpy as np
import pytest

import simdml
from simdml import Scenario, ScenarioError, run
from simdml.cluster import Node
from simdml.experiment import prepare_data
from simdml.memory import CATEGORIES
from simdml.models import MLPClassifier, MLPRegressor
from simdml.optim import OPTIMIZERS, Optimizer, Schedule
from simdml.scenario import parse_scenario
from simdml.strategies.job import weighted_sum
from tests.golden.cases import digest

U = 2.0 ** -24  # float32's unit roundoff: a rounding is off by at most u, relatively
HEADS = {"softmax": MLPClassifier, "squared": MLPRegressor}

# tanh, not relu: relu keeps a boolean mask (1 byte an entry in either dtype), so only
# the activations of tanh and gelu are exactly half
BASE = Scenario(name="dtype").replace(**{
    "model.kind": "mlp", "model.hidden": [8, 6], "model.activation": "tanh",
    "optimizer.kind": "adam", "strategy.lr": 0.05, "cluster.workers": 3, "stop.rounds": 4})
REGRESSION = BASE.replace(**{"data.dataset": "synthetic_regression",
                             "model.kind": "mlp_regression"})
STRATEGIES = {"sync": {}, "allreduce": {"strategy.kind": "allreduce"},
              "async": {"strategy.kind": "async"}, "local_sgd": {"strategy.kind": "local_sgd"},
              "tasks": {"scheduling.policy": "least_loaded"},
              "mini-batch": {"strategy.batch_size": 7}}
# ddp and every ZeRO stage: their gradient buffers, shards and bucket buffers follow the
# parameters' dtype
DDP = {f"ddp zero={z}": {"strategy.kind": "ddp", "strategy.zero": z, "strategy.bucket_size": 1}
       for z in (0, 1, 2, 3)}


def _pair(s: Scenario) -> tuple:
    """The runs of ``s`` in float64 and in float32."""
    return run(s.replace(**{"model.dtype": "float64"})), run(s.replace(**{"model.dtype": "float32"}))


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / ||b||``, in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# -- float64 is the default, and untouched ------------------------------------------

def test_the_default_is_float64_and_naming_it_changes_no_bit():
    """dtype defaults to float64, and a scenario that says so runs bit for bit as one
    that does not (the golden digests hold the rest)."""
    assert MLPClassifier().dtype == MLPRegressor().dtype == "float64"
    assert MLPClassifier(hidden=[3]).init_params(2, 2).dtype == np.float64
    assert digest(run(BASE)) == digest(run(BASE.replace(**{"model.dtype": "float64"})))


def test_the_same_seed_gives_the_same_bytes_in_float32_and_they_differ_from_float64():
    """A float32 run is a pure function of its scenario, as every run; and it really is
    another computation than the float64 one."""
    s = BASE.replace(**{"model.dtype": "float32"})
    assert digest(run(s)) == digest(run(s))
    assert digest(run(s)) != digest(run(BASE))


# -- float32 end to end -----------------------------------------------------------------

def _arrays(payload) -> list:
    """The arrays a message carries: itself, or its array fields."""
    if isinstance(payload, np.ndarray):
        return [payload]
    return [v for v in getattr(payload, "_asdict", dict)().values() if isinstance(v, np.ndarray)]


@pytest.mark.parametrize("changes", [*STRATEGIES.values(), *DDP.values()],
                         ids=[*STRATEGIES, *DDP])
def test_a_float32_run_is_float32_end_to_end(monkeypatch, changes):
    """In a float32 run the rows reach the learner as float32, every optimizer step takes
    and returns float32 parameters, gradient and state, every model or gradient sent is
    float32, and so is the trained model."""
    seen = {"rows": set(), "step": set(), "sent": set()}
    loss_grad, step = MLPClassifier.loss_grad, Optimizer.step
    transmit = Node._transmit                    # every message's one way onto a NIC

    def spy_loss_grad(self, params, X, y, sample_weight=None):
        seen["rows"].add(X.dtype)
        return loss_grad(self, params, X, y, sample_weight)

    def spy_step(self, params, grad, state, t, **kw):
        new, after = step(self, params, grad, state, t, **kw)
        arrays = [params, grad, new, *state.arrays.values(), *after.arrays.values()]
        seen["step"].update(a.dtype for a in arrays)
        return new, after

    def spy_transmit(self, dst, payload, nbytes):
        seen["sent"].update(a.dtype for a in _arrays(payload))
        return transmit(self, dst, payload, nbytes)

    monkeypatch.setattr(MLPClassifier, "loss_grad", spy_loss_grad)
    monkeypatch.setattr(Optimizer, "step", spy_step)
    monkeypatch.setattr(Node, "_transmit", spy_transmit)
    r = run(BASE.replace(**{**changes, "model.dtype": "float32"}))
    assert r.model.params_.dtype == np.float32
    assert seen == {"rows": {np.dtype(np.float32)}, "step": {np.dtype(np.float32)},
                    "sent": {np.dtype(np.float32)}}


def test_the_net_computes_every_array_in_float32():
    """Parameters, each layer's cached input and slope (relu: a boolean mask), each
    layer's gradient, the loss head's derivative and predictions are float32; foreign
    rows are cast on the way in, to exactly what a float32 caller would pass."""
    model = MLPClassifier(hidden=[5, 4], activation="relu", dtype="float32")
    params = model.init_params(3, 2)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(9, 3)), rng.integers(0, 2, 9)
    A, caches = X.astype(np.float32), []
    for l in range(model.n_layers):
        A, cache = model.forward_layer(l, params, A)
        caches.append(cache)
        assert A.dtype == cache.inputs.dtype == np.float32
        assert cache.slope is None or cache.slope.dtype == np.bool_
    loss, dA = model.loss_head(A, y)
    assert isinstance(loss, float) and dA.dtype == np.float32
    for l in reversed(range(model.n_layers)):
        dA, grad_l = model.backward_layer(l, params, caches[l], dA)
        assert grad_l.dtype == np.float32 and (dA is None or dA.dtype == np.float32)
    loss32, grad32 = model.loss_grad(params, X.astype(np.float32), y)
    loss64, grad64 = model.loss_grad(params, X, y)  # float64 rows: cast, then the same
    assert grad64.dtype == np.float32 and np.array_equal(grad64, grad32) and loss64 == loss32
    assert model.decision_function(X, params).dtype == np.float32
    assert model.predict_proba(X, params).dtype == np.float32


def test_the_regressor_casts_its_targets_and_weights_to_float32():
    """float64 targets and row weights do not upcast a float32 regressor's gradient: the
    same bits as float32 targets."""
    model = MLPRegressor(hidden=[4], dtype="float32")
    params = model.init_params(3)
    rng = np.random.default_rng(2)
    X, y, w = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=8), rng.uniform(1, 2, 8)
    _, dA = model.loss_head(model.decision_function(X, params), y, w)
    assert dA.dtype == np.float32
    grad64 = model.loss_grad(params, X, y, w)[1]
    assert np.array_equal(grad64, model.loss_grad(params, X, y.astype(np.float32), w)[1])


def test_the_float32_loss_is_summed_in_float64():
    """The loss of a float32 net is the float64 mean of its float32 row losses (a
    reported number: it never travels), not their float32 mean, which is off by ~1e-7
    on 20,000 rows."""
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(20_000, 3)).astype(np.float32)
    y = rng.integers(0, 3, 20_000)
    loss, _ = MLPClassifier(dtype="float32").loss_head(scores, y)
    Z = scores - np.maximum.reduce(scores, axis=1)[:, None]  # the head's own steps
    rows = np.log(np.add.reduce(np.exp(Z), axis=1)) - Z[np.arange(y.size), y]
    assert rows.dtype == np.float32
    in_float64 = float(np.add.reduce(rows.astype(np.float64)) / y.size)
    assert abs(loss - in_float64) <= 1e-12 * in_float64
    in_float32 = float(np.add.reduce(rows) / np.float32(y.size))
    assert abs(in_float32 - in_float64) > 1e-12 * in_float64  # the test can tell them apart


def test_float32_rows_are_cast_once_when_the_run_binds_them():
    """The shards are cast when the run binds them (not per batch): a worker books
    float32 features beside its integer labels; a regressor's targets are float32 too."""
    for s in (BASE, REGRESSION):
        r64, r32 = _pair(s)
        split = prepare_data(s)
        for i, part in enumerate(split.parts):
            shard64 = r64.memory[f"worker{i}"]["breakdown"]["shard"]
            shard32 = r32.memory[f"worker{i}"]["breakdown"]["shard"]
            features = len(part) * split.X_train.shape[1] * 8
            labels = len(part) * 8  # int64 class indices, or float64 targets
            assert shard64 == features + labels
            is_classifier = s.model.kind == "mlp"
            assert shard32 == features // 2 + (labels if is_classifier else labels // 2)


def test_fit_trains_in_float32_as_float64_does():
    """``fit`` in float32 keeps float32 parameters and follows float64's loss curve
    within the training tolerance (below); the predictions agree."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 3, 40)
    fits = [MLPClassifier(hidden=[8], activation="tanh", n_iter=50, lr=0.5, dtype=d).fit(X, y)
            for d in ("float64", "float32")]
    assert fits[1].params_.dtype == np.float32
    assert _relative(fits[1].params_, fits[0].params_) < 50 * 8 * U
    assert _relative(fits[1].loss_curve_, fits[0].loss_curve_) < 50 * 8 * U
    assert np.array_equal(fits[1].predict(X), fits[0].predict(X))


# -- memory and bytes on the wire: exactly half ---------------------------------------

@pytest.mark.parametrize("scenario", [BASE, REGRESSION], ids=["mlp", "mlp_regression"])
@pytest.mark.parametrize("strategy", ["sync", "allreduce"])
def test_float32_memory_is_exactly_half(scenario, strategy):
    """Every node's parameters, gradients, optimizer state (Adam: two vectors) and
    activations (tanh) at its peak take exactly half the bytes of float64's; the
    all-reduce's message buffers too (bare arrays; sync's messages have headers)."""
    r64, r32 = _pair(scenario.replace(**{"strategy.kind": strategy}))
    halved = ["params", "grads", "optimizer", "activations"]
    if strategy == "allreduce":
        halved.append("buffers")
    for node in r64.memory:
        b64, b32 = r64.memory[node]["breakdown"], r32.memory[node]["breakdown"]
        assert set(b64) == set(CATEGORIES)
        assert {k: b64[k] for k in halved} == {k: 2 * b32[k] for k in halved}, node
    assert r64.memory["worker0"]["breakdown"]["activations"] > 0  # a forward pass's


def test_float32_halves_every_array_on_the_wire():
    """The all-reduce sends bare arrays: exactly half the bytes. A parameter server's
    messages keep their headers (tags, indices): float32 saves exactly half of each
    message's array, and rebalancing's rows send float32 features beside int64 labels."""
    r64, r32 = _pair(BASE.replace(**{"strategy.kind": "allreduce"}))
    assert r64.summary["bytes_sent"] == 2 * r32.summary["bytes_sent"] > 0
    s = BASE.replace(**{"data.partition": "label_skew", "data.rebalance": True})
    r64, r32 = _pair(s)
    split = prepare_data(s)
    n_params = r32.model.params_.size
    arrays = r32.summary["messages_sent"] - len(split.moves)  # models and gradients
    rows = sum(n for *_, n in split.moves)
    assert rows > 0 and r64.summary["messages_sent"] == r32.summary["messages_sent"]
    assert (r64.summary["bytes_sent"] - r32.summary["bytes_sent"]
            == arrays * 4 * n_params + rows * 4 * split.X_train.shape[1])


@pytest.mark.parametrize("changes", DDP.values(), ids=DDP)
def test_ddp_and_zero_halve_their_memory_and_bytes_in_float32(changes):
    """ddp and every ZeRO stage: the parameters, gradients, optimizer state, activations
    (tanh), message buffers, ZeRO's unsharded buckets and the bytes sent, all half."""
    r64, r32 = _pair(BASE.replace(**changes))
    assert r64.summary["bytes_sent"] == 2 * r32.summary["bytes_sent"] > 0
    for node in r64.memory:
        b64, b32 = r64.memory[node]["breakdown"], r32.memory[node]["breakdown"]
        halved = [c for c in b64 if c != "shard"]
        assert {k: b64[k] for k in halved} == {k: 2 * b32[k] for k in halved}, node
    assert r32.memory["worker0"]["breakdown"]["grads"] > 0
    np.testing.assert_allclose(r32.model.params_, r64.model.params_, rtol=0, atol=1e-5)


def test_weighted_sum_keeps_float32_and_float64():
    """A server's average of float32 gradients is float32 (its bytes and what it sends
    stay half); float64 stays float64, and a mixed or integer stack is float64."""
    f32 = [np.ones(3, np.float32), np.full(3, 2, np.float32)]
    assert weighted_sum([0.25, 0.75], f32).dtype == np.float32
    assert weighted_sum([0.25, 0.75], f32).tolist() == [1.75] * 3
    assert weighted_sum([0.5, 0.5], [np.ones(2), np.ones(2)]).dtype == np.float64
    assert weighted_sum([0.5, 0.5], [np.ones(2, np.float32), np.ones(2)]).dtype == np.float64
    assert weighted_sum([0.5, 0.5], [np.ones(2, int), np.ones(2, int)]).dtype == np.float64


# -- the numbers: rounding only ----------------------------------------------------------

def _problem(head, activation, seed):
    """A float32 net and its float64 twin on the same float32-exact problem."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(25, 4)).astype(np.float32)
    nets = [HEADS[head](hidden=[6, 5], activation=activation, l2=0.1, seed=seed, dtype=d)
            for d in ("float64", "float32")]
    shape = (4, 3) if head == "softmax" else (4,)
    params = nets[0].init_params(*shape)
    nets[1].init_params(*shape)
    params = (params + rng.normal(scale=0.3, size=params.size)).astype(np.float32)
    y = rng.integers(0, 3, 25) if head == "softmax" else rng.normal(size=25).astype(np.float32)
    return nets, params, X, y, rng.uniform(0.1, 3.0, size=25)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("is_weighted", [False, True])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("head", HEADS)
def test_each_layer_s_float32_gradient_is_float64_s_within_rounding(head, activation,
                                                                    is_weighted, seed):
    """Each layer's float32 gradient is the float64 one (itself checked against central
    differences in test_mlp) at the same float32 point to relative 1e-5, normwise.

    Why 1e-5: a float32 dot product of length k is off by at most ``k u`` of its terms'
    magnitudes (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002,
    eq. (3.5)). A gradient entry goes forward and back through 3 layers (sums of <= 7
    inputs and <= 6 outputs each way) and sums 25 rows: (3 x 7 + 3 x 6 + 25) u = 64 u;
    the activations and the loss head add a few u each, under 100 u ~ 6e-6 in all,
    rounded up to 1e-5. A float16 step, a dropped term or a wrong slope is far outside.
    """
    nets, params, X, y, w = _problem(head, activation, seed)
    w = w if is_weighted else None
    y64 = y if head == "softmax" else y.astype(np.float64)
    loss64, grad64 = nets[0].loss_grad(params.astype(np.float64), X.astype(np.float64), y64, w)
    loss32, grad32 = nets[1].loss_grad(params, X, y, w)
    assert grad32.dtype == np.float32 and grad64.dtype == np.float64
    for l in range(nets[0].n_layers):
        weights, bias = nets[0].layer_slices(l)
        layer = slice(weights.start, bias.stop)
        error = _relative(grad32[layer], grad64[layer])
        assert 0 < error < 1e-5, (l, error)  # 0 would be float64 in disguise
    assert abs(loss32 - loss64) < 1e-5 * abs(loss64)


@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_ten_float32_optimizer_steps_are_float64_s_within_rounding(kind):
    """Ten steps in float32 (weight decay, a warm-up and a cosine) stay float32 and end
    within relative 1e-6 of the same steps in float64, normwise.

    Why 1e-6: a step rounds the new parameters once (u / 2) and its few operations are
    a fraction lr |direction| / |w| of it; ten steps that add up, none cancelling, give
    under 10 x (u / 2 + 1 u) = 15 u ~ 9e-7."""
    opt = Optimizer(kind=kind, lr=0.1, weight_decay=0.01,
                    schedule=Schedule(kind="cosine", warmup=2, horizon=10))
    rng = np.random.default_rng(0)
    p32 = rng.normal(size=1000).astype(np.float32)
    p64 = p32.astype(np.float64)
    s32, s64 = opt.init_state(p32), opt.init_state(p64)
    for t in range(10):
        g = rng.normal(size=1000).astype(np.float32)
        p32, s32 = opt.step(p32, g, s32, t)
        p64, s64 = opt.step(p64, g.astype(np.float64), s64, t)
        assert p32.dtype == np.float32 and {a.dtype for a in s32.arrays.values()} <= {
            np.dtype(np.float32)}
    assert 0 < _relative(p32, p64) < 1e-6


def test_a_float32_step_stays_float32_whatever_its_scalars_and_gradient():
    """numpy float64 settings, learning rate or scale, or a float64 gradient, do not
    upcast float32 parameters or state; float64 parameters stay float64."""
    opt = Optimizer(kind="adam", lr=np.float64(0.1), beta1=np.float64(0.9),
                    eps=np.float64(1e-8))
    params = np.ones(4, np.float32)
    for grad in (np.ones(4, np.float32), np.ones(4)):
        new, state = opt.step(params, grad, opt.init_state(params), 0, scale=np.float64(0.5))
        assert new.dtype == np.float32 and all(a.dtype == np.float32 for a in state.arrays.values())
    plain = Optimizer(lr=np.float64(0.1))
    assert plain.step(params, np.ones(4), plain.init_state(params), 0)[0].dtype == np.float32
    assert plain.step(np.ones(4), np.ones(4, np.float32), plain.init_state(params), 0)[0].dtype \
        == np.float64


ROUNDS = 50


@pytest.mark.parametrize("changes", [
    {},
    {"data.dataset": "digits", "model.hidden": [32, 16], "model.activation": "gelu"},
    {"data.dataset": "synthetic_regression", "model.kind": "mlp_regression",
     "optimizer.kind": "sgd", "strategy.lr": 0.2},
], ids=["iris-tanh-adam", "digits-gelu-adam", "regression-tanh-sgd"])
def test_a_float32_training_run_ends_within_rounding_of_the_float64_one(changes):
    """After 50 sync rounds the float32 model is the float64 one to relative
    ``T 8 u = 2.4e-5`` (normwise, T = 50 rounds), every recorded loss too, and the test
    score differs by at most one test row.

    Why ``T 8 u``: a round adds the float32 gradient's error (measured <= 6 u, above) and
    the step's (<= 2 u); gradient descent this close to its path does not amplify them
    (a step of lr < 2 / L is non-expansive on a locally convex loss), so after T rounds
    they are at most T 8 u -- the worst case, every error adding; the measured 2-9 u
    are the random walk's ``sqrt(T)`` growth. The float32 run starts from the float64
    start rounded (u / 2, inside the bound). Only in a stable run: at the edge of
    stability (the regression at lr = 0.5, whose loss jumps up 10-fold at round 25)
    every perturbation grows, rounding's too (170 u mid-run, back to 25 u after)."""
    s = BASE.replace(**{"stop.rounds": ROUNDS, **changes})
    r64, r32 = _pair(s)
    tolerance = ROUNDS * 8 * U
    assert _relative(r32.model.params_, r64.model.params_) < tolerance
    losses = [np.array([h["loss"] for h in r.history]) for r in (r32, r64)]
    assert np.all(np.abs(losses[0] - losses[1]) <= tolerance * losses[1])
    n_test = prepare_data(s).y_test.size
    assert abs(r32.history[-1]["score"] - r64.history[-1]["score"]) <= 1 / n_test + 1e-12


# -- the key, its values, and the learners that have none ----------------------------------

@pytest.mark.parametrize("kind", ["logistic", "linear", "svm", "tree"])
def test_dtype_on_a_learner_without_one_names_the_learners_that_take_it(kind):
    with pytest.raises(ScenarioError, match=(
            rf"unknown key model.dtype for model.kind='{kind}' \(got 'float32'\); it is a "
            r"setting of model.kind = 'mlp' or 'mlp_regression'; allowed: kind, ")):
        Scenario().replace(**{"model.kind": kind, "model.dtype": "float32"})


@pytest.mark.parametrize("value", ["float16", "f4", 32, None])
def test_a_dtype_that_is_no_known_name_is_refused_naming_the_key(value):
    with pytest.raises(ScenarioError, match=(
            r"model.dtype: The 'dtype' parameter of MLPRegressor must be one of 'float64', "
            r"'float32' \(a name, as TOML writes it\). Got .* instead.")):
        Scenario().replace(**{"model.kind": "mlp_regression", "model.dtype": value})
    with pytest.raises(ValueError, match="The 'dtype' parameter of MLPClassifier"):
        MLPClassifier(dtype=np.float32).fit([[0.0], [1.0]], [0, 1])


def test_dtype_round_trips_through_toml():
    s = BASE.replace(**{"model.dtype": "float32"})
    assert parse_scenario(s.to_toml()).model.options["dtype"] == "float32"


def test_rows_beyond_float32_s_range_are_refused_before_the_run():
    """Raw rows of 1e50 are inf in float32: refused, naming the key and what to change."""
    s = BASE.replace(**{"data.dataset": "synthetic", "data.class_sep": 1e50,
                        "data.standardize": False, "model.dtype": "float32"})
    with pytest.raises(ScenarioError, match=(
            r"model.dtype='float32': the training rows hold values beyond float32's range "
            r"\(\+-3.403e\+38\); standardize them \(data.standardize = true\)")):
        simdml.run(s)
