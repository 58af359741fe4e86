"""Reliability: extreme clusters end with a stop reason that says what happened, the
wall-clock guard stops a runaway run, and a run is a pure function of its seed."""
import math

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, bundled_scenarios, run
from simdml.data import Dataset


def _s(**changes):
    return Scenario(name="extreme").replace(**{"stop.rounds": 5, **changes})


@pytest.mark.parametrize("changes", [
    {"cluster.workers": 1},
    {"network.latency": 0.0},
    {"network.bandwidth": math.inf},
    {"network.latency": 0.0, "network.bandwidth": math.inf, "cluster.server_speed": math.inf},
    {"cluster.workers": 111},                     # one training row per worker
    {"data.partition": "by_label", "data.classes_per_part": 1, "cluster.workers": 3},
])
def test_extreme_but_valid_clusters_train(changes):
    """1 worker, zero latency, infinite bandwidth, a row per worker, a class per shard:
    each runs its rounds (sync is exact whatever the partition)."""
    r = run(_s(**changes))
    assert r.summary["updates"] == 5 and r.summary["stop_reason"] == "5 updates done (stop.rounds)"
    assert all(math.isfinite(h["loss"]) for h in r.history)


def test_every_worker_crashing_for_good_says_when():
    r = run(_s(**{"faults.crash": [{"node": [0, 1, 2, 3], "at": 0.001}], "stop.rounds": 10**6,
                  "strategy.round_timeout": 0.01}))
    assert r.summary["stop_reason"].startswith("no live workers from t=0.001 s")


def test_a_diverging_run_says_so_and_suggests_a_fix():
    r = run(_s(**{"strategy.lr": 50.0, "stop.rounds": 2000, "model.kind": "linear",
                  "data.dataset": "synthetic_regression"}))
    reason = r.summary["stop_reason"]
    assert reason.startswith("diverged: loss became") and "try a smaller strategy.lr" in reason


def test_the_wall_clock_guard_stops_a_runaway_run_with_a_reason():
    r = run(_s(**{"data.dataset": "digits", "stop.rounds": 10**7, "stop.wall_time": 0.5}))
    assert r.summary["stop_reason"].startswith("wall-clock guard: stopped after "
                                               "stop.wall_time=0.5 s of real time")
    assert 0 < r.summary["updates"] < 10**7


def test_the_guard_raises_again_when_its_first_raise_is_swallowed():
    """A raise that lands in a callback that swallows it (a weakref's, the gc's) must not
    leave the run unbounded: the guard fires again until the run has stopped."""
    import time
    from simdml.stopping import _WallClock, wall_clock_guard
    swallowed = False
    with pytest.raises(_WallClock):
        with wall_clock_guard(0.2):
            try:
                while True:
                    time.sleep(0.01)
            except _WallClock:
                swallowed = True              # eaten, as a callback would
            for _ in range(500):              # the run goes on: 5 s at most
                time.sleep(0.01)
            pytest.fail("the guard did not fire again")
    assert swallowed


def test_features_must_be_finite_and_the_column_is_named():
    with pytest.raises(ValueError, match=r"Dataset.X holds nan in column 'b' \(row 1\)"):
        Dataset(name="x", X=np.array([[1.0, 2.0], [3.0, np.nan]]), y=np.array([0, 1]),
                feature_names=("a", "b"), class_names=("u", "v"))


def test_more_workers_than_rows_is_a_scenario_error():
    with pytest.raises(ScenarioError, match=r"cluster.workers=200 is more than the 111 training"):
        run(_s(**{"cluster.workers": 200}))


# -------------------------------------------------------------- determinism audit


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_every_bundled_scenario_is_a_pure_function_of_its_seed(name):
    """Twice with the same seed: the same result, byte for byte (history, summary, per-node
    times); with another seed the stochastic parts change."""
    a, b = run(name), run(name)
    assert a.to_json() == b.to_json()
    assert a.trace.spans == b.trace.spans
    other = run(name, seed=12345)
    assert other.to_json() != a.to_json()


_SMALL = {"data.dataset": "synthetic", "data.n_samples": 600, "data.n_features": 5,
          "cluster.workers": 6, "stop.rounds": 6}
_FED = {**_SMALL, "strategy.kind": "fedavg", "strategy.local_epochs": 2}


@pytest.mark.parametrize("changes", [
    {"privacy.clip": 1.0, "privacy.noise_multiplier": 1.0, "privacy.sample_rate": 0.2},
    {**_FED, "privacy.clip": 1.0, "privacy.noise_multiplier": 1.0},
    {"faults.byzantine": [1, 4], "faults.attack": "gaussian", "aggregation.rule": "krum",
     "aggregation.f": 2, "cluster.workers": 8},
    {**_FED, "strategy.secure_aggregation": True, "clients.dropout": 0.2,
     "clients.unmask_dropout": 0.1, "clients.deadline": 5.0, "cluster.workers": 8},
    {**_FED, "strategy.mode": "buffered", "clients.population": 60, "clients.per_round": 10,
     "strategy.buffer_size": 5, "clients.speed_sigma": 1.0, "data.partition": "dirichlet"},
], ids=["dp_sgd", "dp_fedavg", "byzantine_krum", "secure_aggregation", "fedbuff_population"])
def test_privacy_attacks_and_federated_runs_are_pure_functions_of_their_seed(changes):
    """The lessons 17-19 paths draw from their own streams (noise, attacks, clients,
    masks): twice with one seed, the same bytes; another seed, another run."""
    s = Scenario().replace(**{**_SMALL, **changes})
    a, b = run(s), run(s)
    assert a.to_json() == b.to_json()
    assert run(s, seed=12345).to_json() != a.to_json()


def test_outputs_are_never_written_over_inputs(tmp_path, capsys):
    from simdml.cli import main
    scenario = tmp_path / "mine.toml"
    scenario.write_text(Scenario(name="mine").to_toml())
    before = scenario.read_text()
    assert main(["run", str(scenario), "--out", str(scenario)]) == 2
    assert "is an input of this command: it would be written over" in capsys.readouterr().err
    assert scenario.read_text() == before


def test_ten_thousand_workers_end_in_seconds():
    """10,000 workers, 2 synchronous rounds (per-node totals only): it runs, and its
    numbers are the full-batch ones."""
    r = run(_s(**{"cluster.workers": 10_000, "data.dataset": "synthetic",
                  "data.n_samples": 40_000, "stop.rounds": 2, "trace_spans": False}))
    assert r.summary["updates"] == 2 and r.summary["messages_sent"] == 2 * 2 * 10_000


def test_a_partition_that_heals_and_one_that_never_does():
    """A cut between two workers and the rest loses the messages across while it lasts
    (rounds close on their timeout) and training goes on after it heals; a cut around
    the server that never heals ends the run, saying so (sync and task rounds)."""
    base = _s(**{"stop.rounds": 200, "strategy.round_timeout": 0.005, "stop.wall_time": 20})
    healed = run(base.replace(**{"faults.partition": [{"nodes": [0, 1], "at": 0.002,
                                                       "heal_after": 0.01}]}))
    assert healed.summary["updates"] == 200 and healed.summary["messages_lost"] > 0
    assert [k for _, _, k in healed.trace.instants] == ["partition", "heal"]
    for s in (base, _s(**{"stop.rounds": 200, "scheduling.policy": "pull",
                          "scheduling.block_timeout": 0.005, "stop.wall_time": 20})):
        r = run(s.replace(**{"faults.partition": [{"nodes": ["server"], "at": 0.002}]}))
        assert r.summary["stop_reason"].startswith(
            "the server is cut off from every live worker by a network partition that never heals")
        assert r.summary["sim_time"] < 0.002 + 2 * 0.005  # at the first round that sees it


def test_partitions_are_checked_and_round_trip_through_toml():
    import tomllib
    s = _s(**{"faults.partition": [{"nodes": ["server", 2], "at": 0.1, "heal_after": 1.0}],
              "strategy.round_timeout": 0.01})
    assert Scenario.from_dict(tomllib.loads(s.to_toml())) == s
    with pytest.raises(ScenarioError, match=r"faults.partition\[0\].nodes must list at least one"):
        _s(**{"faults.partition": [{"nodes": [], "at": 0.1}]})
    with pytest.raises(ScenarioError, match=r"faults.partition\[0\].nodes must be 'server' or a "
                                            r"worker index below cluster.workers=4"):
        _s(**{"faults.partition": [{"nodes": [7], "at": 0.1}]})


@pytest.mark.parametrize("policy", ["pull", "round_robin", "work_stealing"])
def test_task_rounds_route_around_workers_cut_off_for_good(policy):
    """A partition that never heals cuts off two of four workers: their blocks come back
    on their timeout and go to the reachable ones, and training ends its rounds (it used
    to re-send to the unreachable workers until the backoff overflowed)."""
    calm = run(_s(**{"stop.rounds": 20, "scheduling.policy": policy}))
    r = run(_s(**{"stop.rounds": 20, "scheduling.policy": policy,
                  "scheduling.block_timeout": 0.01,
                  "faults.partition": [{"nodes": [0, 1], "at": 0.0005}]}))
    assert r.summary["updates"] == 20, r.summary["stop_reason"]
    np.testing.assert_array_equal(r.model.params_, calm.model.params_)


def test_the_wall_clock_guard_gives_back_a_callers_timer():
    import signal
    signal.setitimer(signal.ITIMER_REAL, 50.0)
    try:
        run(_s())
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 40.0 < left <= 50.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


_DIVERGING = {"model.kind": "linear", "data.dataset": "synthetic_regression", "strategy.lr": 10.0,
              "stop.rounds": 100}


@pytest.mark.parametrize("kind", ["sync", "async", "ssp", "allreduce", "local_sgd", "tasks"])
def test_a_loss_that_grows_by_orders_of_magnitude_is_divergence(kind):
    """Guards issue 16 item 6: a loss a thousand times its best (9e196 at lr = 10) stops
    the run as diverged, whatever the strategy, long before it overflows to inf."""
    changes = ({"scheduling.policy": "pull"} if kind == "tasks" else {"strategy.kind": kind})
    with np.errstate(all="ignore"):
        r = run(_s(**_DIVERGING, **changes))
    reason = r.summary["stop_reason"]
    assert reason.startswith("diverged: loss became") and "its best so far" in reason, reason
    assert "try a smaller strategy.lr" in reason
    assert r.summary["updates"] < 100 and r.summary["final_loss"] < 1e12


def test_the_divergence_hint_blames_mu_when_the_proximal_step_overshoots():
    """Guards issue 16 item 8: with FedProx's mu = 1e300 it is mu, not lr, that diverges."""
    with np.errstate(all="ignore"):
        r = run(_s(**{"strategy.kind": "local_sgd", "strategy.mu": 1e300, "stop.rounds": 20}))
    reason = r.summary["stop_reason"]
    assert reason.startswith("diverged:") and "try a smaller strategy.mu" in reason, reason
    assert "strategy.lr ×" in reason and "smaller strategy.lr" not in reason


@pytest.mark.parametrize("kind, model, blamed", [
    ("cascade_svm", "kernel_svm", "strategy.lr is unused"),
    ("hist_tree", "tree", "strategy.lr is unused"),
    ("admm_svm", "svm", "strategy.lr is unused"),
    ("local_fusion", "logistic", "try a smaller model.lr"),
])
def test_the_divergence_hint_never_blames_an_unused_lr(kind, model, blamed):
    """Guards issue 16 item 8: strategies that take no strategy.lr get a hint naming what
    they do use (the local fits' model.lr, or the data and the model's settings)."""
    from simdml._rng import Streams
    from simdml.build import build_cluster, build_job
    from simdml.pipeline import split_data
    s = _s(**{"strategy.kind": kind, "model.kind": model})
    streams = Streams(s.seed)
    split = split_data(s, streams)
    job = build_job(s, build_cluster(s, streams), split, streams)
    assert blamed in job.monitor.divergence_hint
    assert "smaller strategy.lr" not in job.monitor.divergence_hint


@pytest.mark.parametrize("value, fmt, text", [
    (9.339077066546955e+196, "{:.4f}", "9.339e+196"),
    (-4.68e196, "{:.1f} % (test set)", "-4.68e+196 % (test set)"),
    (1.5e-7, "{:.4f}", "1.5e-07"),
    (0.41493, "{:.4f}", "0.4149"),
    (0.0, "{:.4f}", "0.0000"),
    (float("nan"), "{:.4f}", "n/a"),
    (None, "{:.4f}", "n/a"),
    (float("inf"), "{:.4f}", "inf"),
])
def test_large_and_small_numbers_print_in_scientific_notation(value, fmt, text):
    """Guards issue 16 item 6: a diverged loss prints as 9.339e+196, not 200 digits."""
    from simdml.metrics import format_number
    assert format_number(value, fmt) == text


def test_a_partition_around_the_server_that_heals_is_not_the_end():
    """Only a partition that never heals cuts the server off for good: one around the
    server that heals costs rounds (closed on their timeout) and training goes on to its
    last update."""
    r = run(_s(**{"stop.rounds": 60, "strategy.round_timeout": 0.005, "stop.wall_time": 20,
                  "faults.partition": [{"nodes": ["server"], "at": 0.002, "heal_after": 0.02}]}))
    assert r.summary["updates"] == 60 and r.summary["stop_reason"] == "60 updates done (stop.rounds)"
    assert r.summary["incomplete_rounds"] >= 1
