"""Contracts between the gradient strategies: where they must agree, they agree exactly;
where they differ, they differ as the theory says."""
import math
import re

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.experiment import prepare_data
from simdml.models import LinearRegression, LogisticRegression

ROUNDS = 10


def _scenario(**changes) -> Scenario:
    base = {"stop.rounds": ROUNDS, "strategy.lr": 0.3, "model.l2": 1e-3,
            "cluster.workers": 3, "cluster.speed": [1e9, 2e9, 5e8],
            "data.partition": "proportional"}
    return Scenario().replace(**{**base, **changes})


def _params_after(kind, rounds=ROUNDS, **changes):
    s = _scenario(**{"strategy.kind": kind, "stop.rounds": rounds, **changes})
    return run(s).model.params_


@pytest.mark.parametrize("timing", [{}, {"cluster.compute_time": "lognormal", "cluster.jitter": 0.7}])
def test_ssp_with_zero_staleness_equals_sync(timing):
    """ssp with staleness 0 computes the same parameters as sync (to 1e-12): each round's
    pushes are all computed on the same model."""
    sync = _params_after("sync", **timing)
    ssp = _params_after("ssp", rounds=3 * ROUNDS, **{"strategy.staleness": 0}, **timing)
    np.testing.assert_allclose(ssp, sync, rtol=0, atol=1e-12)


def test_ssp_with_a_large_bound_is_async():
    """ssp whose bound is never reached behaves exactly as async: same history, same trace."""
    timing = {"cluster.compute_time": "exponential"}
    a = run(_scenario(**{"strategy.kind": "async"}, **timing))
    b = run(_scenario(**{"strategy.kind": "ssp", "strategy.staleness": 10**6}, **timing))
    assert a.history == b.history
    assert a.trace.spans == b.trace.spans


def test_ssp_bound_holds():
    """No gradient under ssp is staler than the bound allows (s pushes ahead, n workers)."""
    s, n = 1, 3
    skewed = {"cluster.speed": [1e6, 1e6, 1e5], "data.partition": "iid", "stop.rounds": 60}
    r = run(_scenario(**{"strategy.kind": "ssp", "strategy.staleness": s}, **skewed))
    # between a worker's pull and its push the others push at most s + 1 times each
    assert r.summary["staleness_max"] <= (s + 1) * (n - 1)
    free = run(_scenario(**{"strategy.kind": "async"}, **skewed))
    assert free.summary["staleness_max"] > r.summary["staleness_max"]


@pytest.mark.parametrize("s", [0, 1, 2])
def test_ssp_bound_is_reached(s):
    """The bound is tight: a fast worker runs exactly s pushes ahead of a slow one, no
    fewer, so the stalest gradient is exactly (s + 1) (n - 1) versions old."""
    n = 3
    skewed = {"cluster.speed": [1e6, 1e6, 1e5], "data.partition": "iid", "stop.rounds": 60}
    r = run(_scenario(**{"strategy.kind": "ssp", "strategy.staleness": s}, **skewed))
    assert r.summary["stop_reason"] == "60 updates done (stop.rounds)"
    assert r.summary["staleness_max"] == (s + 1) * (n - 1)


@pytest.mark.parametrize("kind, extra", [("local_sgd", {"strategy.local_steps": 1}),
                                         ("allreduce", {})])
def test_equals_full_batch_gradient_descent(kind, extra):
    """local_sgd with H=1 and ring all-reduce compute full-batch GD (to 1e-12)."""
    s = _scenario(**{"strategy.kind": kind, **extra})
    split = prepare_data(s)
    reference = LogisticRegression(lr=0.3, n_iter=ROUNDS, l2=1e-3).fit(split.X_train, split.y_train)
    np.testing.assert_allclose(run(s).model.params_, reference.params_, rtol=0, atol=1e-12)


def test_local_sgd_with_more_local_steps_differs_and_sends_less():
    """H > 1 is not sync GD, and per local step it sends H times fewer messages."""
    h1 = run(_scenario(**{"strategy.kind": "local_sgd", "strategy.local_steps": 1, "stop.rounds": 8}))
    h4 = run(_scenario(**{"strategy.kind": "local_sgd", "strategy.local_steps": 4, "stop.rounds": 2}))
    assert not np.allclose(h1.model.params_, h4.model.params_)
    assert h4.summary["messages_sent"] * 4 == h1.summary["messages_sent"]


@pytest.mark.parametrize("n", [2, 5, 10, 13])
def test_ring_allreduce_round_time_is_the_alpha_beta_cost(n):
    """With computation free, an all-reduce round lasts exactly 2(n-1)(alpha + (b/n) beta)
    (650 parameters split into n equal chunks)."""
    latency, bandwidth = 1e-3, 1e6
    s = Scenario().replace(**{
        "strategy.kind": "allreduce", "cluster.workers": n, "cluster.speed": math.inf,
        "network.latency": latency, "network.bandwidth": bandwidth,
        "data.dataset": "digits", "stop.rounds": 4})
    n_params = 65 * 10
    chunk = n_params // n * 8
    expected = 2 * (n - 1) * (latency + chunk / bandwidth)
    times = [h["time"] for h in run(s).history]
    np.testing.assert_allclose(np.diff(times), expected, rtol=1e-12)


def test_async_staleness_is_n_minus_1_in_steady_state():
    """Homogeneous deterministic workers: after the first round every gradient is exactly
    n - 1 versions stale (the other n - 1 workers pushed in between)."""
    n = 5
    r = run(Scenario().replace(**{"strategy.kind": "async", "cluster.workers": n,
                                  "data.dataset": "wine", "stop.rounds": 60}))
    hist = r.summary["staleness_histogram"]
    # the first round's n gradients have staleness 0, 1, ..., n-1; all later ones n-1
    assert hist[: n - 1] == [1] * (n - 1)
    assert hist[n - 1] == 60 - (n - 1)
    assert len(hist) == n


def test_k_of_n_round_time_is_the_kth_order_statistic():
    """With free communication and exponential compute times, the mean round time of
    sync with wait_for=k is E[X_(k:n)] = t0 (H_n - H_(n-k)) (order statistics)."""
    n, k, rounds = 8, 5, 1500
    s = Scenario().replace(**{
        "strategy.kind": "sync", "strategy.wait_for": k, "cluster.workers": n,
        "cluster.compute_time": "exponential", "cluster.server_speed": math.inf,
        "network.latency": 0.0, "network.bandwidth": math.inf,
        "stop.rounds": rounds, "eval_every": rounds})
    r = run(s)
    model = LogisticRegression()
    model.init_params(4, 3)
    t0 = np.mean([model.grad_flops(len(p)) for p in prepare_data(s).parts]) / 1e9
    expected = t0 * sum(1 / j for j in range(n - k + 1, n + 1))
    mean = r.summary["sim_time"] / rounds
    # sd of X_(k:n) = t0 sqrt(sum 1/j^2); 4 standard errors of the mean of `rounds` rounds.
    # (shards differ by one row, so t0 varies by < 4 %: allowed for by the tolerance)
    sd = t0 * math.sqrt(sum(1 / j**2 for j in range(n - k + 1, n + 1)))
    assert abs(mean - expected) < 4 * sd / math.sqrt(rounds) + 0.04 * expected
    assert r.summary["dropped_gradients"] > 0


def test_k_of_n_with_deterministic_workers_waits_for_the_kth_fastest():
    """Deterministic speeds 1..n: a k-of-n round lasts as long as the k-th fastest worker."""
    n, k = 4, 2
    s = Scenario().replace(**{
        "strategy.kind": "sync", "strategy.wait_for": k, "cluster.workers": n,
        "cluster.speed": [4e5, 3e5, 2e5, 1e5], "cluster.server_speed": math.inf,
        "network.latency": 0.0, "network.bandwidth": math.inf, "stop.rounds": 5})
    model = LogisticRegression()
    model.init_params(4, 3)
    parts = prepare_data(s).parts
    durations = sorted(model.grad_flops(len(p)) / v for p, v in zip(parts, s.cluster.speed))
    times = [h["time"] for h in run(s).history]
    np.testing.assert_allclose(np.diff(times), durations[k - 1], rtol=1e-12)


@pytest.mark.parametrize("kind", ["sync", "async", "ssp", "allreduce", "local_sgd"])
def test_same_seed_same_run_other_seed_other_run(kind):
    """Every strategy: the same seed gives an identical history and trace; another seed
    gives other compute times (and mini-batches)."""
    s = _scenario(**{"strategy.kind": kind, "strategy.batch_size": 8,
                     "cluster.compute_time": "lognormal", "cluster.jitter": 0.5})
    a, b, c = run(s), run(s), run(s.replace(seed=1))
    assert a.history == b.history and a.trace.spans == b.trace.spans
    assert a.history != c.history


def test_mini_batches_change_the_gradient_and_cost_less():
    """A batch smaller than the shard gives other parameters and shorter computations;
    a batch at least as large as every shard is full-batch GD."""
    full = run(_scenario())
    small = run(_scenario(**{"strategy.batch_size": 5}))
    big = run(_scenario(**{"strategy.batch_size": 10_000}))
    assert not np.allclose(small.model.params_, full.model.params_)
    np.testing.assert_array_equal(big.model.params_, full.model.params_)
    assert small.nodes["worker0"]["compute"] < full.nodes["worker0"]["compute"]


@pytest.mark.parametrize("changes, message", [
    ({"strategy.kind": "ssp", "strategy.staleness": -1}, r"strategy.staleness must be an integer >= 0; got -1"),
    ({"strategy.kind": "local_sgd", "strategy.local_steps": 0}, r"strategy.local_steps must be an integer >= 1; got 0"),
    ({"strategy.wait_for": 0}, r"strategy.wait_for must be an integer >= 1; got 0"),
    ({"strategy.wait_for": 5}, r"strategy.wait_for must be at most cluster.workers=3; got 5"),
    ({"strategy.batch_size": 0}, r"strategy.batch_size must be an integer >= 1; got 0"),
    ({"strategy.kind": "async", "strategy.wait_for": 2}, r"unknown key strategy.wait_for for strategy.kind='async'"),
])
def test_strategy_options_are_checked(changes, message):
    """Each strategy's own options are validated with the key named."""
    with pytest.raises(ScenarioError, match=message):
        _scenario(**changes)


@pytest.mark.parametrize("kind", ["sync", "allreduce", "local_sgd"])
def test_regression_runs_and_equals_full_batch_gd(kind):
    """Least squares on synthetic regression data: the same exact-GD contracts hold, and
    the score is the test R²."""
    extra = {"strategy.local_steps": 1} if kind == "local_sgd" else {}
    s = Scenario().replace(**{"model.kind": "linear", "data.dataset": "synthetic_regression",
                              "data.noise": 0.5, "strategy.kind": kind, "strategy.lr": 0.2},
                           **extra)
    r = run(s.replace(**{"stop.rounds": 40}))
    split = prepare_data(s)
    reference = LinearRegression(lr=0.2, n_iter=40).fit(split.X_train, split.y_train)
    np.testing.assert_allclose(r.model.params_, reference.params_, rtol=0, atol=1e-12)
    assert r.summary["score_name"] == "r2" and r.summary["final_accuracy"] is None
    assert r.summary["final_score"] == pytest.approx(
        reference.score(split.X_test, split.y_test), rel=1e-12)
    assert r.summary["final_score"] > 0.8


def test_linear_svm_trains_under_every_strategy():
    """The linear SVM (hinge loss) runs under every gradient strategy and learns iris."""
    for kind in ("sync", "async", "ssp", "allreduce", "local_sgd"):
        r = run(_scenario(**{"model.kind": "svm", "strategy.kind": kind, "stop.rounds": 60}))
        assert r.summary["final_accuracy"] > 0.8, kind


@pytest.mark.parametrize("changes, message", [
    ({"model.kind": "linear"}, r"model.kind='linear' is a regressor and needs data.dataset = 'synthetic_regression'; got data.dataset='iris'"),
    ({"data.dataset": "synthetic_regression"}, r"model.kind='logistic' is a classifier and needs a classification dataset; got data.dataset='synthetic_regression'"),
])
def test_model_and_dataset_must_match(changes, message):
    """A regressor on class labels, or a classifier on a real target, is a clear error."""
    with pytest.raises(ScenarioError, match=message):
        Scenario().replace(**changes)


def test_a_recovered_async_worker_rejoins():
    """Async workers pull the model when they (re)start: after a crash and recovery the
    worker computes again, and training never waits for it."""
    r = run(_scenario(**{"strategy.kind": "async", "stop.rounds": 400,
                         "faults.crash": [{"node": 1, "at": 2e-4, "recover_after": 3e-4}]}))
    down = next(s for s in r.trace.spans if s.node == "worker1" and s.kind == "down")
    assert any(s.node == "worker1" and s.kind == "compute" and s.start >= down.end
               for s in r.trace.spans)
    assert r.summary["updates"] == 400


def test_a_slow_worker_drops_stale_work_under_round_timeout():
    """With a round timeout shorter than a slow worker's step, the worker drops its work
    when the next model arrives, instead of finishing (and pushing) stale gradients
    while a backlog of old models grows in its mailbox."""
    r = run(_scenario(**{"cluster.slowdown": [1, 1, 6], "stop.rounds": 100,
                         "strategy.round_timeout": 1e-4, "cluster.speed": 1e8,
                         "network.latency": 1e-6, "data.partition": "iid"}))
    assert r.summary["dropped_gradients"] >= 90
    assert r.summary.get("stale_gradients_dropped", 0) == 0
    assert r.summary["updates"] == 100


@pytest.mark.parametrize("fault", [{"faults.crash": [{"node": 0, "at": 1.0}]},
                                   {"faults.mtbf": 10.0}, {"network.loss": 0.01}])
def test_allreduce_refuses_faults_it_cannot_survive(fault):
    """The ring has no recovery protocol, so faults are rejected up front, naming the key."""
    key = next(iter(fault))
    with pytest.raises(ScenarioError, match=rf"strategy.kind='allreduce' has no recovery protocol.*remove {key}"):
        _scenario(**{"strategy.kind": "allreduce", **fault})


def test_proportional_shards_follow_the_effective_speed():
    """Shards proportional to speed / slowdown: a node slowed down 4x holds a quarter."""
    s = _scenario(**{"cluster.speed": 1e9, "cluster.slowdown": [1, 1, 4]})
    sizes = [len(p) for p in prepare_data(s).parts]
    assert sizes[2] * 4 == pytest.approx(sizes[0], abs=4)


def test_a_round_timeout_shorter_than_a_step_still_makes_progress():
    """Rounds that close empty re-send the same model; a worker keeps computing on it
    (only a newer model makes its work stale), so training still advances."""
    r = run(_scenario(**{"strategy.round_timeout": 3e-4, "cluster.speed": 1e6,
                         "data.partition": "iid", "stop.rounds": 20}))
    assert r.summary["updates"] == 20 and r.summary["incomplete_rounds"] > 0


@pytest.mark.parametrize("kind, faults, rounds", [
    ("ssp", {"faults.mtbf": 0.002, "faults.mttr": 0.001}, 200),
    ("async", {"faults.mtbf": 0.0005, "faults.mttr": 0.002}, 300),
])
def test_repeated_failures_do_not_fake_a_stall(kind, faults, rounds):
    """Workers that crash again right after coming back do not make a run that would
    finish look stalled: every update is done."""
    r = run(Scenario().replace(**{"strategy.kind": kind, "stop.rounds": rounds, **faults}))
    assert r.summary["updates"] == rounds, r.summary["stop_reason"]


def test_async_with_every_worker_gone_says_so():
    """Async with every worker crashed for good ends with 'no live workers'."""
    crashes = [{"node": i, "at": 1e-3} for i in range(4)]
    r = run(Scenario().replace(**{"strategy.kind": "async", "stop.rounds": 10**6,
                                  "faults.crash": crashes}))
    assert r.summary["stop_reason"] == "no live workers from t=0.001 s"


def test_listening_while_computing_is_not_waiting():
    """A preemptible worker's wait time never overlaps its compute time."""
    r = run(_scenario(**{"strategy.wait_for": 2, "cluster.compute_time": "exponential",
                         "cluster.speed": 1e6, "stop.rounds": 50}))
    for name, t in r.nodes.items():
        assert t["compute"] + t["wait"] <= r.summary["sim_time"] + 1e-12, name


def test_fedprox_and_equal_weighting():
    """FedProx's pull towards the round's model is 0 on the first local step, so with
    local_steps = 1 any mu is sync; with more steps it changes the model. Equal weighting
    equals shard-size weighting on equal shards and differs on size-skewed ones."""
    sync = _params_after("sync")
    prox1 = _params_after("local_sgd", **{"strategy.local_steps": 1, "strategy.mu": 0.5})
    np.testing.assert_allclose(prox1, sync, rtol=0, atol=1e-12)
    plain = _params_after("local_sgd", **{"strategy.local_steps": 5})
    prox = _params_after("local_sgd", **{"strategy.local_steps": 5, "strategy.mu": 0.5})
    assert not np.allclose(plain, prox)
    even = {"data.partition": "iid", "cluster.workers": 4, "cluster.speed": 1e9,
            "data.dataset": "synthetic", "data.n_samples": 400}  # 300 rows: 75 per shard
    a = _params_after("local_sgd", **even, **{"strategy.weighting": "equal"})
    b = _params_after("local_sgd", **even)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    skew = {**even, "data.partition": "size_skew"}
    assert not np.allclose(_params_after("local_sgd", **skew, **{"strategy.weighting": "equal"}),
                           _params_after("local_sgd", **skew))
    with pytest.raises(ScenarioError, match=r"strategy.mu must be a finite number >= 0; got -1"):
        _scenario(**{"strategy.kind": "local_sgd", "strategy.mu": -1.0})


def test_large_training_sets_are_evaluated_in_chunks_to_the_same_loss(monkeypatch):
    """Past EVAL_CHUNK rows the monitor sums the chunks' losses by their share: the same
    loss (to 1e-15 relative), with and without class weights, with no big temporaries."""
    import simdml.strategies.monitor as job
    s = _scenario(**{"data.dataset": "digits", "stop.rounds": 3})
    whole = run(s)
    monkeypatch.setattr(job, "EVAL_CHUNK", 100)
    chunked = run(s)
    for a, b in zip(whole.history, chunked.history):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-15)
    weighted = s.replace(**{"model.class_weight": "balanced"})
    monkeypatch.setattr(job, "EVAL_CHUNK", 10**9)
    a = run(weighted).history[-1]["loss"]
    monkeypatch.setattr(job, "EVAL_CHUNK", 100)
    assert run(weighted).history[-1]["loss"] == pytest.approx(a, rel=1e-15)


@pytest.mark.parametrize("rule", ["average", "vote"])
def test_local_fusion_of_a_diverged_member_is_a_diverged_run(rule):
    """Guards issue 16 item 7: local fits whose parameters overflowed to nan (model.lr =
    1e300) are a diverged run, not "fused 4 local models" with a plausible accuracy."""
    with np.errstate(all="ignore"):
        r = run(Scenario().replace(**{"strategy.kind": "local_fusion", "strategy.rule": rule,
                                      "model.kind": "logistic", "model.lr": 1e300}))
    reason = r.summary["stop_reason"]
    assert reason.startswith("diverged: the local models of workers 0, 1, 2, 3 have "
                             "non-finite parameters"), reason
    assert "try a smaller model.lr" in reason


def test_fedprox_is_its_update_rule_step_by_step():
    """local_sgd with mu computes, per round and worker, H steps of
    ``p <- p - lr (grad_i(p) + mu (p - w))`` from the round's model w, then the
    shard-weighted average: the same parameters as that loop in plain numpy (to 1e-12).
    (Li et al. 2020, FedProx, eq. 2: the proximal term's gradient is mu (p - w).)"""
    lr, mu, steps, rounds = 0.3, 0.8, 4, 6
    s = _scenario(**{"strategy.kind": "local_sgd", "strategy.local_steps": steps,
                     "strategy.mu": mu, "strategy.lr": lr, "stop.rounds": rounds})
    split = prepare_data(s)
    model = LogisticRegression(l2=s.model.options.get("l2", 1e-4))
    w = model.init_params(split.X_train.shape[1], int(split.y_train.max()) + 1)
    n = split.y_train.size
    for _ in range(rounds):
        local = []
        for part in split.parts:
            X, y, p = split.X_train[part], split.y_train[part], w.copy()
            for _ in range(steps):
                p = p - lr * (model.loss_grad(p, X, y)[1] + mu * (p - w))
            local.append((part.size / n) * p)
        w = np.add.reduce(np.stack(local), axis=0)
    np.testing.assert_allclose(run(s).model.params_, w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("changes, message", [
    ({"strategy.kind": "cascade_svm", "model.kind": "kernel_svm", "strategy.feedback": 1},
     "strategy.feedback must be true or false; got 1"),
    ({"strategy.kind": "hist_tree", "model.kind": "tree", "strategy.subtraction": "yes"},
     "strategy.subtraction must be true or false; got 'yes'"),
    ({"strategy.kind": "local_sgd", "strategy.weighting": "rows"},
     "strategy.weighting must be 'samples' or 'equal'; got 'rows'"),
    ({"strategy.round_timeout": 0}, "strategy.round_timeout must be > 0 (s); got 0.0"),
    ({"strategy.round_timeout": -1}, "strategy.round_timeout must be > 0 (s); got -1.0"),
    ({"strategy.wait_for": 5}, "strategy.wait_for must be at most cluster.workers=4; got 5"),
])
def test_strategy_options_name_the_key_the_rule_and_the_value(changes, message):
    """Each strategy option's error names its dotted key, the rule and the value."""
    with pytest.raises(ScenarioError, match="^" + re.escape(message) + "$"):
        Scenario().replace(**changes)


def test_wait_for_may_be_every_worker():
    """k of n with k = n is allowed (it is plain sync) and ends like sync."""
    k_of_n = run(Scenario().replace(**{"strategy.wait_for": 4, "stop.rounds": 5}))
    plain = run(Scenario().replace(**{"stop.rounds": 5}))
    np.testing.assert_allclose(k_of_n.model.params_, plain.model.params_, rtol=0, atol=1e-12)


def test_a_target_reached_exactly_counts_as_reached():
    """A run stops the first time the score reaches stop.target_accuracy, equality
    included: with the target set to a score the run attains, it stops there."""
    full = run(_scenario(**{"stop.rounds": 30}))
    target = full.history[-1]["score"]
    first = next(h for h in full.history if h["score"] >= target)
    r = run(_scenario(**{"stop.rounds": 30, "stop.target_accuracy": target}))
    assert r.summary["time_to_target"] == first["time"]
    assert r.summary["updates"] == first["update"]
