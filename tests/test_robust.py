"""Byzantine-robust aggregation (``[aggregation]``, ``faults.byzantine``): each rule is its
paper's, written out here; with 2 attackers among 10 workers the mean fails while the
median, the trimmed mean and Krum still train (sync and fedavg); attackers send through
the same messages; bad settings are refused by name.
"""
import itertools

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.aggregation import aggregate, krum_scores

BASE = {"data.dataset": "synthetic", "data.n_samples": 1000, "data.n_features": 10,
        "cluster.workers": 10, "stop.rounds": 100, "model.l2": 0.01}
ATTACKED = {**BASE, "faults.byzantine": [0, 1], "aggregation.f": 2}
ROBUST = ("median", "trimmed_mean", "krum", "multi_krum")
#: how near the clean run's loss each rule ends: Krum steps by one worker's gradient,
#: whose shard's noise costs it more than the rules that average several
NEAR = {"median": 1.05, "trimmed_mean": 1.05, "multi_krum": 1.05, "krum": 1.15}


def _vectors(n=9, d=6, seed=0):
    return list(np.random.default_rng(seed).standard_normal((n, d)))


def test_the_median_and_the_trimmed_mean_are_per_coordinate():
    vs = _vectors()
    np.testing.assert_array_equal(aggregate("median", vs), np.median(np.stack(vs), axis=0))
    f = 2
    expected = [np.mean(sorted(v[j] for v in vs)[f:len(vs) - f]) for j in range(vs[0].size)]
    np.testing.assert_allclose(aggregate("trimmed_mean", vs, f), expected, rtol=1e-15)
    np.testing.assert_allclose(aggregate("trimmed_mean", vs, 0), np.mean(vs, axis=0),
                               rtol=1e-14)


def test_krum_picks_the_vector_nearest_its_n_minus_f_minus_2_neighbours():
    """Blanchard et al.'s score, by brute force: for each i the sum of its n - f - 2
    smallest squared distances; Krum returns the argmin, Multi-Krum averages the m best."""
    vs, f = _vectors(n=10), 2
    scores = []
    for i, v in enumerate(vs):
        d = sorted(float(np.sum((v - w) ** 2)) for j, w in enumerate(vs) if j != i)
        scores.append(sum(d[:len(vs) - f - 2]))
    np.testing.assert_allclose(krum_scores(np.stack(vs), f), scores, rtol=1e-12)
    best = int(np.argmin(scores))
    np.testing.assert_array_equal(aggregate("krum", vs, f), vs[best])
    top = np.argsort(scores)[:3]
    np.testing.assert_allclose(aggregate("multi_krum", vs, f, selected=3),
                               np.mean([vs[i] for i in top], axis=0), rtol=1e-15)


def test_krum_ignores_an_outlier_the_mean_follows():
    vs = _vectors(n=8) + [np.full(6, 1e6)]
    assert np.abs(aggregate("mean", vs)).max() > 1e5
    for rule in ROBUST:
        assert np.abs(aggregate(rule, vs, 1)).max() < 10, rule


@pytest.mark.parametrize("attack, scale", [("sign_flip", 4.0), ("gaussian", 4.0)])
def test_two_attackers_break_the_mean_and_not_the_robust_rules(attack, scale):
    """Sync GD on a strongly convex logistic loss, 10 workers, 2 attackers: the mean ends
    above the loss it started from; every robust rule (f = 2) ends within 5 % of the
    clean run's loss (Krum, one worker's gradient a step, 15 %); the attackers' messages
    are the honest ones' size."""
    clean = run(Scenario().replace(**BASE))
    changes = {**ATTACKED, "faults.attack": attack, "faults.attack_scale": scale}
    mean = run(Scenario().replace(**changes))
    assert mean.summary["final_loss"] > mean.history[0]["loss"]
    assert mean.summary["bytes_sent"] == clean.summary["bytes_sent"]
    for rule in ROBUST:
        r = run(Scenario().replace(**{**changes, "aggregation.rule": rule}))
        assert r.summary["final_loss"] < NEAR[rule] * clean.summary["final_loss"], rule


def test_without_attackers_the_robust_rules_train_and_the_mean_is_today_s():
    clean = run(Scenario().replace(**BASE))
    said = run(Scenario().replace(**{**BASE, "aggregation.rule": "mean"}))
    np.testing.assert_array_equal(said.model.params_, clean.model.params_)
    for rule in ROBUST:
        r = run(Scenario().replace(**{**BASE, "aggregation.rule": rule}))
        assert r.summary["final_loss"] < NEAR[rule] * clean.summary["final_loss"], rule


def test_federated_attackers_send_a_crafted_change():
    """FedAvg, 10 clients, 2 flip their change (x 4): the mean fails, the median trains."""
    fed = {**ATTACKED, "strategy.kind": "fedavg", "strategy.local_epochs": 2,
           "stop.rounds": 40}
    clean = run(Scenario().replace(**{**fed, "faults.byzantine": []}))
    mean = run(Scenario().replace(**fed))
    median = run(Scenario().replace(**{**fed, "aggregation.rule": "median"}))
    assert mean.summary["final_loss"] > mean.history[0]["loss"]
    assert median.summary["final_loss"] < 1.05 * clean.summary["final_loss"]


def test_an_attack_is_drawn_from_its_own_stream():
    s = Scenario().replace(**{**ATTACKED, "faults.attack": "gaussian", "stop.rounds": 5})
    assert run(s).summary == run(s).summary
    assert run(s.replace(seed=1)).summary["final_loss"] != run(s).summary["final_loss"]


@pytest.mark.parametrize("changes, match", [
    ({"aggregation.rule": "median", "strategy.kind": "async"}, "runs in strategy.kind"),
    ({"faults.byzantine": [10]}, "faults.byzantine names 10"),
    ({"faults.byzantine": [1, 1]}, "lists a node twice"),
    ({"aggregation.rule": "trimmed_mean", "aggregation.f": 5}, "needs n > 2f"),
    ({"aggregation.rule": "krum", "aggregation.f": 4}, "needs n > 2f \\+ 2"),
    ({"aggregation.rule": "mode"}, "aggregation.rule"),
    ({"faults.attack": "replay"}, "faults.attack"),
    ({"aggregation.rule": "median", "compression.kind": "topk"}, "no compression"),
])
def test_a_bad_robust_setting_is_refused_by_name(changes, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario().replace(**{**BASE, **changes})


def test_every_pair_of_rule_and_attack_runs():
    for rule, attack in itertools.product(ROBUST, ("sign_flip", "scaled", "gaussian")):
        r = run(Scenario().replace(**{**ATTACKED, "aggregation.rule": rule,
                                      "faults.attack": attack, "stop.rounds": 3}))
        assert r.summary["updates"] == 3
