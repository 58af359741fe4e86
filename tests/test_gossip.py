"""Gossip (``strategy.kind = "gossip"``, D-PSGD): on the complete graph with uniform
weights it is sync GD; every mixing matrix is symmetric and doubly stochastic; the
ring's second eigenvalue is its closed form; the consensus distance of a simulated run
decays by lambda^2 a round once the gradient steps stop; a ring round costs alpha +
2 b beta over the compute; the graphs have their degrees and are deterministic.
"""
import math

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.graphs import GRAPHS, WEIGHTS, mixing_matrix, neighbours, second_eigenvalue

#: a complete graph on 0..3 with a tail 3 - 4 - 5: degrees 3, 3, 3, 4, 2, 1
LOLLIPOP = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3], [3, 4], [4, 5]]
BASE = {"cluster.workers": 6, "data.dataset": "synthetic", "data.n_samples": 400,
        "data.partition": "size_skew", "stop.rounds": 15}


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_on_the_complete_graph_with_uniform_weights_it_is_sync_gd(optimizer):
    base = Scenario().replace(**{**BASE, "optimizer.kind": optimizer})
    sync = run(base)
    gossip = run(base.replace(**{"strategy.kind": "gossip", "strategy.graph": "complete",
                                 "strategy.weights": "uniform"}))
    np.testing.assert_allclose(gossip.model.params_, sync.model.params_, rtol=0, atol=1e-12)
    assert [h["update"] for h in gossip.history] == [h["update"] for h in sync.history]
    assert all(h["consensus"] < 1e-28 for h in gossip.history)
    ring = run(base.replace(**{"strategy.kind": "gossip"}))      # a ring does not agree
    assert np.abs(ring.model.params_ - sync.model.params_).max() > 1e-4
    assert ring.history[-1]["consensus"] > 1e-8


@pytest.mark.parametrize("graph", GRAPHS)
@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("n", [2, 3, 4, 7, 12, 16])
def test_every_mixing_matrix_is_symmetric_and_doubly_stochastic(graph, weights, n):
    if graph == "random_regular" and n * 3 % 2 or graph == "random_regular" and n <= 3:
        pytest.skip("no 3-regular graph on n nodes")
    path = [[i, i + 1] for i in range(n - 1)]                    # edges: a line
    W = mixing_matrix(neighbours(graph, n, edges=path if graph == "edges" else ()), weights)
    np.testing.assert_allclose(W, W.T, atol=0)
    np.testing.assert_allclose(W.sum(axis=0), 1, atol=1e-15)
    np.testing.assert_allclose(W.sum(axis=1), 1, atol=1e-15)
    assert (W >= 0).all() and second_eigenvalue(W) < 1 - 1e-9   # connected: a gap


@pytest.mark.parametrize("n", [5, 6, 8, 11, 16])
def test_the_ring_s_second_eigenvalue_is_its_closed_form(n):
    """Uniform weights 1/3 on a ring: eigenvalues (1 + 2 cos(2 pi k / n)) / 3; the
    largest modulus but the first is k = 1's for n >= 5."""
    W = mixing_matrix(neighbours("ring", n), "uniform")
    assert second_eigenvalue(W) == pytest.approx((1 + 2 * math.cos(2 * math.pi / n)) / 3,
                                                 rel=1e-12)
    assert second_eigenvalue(mixing_matrix(neighbours("complete", n), "uniform")) < 1e-12


def test_the_graphs_have_their_degrees_and_are_deterministic():
    n = 16
    assert {len(v) for v in neighbours("ring", n)} == {2}
    assert {len(v) for v in neighbours("torus", n)} == {4}
    assert {len(v) for v in neighbours("complete", n)} == {n - 1}
    assert sorted(neighbours("exponential", n)[0]) == [1, 2, 4, 8, 12, 14, 15]
    assert neighbours("ring", n)[0] == [1, 15] and neighbours("torus", n)[0] == [1, 4, 3, 12]
    rr = neighbours("random_regular", n, degree=5, seed=3)
    assert {len(v) for v in rr} == {5}
    assert all(i in rr[j] for i in range(n) for j in rr[i])        # undirected
    assert rr == neighbours("random_regular", n, degree=5, seed=3)
    assert rr != neighbours("random_regular", n, degree=5, seed=4)


def test_the_consensus_distance_decays_at_the_rate_of_the_second_eigenvalue():
    """Label-skewed shards pull the models apart for 3 rounds; then the step schedule
    takes the learning rate to 1e-300 (no more gradient): each round multiplies the
    disagreement by W, so the distance falls by at most lambda^2 a round and by lambda^2
    in the limit."""
    lams = {}
    for graph, weights, workers in (("ring", "uniform", 8), ("torus", "metropolis", 8),
                                    ("exponential", "metropolis", 8),
                                    ("edges", "metropolis", 6), ("edges", "uniform", 6)):
        s = Scenario().replace(**{
            **BASE, "cluster.workers": workers, "data.partition": "label_skew",
            "data.n_classes": 3, "strategy.kind": "gossip", "strategy.graph": graph,
            "strategy.weights": weights, "strategy.lr": 0.5, "optimizer.schedule": "step",
            "optimizer.step_size": 3, "optimizer.gamma": 1e-300, "stop.rounds": 40,
            **({"strategy.edges": LOLLIPOP} if graph == "edges" else {})})
        r = run(s)
        lam = lams[(graph, weights)] = r.summary["spectral_lambda"]
        d = [h["consensus"] for h in r.history][7:]              # rounds 7..40: mixing only
        ratios = [b / a for a, b in zip(d, d[1:]) if a > 1e-16]   # well above rounding
        assert all(x <= lam ** 2 * (1 + 1e-6) for x in ratios)
        assert ratios[-1] == pytest.approx(lam ** 2, rel=1e-2)
    # irregular: Metropolis weighs the tail's last edge 1/3, uniform 1/5, and mixes faster
    assert lams[("edges", "metropolis")] == pytest.approx(0.8925, abs=1e-4)
    assert lams[("edges", "uniform")] == pytest.approx(0.9028, abs=1e-4)


def test_on_a_regular_graph_the_two_weights_are_one_and_on_edges_they_differ():
    for graph in ("ring", "torus", "exponential", "complete"):
        nbrs = neighbours(graph, 12)
        np.testing.assert_array_equal(mixing_matrix(nbrs, "metropolis"),
                                      mixing_matrix(nbrs, "uniform"))
    nbrs = neighbours("edges", 6, edges=LOLLIPOP)
    assert nbrs == [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2, 4], [3, 5], [4]]
    m, u = mixing_matrix(nbrs, "metropolis"), mixing_matrix(nbrs, "uniform")
    assert m[4, 5] == 1 / 3 and u[4, 5] == 1 / 5 and m[3, 4] == u[3, 4] == 1 / 5


@pytest.mark.parametrize("graph, workers, degree", [("ring", 6, 2), ("torus", 9, 4),
                                                    ("torus", 12, 4), ("exponential", 8, 5)])
def test_a_round_costs_the_compute_plus_alpha_plus_d_messages(graph, workers, degree):
    """Every worker sends its d copies in the same order of offsets, so each receives
    its neighbours' one after the other: a round is the compute + alpha + d b beta."""
    s = Scenario().replace(**{**BASE, "cluster.workers": workers, "data.partition": "iid",
                              "data.n_samples": 48 * workers, "strategy.kind": "gossip",
                              "strategy.graph": graph, "stop.rounds": 6})
    free = run(s.replace(**{"network.latency": 0.0, "network.bandwidth": math.inf}))
    r = run(s)
    nbytes = 8 * r.model.params_.size
    rounds = lambda res: np.diff([h["time"] for h in res.history])
    np.testing.assert_allclose(rounds(r) - rounds(free),
                               s.network.latency + degree * nbytes / s.network.bandwidth,
                               rtol=1e-9)
    assert r.summary["bytes_sent"] == workers * degree * 6 * nbytes   # workers x d x rounds


def test_async_gossip_never_waits_and_trains():
    s = Scenario().replace(**{**BASE, "strategy.kind": "gossip", "strategy.mode": "async",
                              "stop.rounds": 200, "cluster.speed": 1e6})
    r = run(s)
    assert r.summary["updates"] == 200
    assert r.history[-1]["loss"] < r.history[0]["loss"] - 0.2
    again = run(s)
    assert again.summary == r.summary


@pytest.mark.parametrize("changes, match", [
    ({"strategy.graph": "star"}, "graph"),
    ({"strategy.weights": "max"}, "weights"),
    ({"strategy.mode": "lazy"}, "mode"),
    ({"strategy.graph": "random_regular", "strategy.degree": 3, "cluster.workers": 5},
     "workers x degree even"),
    ({"strategy.graph": "random_regular", "strategy.degree": 6}, "degree < workers"),
    ({"strategy.graph": "edges"}, "needs edges"),
    ({"strategy.edges": [[0, 1]]}, "graph='ring' makes its own"),
    ({"strategy.graph": "edges", "strategy.edges": [[0, 1], [1, 6]]}, "outside 0..5"),
    ({"strategy.graph": "edges", "strategy.edges": [[0, 0]]}, "to itself"),
    ({"strategy.graph": "edges", "strategy.edges": [[0, 1], [1, 0]]}, "twice"),
    ({"strategy.graph": "edges", "strategy.edges": [[0, 1], [2, 3]]}, "do not connect"),
    ({"strategy.graph": "edges", "strategy.edges": [[0, 1.5]]}, "pair of node indices"),
])
def test_a_bad_gossip_setting_is_refused_by_name(changes, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario().replace(**{**BASE, "strategy.kind": "gossip", **changes})
