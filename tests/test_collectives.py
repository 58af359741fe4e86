"""Collectives (``simdml.collectives``): every all-reduce algorithm gives every node the
plain sum of the vectors (exactly for integers, to rounding otherwise; the same bits on
every node); with free compute its time is the alpha-beta cost of Thakur, Rabenseifner &
Gropp (2005) and its bytes are the algorithm's, for powers of two and not; pieces that
arrive early wait for their step; the ``allreduce`` strategy trains sync's model with
any of them.
"""
import math

import numpy as np
import pytest

from simdml import Cluster, Network, Scenario, ScenarioError, Simulator, run
from simdml.collectives import ALIASES, ALLREDUCE, Group, allreduce, allreduce_time

NAMES = [*ALLREDUCE, *ALIASES]
SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 16]


def _allreduce(name, vectors, latency=1e-4, bandwidth=1e8, links=None, calls=1):
    """Run ``calls`` all-reduces of ``vectors`` (one per node; call c adds c to them) on a
    fresh cluster; returns each node's results and when the last node finished."""
    sim = Simulator()
    cluster = Cluster(sim, Network(latency=latency, bandwidth=bandwidth, links=links or {}))
    nodes = [cluster.add_node(f"n{k}") for k in range(len(vectors))]
    group = Group(nodes)
    results = [[] for _ in nodes]

    def member(i):
        for c in range(calls):
            results[i].append((yield from allreduce(name, group, i, vectors[i] + c)))
    for i, node in enumerate(nodes):
        node.start(member, i)
    sim.run()
    return results, sim.now, cluster


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("p", SIZES)
def test_every_algorithm_gives_every_node_the_sum(name, p):
    rng = np.random.default_rng(p)
    for n in (1, p - 1, 3 * p + 1, 40):
        vectors = [rng.integers(-50, 50, n).astype(float) for _ in range(p)]
        results, _, _ = _allreduce(name, vectors)
        plain = np.sum(vectors, axis=0)
        for got in results:
            np.testing.assert_array_equal(got[0], plain)     # integers: exact in any order
        floats = [rng.standard_normal(n) for _ in range(p)]
        results, _, _ = _allreduce(name, floats)
        np.testing.assert_allclose(results[0][0], np.sum(floats, axis=0), rtol=1e-12,
                                   atol=1e-12)
        assert all(np.array_equal(r[0], results[0][0]) for r in results)  # the same bits


ELEMENTS = 65520  # 2^4 3^2 5 7 13: every p of SIZES but 11 divides it, and every p' does


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("p", [2, 4, 8, 16])
@pytest.mark.parametrize("latency, bandwidth", [(1e-4, 1e8), (1e-6, 1e10), (1e-3, 1e6)])
def test_the_time_is_the_alpha_beta_cost(name, p, latency, bandwidth):
    """Free compute, p a power of two: the last node finishes at Thakur et al.'s cost
    (1e-12) -- every step of every node waits for the one before, as the formulas count."""
    vectors = [np.ones(ELEMENTS) for _ in range(p)]
    _, end, _ = _allreduce(name, vectors, latency, bandwidth)
    assert end == pytest.approx(allreduce_time(name, p, 8 * ELEMENTS, latency, bandwidth),
                                rel=1e-12)


@pytest.mark.parametrize("p", [3, 5, 6, 7, 12, 13])
def test_the_ring_s_time_is_the_alpha_beta_cost_for_any_p(p):
    _, end, _ = _allreduce("ring", [np.ones(ELEMENTS) for _ in range(p)], 1e-4, 1e8)
    assert end == pytest.approx(allreduce_time("ring", p, 8 * ELEMENTS, 1e-4, 1e8), rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("p", [3, 5, 6, 7, 12, 13])
def test_off_powers_of_two_the_bandwidth_term_is_exact(name, p):
    """p not a power of two: the formulas count whole synchronous steps, but a node with
    nothing to wait for sends at once, so latencies overlap (fewer of them, or a collision
    more); the bytes each critical path moves -- the bandwidth term, latency 0 -- are
    exactly the formula's (1e-12)."""
    _, end, _ = _allreduce(name, [np.ones(ELEMENTS) for _ in range(p)], 0.0, 1e8)
    assert end == pytest.approx(allreduce_time(name, p, 8 * ELEMENTS, 0.0, 1e8), rel=1e-12)


def _bytes(name, p, n):
    """What the algorithm sends in all, ``n`` bytes a vector: the ring and Rabenseifner
    2 (p - 1) / p of it per node, the tree one vector up and one down per edge, recursive
    doubling a vector per node and step; the fold and unfold 2 r vectors more."""
    name = ALIASES.get(name, name)
    q = 1 << (p.bit_length() - 1)
    extra = 2 * (p - q) * n
    return {"ring": 2 * (p - 1) * n, "tree": 2 * (p - 1) * n,
            "recursive_doubling": q * int(math.log2(q)) * n + extra,
            "rabenseifner": 2 * (q - 1) * n + extra,
            "hierarchical": 2 * (p - 1) * n}[name]    # groups of 1 (the default): a ring


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("p", [2, 3, 5, 8, 12])
def test_the_bytes_are_the_algorithm_s(name, p):
    _, _, cluster = _allreduce(name, [np.ones(ELEMENTS) for _ in range(p)])
    assert cluster.bytes_sent == _bytes(name, p, 8 * ELEMENTS)


@pytest.mark.parametrize("name", ["tree", "recursive_doubling", "rabenseifner"])
def test_pieces_that_arrive_early_wait_for_their_step(name):
    """Links of very different latencies make pieces of later steps and of the next call
    overtake earlier ones; every call still sums the right vectors."""
    p, rng = 8, np.random.default_rng(7)
    links = {(a, b): (float(rng.choice([1e-6, 1e-2])), 1e8) for a in range(p)
             for b in range(p) if a != b}
    vectors = [rng.standard_normal(20) for _ in range(p)]
    results, _, _ = _allreduce(name, vectors, links=links, calls=4)
    for c in range(4):
        expected = np.sum([v + c for v in vectors], axis=0)
        for r in results:
            np.testing.assert_allclose(r[c], expected, rtol=1e-12)


def _run_each(collective, values, latency=1e-4, bandwidth=1e8):
    sim = Simulator()
    cluster = Cluster(sim, Network(latency=latency, bandwidth=bandwidth))
    nodes = [cluster.add_node(f"n{k}") for k in range(len(values))]
    group, out = Group(nodes), [None] * len(values)

    def member(i):
        out[i] = yield from collective(group, i, values[i])
    for i, node in enumerate(nodes):
        node.start(member, i)
    sim.run()
    return out, sim.now


@pytest.mark.parametrize("p", SIZES)
def test_reduce_and_broadcast_are_the_binomial_tree_s(p):
    """reduce: the sum on rank 0, None elsewhere; broadcast: rank 0's vector everywhere;
    each ceil(log2 p)(alpha + n beta) at a power of two, the bandwidth term at any p."""
    from simdml.collectives import broadcast, reduce, tree_time
    rng = np.random.default_rng(p)
    vectors = [rng.integers(-9, 9, ELEMENTS // 16).astype(float) for _ in range(p)]
    out, end = _run_each(reduce, vectors)
    np.testing.assert_array_equal(out[0], np.sum(vectors, axis=0))
    assert all(o is None for o in out[1:])
    nbytes = vectors[0].nbytes
    out, end_b = _run_each(broadcast, [vectors[0]] + [None] * (p - 1))
    assert all(np.array_equal(o, vectors[0]) for o in out)
    if p & (p - 1) == 0:
        assert end == pytest.approx(tree_time(p, nbytes, 1e-4, 1e8), rel=1e-12)
        assert end_b == pytest.approx(tree_time(p, nbytes, 1e-4, 1e8), rel=1e-12)
    _, end0 = _run_each(reduce, vectors, latency=0.0)
    assert end0 == pytest.approx(tree_time(p, nbytes, 0.0, 1e8), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("p", [2, 3, 5, 8])
def test_the_ring_s_halves_each_cost_half_the_ring(p):
    """ring_reduce_scatter and ring_allgather alone: (p - 1)(alpha + (n / p) beta) each."""
    from simdml.collectives import ring_allgather, ring_reduce_scatter

    def half(collective):
        def run_it(group, i, vector):
            chunks = [c.copy() for c in np.array_split(vector, p)]
            yield from collective(group, i, chunks)
            return chunks
        return run_it
    for collective in (ring_reduce_scatter, ring_allgather):
        _, end = _run_each(half(collective), [np.ones(ELEMENTS) for _ in range(p)])
        assert end == pytest.approx((p - 1) * (1e-4 + 8 * ELEMENTS / p / 1e8), rel=1e-12)


def _racks(p, g, inner=(1e-5, 1e9), outer=(1e-4, 1e8)):
    """``network.links`` of ``p`` nodes in racks of ``g``: between racks, slower links."""
    return {(a, b): outer for a in range(p) for b in range(p) if a != b and a // g != b // g}


@pytest.mark.parametrize("p, g", [(4, 2), (8, 2), (8, 4), (12, 3), (12, 4), (16, 4), (6, 6),
                                  (6, 1)])
def test_the_hierarchical_all_reduce_sums_and_costs_its_formula(p, g):
    """Groups of g (racks) with slower links between them: every node gets the sum, the
    last finishes at 2(g-1)(a_i + n/g b_i) + 2(G-1)(a_o + n/p b_o) (1e-12), and it sends
    2(g-1)(p/g) n + 2(G-1) n bytes: 1/g of the vector crosses between racks."""
    from simdml.collectives import hierarchical, hierarchical_time

    def algorithm(group, i, vector):
        return hierarchical(group, i, vector, g)
    rng = np.random.default_rng(p * g)
    vectors = [rng.integers(-9, 9, ELEMENTS).astype(float) for _ in range(p)]
    sim = Simulator()
    cluster = Cluster(sim, Network(latency=1e-5, bandwidth=1e9, links=_racks(p, g)))
    nodes = [cluster.add_node(f"n{k}") for k in range(p)]
    group, out = Group(nodes), [None] * p

    def member(i):
        out[i] = yield from algorithm(group, i, vectors[i])
    for i, node in enumerate(nodes):
        node.start(member, i)
    sim.run()
    assert all(np.array_equal(o, np.sum(vectors, axis=0)) for o in out)
    n = vectors[0].nbytes
    assert sim.now == pytest.approx(hierarchical_time(p, g, n, (1e-5, 1e9), (1e-4, 1e8)),
                                    rel=1e-12)
    assert cluster.bytes_sent == 2 * (g - 1) * (p // g) * n + 2 * (p // g - 1) * n


def test_hierarchical_beats_the_flat_ring_across_slow_racks_for_large_vectors():
    """16 nodes in 4 racks, 10x slower between racks: the hierarchy needs 12 steps where
    the flat ring needs 30 (so it wins on latency for a tiny vector), and only a quarter of
    the vector crosses between racks (so it wins most for a large one: measured 1.55x,
    1.49x and 2.91x at 16, 4,096 and 65,536 numbers)."""
    p, g = 16, 4
    gaps = []
    for elements in (16, 4096, 65536):
        times = {}
        for name in ("ring", "hierarchical"):
            sim = Simulator()
            cluster = Cluster(sim, Network(latency=1e-5, bandwidth=1e9, links=_racks(p, g)))
            nodes = [cluster.add_node(f"n{k}") for k in range(p)]
            group = Group(nodes)
            for i, node in enumerate(nodes):
                node.start(lambda i=i: (yield from allreduce(name, group, i,
                                                              np.ones(elements), g)))
            sim.run()
            times[name] = sim.now
        gaps.append(times["ring"] / times["hierarchical"])
    assert min(gaps) > 1.4 and max(gaps) == gaps[2] > 2.5


def test_group_size_is_the_hierarchical_all_reduce_s():
    base = {"strategy.kind": "allreduce", "cluster.workers": 8}
    Scenario().replace(**{**base, "strategy.collective": "hierarchical", "strategy.group_size": 4})
    with pytest.raises(ScenarioError, match="group_size=3 must divide cluster.workers=8"):
        Scenario().replace(**{**base, "strategy.collective": "hierarchical",
                              "strategy.group_size": 3})
    with pytest.raises(ScenarioError, match="group_size=4 sizes the groups of"):
        Scenario().replace(**{**base, "strategy.group_size": 4})
    with pytest.raises(ScenarioError, match="group_size must be an integer >= 1"):
        Scenario().replace(**{**base, "strategy.collective": "hierarchical",
                              "strategy.group_size": 0})
    ours = run(Scenario().replace(**{**BASE, "cluster.workers": 6, "strategy.collective":
                                     "hierarchical", "strategy.group_size": 3}))
    sync = run(Scenario().replace(**{**BASE, "cluster.workers": 6, "strategy.kind": "sync"}))
    np.testing.assert_allclose(ours.model.params_, sync.model.params_, rtol=0, atol=1e-12)


def test_an_unknown_algorithm_is_named():
    with pytest.raises(ValueError, match="no all-reduce algorithm 'star'"):
        allreduce_time("star", 4, 8, 0.0, 1.0)


# -- the allreduce strategy ------------------------------------------------------------

BASE = {"strategy.kind": "allreduce", "data.dataset": "digits", "stop.rounds": 4,
        "cluster.workers": 6, "network.latency": 1e-4, "network.bandwidth": 1e8}


@pytest.mark.parametrize("name", NAMES)
def test_the_allreduce_strategy_trains_sync_s_model_with_every_algorithm(name):
    ours = run(Scenario().replace(**{**BASE, "strategy.collective": name}))
    sync = run(Scenario().replace(**{**BASE, "strategy.kind": "sync"}))
    np.testing.assert_allclose(ours.model.params_, sync.model.params_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [4, 8])
def test_a_round_of_the_strategy_costs_the_algorithm_s_time(name, n):
    """With compute free, every round lasts ``allreduce_time`` of the 16 parameters (7
    features and an intercept, 2 classes)."""
    s = Scenario().replace(**{**BASE, "cluster.workers": n, "cluster.speed": math.inf,
                              "data.dataset": "synthetic", "data.n_features": 7,
                              "strategy.collective": name, "network.latency": 1e-3,
                              "network.bandwidth": 1e6})
    rounds = np.diff([h["time"] for h in run(s).history])
    cost = allreduce_time(name, n, 16 * 8, 1e-3, 1e6)
    np.testing.assert_allclose(rounds[1:], cost, rtol=1e-12)
    # worker 0 records; a tree's root has the sum when its reduce ends and its broadcast
    # is queued on its NIC, so its first round is the reduce alone: half the cost
    assert rounds[0] == pytest.approx(cost / 2 if ALIASES.get(name, name) == "tree" else cost,
                                      rel=1e-12)


# -- ddp: each bucket by the algorithm ---------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_ddp_trains_the_same_model_with_every_algorithm(name):
    from tests.test_ddp import TIMED
    config = {**TIMED, "strategy.bucket_size": 1}
    ours = run(Scenario().replace(**{**config, "strategy.collective": name}))
    ring = run(Scenario().replace(**config))
    np.testing.assert_allclose(ours.model.params_, ring.model.params_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["ring", "recursive_doubling", "rabenseifner"])
@pytest.mark.parametrize("bound", ["compute", "comm"])
def test_ddp_s_iteration_is_its_formula_with_the_algorithm_s_all_reduces(name, bound):
    """``ddp.iteration_time`` with each bucket's ``allreduce_time`` (4 workers, buckets of
    132, 1024 and 248 parameters: 4 divides each), in both regimes (1e-9)."""
    from simdml.strategies.ddp import iteration_time
    from tests.test_ddp import COMM_BOUND, COMPUTE_BOUND, TIMED, _parts, _simulated
    s = Scenario().replace(**{**TIMED, **(COMPUTE_BOUND if bound == "compute" else COMM_BOUND),
                              "strategy.bucket_size": 1, "strategy.collective": name})
    F, B, buckets, _, S = _parts(s)
    A = [allreduce_time(name, 4, 8 * (b.span.stop - b.span.start), s.network.latency,
                        s.network.bandwidth) for b in buckets]
    simulated, _ = _simulated(s)
    assert simulated == pytest.approx(iteration_time(F, B, buckets, A, S), rel=1e-9)


def test_the_default_is_the_ring_and_a_wrong_name_is_named():
    assert Scenario().replace(**{"strategy.kind": "allreduce"}).strategy.options.get(
        "collective", "ring") == "ring"
    with pytest.raises(ScenarioError, match="collective.*'ringg'.*ring"):
        Scenario().replace(**{"strategy.kind": "allreduce", "strategy.collective": "ringg"})


def table():
    """Each algorithm on 4, 8, 12 and 16 nodes, 64 kB: formula, simulated (s), bytes."""
    for p in (4, 8, 12, 16):
        for name in ALLREDUCE:
            vectors = [np.ones(8192) for _ in range(p)]
            _, end, cluster = _allreduce(name, vectors, 1e-5, 1.25e9)
            _, beta_only, _ = _allreduce(name, vectors, 0.0, 1.25e9)
            yield (p, name, allreduce_time(name, p, 65536, 1e-5, 1.25e9), end,
                   allreduce_time(name, p, 65536, 0.0, 1.25e9), beta_only,
                   _bytes(name, p, 65536), cluster.bytes_sent)


if __name__ == "__main__":
    print("64 kB all-reduces, 10 µs latency, 10 Gbit/s:")
    print(f"{'p':>3} {'algorithm':>19} {'formula (s)':>12} {'simulated':>12} "
          f"{'β-term formula':>15} {'simulated':>12} {'bytes formula':>14} {'counted':>10}")
    for p, name, f, s, fb, sb, b, c in table():
        print(f"{p:>3} {name:>19} {f:>12.6g} {s:>12.6g} {fb:>15.6g} {sb:>12.6g} {b:>14,} {c:>10,}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("p", [3, 4, 6])
def test_every_algorithm_runs_on_a_tagged_group_and_on_matrices(name, p):
    """A tagged group (hybrid's rings: messages through a demultiplexer's queues) and
    2-D arrays (tensor parallelism's partial sums, split by rows): the plain sum, the
    same bits on every node, for two calls in a row."""
    from simdml.strategies.joined import demultiplex
    sim = Simulator()
    cluster = Cluster(sim, Network())
    nodes = [cluster.add_node(f"n{k}") for k in range(p)]
    queues = [sim.store(f"tp{k}") for k in range(p)]
    group = Group(nodes, "tp", queues)
    rng = np.random.default_rng(p)
    mats = [rng.integers(-9, 9, (2 * p + 1, 3)).astype(float) for _ in range(p)]
    got = [[] for _ in nodes]
    size = 2 if name == "hierarchical" and p % 2 == 0 else 1

    def member(i):
        for c in range(2):
            got[i].append((yield from allreduce(name, group, i, mats[i] + c, size=size)))
    for i, node in enumerate(nodes):
        node.start(demultiplex, node, {"tp": queues[i]}, {"tp": None})
        node.start(member, i)
    sim.run(until=10.0)
    for c in range(2):
        plain = np.sum(mats, axis=0) + p * c
        for i in range(p):
            np.testing.assert_array_equal(got[i][c], plain)


@pytest.mark.parametrize("kind, extra", [
    ("tensor", {"cluster.workers": 4}),
    ("hybrid", {"cluster.workers": 8, "strategy.data_parallel": 2,
                "strategy.tensor_parallel": 4, "strategy.microbatches": 2})])
def test_tensor_and_hybrid_train_the_ring_s_model_with_every_algorithm(kind, extra):
    base = Scenario().replace(**{
        "model.kind": "mlp", "model.hidden": [16, 12, 8, 8], "data.dataset": "synthetic",
        "data.n_samples": 200, "data.n_features": 6, "stop.rounds": 3,
        "strategy.kind": kind, **extra})
    ring = run(base)
    times = {}
    for name, size in (("tree", 1), ("recursive_doubling", 1), ("rabenseifner", 1),
                       ("hierarchical", 2)):
        r = run(base.replace(**{"strategy.collective": name, "strategy.group_size": size}))
        np.testing.assert_allclose(r.model.params_, ring.model.params_, rtol=0, atol=1e-12)
        assert r.summary["updates"] == ring.summary["updates"] == 3
        times[name] = r.summary["sim_time"]
        if name in ("rabenseifner", "hierarchical"):      # the ring's bytes, fewer steps
            assert r.summary["bytes_sent"] == ring.summary["bytes_sent"]
            assert r.summary["sim_time"] < ring.summary["sim_time"]
    assert len(set(times.values())) > 1                   # the algorithm sets the clock


def test_hybrid_s_hierarchical_groups_must_tile_its_rings():
    with pytest.raises(ScenarioError, match="group_size=3 must divide strategy.tensor_parallel=4"):
        Scenario().replace(**{
            "model.kind": "mlp", "model.hidden": [16, 12], "cluster.workers": 4,
            "strategy.kind": "hybrid", "strategy.tensor_parallel": 4,
            "strategy.collective": "hierarchical", "strategy.group_size": 3})
