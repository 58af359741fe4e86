"""Distributed data parallel (``strategy.kind = "ddp"``): it trains exactly the model of
sync and of the centralized optimizer, whatever its buckets and overlap; its buckets are
formed in reverse layer order; its messages arrive in the order its ring consumes them;
and with deterministic compute an iteration lasts exactly the time model of
``simdml.strategies.ddp`` in both regimes.

``python -m tests.test_ddp`` prints the formula beside the simulation for a few configs.
"""
import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simdml import OptimizerConfig, Scenario, ScenarioError, run
from simdml.experiment import prepare_data
from simdml.models import MLPClassifier
from simdml.strategies import STRATEGIES
from simdml.strategies.ddp import (DEFAULT_BUCKET_SIZE, Bucket, bucket_layers, buckets_of,
                                   iteration_time, ring_time)
from simdml.tables import format_summary

DIGITS = {"model.kind": "mlp", "model.hidden": [16, 8], "data.dataset": "digits",
          "cluster.workers": 4, "strategy.lr": 0.5, "stop.rounds": 8, "eval_every": 1}

# The timing scenarios: 240 training rows, 60 per worker; layers of 8*31 = 248, 32*32 =
# 1024 and 33*4 = 132 parameters, each a multiple of n = 4 (equal ring chunks).
N = 4
TIMED = {"model.kind": "mlp", "model.hidden": [31, 32], "model.l2": 0.0,
         "data.dataset": "synthetic", "data.n_samples": 320, "data.n_features": 7,
         "data.n_classes": 4, "cluster.workers": N, "strategy.kind": "ddp",
         "strategy.lr": 0.1, "stop.rounds": 4, "eval_every": 1}
COMPUTE_BOUND = {"cluster.speed": 1e8, "network.latency": 1e-5, "network.bandwidth": 1e10}
COMM_BOUND = {"cluster.speed": 1e10, "network.latency": 1e-4, "network.bandwidth": 1e8}


def _ddp(s: Scenario, **options) -> Scenario:
    return s.replace(**{"strategy.kind": "ddp", **{f"strategy.{k}": v for k, v in options.items()}})


# -- the model it trains --------------------------------------------------------------

def _centralized(s: Scenario, n_steps: int) -> np.ndarray:
    """The scenario's MLP and optimizer on the full batch, in a plain loop."""
    split = prepare_data(s)
    model = MLPClassifier(hidden=s.model.options["hidden"])
    w = model.init_params(split.X_train.shape[1], len(np.unique(split.y_train)))
    opt = OptimizerConfig(**s.to_dict()["optimizer"]).build(lr=s.strategy.lr,
                                                            horizon=s.stop.rounds)
    state = opt.init_state(w)
    for t in range(n_steps):
        w, state = opt.step(w, model.loss_grad(w, split.X_train, split.y_train)[1], state, t)
    return w


@pytest.mark.parametrize("optimizer", [{}, {"optimizer.kind": "adam", "strategy.lr": 0.01}],
                         ids=["sgd", "adam"])
def test_ddp_equals_sync_and_the_centralized_optimizer(optimizer):
    """Every replica sums the shard-weighted gradients to the full-batch gradient and
    steps its own copy of the optimizer: sync's model and the centralized one (1e-12)."""
    s = Scenario().replace(**{**DIGITS, **optimizer, "data.partition": "size_skew"})
    ddp, sync = run(_ddp(s, bucket_size=2000)), run(s)
    assert ddp.summary["n_buckets"] == 2   # layers 2 and 1 (1808 bytes), layer 0
    np.testing.assert_allclose([h["loss"] for h in ddp.history],
                               [h["loss"] for h in sync.history], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ddp.model.params_, sync.model.params_, rtol=0, atol=1e-12)
    assert [h["epoch"] for h in ddp.history] == [h["epoch"] for h in sync.history]
    np.testing.assert_allclose(ddp.model.params_, _centralized(s, s.stop.rounds),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("changes", [
    {"strategy.batch_size": 40},
    {"data.dataset": "breast_cancer_rare", "model.class_weight": "balanced"},
    {"model.kind": "mlp_regression", "data.dataset": "synthetic_regression", "strategy.lr": 0.05},
    {"cluster.workers": 1},
    {"cluster.workers": 7, "data.partition": "label_skew"},
], ids=["mini-batch", "class-weight", "regression", "one-worker", "seven-label-skew"])
def test_ddp_equals_sync_on_every_kind_of_batch(changes):
    """Mini-batches (the same rows drawn), class weights, regression, one worker, an
    uneven ring: ddp's model is sync's (1e-12), and so is the work its history counts
    (the epoch column: the rows of the iterations done when each is recorded)."""
    s = Scenario().replace(**{**DIGITS, **changes})
    ddp, sync = run(_ddp(s, bucket_size=700)), run(s)
    np.testing.assert_allclose(ddp.model.params_, sync.model.params_, rtol=0, atol=1e-12)
    np.testing.assert_allclose([h["epoch"] for h in ddp.history],
                               [h["epoch"] for h in sync.history], rtol=1e-15)


def test_any_bucket_size_and_either_overlap_give_the_same_model():
    """Buckets only change when the sums happen, not what they sum: one byte (a bucket
    per layer), a few layers each, one bucket; overlap or not (1e-12)."""
    s = Scenario().replace(**DIGITS)
    models = {(size, overlap): run(_ddp(s, bucket_size=size, overlap=overlap))
              for size in (1, 1500, 2000, DEFAULT_BUCKET_SIZE) for overlap in (True, False)}
    assert {r.summary["n_buckets"] for r in models.values()} == {3, 2, 1}
    reference = models[(1, True)].model.params_
    for result in models.values():
        np.testing.assert_allclose(result.model.params_, reference, rtol=0, atol=1e-12)


def test_one_bucket_is_the_allreduce_strategy_bit_for_bit():
    """With one bucket the ring sums the same chunks in the same order as ``allreduce``:
    the same bits, though the gradient was computed layer by layer."""
    s = Scenario().replace(**DIGITS)
    ring = run(s.replace(**{"strategy.kind": "allreduce"}))
    assert np.array_equal(run(_ddp(s)).model.params_, ring.model.params_)


# -- the buckets ----------------------------------------------------------------------

def test_buckets_are_whole_layers_in_reverse_order():
    """From the last layer down, a layer joins the open bucket while it stays within
    bucket_size; a larger layer is a bucket alone; the spans tile the gradient."""
    assert bucket_layers([100, 30, 50, 200], 100) == [(3,), (2, 1), (0,)]
    assert bucket_layers([100, 30, 50, 200], 10**9) == [(3, 2, 1, 0)]
    assert bucket_layers([8, 8, 8], 1) == [(2,), (1,), (0,)]
    model = MLPClassifier(hidden=[3])
    model.init_params(2, 4)   # layer 0: 9 parameters (72 bytes), layer 1: 16 (128 bytes)
    assert buckets_of(model, 128) == [Bucket((1,), slice(9, 25)), Bucket((0,), slice(0, 9))]
    assert buckets_of(model, 200) == [Bucket((1, 0), slice(0, 25))]


def test_buckets_count_the_gradient_s_itemsize():
    """A float32 gradient is 4 bytes a parameter: layers of 36 and 64 bytes share a bucket
    of 100 bytes that would split them in float64 (72 and 128 bytes)."""
    shapes = {}
    for dtype in ("float64", "float32"):
        model = MLPClassifier(hidden=[3], dtype=dtype)
        model.init_params(2, 4)
        shapes[dtype] = buckets_of(model, 100)
    assert shapes == {"float64": [Bucket((1,), slice(9, 25)), Bucket((0,), slice(0, 9))],
                      "float32": [Bucket((1, 0), slice(0, 25))]}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=1, max_size=12), st.integers(1, 3000))
def test_bucket_layers_partition_the_layers_in_reverse_order(sizes, cap):
    """Every layer in one bucket, last layer first; no bucket over the cap but a single
    layer; no two neighbouring buckets that would fit in one (each is filled)."""
    buckets = bucket_layers(sizes, cap)
    assert [l for b in buckets for l in b] == list(reversed(range(len(sizes))))
    totals = [sum(sizes[l] for l in b) for b in buckets]
    assert all(t <= cap or len(b) == 1 for b, t in zip(buckets, totals))
    assert all(totals[k] + sizes[buckets[k + 1][0]] > cap for k in range(len(buckets) - 1))


# -- message order --------------------------------------------------------------------

def test_desynchronized_workers_still_sum_the_right_chunks():
    """Lognormal compute, unequal speeds and shards, a slow link, a bucket per layer:
    a worker may run a bucket ahead of its right neighbour, whose next chunks still
    come in the order it consumes them (FIFO links, one sender): sync's model (1e-12)."""
    s = Scenario().replace(**{**DIGITS, "model.hidden": [16, 8, 8], "cluster.workers": 3,
                              "cluster.speed": [1e8, 3e8, 5e7], "data.partition": "size_skew",
                              "cluster.compute_time": "lognormal", "cluster.jitter": 0.8,
                              "network.links": [{"a": 1, "b": 2, "latency": 0.01}]})
    np.testing.assert_allclose(run(_ddp(s, bucket_size=1)).model.params_,
                               run(s).model.params_, rtol=0, atol=1e-12)


def test_each_worker_receives_the_chunks_in_the_order_its_ring_consumes_them():
    """Worker i's receptions, in time order, are exactly the chunk sizes of its ring:
    bucket 0's reduce-scatter and all-gather steps, then bucket 1's, ..., iteration
    after iteration (chunk sizes differ here: 8 * 17 * 8 = 1088 bytes over 3 workers)."""
    n, rounds = 3, 3
    s = _ddp(Scenario().replace(**{**DIGITS, "cluster.workers": n, "stop.rounds": rounds}),
             bucket_size=1)
    result = run(s)
    split = prepare_data(s)
    model = MLPClassifier(hidden=[16, 8])
    model.init_params(split.X_train.shape[1], 10)
    for i in range(n):
        expected = []
        for bucket in buckets_of(model, 1) * rounds:
            size = bucket.span.stop - bucket.span.start
            chunks = [8 * len(c) for c in np.array_split(np.empty(size), n)]
            expected += [chunks[(i - step - 1) % n] for step in range(n - 1)]   # reduce-scatter
            expected += [chunks[(i - step) % n] for step in range(n - 1)]       # all-gather
        spans = sorted((sp for sp in result.trace.spans
                        if sp.node == f"worker{i}" and sp.kind == "recv"),
                       key=lambda sp: sp.start)
        assert [sp.nbytes for sp in spans] == expected


# -- the time model -------------------------------------------------------------------

def _parts(s: Scenario):
    """The time model's terms for a TIMED scenario: F, B_l, buckets, A_k, S (seconds)."""
    model = MLPClassifier(hidden=s.model.options["hidden"])
    model.init_params(s.data.n_features, s.data.n_classes)
    rows = round(s.data.n_samples * (1 - s.data.test_size)) // N
    speed = s.cluster.speed[0]
    flops = model.layer_flops(rows)
    buckets = buckets_of(model, s.strategy.build_options().bucket_size)
    allreduce = [ring_time(N, 8 * (b.span.stop - b.span.start), s.network.latency,
                           s.network.bandwidth) for b in buckets]
    step = OptimizerConfig(**s.to_dict()["optimizer"]).build(lr=s.strategy.lr, horizon=1).flops(
        model.n_params) / speed
    return (sum(f for f, _ in flops) / speed, [b / speed for _, b in flops], buckets,
            allreduce, step)


def _simulated(s: Scenario) -> tuple[float, dict]:
    """Every iteration's simulated time (they must all be equal) and the summary."""
    result = run(s)
    times = np.diff([h["time"] for h in result.history])
    np.testing.assert_allclose(times, times[0], rtol=1e-12)
    return float(times[0]), result.summary


def _check(name: str, simulated: float, formula: float, terms: str) -> None:
    assert math.isclose(simulated, formula, rel_tol=1e-9), (
        f"{name}: simulated {simulated:.9g} s, formula {formula:.9g} s = {terms}")


@pytest.mark.parametrize("size", [1, 8 * 1024, 8 * 1156, DEFAULT_BUCKET_SIZE])
def test_compute_dominated_iteration_is_forward_backward_and_the_last_all_reduce(size):
    """Each all-reduce ends before the next bucket is ready: only the last bucket's is
    exposed, T = F + B + A_last + S, and the summary's exposed time is A_last."""
    s = Scenario().replace(**{**TIMED, **COMPUTE_BOUND, "strategy.bucket_size": size})
    F, B, buckets, A, S = _parts(s)
    ready = [F + sum(B[b.first:]) for b in buckets]
    assert all(ready[k] + A[k] <= ready[k + 1] for k in range(len(buckets) - 1))  # the regime
    simulated, summary = _simulated(s)
    _check("compute-dominated", simulated, F + sum(B) + A[-1] + S,
           f"F {F:.6g} + B {sum(B):.6g} + A_last {A[-1]:.6g} + S {S:.6g}")
    assert math.isclose(simulated, iteration_time(F, B, buckets, A, S), rel_tol=1e-9)
    assert math.isclose(summary["exposed_comm_per_iteration"], A[-1], rel_tol=1e-9)
    assert math.isclose(summary["comm_per_iteration"], sum(A), rel_tol=1e-9)


@pytest.mark.parametrize("size", [1, 8 * 1024, 8 * 1156])
def test_communication_dominated_iteration_is_the_first_bucket_then_every_all_reduce(size):
    """Each bucket is ready before the previous one is summed: the stream never idles
    after the first bucket, T = F + (backward up to bucket 0 ready) + sum_k A_k + S."""
    s = Scenario().replace(**{**TIMED, **COMM_BOUND, "strategy.bucket_size": size})
    F, B, buckets, A, S = _parts(s)
    ready = [F + sum(B[b.first:]) for b in buckets]
    assert all(ready[k + 1] <= ready[0] + sum(A[:k + 1]) for k in range(len(buckets) - 1))
    first = sum(B[buckets[0].first:])
    simulated, summary = _simulated(s)
    _check("communication-dominated", simulated, F + first + sum(A) + S,
           f"F {F:.6g} + B(bucket 0) {first:.6g} + sum A {sum(A):.6g} ({len(A)} buckets, "
           f"2(n-1)(alpha + b_k/(n beta)) each) + S {S:.6g}")
    assert math.isclose(summary["exposed_comm_per_iteration"], ready[0] + sum(A) - F - sum(B),
                        rel_tol=1e-9)


@pytest.mark.parametrize("bound", [COMPUTE_BOUND, COMM_BOUND], ids=["compute", "comm"])
def test_without_overlap_an_iteration_adds_every_all_reduce(bound):
    """overlap = false: T = F + B + sum_k A_k + S, all of it exposed."""
    s = Scenario().replace(**{**TIMED, **bound, "strategy.bucket_size": 1,
                              "strategy.overlap": False})
    F, B, buckets, A, S = _parts(s)
    simulated, summary = _simulated(s)
    _check("no overlap", simulated, F + sum(B) + sum(A) + S,
           f"F {F:.6g} + B {sum(B):.6g} + sum A {sum(A):.6g} + S {S:.6g}")
    assert math.isclose(summary["exposed_comm_per_iteration"], sum(A), rel_tol=1e-9)


def test_the_general_formula_between_the_regimes():
    """Between the regimes (the stream idles after bucket 0, and bucket 2 waits for
    bucket 1) T is max_k (r_k + A_k + ... + A_last) + S, above both regimes' forms
    (each is one term of the max)."""
    s = Scenario().replace(**{**TIMED, "cluster.speed": 1e9, "network.latency": 2e-5,
                              "network.bandwidth": 1e9, "strategy.bucket_size": 1})
    F, B, buckets, A, S = _parts(s)
    simulated, _ = _simulated(s)
    formula = iteration_time(F, B, buckets, A, S)
    _check("general", simulated, formula, "max_k (r_k + sum_{j>=k} A_j) + S")
    assert formula > max(F + sum(B) + A[-1] + S, F + sum(B[buckets[0].first:]) + sum(A) + S)


def test_the_timeline_shows_communication_under_computation():
    """With overlap, worker sends run during its backward compute spans; without, no
    send overlaps a compute span."""
    def overlapping(result):
        spans = [sp for sp in result.trace.spans if sp.node == "worker0"]
        compute = [sp for sp in spans if sp.kind == "compute"]
        return sum(max(0.0, min(c.end, m.end) - max(c.start, m.start))
                   for m in spans if m.kind == "send" for c in compute)
    s = Scenario().replace(**{**TIMED, **COMPUTE_BOUND, "strategy.bucket_size": 1})
    assert overlapping(run(s)) > 0
    assert overlapping(run(s.replace(**{"strategy.overlap": False}))) == 0


def test_the_summary_says_how_much_communication_was_exposed():
    """The text summary has a line with the per-iteration communication and exposure."""
    s = Scenario().replace(**{**TIMED, **COMPUTE_BOUND, "strategy.bucket_size": 1})
    result = run(s)
    exposed = result.summary["exposed_comm_per_iteration"]
    assert (f"communication      {result.summary['comm_per_iteration']:.4g} s per iteration "
            f"in 3 buckets, {exposed:.4g} s of it exposed") in format_summary(result)


# -- what it refuses --------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"strategy.bucket_size": 0}, "strategy.bucket_size must be an integer >= 1; got 0"),
    ({"strategy.bucket_size": -5}, "strategy.bucket_size must be an integer >= 1; got -5"),
    ({"strategy.bucket_size": 2.5e7}, "strategy.bucket_size must be an integer >= 1; got 25000000.0"),
    ({"strategy.overlap": "yes"}, "strategy.overlap must be true or false; got 'yes'"),
    ({"model.kind": "logistic"}, "strategy.kind='ddp' trains model.kind in 'mlp', "
                                 "'mlp_regression'; got model.kind='logistic'"),
    ({"faults.crash": [{"node": 1, "at": 0.1}]},
     "strategy.kind='ddp' has no recovery protocol: it cannot go on after a crash or a lost "
     "message; remove faults.crash"),
    ({"network.loss": 0.1}, "strategy.kind='ddp' has no recovery protocol: it cannot go on "
                            "after a crash or a lost message; remove network.loss"),
])
def test_a_bad_ddp_scenario_names_the_key(changes, message):
    """Every refusal names the key, the rule and the value."""
    base = {**DIGITS, "strategy.kind": "ddp"}
    if changes.get("model.kind") == "logistic":
        base = {k: v for k, v in base.items() if not k.startswith("model.")}
    with pytest.raises(ScenarioError, match=f"^{re.escape(message)}$"):
        Scenario().replace(**{**base, **changes})


def test_ddp_started_on_a_model_without_layers_says_so(monkeypatch):
    """Past the scenario's rule (here lifted), start() itself refuses a learner without
    the per-layer face, naming the strategy and the model kinds it needs."""
    spec = STRATEGIES["ddp"]
    monkeypatch.setitem(STRATEGIES, "ddp", dataclasses.replace(spec, models=("logistic",)))
    with pytest.raises(ValueError, match=re.escape(
            "strategy.kind='ddp' needs a model with layers (model.kind in 'mlp', "
            "'mlp_regression'); got a LogisticRegression")):
        run(Scenario().replace(**{"strategy.kind": "ddp", "stop.rounds": 2}))


def test_the_registry_says_what_ddp_trains_and_survives():
    """Registered: the two MLPs, no faults, one optimizer step per update."""
    spec = STRATEGIES["ddp"]
    assert spec.models == ("mlp", "mlp_regression") and not spec.survives_faults
    assert spec.optimizer_steps(spec.options()) == 1


# -- the formula beside the simulation ------------------------------------------------

def table() -> list[tuple]:
    """``(config, bucket_size, overlap, buckets, formula, simulated)`` for a few configs."""
    rows = []
    for name, bound in (("compute-bound", COMPUTE_BOUND), ("comm-bound", COMM_BOUND)):
        for size in (1, 8 * 1156, DEFAULT_BUCKET_SIZE):
            for overlap in (True, False):
                s = Scenario().replace(**{**TIMED, **bound, "strategy.bucket_size": size,
                                          "strategy.overlap": overlap})
                F, B, buckets, A, S = _parts(s)
                simulated, summary = _simulated(s)
                rows.append((name, size, overlap, len(buckets),
                             iteration_time(F, B, buckets, A, S, overlap), simulated,
                             summary["exposed_comm_per_iteration"]))
    return rows


if __name__ == "__main__":
    print(f"{'config':<14} {'bucket_size':>11} {'overlap':>7} {'K':>2} {'formula (s)':>14} "
          f"{'simulated (s)':>14} {'exposed (s)':>12}")
    for name, size, overlap, k, formula, simulated, exposed in table():
        print(f"{name:<14} {size:>11} {str(overlap):>7} {k:>2} {formula:>14.9g} "
              f"{simulated:>14.9g} {exposed:>12.6g}")
