"""Topologies (``simdml.topology``): on the default switch nothing changes; a star of
links through one switch is the switch; on a ring a message alone costs hops x (alpha +
b beta); routes are shortest and fixed; per-link bytes are each message's bytes times
its hops; on racks with oversubscription k the flat ring slows by max(1, k / h) and the
hierarchical all-reduce's inter-rack phase by max(1, k), as their formulas say; incast
on a server's link serializes; bad topologies are refused by name.
"""
import math

import numpy as np
import pytest

from simdml import Cluster, Network, Scenario, ScenarioError, Simulator, load_scenario, run
from simdml.collectives import Group, allreduce
from simdml.topology import build_topology, torus_shape

ALPHA, BW = 1e-4, 1e9


def _cluster(topology, workers, latency=ALPHA, bandwidth=BW, **kw):
    sim = Simulator()
    names = ["server", *(f"worker{i}" for i in range(workers))]
    topo = build_topology(topology, names, latency=latency, bandwidth=bandwidth, **kw)
    cluster = Cluster(sim, Network(latency=latency, bandwidth=bandwidth, topology=topo))
    for name in names:
        cluster.add_node(name)
    return sim, cluster


def _one_message(cluster, src, dst, nbytes):
    """When a lone message from node ``src`` to node ``dst`` is delivered."""
    sim, got = cluster.sim, []

    def send():
        yield cluster.nodes[src].send(cluster.nodes[dst], None, nbytes=nbytes)

    def recv():
        yield cluster.nodes[dst].recv()
        got.append(sim.now)
    t0 = sim.now
    sim.process(recv())
    sim.process(send())
    sim.run()
    return got[0] - t0


@pytest.mark.parametrize("n", [3, 4, 7, 8])
@pytest.mark.parametrize("nbytes", [0, 1000, 10**6])
def test_a_message_on_a_ring_costs_hops_times_the_per_hop_cost(n, nbytes):
    for d in range(1, n):
        _, cluster = _cluster("ring", n)
        hops = min(d, n - d)                                     # the shorter way round
        took = _one_message(cluster, 1, 1 + d, nbytes)
        assert took == pytest.approx(hops * (ALPHA + nbytes / BW), rel=1e-12)


def test_the_torus_routes_by_the_wrapped_manhattan_distance():
    rows, cols = 3, 4
    _, cluster = _cluster("torus", rows * cols, shape=(rows, cols))
    topo = cluster.network.topology
    for a in range(rows * cols):
        for b in range(rows * cols):
            if a != b:
                dr, dc = abs(a // cols - b // cols), abs(a % cols - b % cols)
                hops = min(dr, rows - dr) + min(dc, cols - dc)
                route = topo.route(1 + a, 1 + b)
                assert len(route) == hops
                assert route == topo.route(1 + a, 1 + b)          # cached: the same path
                assert route[-1].head == 1 + b
    degree = [len(topo._out[1 + w]) for w in range(rows * cols)]
    assert degree == [4] + [4] * (rows * cols - 1) or degree[0] == 5  # worker 0 also has the server
    assert torus_shape(12) == (3, 4) and torus_shape(16) == (4, 4) and torus_shape(7) == (1, 7)


def test_ties_are_broken_the_same_way_every_time():
    """On a ring of 4 the opposite node is two hops either way: the route goes through
    the lower-numbered neighbour, in every run."""
    routes = set()
    for _ in range(3):
        _, cluster = _cluster("ring", 4)
        routes.add(tuple(link.name for link in cluster.network.topology.route(1, 3)))
    assert routes == {("worker0->worker1", "worker1->worker2")}


def test_a_star_of_links_through_one_switch_is_the_switch():
    """A graph where every node is cabled to one switch, with half the latency on each
    link, times every message of a training run as the default switch does (to
    rounding): its incast at the server, its queues, its clock."""
    base = Scenario.from_dict({"cluster": {"workers": 6}, "stop": {"rounds": 6}})
    star = base.replace(**{"network.topology": "links", "network.links": [
        {"a": end, "b": "sw", "latency": base.network.latency / 2}
        for end in ("server", *range(6))]})
    a, b = run(base), run(star)
    assert b.summary["sim_time"] == pytest.approx(a.summary["sim_time"], rel=1e-12)
    assert [h["time"] for h in b.history] == pytest.approx([h["time"] for h in a.history],
                                                           rel=1e-12)
    np.testing.assert_array_equal(a.model.params_, b.model.params_)
    assert b.summary["bytes_sent"] == a.summary["bytes_sent"]
    # every byte crossed two links: in to the switch, out of it
    assert sum(v["bytes"] for v in b.links.values()) == 2 * a.summary["bytes_sent"]
    assert not a.links                                        # nothing to report on the switch


def test_the_default_switch_keeps_every_number():
    """The golden digests hold the default's every bit (tests/test_golden.py); here: the
    explicit "switch" is the default."""
    s = Scenario.from_dict({"stop": {"rounds": 4}})
    a, b = run(s), run(s.replace(**{"network.topology": "switch"}))
    assert a.summary == b.summary and a.history == b.history


def test_per_link_bytes_are_each_message_s_bytes_times_its_hops():
    n = 8
    sim, cluster = _cluster("ring", n)
    sent = []

    def talk(src, dst, nbytes):
        yield cluster.nodes[src].send(cluster.nodes[dst], None, nbytes=nbytes)
    rng = np.random.default_rng(0)
    for _ in range(40):
        src, dst = rng.choice(np.arange(1, n + 1), 2, replace=False)
        nbytes = int(rng.integers(1, 10_000))
        sent.append((src, dst, nbytes))
        sim.process(talk(int(src), int(dst), nbytes))
    sim.run()
    report = cluster.link_report()
    expected = sum(nbytes * min(abs(s - d), n - abs(s - d)) for s, d, nbytes in sent)
    assert sum(v["bytes"] for v in report.values()) == expected
    assert sum(v["messages"] for v in report.values()) == sum(
        min(abs(s - d), n - abs(s - d)) for s, d, _ in sent)
    for v in report.values():
        assert v["busy"] == pytest.approx(v["bytes"] / BW)
        assert 0 < v["utilization"] <= 1


def test_incast_on_the_server_s_link_serializes():
    """p workers of p racks send b bytes to the server at once: its one link from the
    core serializes them, the last arriving p b / bandwidth after the first byte left."""
    p, nbytes = 6, 10**6
    sim, cluster = _cluster("racks", p, latency=0.0, hosts_per_rack=1)
    done = []

    def send(w):
        yield cluster.nodes[w].send(cluster.nodes[0], None, nbytes=nbytes)

    def server():
        for _ in range(p):
            yield cluster.nodes[0].recv()
            done.append(sim.now)
    sim.process(server())
    for w in range(1, p + 1):
        sim.process(send(w))
    sim.run()
    assert done == pytest.approx([(k + 1) * nbytes / BW for k in range(p)], rel=1e-12)
    assert cluster.link_report()["core->server"]["utilization"] == pytest.approx(1.0)


def _racks_allreduce(name, h, racks, nbytes, k, latency=0.0, size=1):
    p = h * racks
    sim, cluster = _cluster("racks", p, latency=latency, hosts_per_rack=h, oversubscription=k)
    nodes, n = cluster.nodes[1:], nbytes // 8
    group = Group(nodes)

    def member(i):
        yield from allreduce(name, group, i, np.ones(n), size=size)
    for i, node in enumerate(nodes):
        node.start(member, i)
    sim.run()
    return sim.now


@pytest.mark.parametrize("k", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("h, racks", [(4, 4), (2, 3)])
def test_on_oversubscribed_racks_the_all_reduces_slow_as_their_formulas_say(k, h, racks):
    """No latency, so the bandwidth terms alone: the flat ring moves one chunk of n / p
    over each rack's uplink per step, at min(bandwidth, h bandwidth / k); the
    hierarchical all-reduce's h rings across the racks share the uplink, h chunks a
    step. Both are exact."""
    p, nbytes = h * racks, 8 * 2**4 * 3 * 5 * 7 * 100
    chunk = nbytes / p
    ring = 2 * (p - 1) * chunk / BW * max(1, k / h)
    hier = 2 * (h - 1) * (nbytes / h) / BW + 2 * (racks - 1) * chunk / BW * max(1, k)
    assert _racks_allreduce("ring", h, racks, nbytes, k) == pytest.approx(ring, rel=1e-12)
    assert _racks_allreduce("hierarchical", h, racks, nbytes, k, size=h) == pytest.approx(
        hier, rel=1e-12)


def test_hierarchical_wins_small_messages_on_racks_and_the_ring_large_ones():
    """With latency, the hierarchical all-reduce takes 2 (h - 1) + 2 (R - 1) steps to
    the ring's 2 (p - 1), but sends the same bytes over each uplink in fewer, larger
    pieces: it wins below a size, the rack-aware flat ring above it (lesson 14)."""
    h, racks, k = 4, 4, 4
    small, large = 8 * 16 * 8, 8 * 16 * 100_000
    args = dict(h=h, racks=racks, k=k, latency=1e-5)
    assert _racks_allreduce("hierarchical", nbytes=small, size=h, **args) < \
        0.6 * _racks_allreduce("ring", nbytes=small, **args)
    assert _racks_allreduce("ring", nbytes=large, **args) < \
        0.8 * _racks_allreduce("hierarchical", nbytes=large, size=h, **args)
    # and the flat algorithms whose partners cross racks with big pieces lose to both
    assert _racks_allreduce("rabenseifner", nbytes=large, **args) > \
        1.5 * _racks_allreduce("hierarchical", nbytes=large, size=h, **args)


def test_a_forwarding_host_that_is_down_loses_the_message():
    sim, cluster = _cluster("ring", 5)
    cluster.nodes[2].crash()                       # worker1: between worker0 and worker2

    def send():
        yield cluster.nodes[1].send(cluster.nodes[3], None, nbytes=100)

    sim.process(send())
    sim.run()
    assert cluster.messages_lost == 1 and cluster.messages_delivered == 0
    assert cluster.link_report().keys() == {"worker0->worker1"}   # it got no further


@pytest.mark.parametrize("topology, extra", [
    ("ring", {}), ("torus", {"network.shape": [2, 3]}),
    ("racks", {"network.hosts_per_rack": 2, "network.oversubscription": 3.0}),
    ("fat_tree", {"network.hosts_per_rack": 3})])
@pytest.mark.parametrize("kind", ["sync", "allreduce"])
def test_every_topology_trains_sync_s_model_in_its_own_time(topology, extra, kind):
    base = Scenario.from_dict({"cluster": {"workers": 6}, "strategy": {"kind": kind},
                               "stop": {"rounds": 5}})
    a = run(base)
    b = run(base.replace(**{"network.topology": topology, **extra}))
    np.testing.assert_allclose(b.model.params_, a.model.params_, rtol=0, atol=0)
    if (topology, kind) == ("ring", "allreduce"):  # every ring step is one cable: the switch's
        assert b.summary["sim_time"] == pytest.approx(a.summary["sim_time"], rel=1e-12)
    else:
        assert b.summary["sim_time"] > a.summary["sim_time"]  # longer routes than the switch's
    assert b.links and b.to_dict()["links"] == b.links
    again = run(base.replace(**{"network.topology": topology, **extra}))
    assert again.summary == b.summary and again.links == b.links


@pytest.mark.parametrize("net, message", [
    ({"topology": "mesh"}, "network.topology"),
    ({"topology": "racks"}, "needs network.hosts_per_rack"),
    ({"topology": "ring", "hosts_per_rack": 2}, "network.hosts_per_rack is a setting"),
    ({"topology": "ring", "oversubscription": 2.0}, "network.oversubscription is a setting"),
    ({"topology": "racks", "hosts_per_rack": 0}, "network.hosts_per_rack"),
    ({"topology": "racks", "hosts_per_rack": 2, "oversubscription": 0}, "oversubscription"),
    ({"topology": "ring", "shape": [2, 2]}, "network.shape is the torus"),
    ({"topology": "torus", "shape": [2]}, "[rows, cols]"),
    ({"topology": "torus", "shape": [3, 3]}, "rows x cols must equal"),
    ({"topology": "ring", "links": [{"a": 0, "b": 1}]}, "remove them"),
    ({"topology": "links"}, "needs network.links"),
    ({"topology": "links", "links": [{"a": 0, "b": 0}]}, "to itself"),
    ({"topology": "links", "links": [{"a": "server", "b": "sw"}, {"a": 0, "b": "sw"}]},
     "no route from the server to worker1"),
    ({"topology": "links", "links": [{"a": 7, "b": "sw"}]}, "worker index below"),
    ({"links": [{"a": 0, "b": "sw"}]}, "'server' or a worker index"),
])
def test_a_bad_topology_is_refused_by_name(net, message):
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Scenario.from_dict({"cluster": {"workers": 4}, "network": net})


def test_a_graph_of_links_from_toml_runs(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('[cluster]\nworkers = 2\n[strategy]\nkind = "allreduce"\n'
                    '[network]\ntopology = "links"\n'
                    '[[network.links]]\na = "server"\nb = 0\n'
                    '[[network.links]]\na = 0\nb = 1\nbandwidth = 1e6\n'
                    '[stop]\nrounds = 2\n')
    s = load_scenario(path)
    r = run(s)
    assert set(r.links) == {"worker0->worker1", "worker1->worker0"}
    assert Scenario.from_dict(s.to_dict()) == s                 # it writes back as it reads
    assert math.isfinite(r.summary["sim_time"])


def test_the_bundled_racks_scenario_shows_the_uplink():
    """racks_allreduce (TOML): 16 workers, 4 racks, 4:1 uplinks. Rabenseifner, whose first
    halving crosses the racks from every host, is slower than the ring and keeps the
    uplink busier; both train the same model."""
    s = load_scenario("racks_allreduce").replace(**{"stop.rounds": 3})
    ring = run(s)
    rab = run(s.replace(**{"strategy.collective": "rabenseifner"}))
    np.testing.assert_allclose(rab.model.params_, ring.model.params_, rtol=0, atol=1e-12)
    assert rab.summary["sim_time"] > 1.3 * ring.summary["sim_time"]
    up = lambda r: r.links["rack0->core"]["utilization"]
    assert up(rab) > up(ring) > 0
