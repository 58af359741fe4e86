"""The synchronous parameter server: exact full-batch GD, alpha-beta round times, faults."""
import math

import numpy as np
import pytest

from simdml import Scenario, run
from simdml.experiment import prepare_data
from simdml.messages import TAGGED_GRADIENT_HEADER, TAGGED_MODEL_HEADER
from simdml.models import LogisticRegression

ROUNDS = 12


def _scenario(**changes) -> Scenario:
    base = {"stop.rounds": ROUNDS, "strategy.lr": 0.3, "model.l2": 1e-3}
    return Scenario().replace(**{**base, **changes})


@pytest.mark.parametrize("changes", [
    {},                                                                   # equal shards
    {"cluster.workers": 3, "cluster.speed": [1e9, 3e9, 7e9], "data.partition": "proportional"},
    {"cluster.workers": 5, "cluster.compute_time": "lognormal", "cluster.jitter": 0.8},
    {"cluster.workers": 7, "data.dataset": "wine", "seed": 3},
    {"cluster.workers": 1},
])
def test_sync_equals_full_batch_gradient_descent(changes):
    """After T rounds, sync PS parameters equal T steps of full-batch GD to 1e-12,
    for equal and unequal shards and any timing."""
    s = _scenario(**changes)
    result = run(s)
    split = prepare_data(s)
    sizes = [len(p) for p in split.parts]
    if "proportional" in changes.values():
        assert len(set(sizes)) > 1, "the unequal-shard case must really be unequal"
    reference = LogisticRegression(lr=s.strategy.lr, n_iter=ROUNDS, l2=1e-3)
    reference.fit(split.X_train, split.y_train)
    assert result.summary["updates"] == ROUNDS
    np.testing.assert_allclose(result.model.params_, reference.params_, rtol=0, atol=1e-12)


def _round_time(computes, p_bytes, g_bytes, latency, bandwidth, server_compute):
    """Reference alpha-beta model of one sync round: the broadcast leaves the server's NIC
    one copy after another (worker k gets it at latency + k p / bandwidth); the gradients
    then queue at the server's NIC in the order their first bits arrive."""
    first_bits = sorted(latency + k * p_bytes / bandwidth + c + latency
                        for k, c in enumerate(computes, start=1))
    rx_free = 0.0
    for first_bit in first_bits:
        rx_free = max(first_bit, rx_free) + g_bytes / bandwidth
    return rx_free + server_compute


def test_round_time_equals_the_alpha_beta_model():
    """With deterministic compute, each round lasts exactly the alpha-beta prediction.
    A model message is its version tag (the server's restart count and version: 16
    bytes) and the parameters; a gradient adds the worker's index (8 bytes)."""
    n, latency, bandwidth, speed = 4, 1e-3, 1e6, 2e5
    s = _scenario(**{"cluster.workers": n, "cluster.speed": speed, "cluster.server_speed": 1e9,
                     "network.latency": latency, "network.bandwidth": bandwidth})
    result = run(s)
    model = LogisticRegression()
    n_params = model.init_params(4, 3).size
    computes = [model.grad_flops(len(p)) / speed for p in prepare_data(s).parts]
    model_nbytes = TAGGED_MODEL_HEADER + 8 * n_params
    grad_nbytes = TAGGED_GRADIENT_HEADER + 8 * n_params
    expected = _round_time(computes, model_nbytes, grad_nbytes, latency, bandwidth,
                           (n + 2) * n_params / 1e9)
    times = [h["time"] for h in result.history]
    np.testing.assert_allclose(np.diff(times), expected, rtol=1e-12)
    assert result.summary["bytes_sent"] == ROUNDS * n * (model_nbytes + grad_nbytes)


def test_same_seed_same_everything_different_seed_different_timing():
    """Same seed: identical history and trace; another seed: other compute times, same math."""
    s = _scenario(**{"cluster.compute_time": "exponential"})
    a, b, c = run(s), run(s), run(s.replace(seed=1))
    assert a.history == b.history and a.trace.spans == b.trace.spans
    assert a.trace.spans != c.trace.spans
    assert a.summary["sim_time"] != c.summary["sim_time"]


def test_a_crashed_worker_stalls_training_without_round_timeout():
    """A worker that never recovers stalls sync training; the run ends and says why."""
    result = run(_scenario(**{"faults.crash": [{"node": 2, "at": 0.0}]}))
    assert result.summary["updates"] < ROUNDS
    assert result.summary["stop_reason"].startswith("stalled at t=")
    assert "round_timeout" in result.summary["stop_reason"]


def test_round_timeout_survives_a_crash_and_recovery():
    """With round_timeout, rounds close without the crashed worker; after its recovery it
    rejoins, and training completes every round."""
    s = _scenario(**{"strategy.round_timeout": 1e-3, "stop.rounds": 40,
                     "faults.crash": [{"node": 1, "at": 2e-4, "recover_after": 5e-3}]})
    result = run(s)
    assert result.summary["updates"] == 40
    assert result.summary["incomplete_rounds"] >= 1
    spans = [x for x in result.trace.spans if x.node == "worker1"]
    assert any(x.kind == "down" for x in spans)
    down = next(x for x in spans if x.kind == "down")
    assert down.end - down.start == pytest.approx(5e-3)
    assert any(x.kind == "compute" and x.start >= down.end for x in spans), "it rejoined"


def test_server_crash_ends_the_run_with_a_reason():
    """A server crash (no checkpointing yet) ends the run; the stop reason says so."""
    result = run(_scenario(**{"faults.crash": [{"node": "server", "at": 1e-4}]}))
    assert "server crashed at t=0.0001 s" in result.summary["stop_reason"]


def test_stop_on_time_and_on_target_accuracy():
    """stop.time bounds simulated time; stop.target_accuracy stops once it is reached."""
    timed = run(_scenario(**{"stop.rounds": 10_000, "stop.time": 2e-3}))
    assert timed.summary["sim_time"] == 2e-3
    assert timed.summary["stop_reason"].startswith("time limit")
    target = run(_scenario(**{"stop.rounds": 10_000, "stop.target_accuracy": 0.9}))
    assert target.summary["final_accuracy"] >= 0.9
    assert target.summary["time_to_target"] == target.summary["sim_time"]
    assert "target accuracy 0.9 reached" in target.summary["stop_reason"]


def test_divergence_stops_with_a_clear_reason():
    """A step size that makes the loss overflow stops the run and names strategy.lr."""
    with np.errstate(all="ignore"):
        result = run(_scenario(**{"strategy.lr": 1e6, "stop.rounds": 2000,
                                  "model.l2": 1.0, "eval_every": 1}))
    reason = result.summary["stop_reason"]
    assert reason.startswith("diverged: loss became") and "strategy.lr" in reason


def test_a_slow_link_delays_exactly_its_worker():
    """A per-link override (both directions) adds its extra latency to that worker's
    round trip, and so to every round (no serialization: infinite bandwidth)."""
    base = _scenario(**{"cluster.workers": 3, "network.latency": 1e-4,
                        "network.bandwidth": float("inf")})
    slow = base.replace(**{"network.links": [{"a": "server", "b": 1, "latency": 0.0101}]})
    fast_rounds = np.diff([h["time"] for h in run(base).history])
    slow_rounds = np.diff([h["time"] for h in run(slow).history])
    np.testing.assert_allclose(slow_rounds - fast_rounds, 2 * (0.0101 - 1e-4), rtol=1e-9)


@pytest.mark.parametrize("name", ["iris_sync", "crash_recovery", "synthetic_16"])
def test_bundled_scenarios_run_to_the_end_and_learn(name):
    """Every bundled scenario runs all its rounds and beats chance by far."""
    result = run(name)
    assert result.summary["stop_reason"].endswith("updates done (stop.rounds)")
    assert result.summary["final_accuracy"] > 0.75
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_shards_are_views_of_one_training_array(monkeypatch):
    """Every worker's shard is a view into one training array (no copies), laid out in
    shard order, and the shards cover the training rows exactly once."""
    from simdml import strategies
    seen = {}
    spec = strategies.STRATEGIES["sync"]

    def spy(job):
        seen["job"] = job
        return spec.start(job)
    monkeypatch.setitem(strategies.STRATEGIES, "sync",
                        strategies.StrategySpec(spec.options, spy, spec.summary))
    s = _scenario(**{"cluster.workers": 5, "data.dataset": "wine"})
    run(s)
    shards = seen["job"].shards
    base = shards[0].X.base
    assert base is not None and all(sh.X.base is base for sh in shards)
    split = prepare_data(s)
    assert np.concatenate(split.parts).tolist() == list(range(len(split.y_train)))
    np.testing.assert_array_equal(np.concatenate([sh.X for sh in shards]), split.X_train)


def test_every_worker_lost_ends_the_run():
    """With a round timeout, rounds close empty when every worker is down; once none is
    due back the run ends and says from when there were no live workers."""
    crashes = [{"node": i, "at": 1e-3} for i in range(4)]
    r = run(_scenario(**{"strategy.round_timeout": 1e-3, "faults.crash": crashes,
                         "stop.rounds": 10**6}))
    assert r.summary["stop_reason"] == "no live workers from t=0.001 s"


def test_random_failures_do_not_hide_a_stall():
    """Failure processes keep ticking for ever, but a sync run without a round timeout
    that a crash has stalled still ends, reported as stalled (not as a time limit)."""
    for stop_time in (math.inf, 10.0):
        r = run(_scenario(**{"faults.mtbf": 0.002, "faults.mttr": 0.001,
                             "stop.rounds": 10**6, "stop.time": stop_time}))
        assert r.summary["stop_reason"].startswith("stalled at t="), r.summary["stop_reason"]
        assert "round_timeout" in r.summary["stop_reason"]
        assert r.summary["sim_time"] < 10.0


def test_a_stall_with_a_recovery_due_waits_for_it():
    """A stall is not final while a crashed worker is due back: async resumes after it."""
    r = run(_scenario(**{"strategy.kind": "async", "cluster.workers": 1, "stop.rounds": 50,
                         "faults.crash": [{"node": 0, "at": 1e-4, "recover_after": 0.5}]}))
    assert r.summary["updates"] == 50 and r.summary["sim_time"] > 0.5


def test_result_predicts_on_raw_features():
    """Result.predict / score standardize raw features as the run did: on the raw test
    rows they agree with the model on the standardized ones."""
    s = _scenario()
    r = run(s)
    split = prepare_data(s)
    mean, scale = r.scaling
    X_raw = split.X_test * scale + mean
    np.testing.assert_array_equal(r.predict(X_raw), r.model.predict(split.X_test))
    assert r.score(X_raw, split.y_test) == r.summary["final_accuracy"]


@pytest.mark.parametrize("shape", [(1,), (42,), (5, 3)])
def test_weighted_sum_is_the_weighted_sum_and_depends_only_on_the_given_order(shape):
    """The servers' aggregation equals sum_i w_i a_i (to rounding) for vectors and
    arrays, and gives the same bits every time for the same order."""
    from simdml.strategies.job import weighted_sum
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=shape) for _ in range(300)]
    weights = rng.random(300)
    expected = sum(w * a for w, a in zip(weights, arrays))
    got = weighted_sum(weights, arrays)
    assert got.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    assert np.array_equal(weighted_sum(list(weights), list(arrays)), got)


def test_weighted_sum_needs_one_weight_per_array_and_sums_integers_as_floats():
    from simdml.strategies.job import weighted_sum
    with pytest.raises(ValueError, match="one weight per array.*got 1 weights for 2 arrays"):
        weighted_sum([0.5], [np.ones(3), np.ones(3)])
    with pytest.raises(ValueError, match="at least one array"):
        weighted_sum([], [])
    got = weighted_sum([0.5, 0.25], [np.array([1, 2]), np.array([4, 8])])
    assert got.dtype == np.float64 and got.tolist() == [1.5, 3.0]
