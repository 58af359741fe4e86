"""Contracts of fault tolerance: checkpoints cost their time, a restarted server resumes
from its last checkpoint and loses exactly the updates since, racks fail together."""
import math

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, load_scenario, run
from simdml.faults import daly_interval, young_interval

ROUNDS = 40


def _scenario(**changes) -> Scenario:
    base = {"data.dataset": "digits", "cluster.workers": 4, "stop.rounds": ROUNDS,
            "network.latency": 1e-4}
    return Scenario().replace(**{**base, **changes})


@pytest.fixture(scope="module")
def calm():
    return run(_scenario())


@pytest.mark.parametrize("every", [1, 5, 7])
def test_checkpoints_cost_exactly_their_time(calm, every):
    """No failures: each checkpoint (after update v, v a multiple of N, not after the
    last) delays everything after it by checkpoint_time, and changes no number."""
    delta = 1e-3
    r = run(_scenario(**{"faults.checkpoint_every": every, "faults.checkpoint_time": delta}))
    n = (ROUNDS - 1) // every
    assert r.summary["checkpoints"] == n
    assert r.summary["sim_time"] == pytest.approx(calm.summary["sim_time"] + n * delta, rel=1e-12)
    np.testing.assert_array_equal(r.model.params_, calm.model.params_)
    assert r.nodes["server"]["checkpoint"] == pytest.approx(n * delta, rel=1e-12)


@pytest.mark.parametrize("policy", [None, "pull"])
@pytest.mark.parametrize("every", [3, 10])
def test_a_restarted_server_resumes_from_its_last_checkpoint(calm, policy, every):
    """The server crashes and comes back: it restarts from its last checkpoint, the
    updates since are lost (and counted), and training ends with the model of the run
    without the crash -- the checkpointed state is the state it had."""
    changes = {"faults.crash": [{"node": "server", "at": 0.02, "recover_after": 0.01}],
               "faults.checkpoint_every": every, "faults.checkpoint_time": 5e-4}
    if policy:
        changes["scheduling.policy"] = policy
    r = run(_scenario(**changes))
    reference = calm if policy is None else run(_scenario(**{"scheduling.policy": policy}))
    np.testing.assert_array_equal(r.model.params_, reference.model.params_)
    updates = [h["update"] for h in r.history]
    at_crash = max(h["update"] for h in r.history if h["time"] <= 0.02)
    restored = (at_crash // every) * every
    assert r.summary["server_restarts"] == 1
    assert r.summary["updates_lost"] == at_crash - restored
    assert updates.count(restored) == 2  # evaluated when written, and when restored


def test_a_server_crash_without_checkpoints_ends_the_run_with_a_reason():
    r = run(_scenario(**{"faults.crash": [{"node": "server", "at": 0.02, "recover_after": 0.01}]}))
    assert r.summary["stop_reason"] == ("server crashed at t=0.02 s, and sync cannot go on "
                                        "without it (no checkpoint to restart from)")


def test_a_server_that_never_comes_back_is_named():
    r = run(_scenario(**{"faults.crash": [{"node": "server", "at": 0.02}],
                         "faults.checkpoint_every": 5}))
    assert r.summary["stop_reason"] == ("the server crashed at t=0.02 s and does not come back "
                                        "(faults.crash[...].recover_after)")


def test_random_server_failures_with_checkpoints_still_finish():
    """A server failing every ~10 ms (MTBF) and back after ~2 ms: with checkpoints every
    5 updates training finishes, with the calm run's model."""
    r = run(_scenario(**{"faults.server_mtbf": 0.01, "faults.mttr": 0.002,
                         "faults.checkpoint_every": 5, "faults.checkpoint_time": 2e-4}))
    assert r.summary["updates"] == ROUNDS and r.summary["server_restarts"] >= 2
    assert r.summary["updates_lost"] > 0


def test_a_rack_fails_together():
    """crash.node may list several nodes: they go down at the same instant."""
    r = run(_scenario(**{"faults.crash": [{"node": [0, 2], "at": 0.01, "recover_after": 0.005}],
                         "strategy.round_timeout": 0.003}))
    crashes = [(t, n) for t, n, kind in r.trace.instants if kind == "crash"]
    assert crashes == [(0.01, "worker0"), (0.01, "worker2")]


def test_young_and_daly_intervals():
    """sqrt(2 delta M); Daly's correction is close to it when delta << M, and M when
    delta >= 2M."""
    assert young_interval(2.0, 100.0) == pytest.approx(20.0)
    assert daly_interval(2.0, 100.0) == pytest.approx(
        20.0 * (1 + math.sqrt(0.01) / 3 + 0.01 / 9) - 2.0)
    assert daly_interval(300.0, 100.0) == 100.0
    with pytest.raises(ValueError, match=r"checkpoint_time must be a finite number > 0"):
        young_interval(0.0, 1.0)


@pytest.mark.parametrize("changes, message", [
    ({"faults.checkpoint_every": 5, "strategy.kind": "async"},
     r"faults.checkpoint_every: only the sync parameter server checkpoints"),
    ({"faults.checkpoint_every": -1}, r"faults.checkpoint_every must be an integer >= 0"),
    ({"faults.crash": [{"node": [], "at": 0.1}]}, r"faults.crash\[0\].node must be a node or a "
                                                  r"non-empty list"),
    ({"faults.crash": [{"node": [0, 9], "at": 0.1}]}, r"faults.crash\[0\].node must be 'server' "
                                                      r"or a worker index below cluster.workers=4"),
])
def test_bad_fault_sections_name_the_key(changes, message):
    with pytest.raises(ScenarioError, match=message):
        _scenario(**changes)


def test_retries_recover_lost_messages_in_sync(calm):
    """5 % of messages lost: closing late rounds without the missing gradients changes
    the model; re-sending the model to the missing workers (retries) keeps it exact."""
    lossy = {"network.loss": 0.05, "strategy.round_timeout": 2e-3}
    closed = run(_scenario(**lossy))
    retried = run(_scenario(**lossy, **{"strategy.retries": 5}))
    assert closed.summary["incomplete_rounds"] > 0
    assert not np.array_equal(closed.model.params_, calm.model.params_)
    assert retried.summary["retries"] > 0 and "incomplete_rounds" not in retried.summary
    np.testing.assert_array_equal(retried.model.params_, calm.model.params_)
    with pytest.raises(ScenarioError, match=r"strategy.retries must be an integer >= 0; got -1"):
        _scenario(**{"strategy.retries": -1})


@pytest.mark.parametrize("retries", [1, 3])
def test_retries_are_bounded_per_round(retries):
    """A worker down for good: each round re-sends the model exactly ``retries`` times,
    one round_timeout apart, then closes without it (incomplete), and training goes on."""
    timeout = 1e-2
    r = run(_scenario(**{"faults.crash": [{"node": 3, "at": 0.0}], "stop.rounds": 5,
                         "strategy.round_timeout": timeout, "strategy.retries": retries,
                         "stop.time": 10.0}))  # the guard if retries never ran out
    assert r.summary["stop_reason"] == "5 updates done (stop.rounds)"
    assert r.summary["retries"] == 5 * retries
    assert r.summary["incomplete_rounds"] == 5
    assert r.summary["sim_time"] == pytest.approx(5 * (retries + 1) * timeout, rel=1e-3)


def test_a_restart_that_loses_the_model_says_which_model_was_lost():
    """Guards issue 16 item 10: a server that restarts from the initial model (no
    checkpoint written yet) after 8 real updates reports the restart and the model it
    lost, not a bare `updates: 0` with the untrained model's 33 %."""
    r = run(load_scenario("iris_sync").replace(**{
        "faults.server_mtbf": 0.05, "faults.mttr": 0.01, "faults.checkpoint_every": 1000,
        "stop.time": 0.08}))
    s = r.summary
    assert (s["updates"], s["server_restarts"], s["updates_lost"]) == (0, 1, 8)
    assert (s["lost_model_update"], round(s["lost_model_score"], 3)) == (8, 0.846)
    assert s["stop_reason"] == (
        "time limit stop.time=0.08 s reached; the server restarted 1 time and lost its "
        "model of update 8 (accuracy 0.8462): the final model is that of update 0, "
        "restarted from the initial model (no checkpoint written)")


# ------------------------------------------------ from the mutation run (issue 15)


@pytest.mark.parametrize("policy", [None, "pull"])
def test_a_gradient_of_the_servers_previous_life_never_counts(policy):
    """The server crashes while the workers compute on the model of update 1 (its last
    checkpoint) and is back before they finish: it restarts at update 1 again, so their
    gradients carry the version it is at -- but its previous life's epoch: they are
    dropped, and the next update waits for work computed after the restart (the model
    is the calm run's)."""
    base = {"data.dataset": "iris", "cluster.workers": 2, "stop.rounds": 4,
            "network.latency": 1e-4, "cluster.speed": 4.224e6 / 5}  # a shard in 5 ms
    if policy:  # one block at a time: a result the server counted is never sent again
        base.update({"scheduling.policy": policy, "scheduling.prefetch": 1})
    calm = run(Scenario().replace(**base))
    r = run(Scenario().replace(**base, **{
        "faults.checkpoint_every": 1, "faults.checkpoint_time": 1e-4,
        "faults.crash": [{"node": "server", "at": 0.0075, "recover_after": 0.0005}]}))
    assert (r.summary["server_restarts"], r.summary["updates_lost"]) == (1, 0)
    restart = next(sp.end for sp in r.trace.spans if sp.node == "server" and sp.kind == "down")
    assert [h["update"] for h in r.history if h["time"] <= restart] == [0, 1, 1]
    after = min(h["time"] for h in r.history if h["time"] > restart)  # update 2
    fresh = [sp for sp in r.trace.spans if sp.node.startswith("worker") and sp.kind == "compute"
             and restart <= sp.start and sp.end <= after]
    if policy is None:   # every worker's gradient of update 2 was computed after the restart
        assert {sp.node for sp in fresh} == {"worker0", "worker1"}
        assert r.summary["stale_gradients_dropped"] == 2
    else:                # every block of update 2 was computed after the restart
        assert len(fresh) == 8
        assert r.summary["duplicate_results"] == 2
    np.testing.assert_array_equal(r.model.params_, calm.model.params_)


def test_a_retrys_twin_gradient_in_its_own_round_is_counted_once():
    """Worker 1 down for good, worker 0's gradient (1 ms) still on the wire at the first
    retry (2 ms): the re-sent model reaches worker 0 after it pushed, so it computes a
    twin that lands before the round closes (after 2 retries, at 6 ms) -- one
    duplicate_gradients per round, dropped: the model is that of the rounds closed on
    their timeout with the one gradient."""
    base = {"data.dataset": "iris", "cluster.workers": 2, "stop.rounds": 3,
            "network.latency": 1e-3, "cluster.speed": [4.224e6, 1e9],  # worker 0: 1 ms
            "faults.crash": [{"node": 1, "at": 0.0}]}
    r = run(Scenario().replace(**base, **{"strategy.round_timeout": 2e-3,
                                          "strategy.retries": 2}))
    s = r.summary
    assert (s["duplicate_gradients"], s["retries"], s["incomplete_rounds"]) == (3, 6, 3)
    assert s.get("stale_gradients_dropped", 0) == 0
    assert s["sim_time"] == pytest.approx(3 * 6e-3, rel=1e-5)
    once = run(Scenario().replace(**base, **{"strategy.round_timeout": 6e-3}))
    assert "duplicate_gradients" not in once.summary
    np.testing.assert_array_equal(r.model.params_, once.model.params_)


def _checkpoints(every=5):
    """Checkpoints on a stand-in monitor: its update count and evaluated rows."""
    from types import SimpleNamespace

    from simdml.strategies.checkpoints import Checkpoints
    from simdml.strategies.stats import Stats
    monitor = SimpleNamespace(updates=0, history=[])
    cp = Checkpoints(every=every, seconds=0.0, initial=np.zeros(2), monitor=monitor,
                     stats=Stats())
    return cp, monitor


def _restart(cp, monitor, updates, evaluated=(), version=None):
    """The server crashes at ``updates`` (evaluated at those in ``evaluated``, score
    update / 100) and restarts from a checkpoint of ``version`` (None: none written)."""
    from types import SimpleNamespace
    monitor.updates = updates
    monitor.history = [{"update": u, "score": u / 100} for u in evaluated]
    if version is not None:
        cp.last = {"params": np.ones(2), "version": version, "time": 0.0, "state": None}
    return cp.restore(SimpleNamespace(epoch=1))


def test_the_lost_model_is_the_most_advanced_one_a_restart_threw_away():
    """A restart that loses nothing (at its checkpoint, or at update 0) loses no model;
    one that loses a single update reports it; a later restart that loses less keeps the
    first report; a lost model not evaluated at its update has no score."""
    cp, monitor = _checkpoints()
    _restart(cp, monitor, 0, evaluated=[0])
    assert cp.lost_model is None                          # update 0, nothing written: none lost
    _restart(cp, monitor, 5, evaluated=[0, 5], version=5)
    assert cp.lost_model is None                          # crashed at its checkpoint
    cp, monitor = _checkpoints()
    _restart(cp, monitor, 1, evaluated=[0, 1])
    assert cp.lost_model == {"update": 1, "score": 0.01}  # one update past the initial model
    _restart(cp, monitor, 8, evaluated=[0, 8])
    assert cp.lost_model == {"update": 8, "score": 0.08}
    _restart(cp, monitor, 7, evaluated=[0, 7], version=5)
    assert cp.lost_model == {"update": 8, "score": 0.08}  # 7 < 8: the first report stands
    _restart(cp, monitor, 8, evaluated=[0, 8], version=5)
    assert cp.lost_model == {"update": 8, "score": 0.08}  # 8 again: not more advanced
    _restart(cp, monitor, 11, evaluated=[0, 4, 8], version=5)
    assert cp.lost_model == {"update": 11, "score": None}  # last evaluated at 8, not at 11
    _restart(cp, monitor, 12, evaluated=[], version=5)
    assert cp.lost_model == {"update": 12, "score": None}  # never evaluated


def test_the_lost_model_note_says_restarts_checkpoint_and_score_exactly():
    """The note appears only when the final model is behind the lost one (not at the
    same update), and names the restarts, the lost update, its score if evaluated, and
    the checkpoint restarted from."""
    cp, monitor = _checkpoints()
    _restart(cp, monitor, 8, evaluated=[0, 4])
    _restart(cp, monitor, 3, evaluated=[0, 3], version=2)
    assert cp.lost_model == {"update": 8, "score": None}
    assert cp.lost_note(8, "accuracy") is None and cp.lost_note(9, "accuracy") is None
    assert cp.lost_note(7, "accuracy") == (
        "the server restarted 2 times and lost its model of update 8: the final model is "
        "that of update 7, restarted from its checkpoint of update 2")
    cp, monitor = _checkpoints()
    _restart(cp, monitor, 6, evaluated=[0, 6])
    assert cp.lost_note(0, "r2") == (
        "the server restarted 1 time and lost its model of update 6 (r2 0.06): the final "
        "model is that of update 0, restarted from the initial model (no checkpoint written)")
