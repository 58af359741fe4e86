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
