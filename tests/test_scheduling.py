"""Contracts of task-based rounds: the model does not depend on the policy or on
failures (every block counted exactly once per round); only the time does."""
from collections import deque

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.experiment import prepare_data
from simdml.models import LogisticRegression
from simdml.scheduling import POLICIES, RoundState

HETERO = [1e9, 1e9, 1e9, 2.5e8, 5e8]


def _scenario(policy="pull", **changes) -> Scenario:
    base = {"data.dataset": "digits", "cluster.workers": 5, "cluster.speed": HETERO,
            "stop.rounds": 8, "scheduling.policy": policy, "network.latency": 1e-4}
    return Scenario().replace(**{**base, **changes})


@pytest.fixture(scope="module")
def reference():
    return run(_scenario("round_robin")).model.params_


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_policy_trains_the_same_model(policy, reference):
    """The block gradients are summed in block order whoever computed them: the
    parameters are bit for bit the same under every policy."""
    np.testing.assert_array_equal(run(_scenario(policy)).model.params_, reference)


@pytest.mark.parametrize("blocks", [5, 7, 40])
def test_task_rounds_are_full_batch_gradient_descent(blocks):
    """Any number of blocks: the sample-weighted sum of block gradients is the full-batch
    gradient, so the run equals full-batch GD (to 1e-12)."""
    s = _scenario(**{"scheduling.blocks": blocks, "strategy.lr": 0.5})
    split = prepare_data(s)
    reference = LogisticRegression(lr=0.5, n_iter=8, l2=1e-4).fit(split.X_train, split.y_train)
    np.testing.assert_allclose(run(s).model.params_, reference.params_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("policy", ["round_robin", "pull", "work_stealing", "earliest_finish"])
@pytest.mark.parametrize("seed", range(15))
def test_crashes_lose_no_block_and_count_none_twice(policy, seed):
    """Random crashes and repairs (MTBF/MTTR, a detection delay): the re-queued blocks
    are computed elsewhere and every block counts once, so the parameters are exactly
    those of the same seed's run without failures. (Not always slower: under round robin
    the crash of the slow worker hands its blocks to faster ones.)"""
    calm = run(_scenario(policy, seed=seed))
    r = run(_scenario(policy, **{"seed": seed, "faults.mtbf": 0.004, "faults.mttr": 0.002,
                                 "scheduling.detect_after": 2e-4}))
    assert r.summary["updates"] == 8 and r.summary["blocks_requeued"] > 0
    np.testing.assert_array_equal(r.model.params_, calm.model.params_)


@pytest.mark.parametrize("policy", ["round_robin", "pull"])
def test_lost_messages_are_retried(policy, reference):
    """With 10 % message loss, blocks whose results are late are sent again
    (block_retries) and the model is still the exact one."""
    r = run(_scenario(policy, **{"network.loss": 0.1, "scheduling.block_timeout": 2e-3}))
    assert r.summary["block_retries"] > 0 and r.summary["messages_lost"] > 0
    np.testing.assert_array_equal(r.model.params_, reference)


def test_lost_messages_without_a_timeout_stall_with_a_hint():
    r = run(_scenario(**{"network.loss": 0.1}))
    assert "set scheduling.block_timeout" in r.summary["stop_reason"]


def test_dynamic_policies_beat_round_robin_with_a_slow_node():
    """One worker at a quarter speed: round robin waits for it every round; pull, work
    stealing, proportional and earliest_finish give it less, and finish sooner."""
    makespan = {p: run(_scenario(p)).summary["sim_time"] for p in POLICIES}
    for p in ("pull", "work_stealing", "proportional", "earliest_finish"):
        assert makespan[p] < 0.75 * makespan["round_robin"], p


def test_history_records_each_rounds_makespan():
    r = run(_scenario("pull"))
    rounds = [h["makespan"] for h in r.history[1:]]
    assert len(rounds) == 8 and all(m > 0 for m in rounds)
    assert sum(rounds) == pytest.approx(r.summary["sim_time"], rel=1e-9)


def test_work_stealing_moves_blocks_only_when_there_is_a_slow_node():
    even = run(_scenario("work_stealing", **{"cluster.speed": 1e9}))
    skewed = run(_scenario("work_stealing"))
    assert even.summary.get("blocks_moved", 0) == 0 and skewed.summary["blocks_moved"] > 0


# -------------------------------------------------------------------- the policies


def _state(sizes, speeds=(1.0, 1.0, 1.0), seed=0):
    return RoundState(np.asarray(sizes), np.asarray(speeds, dtype=float), {},
                      np.random.default_rng(seed))


def test_static_assignments():
    """round_robin deals in turn; proportional gives rows in proportion to speed;
    least_loaded (LPT) balances rows; every block is assigned exactly once."""
    blocks, workers = list(range(6)), [0, 1, 2]
    rr = POLICIES["round_robin"]().assign(blocks, workers, _state([1] * 6))
    assert {w: list(q) for w, q in rr.items()} == {0: [0, 3], 1: [1, 4], 2: [2, 5]}
    prop = POLICIES["proportional"]().assign(blocks, workers, _state([1] * 6, (1, 1, 4)))
    assert [len(prop[w]) for w in workers] == [1, 1, 4]
    lpt = POLICIES["least_loaded"]().assign(blocks, workers, _state([5, 1, 1, 4, 2, 3]))
    loads = [sum([5, 1, 1, 4, 2, 3][b] for b in lpt[w]) for w in workers]
    assert sorted(loads) == [5, 5, 6]
    for name, cls in POLICIES.items():
        q = cls().assign(blocks, workers, _state([1] * 6))
        got = sorted(b for d in q.values() for b in d)
        assert got == blocks or (name == "pull" and got == []), name


def test_earliest_finish_uses_what_it_observed():
    """Observed 1, 1 and 3 s per row, 12 one-row blocks: each block goes where it would
    finish first; the slow worker gets the fewest, and the estimated makespan (6 s) is
    the best these rates allow (12 rows at a total rate of 7/3 rows/s need >= 5.1 s,
    and whole blocks make it 6)."""
    state = _state([1] * 12)
    state.seconds_per_row = {0: 1.0, 1: 1.0, 2: 3.0}
    q = POLICIES["earliest_finish"]().assign(list(range(12)), [0, 1, 2], state)
    finish = [len(q[0]) * 1.0, len(q[1]) * 1.0, len(q[2]) * 3.0]
    assert max(finish) == 6.0 and len(q[2]) < min(len(q[0]), len(q[1]))


def test_work_stealing_takes_the_last_block_of_the_longest_queue():
    ws = POLICIES["work_stealing"]()
    queues = {0: deque(), 1: deque([4, 5, 6]), 2: deque([7])}
    assert ws.next_block(0, queues, deque()) == (6, True)
    assert ws.next_block(0, queues, deque([9])) == (9, False)  # the pool first


def test_random_policies_follow_the_seed():
    s1 = run(_scenario("random", seed=1))
    assert run(_scenario("random", seed=1)).history == s1.history
    assert run(_scenario("random", seed=2)).summary["sim_time"] != s1.summary["sim_time"]


@pytest.mark.parametrize("changes, message", [
    ({"scheduling.policy": "fifo"}, r"scheduling.policy must be one of 'round_robin'"),
    ({"scheduling.blocks": 3}, r"scheduling.blocks must be >= cluster.workers=5"),
    ({"strategy.kind": "async"}, r"scheduling.policy='pull' schedules the blocks of synchronous "
                                 r"rounds: it needs strategy.kind = 'sync'"),
    ({"strategy.wait_for": 3}, r"without wait_for / round_timeout; got strategy.kind='sync' "
                               r"with wait_for"),
    ({"scheduling.detect_after": -1.0}, r"scheduling.detect_after must be >= 0"),
])
def test_bad_scheduling_sections_name_the_key(changes, message):
    with pytest.raises(ScenarioError, match=message):
        _scenario(**changes)


# ------------------------------------------------ regressions from the fault review


def _exact(s, reference):
    r = run(s)
    assert r.summary["updates"] == s.stop.rounds, r.summary["stop_reason"]
    np.testing.assert_array_equal(r.model.params_, reference.model.params_)
    return r


def test_a_result_that_arrives_after_its_worker_crashed_frees_the_slot():
    """The worker crashes while its result is on the wire: the block is re-queued, the
    result still counts, the copy comes back as a duplicate -- and the worker holding it
    is free again (it used to stall the round)."""
    base = {"cluster.workers": 2, "cluster.speed": [1e9, 1e9], "scheduling.prefetch": 1,
            "network.latency": 1e-3}
    calm = run(_scenario("round_robin", **base))
    _exact(_scenario("round_robin", **base, **{"faults.crash": [{"node": 1, "at": 0.0015}]}), calm)


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_round_that_starts_with_every_worker_down_waits_for_them(policy):
    """A rack of all workers fails and comes back: rounds that start with nobody live
    put every block in the pool (no policy may fail on an empty cluster)."""
    changes = {"scheduling.blocks": 5, "scheduling.prefetch": 1,
               "faults.crash": [{"node": [0, 1, 2, 3, 4], "at": 0.005, "recover_after": 0.003}]}
    calm = run(_scenario(policy, **{"scheduling.blocks": 5, "scheduling.prefetch": 1}))
    _exact(_scenario(policy, **changes), calm)


def test_crashes_close_together_are_each_noticed():
    """A second crash inside the detection delay of the first, and a hello from a life
    that already ended: both handled, no stall."""
    calm = run(_scenario())
    _exact(_scenario(**{"scheduling.detect_after": 0.002, "faults.crash": [
        {"node": 1, "at": 0.001, "recover_after": 0.0002}, {"node": 1, "at": 0.0015}]}), calm)
    _exact(_scenario(**{"faults.crash": [{"node": 1, "at": 0.001, "recover_after": 0.0002},
                                         {"node": 1, "at": 0.00121, "recover_after": 0.001}]}),
           calm)


def test_a_short_block_timeout_backs_off_instead_of_storming():
    """A timeout shorter than the slow worker's block: copies go out, each later retry
    waits twice as long, and the run ends exact and without a flood of retries."""
    calm = run(_scenario())
    r = _exact(_scenario(**{"scheduling.block_timeout": 2e-4}), calm)
    assert r.summary["block_retries"] < 3 * 8 * 20  # a few per block, not a flood (once 966k)
    assert r.summary["sim_time"] < 3 * calm.summary["sim_time"]


def test_a_server_failing_faster_than_it_progresses_gives_up_with_a_reason():
    r = run(_scenario(**{"faults.server_mtbf": 0.0005, "faults.mttr": 1e-4,
                         "faults.checkpoint_every": 3, "stop.rounds": 50}))
    assert r.summary["stop_reason"].startswith("the server fails faster than it makes progress")
    # it gives up at the MAX_FUTILE_RESTARTS-th restart in a row without a new update
    from simdml.strategies.checkpoints import MAX_FUTILE_RESTARTS
    assert r.summary["server_restarts"] == MAX_FUTILE_RESTARTS == 20
    assert f"{MAX_FUTILE_RESTARTS} restarts without getting past update 0" in r.summary["stop_reason"]


@pytest.mark.parametrize("changes, message", [
    ({"data.dataset": "iris", "scheduling.blocks": 200},
     r"scheduling.blocks must be at most the 111 training rows; got 200"),
])
def test_blocks_beyond_the_rows_are_a_scenario_error(changes, message):
    with pytest.raises(ScenarioError, match=message):
        run(_scenario(**changes))


def test_batch_size_is_refused_in_task_rounds():
    with pytest.raises(ScenarioError, match=r"strategy.batch_size: task-based rounds compute "
                                            r"whole blocks"):
        _scenario(**{"strategy.batch_size": 8})


# ------------------------------------------------ from the mutation run (issue 15)


def test_a_block_lost_again_and_again_is_resent_on_a_doubling_capped_backoff():
    """One worker cut off for 3500 s, one block, block_timeout T: the server's k-th send
    of the block is at T * sum_{j<k} 2^min(j, 30) -- each wait twice the last, capped at
    2^30 T -- and the first send after the heal completes the round."""
    T = 2.0 ** -20  # dyadic: every send time is exact (and longer than a send takes)
    r = run(Scenario().replace(**{
        "data.dataset": "iris", "cluster.workers": 1, "stop.rounds": 1,
        "scheduling.policy": "pull", "scheduling.blocks": 1, "scheduling.prefetch": 1,
        "scheduling.block_timeout": T, "network.latency": 1e-4,
        "faults.partition": [{"nodes": [0], "at": 0.0, "heal_after": 3500.0}],
        "stop.wall_time": 20}))  # the guard, should the retries storm
    sends = [sp.start for sp in r.trace.spans if sp.node == "server" and sp.kind == "send"]
    expected, t, k = [], 0.0, 0
    while True:  # every send until the first one after the partition heals
        expected.append(t)
        if t >= 3500.0:
            break
        t += T * 2.0 ** min(k, 30)
        k += 1
    assert len(expected) == 34 and expected[-2:] == [3072 - T, 4096 - T]  # the cap: 1024 s
    assert sends == expected
    assert r.summary["block_retries"] == len(expected) - 1 == r.summary["messages_lost"]
    assert r.summary["updates"] == 1


def test_a_retried_blocks_original_landing_in_its_own_round_is_one_duplicate():
    """Worker 1 at 1/6.5 of worker 0's speed holds blocks 1 and 3: at block_timeout both
    go to worker 0, whose copy of block 1 comes back first; worker 1's original lands
    while block 3 is still out -- one duplicate_results, two block_retries, and the
    model is the exact one (each block counted once)."""
    speed = 2.124e6  # a 28-row block in 1 ms
    base = {"data.dataset": "iris", "cluster.workers": 2, "stop.rounds": 1,
            "scheduling.policy": "round_robin", "scheduling.blocks": 4,
            "scheduling.prefetch": 2, "network.latency": 1e-3,
            "cluster.speed": [speed, speed / 6.5]}
    calm = run(Scenario().replace(**base))
    r = run(Scenario().replace(**base, **{"scheduling.block_timeout": 5e-3}))
    assert (r.summary["block_retries"], r.summary["duplicate_results"]) == (2, 1)
    np.testing.assert_array_equal(r.model.params_, calm.model.params_)
