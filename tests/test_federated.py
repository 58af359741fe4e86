"""Federated averaging (``strategy.kind = "fedavg"``, ``[clients]``): with one full-shard
epoch, every client and the plain server step it is sync GD (FedSGD); the rounds
aggregate exactly ``clients.per_round`` reports, sample ``ceil(K (1 + over_select))``,
close at the deadline and count dropouts; a population's clients are arrays and train on
as many devices as ever trained at once; availability and size-weighted sampling follow
their formulas; bad settings are refused by name.
"""
import math

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.clients import Population

BASE = {"data.dataset": "synthetic", "data.n_samples": 400, "data.partition": "size_skew",
        "cluster.workers": 5, "stop.rounds": 10}
FED = {**BASE, "strategy.kind": "fedavg"}
POPULATION = {**FED, "data.n_samples": 4000, "clients.population": 200,
              "clients.per_round": 20, "stop.rounds": 8}


# -- the math ---------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_one_full_epoch_of_every_client_is_sync_gd(optimizer):
    """FedSGD: each client's one step from w_t, averaged by rows, is w_t - lr sum_c (n_c /
    n) g_c; the server's momentum on the pseudo-gradient lr g is sync's momentum on g."""
    sync = run(Scenario().replace(**{**BASE, "optimizer.kind": optimizer}))
    fed = run(Scenario().replace(**{**FED, "optimizer.kind": optimizer}))
    np.testing.assert_allclose(fed.model.params_, sync.model.params_, rtol=0, atol=1e-12)
    assert [h["update"] for h in fed.history] == [h["update"] for h in sync.history]
    assert all(h["participants"] == 5 for h in fed.history[1:])


def test_the_server_step_scales_the_average_change():
    """FedSGD at server_lr = 0.5 is sync GD at half the step (1e-12)."""
    sync = run(Scenario().replace(**{**BASE, "strategy.lr": 0.05}))
    fed = run(Scenario().replace(**{**FED, "strategy.lr": 0.1, "strategy.server_lr": 0.5}))
    np.testing.assert_allclose(fed.model.params_, sync.model.params_, rtol=0, atol=1e-12)


def test_fedprox_pulls_only_once_the_model_has_moved():
    """The proximal term mu (w - w_t) is 0 at a round's first step: with E = 1 and whole
    shards FedProx is FedAvg bit for bit; with E = 3 on label-skewed shards it is not."""
    one = run(Scenario().replace(**FED))
    prox = run(Scenario().replace(**{**FED, "strategy.mu": 0.5}))
    np.testing.assert_array_equal(prox.model.params_, one.model.params_)
    local = {**FED, "strategy.local_epochs": 3, "data.partition": "label_skew"}
    plain = run(Scenario().replace(**local))
    pulled = run(Scenario().replace(**{**local, "strategy.mu": 5.0}))
    assert np.abs(pulled.model.params_ - plain.model.params_).max() > 1e-3


SKEWED = {"data.dataset": "synthetic", "data.n_samples": 400, "data.n_features": 3,
          "data.partition": "label_skew", "data.alpha": 0.3, "model.l2": 0.01,
          "cluster.workers": 5, "strategy.lr": 0.5}


def test_scaffold_reaches_the_optimum_where_fedavg_with_local_epochs_is_biased():
    """Label-skewed shards (Dirichlet 0.3), a strongly convex logistic loss, E = 5: FedAvg
    settles 1e-2 away from the optimum (its clients drift to their own), SCAFFOLD's
    control variates correct the drift and it ends at the optimum (1e-12). The optimum:
    sync GD, 5,000 full-batch steps."""
    optimum = run(Scenario().replace(**{**SKEWED, "stop.rounds": 5000,
                                        "eval_every": 5000})).model.params_
    local = Scenario().replace(**{**SKEWED, "strategy.kind": "fedavg",
                                  "strategy.local_epochs": 5, "stop.rounds": 300})
    fedavg = run(local)
    scaffold = run(local.replace(**{"strategy.algorithm": "scaffold"}))
    assert np.abs(fedavg.model.params_ - optimum).max() > 1e-2
    np.testing.assert_allclose(scaffold.model.params_, optimum, rtol=0, atol=1e-12)


def test_scaffold_with_one_full_step_is_fedsgd_and_sends_twice_the_vectors():
    """E = 1: sum_c w_c (g_c(x) - c_c + c) = g(x), since c = sum_c w_c c_c: FedSGD, to
    rounding. Its tasks carry the model and c, its reports the model and the change of
    c_i: twice the vectors each way (plus each message's two 8-byte integers)."""
    s = Scenario().replace(**{**SKEWED, "strategy.kind": "fedavg", "stop.rounds": 10})
    plain = run(s)
    scaffold = run(s.replace(**{"strategy.algorithm": "scaffold"}))
    np.testing.assert_allclose(scaffold.model.params_, plain.model.params_, rtol=0, atol=1e-12)
    vector = 8 * plain.model.params_.size
    messages = 2 * 5 * 10                                       # out and back, 5 clients, 10 rounds
    assert plain.summary["bytes_sent"] == messages * (16 + vector)
    assert scaffold.summary["bytes_sent"] == messages * (16 + 2 * vector)


def test_fedbuff_with_every_client_in_its_buffer_is_synchronous_fedavg():
    """K = m = every client: nobody may train twice on one model, so each version waits
    for every report and no update is stale: FedAvg's model (1e-12), at FedAvg's times."""
    s = Scenario().replace(**{**FED, "strategy.local_epochs": 3})
    sync = run(s)
    buffered = run(s.replace(**{"strategy.mode": "buffered"}))
    np.testing.assert_allclose(buffered.model.params_, sync.model.params_, rtol=0, atol=1e-12)
    np.testing.assert_allclose([h["time"] for h in buffered.history],
                               [h["time"] for h in sync.history], rtol=1e-12)
    assert buffered.summary["stale_updates"] == 0


def test_fedbuff_steps_on_every_k_updates_and_weighs_the_stale_ones():
    """20 clients train at once with lognormal speeds, the server steps on every 10
    updates: every version aggregates exactly 10, many of them stale; it runs its 30
    steps in a fraction of the simulated time 30 synchronous rounds of 20 take; weighing
    staleness by 1/sqrt(1 + s) or not changes the model."""
    pop = {**POPULATION, "clients.speed_sigma": 1.0, "clients.speed": 1e6,
           "strategy.local_epochs": 3, "stop.rounds": 30}
    sync = run(Scenario().replace(**pop))
    buffered = Scenario().replace(**{**pop, "strategy.mode": "buffered",
                                     "strategy.buffer_size": 10})
    r = run(buffered)
    assert {h["participants"] for h in r.history[1:]} == {10}
    assert r.summary["stale_updates"] > 100
    assert r.summary["sim_time"] < 0.2 * sync.summary["sim_time"]
    assert r.summary["final_loss"] < 1.1 * sync.summary["final_loss"]
    flat = run(buffered.replace(**{"strategy.staleness": "none"}))
    assert np.abs(flat.model.params_ - r.model.params_).max() > 1e-6


def test_mini_batches_and_epochs_take_their_steps_and_rows():
    """E = 2 epochs of B = 8 rows on iid shards of 15 rows: each client reads its 15 rows
    twice a round (steps of 8 and 7 rows), so 3 rounds of 20 clients read 1,800 of the
    3,000 rows: the epoch column says 0.6."""
    s = Scenario().replace(**{**POPULATION, "data.partition": "iid", "strategy.batch_size": 8,
                              "strategy.local_epochs": 2, "stop.rounds": 3})
    r = run(s)
    assert [h["participants"] for h in r.history[1:]] == [20, 20, 20]
    assert r.history[-1]["epoch"] == pytest.approx(0.6, rel=1e-12)
    assert run(s).summary == r.summary                          # the same seed, the same run


# -- rounds -----------------------------------------------------------------------------

def test_a_round_samples_k_times_one_plus_over_select_and_keeps_the_first_k():
    s = Scenario().replace(**{**POPULATION, "clients.over_select": 0.3,
                              "clients.speed_sigma": 1.0})
    r = run(s)
    rows = r.history[1:]
    assert {h["sampled"] for h in rows} == {26} and {h["participants"] for h in rows} == {20}
    assert r.summary["participants"] == 20 * 8
    assert r.summary["late_reports"] >= 6 * 7               # the slow 6 of each closed round
    tenth = run(s.replace(**{"clients.population": 1000, "clients.per_round": 100,
                             "clients.over_select": 0.1, "stop.rounds": 2}))
    assert {h["sampled"] for h in tenth.history[1:]} == {110}   # not ceil(110.00000000000001)


def test_a_round_closes_at_its_deadline_with_what_has_come():
    """Lognormal speeds (sigma 1.5): a deadline between the fast and the slow clients'
    round trips; every round ends by its deadline plus the server's step, and keeps only
    the reports that came before it."""
    s = Scenario().replace(**{**POPULATION, "clients.speed_sigma": 1.5,
                              "clients.speed": 1e4, "clients.deadline": 0.05})
    r = run(s)
    times = np.diff([h["time"] for h in r.history])
    assert times.max() <= 0.05 + 1e-3
    kept = [h["participants"] for h in r.history[1:]]
    assert min(kept) < 20 and max(kept) > 0 and r.summary["late_reports"] > 0


def test_dropouts_are_counted_and_never_report():
    """With K = m and a generous deadline, every sampled client reports unless it left:
    participants = sampled - dropped, round by round; about a quarter drop out."""
    s = Scenario().replace(**{**POPULATION, "clients.dropout": 0.25, "clients.deadline": 10.0,
                              "stop.rounds": 20})
    r = run(s)
    for h in r.history[1:]:
        assert h["participants"] == h["sampled"] - h["dropped"]
    dropped = sum(h["dropped"] for h in r.history)
    assert dropped == r.summary["dropouts"]
    assert 0.15 < dropped / (20 * 20) < 0.35


def test_a_population_trains_on_as_many_devices_as_train_at_once():
    """100,000 clients (a row each), 10 a round, no over-selection: every device is free
    again before the next round, so the run makes 10 nodes besides the server, and a
    round's cost does not depend on the population."""
    s = Scenario().replace(**{**FED, "data.n_samples": 133_400, "data.n_features": 4,
                              "data.partition": "iid", "clients.population": 100_000,
                              "clients.per_round": 10, "stop.rounds": 5})
    r = run(s)
    nodes = [name for name in r.memory if name != "server"]
    assert len(nodes) == 10 and all(name.startswith("device") for name in nodes)
    assert {h["participants"] for h in r.history[1:]} == {10}


# -- the population ---------------------------------------------------------------------

def _population(n=20_000, **kw):
    return Population(np.arange(1, n + 1), speed=1e9, bandwidth=1e8,
                      rng=np.random.default_rng(0), **kw)


def test_on_off_availability_follows_the_two_state_chain():
    """pi = on / (on + off) of fresh clients are on; seen again dt later, one seen on is
    on with probability pi + (1 - pi) e^{-(a + b) dt} (within 4 sigma)."""
    on, off = 1.0, 3.0
    pop = _population(availability="on_off", on_time=on, off_time=off)
    rng = np.random.default_rng(1)
    first = np.array([pop.is_available(c, 0.0, rng) for c in range(pop.n)])
    pi = on / (on + off)
    assert abs(first.mean() - pi) < 4 * math.sqrt(pi * (1 - pi) / pop.n)
    dt = 0.5
    again = np.array([pop.is_available(c, dt, rng) for c in np.flatnonzero(first)])
    p = pi + (1 - pi) * math.exp(-(1 / on + 1 / off) * dt)
    assert abs(again.mean() - p) < 4 * math.sqrt(p * (1 - p) / again.size)


def test_diurnal_clients_are_on_the_same_hours_every_day():
    """on 8 h of a 24 h day from each client's phase: a third are on at any time, each
    for one stretch of 8 h, and the same ones a day later."""
    day = 24 * 3600.0
    pop = _population(availability="diurnal", on_time=8 * 3600.0, off_time=16 * 3600.0)
    rng = np.random.default_rng(4)
    now = np.array([pop.is_available(c, 1000.0, rng) for c in range(pop.n)])
    assert abs(now.mean() - 1 / 3) < 4 * math.sqrt(2 / 9 / pop.n)
    later = np.array([pop.is_available(c, 1000.0 + day, rng) for c in range(pop.n)])
    np.testing.assert_array_equal(now, later)
    hours = np.array([pop.is_available(7, 1000.0 + 3600 * h, rng) for h in range(48)])
    assert hours.sum() in (16, 17) and np.count_nonzero(np.diff(hours.astype(int))) <= 4


def test_sampling_by_size_is_in_proportion_to_the_rows():
    pop = _population(n=10)
    rng = np.random.default_rng(2)
    counts = np.bincount([pop.sample(1, 0.0, rng, by_size=True)[0] for _ in range(20_000)],
                         minlength=10)
    expected = 20_000 * np.arange(1, 11) / 55
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected))
    many = pop.sample(10, 0.0, rng, by_size=True)
    assert sorted(many) == list(range(10))                    # without repetition, all


def test_a_round_takes_only_available_clients_and_fewer_when_few_are():
    pop = _population(n=50, availability="on_off", on_time=1.0, off_time=9.0)
    rng = np.random.default_rng(3)
    chosen = pop.sample(40, 0.0, rng)
    assert len(set(chosen)) == len(chosen) < 40
    assert all(pop._on[c] for c in chosen)


def test_profiles_are_lognormal_around_their_medians():
    pop = _population(speed_sigma=0.5, bandwidth_sigma=1.0)
    assert np.median(pop.speeds) == pytest.approx(1e9, rel=0.03)
    assert np.std(np.log(pop.speeds)) == pytest.approx(0.5, rel=0.03)
    assert np.std(np.log(pop.bandwidths)) == pytest.approx(1.0, rel=0.03)


# -- refused by name --------------------------------------------------------------------

@pytest.mark.parametrize("changes, match", [
    ({"strategy.kind": "sync", "clients.per_round": 2}, "\\[clients\\] describes"),
    ({"clients.per_round": 6}, "more than the cluster.workers=5"),
    ({"clients.population": 10, "clients.per_round": 11}, "more than clients.population"),
    ({"clients.speed_sigma": 0.5}, "clients.speed_sigma draws the profiles"),
    ({"clients.dropout": 0.1}, "needs a finite clients.deadline"),
    ({"clients.dropout": 1.0}, "clients.dropout must be < 1"),
    ({"clients.sampling": "random"}, "clients.sampling"),
    ({"clients.availability": "weekday"}, "clients.availability"),
    ({"clients.population": 1000}, "clients.population=1000 is more than the 300"),
    ({"network.topology": "ring"}, "one switch"),
    ({"strategy.local_epochs": 0}, "local_epochs"),
    ({"strategy.algorithm": "fedyogi"}, "algorithm"),
    ({"strategy.mode": "buffered", "clients.deadline": 1.0}, "clients.deadline is not"),
    ({"strategy.mode": "buffered", "strategy.algorithm": "scaffold"}, "strategy.algorithm"),
    ({"strategy.buffer_size": 3}, "strategy.buffer_size is FedBuff's"),
])
def test_a_bad_federated_setting_is_refused_by_name(changes, match):
    with pytest.raises(ScenarioError, match=match):
        s = Scenario().replace(**{**FED, **changes})
        run(s)


@pytest.mark.parametrize("changes, staleness, match", [
    ({}, lambda s: 1.0, "strategy.mode = 'buffered'; got strategy.kind='fedavg', strategy.mode='sync'"),
    ({"strategy.kind": "sync"}, lambda s: 1.0, "got strategy.kind='sync'"),
    ({"strategy.mode": "buffered", "strategy.staleness": "none"}, lambda s: 1.0,
     "in place of strategy.staleness"),
    ({"strategy.mode": "buffered"}, 0.5, "takes a function s -> weight; got 0.5"),
])
def test_a_staleness_weight_of_your_own_is_refused_where_it_cannot_apply(changes, staleness,
                                                                          match):
    with pytest.raises(ScenarioError, match=match):
        run(Scenario().replace(**{**FED, **changes}), staleness=staleness)


def test_a_staleness_weight_of_your_own_weighs_fedbuff_s_updates():
    """``run(s, staleness=f)`` puts f in place of strategy.staleness: 1/sqrt(1 + s)
    written out is simdml's model to rounding, a constant 1 is ``staleness = "none"``
    bit for bit, and a weight that is negative stops the run with its value named."""
    pop = {**POPULATION, "clients.speed_sigma": 1.0, "clients.speed": 1e6,
           "strategy.mode": "buffered", "strategy.buffer_size": 10, "stop.rounds": 10}
    s = Scenario().replace(**pop)
    ours = run(s)
    assert ours.summary["stale_updates"] > 0
    yours = run(s, staleness=lambda k: (1 + k) ** -0.5)
    np.testing.assert_allclose(yours.model.params_, ours.model.params_, rtol=1e-12)
    flat = run(s.replace(**{"strategy.staleness": "none"}))
    assert np.array_equal(run(s, staleness=lambda k: 1).model.params_, flat.model.params_)
    assert not np.array_equal(flat.model.params_, ours.model.params_)
    with pytest.raises(ValueError, match="weight of an update 1 versions old is -1.0"):
        run(s, staleness=lambda k: -1.0 if k else 1.0)


def test_a_staleness_weight_that_is_not_finite_stops_the_run_by_name():
    s = Scenario().replace(**{**POPULATION, "clients.speed_sigma": 1.0, "clients.speed": 1e6,
                              "strategy.mode": "buffered", "strategy.buffer_size": 10,
                              "stop.rounds": 3})
    with pytest.raises(ValueError, match="versions old is inf; a weight is finite and >= 0"):
        run(s, staleness=lambda k: math.inf if k else 1.0)


def test_a_deadline_shorter_than_any_round_trip_stops_the_run_at_once():
    r = run(Scenario().replace(**{**FED, "clients.deadline": 1e-5}))
    assert "; raise clients.deadline" in r.summary["stop_reason"]
    assert r.summary["updates"] == 0


def test_a_population_costs_arrays_not_an_object_per_client():
    """200,000 clients: preparing the run makes a few hundred Python objects, not one or
    more per client (shards are views made when a client trains; the population and the
    partition are arrays), and a client's shard is its rows."""
    import gc
    from simdml.experiment import _prepare
    s = Scenario().replace(**{**FED, "data.n_samples": 404_100, "data.partition": "iid",
                              "clients.population": 200_000, "clients.per_round": 10,
                              "stop.rounds": 1})
    gc.collect()
    before = len(gc.get_objects())
    split, job, _ = _prepare(s)
    made = len(gc.get_objects()) - before
    assert made < 20_000
    assert len(job.shards) == 200_000 and job.shards.sizes.sum() == split.y_train.size
    shard = job.shards[123_456]
    np.testing.assert_array_equal(shard.X, split.X_train[split.parts[123_456]])
    assert shard.X.base is not None                     # a view, no copy
