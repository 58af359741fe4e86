"""Tests for simdml.cluster, simdml.faults and simdml._rng: the time model of the cluster.

Times are chosen exactly representable in binary (latency 0.5 s, 256 bytes at
1024 bytes/s = 0.25 s) so that expected times are compared with ``==``.
"""
import math

import numpy as np
import pytest

from simdml import Cluster, Crash, Interrupt, Network, Simulator
from simdml._rng import STREAMS, Streams
from simdml.cluster import COMPUTE_TIMES, Span
from simdml.network import payload_nbytes
from simdml.faults import crash_at, random_failures

LATENCY = 0.5       # s
BANDWIDTH = 1024.0  # bytes/s
NBYTES = 256        # bytes: 0.25 s on the wire at BANDWIDTH
D = NBYTES / BANDWIDTH


def make_cluster(n_nodes=2, *, latency=LATENCY, bandwidth=BANDWIDTH, **network):
    sim = Simulator()
    cluster = Cluster(sim, Network(latency=latency, bandwidth=bandwidth, **network))
    nodes = [cluster.add_node(f"n{i}") for i in range(n_nodes)]
    return sim, cluster, nodes


def listener(node, log):
    """Program: log ``(now, payload)`` of every message delivered to ``node``."""
    while True:
        payload = yield node.recv()
        log.append((node.sim.now, payload))


def send_at(node, dst, t, payload, nbytes=NBYTES, log=None):
    """Program: send ``payload`` to ``dst`` at time ``t``; log when the NIC is free again."""
    yield node.sim.timeout(t - node.sim.now)
    yield node.send(dst, payload, nbytes=nbytes)
    if log is not None:
        log.append((node.sim.now, payload))


# ------------------------------------------------------------------ one message

def test_one_message_takes_latency_plus_transmission():
    """A lone message of b bytes is delivered at latency + b/bandwidth; send fires at b/bandwidth."""
    sim, cluster, (a, b) = make_cluster()
    sent, got = [], []
    b.start(listener, b, got)
    a.start(send_at, a, b, 0.0, "m", NBYTES, sent)
    sim.run(until=10.0)
    assert sent == [(D, "m")]
    assert got == [(LATENCY + D, "m")]
    assert Span("n0", "send", 0.0, D, NBYTES) in cluster.spans
    assert Span("n1", "recv", LATENCY, LATENCY + D, NBYTES) in cluster.spans
    assert (cluster.messages_sent, cluster.bytes_sent, cluster.messages_delivered) == (1, NBYTES, 1)


@pytest.mark.parametrize("payload, nbytes", [
    (np.zeros(32), 256),
    (np.zeros((3, 4), dtype=np.float32), 48),
    (3, 8),
    (2.5, 8),
    (True, 8),
    (np.float64(1.0), 8),
    (None, 0),
    ((np.zeros(4), 1, None), 40),
    ([1, 2.0], 16),
    ({"w": np.zeros(2), "step": 7}, 24),
    (b"abcd", 4),
])
def test_payload_nbytes(payload, nbytes):
    """Arrays count .nbytes, numbers 8, containers the sum of their items, None 0."""
    assert payload_nbytes(payload) == nbytes


class Blob:
    pass


def test_payload_of_unknown_type_asks_for_nbytes():
    """An object of unknown size is a TypeError, from payload_nbytes and from send, suggesting nbytes=."""
    with pytest.raises(TypeError, match=r"cannot tell the size of a Blob payload; pass nbytes= to send\(\)"):
        payload_nbytes(Blob())
    sim, cluster, (a, b) = make_cluster()
    with pytest.raises(TypeError, match=r"Blob payload; pass nbytes="):
        a.send(b, (1, Blob()))
    assert cluster.messages_sent == 0


def test_explicit_nbytes_wins():
    """An explicit nbytes sets the size on the wire, whatever the payload."""
    sim, cluster, (a, b) = make_cluster()
    got = []
    b.start(listener, b, got)
    a.start(send_at, a, b, 0.0, np.zeros(1000), NBYTES)
    sim.run(until=10.0)
    assert [t for t, _ in got] == [LATENCY + D]
    assert cluster.bytes_sent == NBYTES


# ------------------------------------------------------------- NIC queueing

@pytest.mark.parametrize("n_workers", [1, 3, 8])
def test_incast_serializes_on_the_receiver_nic(n_workers):
    """n workers sending b bytes to one server at t=0: the k-th arrives at latency + k*b/bandwidth."""
    sim, cluster, (server, *workers) = make_cluster(1 + n_workers)
    got = []
    server.start(listener, server, got)
    for w in workers:
        w.start(send_at, w, server, 0.0, w.name)
    sim.run(until=100.0)
    assert got == [(LATENCY + k * D, f"n{k}") for k in range(1, n_workers + 1)]


@pytest.mark.parametrize("n_workers", [1, 3, 8])
def test_broadcast_serializes_on_the_sender_nic(n_workers):
    """A server sending b bytes to n workers at t=0: worker k gets it at latency + k*b/bandwidth."""
    sim, cluster, (server, *workers) = make_cluster(1 + n_workers)
    logs = {w.name: [] for w in workers}
    for w in workers:
        w.start(listener, w, logs[w.name])
    send_done = [server.send(w, None, nbytes=NBYTES) for w in workers]
    sim.run(until=100.0)
    assert {name: log for name, log in logs.items()} == {
        f"n{k}": [(LATENCY + k * D, None)] for k in range(1, n_workers + 1)}
    assert [ev.delay for ev in send_done] == [k * D for k in range(1, n_workers + 1)]


def test_messages_from_one_sender_arrive_in_send_order():
    """Messages of different sizes from one sender arrive in send order, at latency + cumulative transmission."""
    sizes = [256, 64, 512, 128, 8]
    sim, cluster, (a, b) = make_cluster()
    got = []
    b.start(listener, b, got)
    for i, nbytes in enumerate(sizes):
        a.send(b, i, nbytes=nbytes)
    sim.run(until=100.0)
    finish = np.cumsum(sizes) / BANDWIDTH
    assert got == [(LATENCY + float(f), i) for i, f in enumerate(finish)]


def test_post_is_send_without_its_event():
    """``post`` delivers the same messages at the same times as ``send``, returns when
    each has left the NIC (the time ``send``'s event fires), and queues no event: a
    message is then exactly its arrival and its delivery in the kernel's queue."""
    sizes = [256, 64, 512]
    got, queued = {}, {}
    for how in ("send", "post"):
        sim, cluster, (a, b) = make_cluster()
        got[how] = []
        b.start(listener, b, got[how])
        sim.run(until=0.5)                        # the listener waits on its mailbox
        before = len(sim._queue)
        done = [getattr(a, how)(b, i, nbytes=n) for i, n in enumerate(sizes)]
        queued[how] = len(sim._queue) - before
        sim.run(until=100.0)
        got[how + " done"] = [d if how == "post" else 0.5 + d.delay for d in done]
    assert got["post"] == got["send"] and got["post done"] == got["send done"]
    assert got["post done"] == [0.5 + float(f) for f in np.cumsum(sizes) / BANDWIDTH]
    assert queued == {"send": 2 * len(sizes), "post": len(sizes)}   # arrivals (+ events)


@pytest.mark.parametrize("lost", ["sender crashes", "receiver down"])
@pytest.mark.parametrize("how", ["send", "post"])
def test_a_lost_message_keeps_the_clock_until_it_has_left_its_sender(lost, how):
    """1,024 bytes at 1,024 bytes/s with a latency of 0.25 s: the first byte arrives at
    0.25 s, the last leaves at 1 s. Lost at its arrival, the message still holds its
    sender's NIC until 1 s, with ``post`` as with ``send`` (``Cluster.lose``): the run
    does not end sooner."""
    sim, cluster, (a, b) = make_cluster(latency=0.25)
    if lost == "receiver down":
        b.crash()

    def crash_sender():
        yield sim.timeout(0.125)
        a.crash()
    if lost == "sender crashes":
        sim.process(crash_sender())
    getattr(a, how)(b, "m", nbytes=1024)
    sim.run()
    assert (sim.now, cluster.messages_lost) == (1.0, 1)


SMALL = {"data.dataset": "synthetic", "data.n_samples": 1200, "data.n_features": 8,
         "cluster.workers": 6}


@pytest.mark.parametrize("changes", [
    {"strategy.kind": "async", "network.loss": 0.02, "stop.rounds": 200, "seed": 1},
    {"strategy.kind": "async", "network.loss": 0.02, "stop.rounds": 200, "seed": 2},
    {"strategy.kind": "async", "network.loss": 0.03, "stop.rounds": 200, "seed": 0,
     "cluster.workers": 8, "network.topology": "racks", "network.hosts_per_rack": 4},
    {"strategy.kind": "async", "stop.rounds": 100,
     "faults.crash": [{"node": 2, "at": 3e-4, "recover_after": 1e-3}]},
], ids=["lost_stall", "lost_stall_2", "racks_lost_stall", "crash"])
def test_a_run_with_post_is_the_run_with_send_byte_for_byte(changes, monkeypatch):
    """``post`` drops only an event nobody waits on: a run is the same, results and trace,
    with every ``post`` spelled as ``send``. Lost messages included: a stalled run does not
    stall before the last byte it counted has left its sender's NIC (``Cluster.lose``)."""
    from simdml import Scenario, run
    from simdml.cluster import Node
    s = Scenario().replace(**{**SMALL, **changes})
    posted = run(s)

    def post_by_send(self, dst, payload, nbytes=None):
        return self.sim.now + self.send(dst, payload, nbytes).delay
    monkeypatch.setattr(Node, "post", post_by_send)
    sent = run(s)
    assert posted.to_json() == sent.to_json()
    assert posted.trace.spans == sent.trace.spans


def test_infinite_bandwidth_costs_only_latency():
    """With bandwidth=inf a message of any size is delivered at exactly latency, and send fires at once."""
    sim, cluster, (a, b, c) = make_cluster(3, bandwidth=math.inf)
    got = []
    c.start(listener, c, got)
    sent = [a.send(c, "a", nbytes=10**9), b.send(c, "b", nbytes=10**9)]
    sim.run(until=10.0)
    assert got == [(LATENCY, "a"), (LATENCY, "b")]
    assert [ev.delay for ev in sent] == [0.0, 0.0]


def test_zero_latency_and_infinite_bandwidth_deliver_at_once():
    """latency 0 and bandwidth inf deliver every message at the time it was sent."""
    sim, cluster, (a, b) = make_cluster(latency=0.0, bandwidth=math.inf)
    got = []
    b.start(listener, b, got)
    a.start(send_at, a, b, 0.0, "now", 4096)
    a.start(send_at, a, b, 1.5, "later", 4096)
    sim.run(until=10.0)
    assert got == [(0.0, "now"), (1.5, "later")]


LINKS = {(0, 1): (2.0, 256.0)}  # one slow link, one direction only


@pytest.mark.parametrize("src, dst, expected", [
    (0, 1, 2.0 + 256 / 256.0),   # the overridden link
    (1, 0, LATENCY + D),         # its reverse direction keeps the default
    (0, 2, LATENCY + D),
    (2, 1, LATENCY + D),
])
def test_per_link_override_applies_to_that_link_only(src, dst, expected):
    """Network(links={(i, j): (lat, bw)}) changes the time of messages from i to j, and of no others."""
    sim, cluster, nodes = make_cluster(3, links=LINKS)
    got = []
    nodes[dst].start(listener, nodes[dst], got)
    nodes[src].send(nodes[dst], None, nbytes=NBYTES)
    sim.run(until=10.0)
    assert got == [(expected, None)]
    assert cluster.network.transfer_time(NBYTES, src, dst) == expected


@pytest.mark.parametrize("latency, bandwidth, nbytes", [
    (1e-4, 1.25e9, 4000),
    (5e-6, 1.25e10, 1),
    (0.0, 1e6, 10**6),
    (2e-3, math.inf, 10**9),
    (1e-4, 1.25e9, 0),
])
def test_transfer_time_is_the_alpha_beta_cost(latency, bandwidth, nbytes):
    """Network.transfer_time is latency + nbytes/bandwidth, and a lone simulated message takes exactly that."""
    sim, cluster, (a, b) = make_cluster(latency=latency, bandwidth=bandwidth)
    assert cluster.network.transfer_time(nbytes) == pytest.approx(latency + nbytes / bandwidth, rel=1e-12)
    got = []
    b.start(listener, b, got)
    a.send(b, None, nbytes=nbytes)
    sim.run(until=10.0)
    assert got[0][0] == pytest.approx(cluster.network.transfer_time(nbytes), rel=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"latency": -1.0}, r"latency must be a finite number >= 0 \(s\); got -1.0"),
    ({"latency": math.inf}, r"latency must be a finite number >= 0 \(s\); got inf"),
    ({"latency": math.nan}, r"latency must be a finite number >= 0 \(s\); got nan"),
    ({"bandwidth": 0.0}, r"bandwidth must be > 0 \(bytes/s\); got 0.0"),
    ({"bandwidth": math.nan}, r"bandwidth must be > 0 \(bytes/s\); got nan"),
    ({"loss": 1.0, "rng": np.random.default_rng(0)}, r"loss must be a probability in \[0, 1\); got 1.0"),
    ({"loss": -0.1}, r"loss must be a probability in \[0, 1\); got -0.1"),
    ({"loss": 0.1}, r"a network with message loss needs an rng"),
])
def test_invalid_network_is_rejected(kwargs, message):
    """A network with a bad latency, bandwidth or loss (or loss without an rng) raises ValueError saying which."""
    with pytest.raises(ValueError, match=message):
        Network(**kwargs)


# ------------------------------------------------------------------ message loss

N_MESSAGES = 4000
LOSS = 0.25


def delivered_under_loss(seed):
    sim, cluster, (a, b) = make_cluster(latency=0.0, bandwidth=math.inf, loss=LOSS,
                                        rng=np.random.default_rng(seed))
    got = []
    b.start(listener, b, got)
    for i in range(N_MESSAGES):
        a.send(b, i, nbytes=8)
    sim.run(until=1.0)
    assert cluster.messages_lost + cluster.messages_delivered == N_MESSAGES
    assert cluster.messages_lost == N_MESSAGES - len(got)
    return [payload for _, payload in got]


def test_message_loss_rate_is_about_p():
    """Network(loss=p) loses a fraction p of messages: within 4 binomial standard deviations."""
    n_lost = N_MESSAGES - len(delivered_under_loss(seed=0))
    sd = math.sqrt(N_MESSAGES * LOSS * (1 - LOSS))
    assert abs(n_lost - LOSS * N_MESSAGES) <= 4 * sd


def test_message_loss_is_deterministic_per_seed():
    """The same seed loses the same messages; another seed loses others."""
    assert delivered_under_loss(seed=1) == delivered_under_loss(seed=1)
    assert delivered_under_loss(seed=1) != delivered_under_loss(seed=2)


# ------------------------------------------------------------------ compute

def run_compute(node, flops):
    sim = node.sim
    done = []

    def job():
        yield node.compute(flops)
        done.append(sim.now)
    node.start(job)
    sim.run(until=1e6)
    return done


@pytest.mark.parametrize("flops, speed, slowdown, expected", [
    (1e9, 1e9, 1.0, 1.0),
    (3e9, 2e9, 1.5, 2.25),
    (1e9, 4e9, 2.0, 0.5),
    (0.0, 1e9, 3.0, 0.0),
])
def test_deterministic_compute_takes_flops_over_speed_times_slowdown(flops, speed, slowdown, expected):
    """A deterministic compute of f flops takes exactly f / speed * slowdown seconds."""
    sim = Simulator()
    node = Cluster(sim).add_node("w", speed=speed, slowdown=slowdown)
    assert run_compute(node, flops) == [expected]
    assert node.cluster.spans == [Span("w", "compute", 0.0, expected, 0)]


def test_infinite_speed_computes_in_no_time():
    """A node with speed=inf finishes any compute at once."""
    sim = Simulator()
    node = Cluster(sim).add_node("w", speed=math.inf)
    assert run_compute(node, 1e15) == [0.0]


T0 = 0.25  # s, nominal duration: 1e9 flops at 4e9 flop/s


def sample_durations(compute_time, jitter, n, seed=0):
    """n sampled compute durations (s) of a node whose nominal duration is T0."""
    sim = Simulator()
    node = Cluster(sim).add_node("w", speed=4e9, compute_time=compute_time, jitter=jitter,
                                 rng=np.random.default_rng(seed))
    durations = []

    def job():
        for _ in range(n):
            done = node.compute(1e9)
            durations.append(done.delay)
            yield done
    node.start(job)
    sim.run()
    return np.array(durations)


# (compute_time, jitter, theoretical mean / T0, theoretical sd / T0, samples, standard errors)
DISTRIBUTIONS = [
    ("exponential", 0.0, 1.0, 1.0, 20_000, 4),
    ("shifted_exponential", 0.5, 1.5, 0.5, 20_000, 4),
    ("lognormal", 0.5, 1.0, 0.5, 20_000, 4),
    # Pareto with cv 0.5 has shape a = 1 + sqrt(5) ~ 3.24: finite variance but infinite
    # fourth moment, so the sample mean approaches normality slowly; 6 standard errors.
    ("pareto", 0.5, 1.0, 0.5, 50_000, 6),
]


@pytest.mark.parametrize("compute_time, jitter, mean, sd, n, n_se", DISTRIBUTIONS)
def test_compute_time_distribution_has_its_stated_mean(compute_time, jitter, mean, sd, n, n_se):
    """The sample mean of a compute-time distribution is within n_se standard errors of its stated mean."""
    durations = sample_durations(compute_time, jitter, n)
    standard_error = sd * T0 / math.sqrt(n)
    assert abs(durations.mean() - mean * T0) <= n_se * standard_error


@pytest.mark.parametrize("compute_time, jitter, low", [
    ("shifted_exponential", 0.5, T0),
    ("pareto", 0.5, T0 * (1 - 1 / (1 + math.sqrt(5)))),  # x_m = t0 (a - 1) / a
])
def test_shifted_distributions_never_go_below_their_minimum(compute_time, jitter, low):
    """Shifted-exponential durations are >= t0; Pareto durations are >= their scale x_m."""
    assert sample_durations(compute_time, jitter, 2000).min() >= low * (1 - 1e-12)


def test_lognormal_coefficient_of_variation_is_the_jitter():
    """The lognormal's sample coefficient of variation is within 4 standard errors of its jitter."""
    n, cv = 20_000, 0.5
    durations = sample_durations("lognormal", cv, n)
    # standard error of a sample sd: sd * sqrt((excess kurtosis + 2) / (4 n)); lognormal
    # excess kurtosis with w = 1 + cv^2 is w^4 + 2 w^3 + 3 w^2 - 6.
    w = 1 + cv * cv
    kurtosis = w**4 + 2 * w**3 + 3 * w**2 - 6
    se = cv * math.sqrt((kurtosis + 2) / (4 * n))
    assert abs(durations.std(ddof=1) / durations.mean() - cv) <= 4 * se


@pytest.mark.parametrize("compute_time", [k for k in COMPUTE_TIMES if k != "deterministic"])
def test_random_compute_times_are_reproducible(compute_time):
    """The same rng seed gives the same compute durations, another seed different ones."""
    a = sample_durations(compute_time, 0.5, 50, seed=3)
    assert np.array_equal(a, sample_durations(compute_time, 0.5, 50, seed=3))
    assert not np.array_equal(a, sample_durations(compute_time, 0.5, 50, seed=4))


@pytest.mark.parametrize("kwargs, message", [
    ({"speed": 0.0}, r"speed of node w must be > 0 \(flop/s\); got 0.0"),
    ({"speed": -1e9}, r"speed of node w must be > 0 \(flop/s\); got -1000000000.0"),
    ({"speed": math.nan}, r"speed of node w must be > 0 \(flop/s\); got nan"),
    ({"jitter": -0.1}, r"jitter of node w must be a finite number >= 0; got -0.1"),
    ({"jitter": math.inf}, r"jitter of node w must be a finite number >= 0; got inf"),
    ({"slowdown": 0.0}, r"slowdown of node w must be a finite number > 0; got 0.0"),
    ({"slowdown": math.inf}, r"slowdown of node w must be a finite number > 0; got inf"),
    ({"compute_time": "gamma"},
     r"unknown compute_time 'gamma'; known: deterministic, exponential, shifted_exponential, "
     r"lognormal, pareto"),
    ({"compute_time": "exponential"}, r"node w: a random compute_time needs an rng"),
])
def test_invalid_node_is_rejected(kwargs, message):
    """A node with a bad speed, jitter, slowdown or compute_time raises ValueError saying which."""
    with pytest.raises(ValueError, match=message):
        Cluster(Simulator()).add_node("w", **kwargs)


def test_node_names_are_unique_and_looked_up():
    """Cluster.node finds a node by name; a duplicate name is a ValueError, an unknown one a KeyError."""
    cluster = Cluster(Simulator())
    a = cluster.add_node("a")
    b = cluster.add_node("b")
    assert (cluster.node("b"), a.index, b.index) == (b, 0, 1)
    with pytest.raises(ValueError, match=r"a node named 'a' already exists"):
        cluster.add_node("a")
    with pytest.raises(KeyError, match=r"no node named 'c'; nodes: a, b"):
        cluster.node("c")


# ------------------------------------------------------------------ crashes

def test_crash_interrupts_a_compute_at_the_crash_time():
    """A crash during a compute raises Interrupt(Crash(node, at)) in the process at exactly the crash time."""
    sim = Simulator()
    cluster = Cluster(sim)
    node = cluster.add_node("w", speed=1e9)
    log = []

    def job():
        try:
            yield node.compute(4e9)
            log.append(("done", sim.now))
        except Interrupt as exc:
            log.append((exc.cause, sim.now))
    node.start(job)
    sim.process(crash_at(node, 1.5))
    sim.run(until=10.0)
    assert log == [(Crash("w", 1.5), 1.5)]
    assert Span("w", "compute_lost", 0.0, 1.5, 0) in cluster.spans
    assert not any(s.kind == "compute" for s in cluster.spans)


def test_crash_empties_the_mailbox():
    """A crashed node loses the messages waiting in its mailbox."""
    sim, cluster, (a, b) = make_cluster()
    for i in range(3):
        a.send(b, i, nbytes=NBYTES)
    sim.run(until=5.0)
    assert len(b.mailbox) == 3
    b.crash()
    assert len(b.mailbox) == 0


def test_message_to_a_down_node_is_lost():
    """A message arriving at a down node is counted in messages_lost and never delivered, even after recovery."""
    sim, cluster, (a, b) = make_cluster()
    got = []
    b.start(listener, b, got)
    sim.process(crash_at(b, 0.25, recover_after=1.0))
    a.send(b, "lost", nbytes=NBYTES)      # arrives at 0.5, while b is down
    sim.run(until=10.0)
    assert got == []
    assert (cluster.messages_lost, cluster.messages_delivered) == (1, 0)


@pytest.mark.parametrize("latency, crash_time, is_lost", [
    (1.0, 2.0, True),    # crash after the first bit arrived, before the last one left
    (8.0, 2.0, True),    # crash before the first bit arrived
    (1.0, 4.5, False),   # crash after the last bit left (tx ends at 4)
])
def test_message_is_lost_iff_its_sender_crashes_during_transmission(latency, crash_time, is_lost):
    """A message is lost exactly when its sender crashes before the message has left its NIC."""
    sim, cluster, (a, b) = make_cluster(latency=latency, bandwidth=64.0)  # 256 bytes: 4 s
    got = []
    b.start(listener, b, got)
    a.start(send_at, a, b, 0.0, "m")
    sim.process(crash_at(a, crash_time))
    sim.run(until=20.0)
    assert got == ([] if is_lost else [(latency + 4.0, "m")])
    assert (cluster.messages_lost, cluster.messages_delivered) == (int(is_lost), int(not is_lost))


def test_messages_queued_on_a_crashed_sender_nic_are_lost():
    """When a sender crashes, the message on its wire and those queued behind it are lost; sent ones are not."""
    sim, cluster, (a, b) = make_cluster()
    got = []
    b.start(listener, b, got)
    for i in range(4):                    # on the wire during [0.25 i, 0.25 (i + 1)]
        a.send(b, i, nbytes=NBYTES)
    sim.process(crash_at(a, 0.375))       # during message 1
    sim.run(until=10.0)
    assert got == [(LATENCY + D, 0)]
    assert cluster.messages_lost == 3


def test_message_is_lost_when_its_receiver_crashes_while_receiving():
    """A receiver crash during reception loses the message and truncates the recv span at the crash."""
    sim, cluster, (a, b) = make_cluster()
    got = []
    b.start(listener, b, got)
    a.send(b, "m", nbytes=NBYTES)         # received during [0.5, 0.75]
    sim.process(crash_at(b, 0.625, recover_after=0.125))
    sim.run(until=10.0)
    assert got == []
    assert (cluster.messages_lost, cluster.messages_delivered) == (1, 0)
    assert Span("n1", "recv_lost", 0.5, 0.625, NBYTES) in cluster.spans


def test_recovered_node_restarts_its_programs_and_receives_again():
    """After recover(), the programs started with node.start run again and the node receives messages."""
    sim, cluster, (a, b) = make_cluster()
    starts, got = [], []

    def program(node):
        starts.append(node.sim.now)
        yield from listener(node, got)
    b.start(program, b)
    for t, payload in [(0.0, "before"), (2.0, "while down"), (4.0, "after")]:
        a.start(send_at, a, b, t, payload)
    sim.process(crash_at(b, 1.0, recover_after=2.0))
    sim.run(until=10.0)
    assert starts == [0.0, 3.0]
    assert got == [(0.0 + LATENCY + D, "before"), (4.0 + LATENCY + D, "after")]
    assert cluster.messages_lost == 1


def test_crash_at_crashes_and_recovers_at_the_right_times():
    """crash_at(node, at, recover_after) makes a 'down' span [at, at + recover_after] and two instants."""
    sim = Simulator()
    cluster = Cluster(sim)
    node = cluster.add_node("w")
    seen = []

    def probe():
        for t in (0.5, 1.0, 2.0, 3.5):
            yield sim.timeout(t - sim.now)
            seen.append(node.is_up)
    sim.process(crash_at(node, 1.0, recover_after=2.0))
    sim.process(probe())
    sim.run(until=10.0)
    assert seen == [True, False, False, True]  # crash_at was created first: at t=1 it runs first
    assert cluster.spans == [Span("w", "down", 1.0, 3.0, 0)]
    assert cluster.instants == [(1.0, "w", "crash"), (3.0, "w", "recover")]


def test_crash_at_without_recovery_stays_down():
    """crash_at(node, at) with recover_after=None leaves the node down for good."""
    sim = Simulator()
    cluster = Cluster(sim)
    node = cluster.add_node("w")
    sim.process(crash_at(node, 1.0))
    sim.run(until=100.0)
    assert not node.is_up
    assert cluster.instants == [(1.0, "w", "crash")]


def test_crash_and_recover_are_idempotent():
    """Crashing a down node or recovering an up node changes nothing."""
    sim = Simulator()
    cluster = Cluster(sim)
    node = cluster.add_node("w")
    node.recover()
    node.crash()
    node.crash()
    assert cluster.instants == [(0.0, "w", "crash")]


def test_crash_time_in_the_past_is_rejected():
    """crash_at and random_failures check their arguments at the call, not later."""
    sim = Simulator()
    node = Cluster(sim).add_node("w")
    sim.run(until=2.0)
    with pytest.raises(ValueError, match=r"crash time must be >= now \(2.0\); got 1.0"):
        crash_at(node, 1.0)
    with pytest.raises(ValueError, match=r"recover_after must be >= 0 \(s\) or None; got -1"):
        crash_at(node, 3.0, recover_after=-1)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"mtbf must be a finite number > 0 \(s\); got 0"):
        random_failures(node, 0, 1.0, rng)
    with pytest.raises(ValueError, match=r"mttr must be a finite number >= 0 \(s\); got -1"):
        random_failures(node, 1.0, -1, rng)


def test_down_node_cannot_compute_or_send():
    """compute and send on a down node raise RuntimeError naming the node."""
    sim, cluster, (a, b) = make_cluster()
    a.crash()
    with pytest.raises(RuntimeError, match=r"node n0 is down and cannot compute"):
        a.compute(1e9)
    with pytest.raises(RuntimeError, match=r"node n0 is down and cannot send"):
        a.send(b, None)


# ------------------------------------------------------------------ random failures

def test_random_failures_down_fraction_is_mttr_over_mtbf_plus_mttr():
    """Over a long horizon, MTBF/MTTR failures keep a node down a fraction mttr / (mtbf + mttr) of the time."""
    mtbf, mttr, horizon = 9.0, 1.0, 20_000.0
    sim = Simulator()
    cluster = Cluster(sim)
    node = cluster.add_node("w")
    sim.process(random_failures(node, mtbf, mttr, np.random.default_rng(0)))
    sim.run(until=horizon)
    times = [t for t, _, _ in cluster.instants] + ([horizon] if not node.is_up else [])
    down = sum(end - start for start, end in zip(times[0::2], times[1::2]))
    p = mttr / (mtbf + mttr)
    # Delta method on D / (U + D), U and D sums of n_cycles exponentials:
    # sd ~ sqrt(2 / n_cycles) p (1 - p); tolerance 4 sd (~0.011 here).
    n_cycles = horizon / (mtbf + mttr)
    assert abs(down / horizon - p) <= 4 * math.sqrt(2 / n_cycles) * p * (1 - p)
    kinds = [k for _, _, k in cluster.instants]
    assert kinds[0::2] == ["crash"] * len(kinds[0::2]) and set(kinds[1::2]) <= {"recover"}


# ------------------------------------------------------------------ _rng.Streams

def test_same_seed_gives_same_streams():
    """Two Streams with the same seed give the same numbers, stream by stream and node by node."""
    for name in STREAMS:
        assert np.array_equal(Streams(5).rng(name).random(8), Streams(5).rng(name).random(8))
        assert np.array_equal(Streams(5).node_rng(name, 2).random(8),
                              Streams(5).node_rng(name, 2).random(8))


def test_streams_differ_by_name_node_and_seed():
    """Different stream names, node indices and seeds give different numbers."""
    s = Streams(5)
    draws = [s.rng(name).random(4).tolist() for name in STREAMS]
    draws += [s.node_rng("compute", i).random(4).tolist() for i in (0, 1, 2, 2**31 - 1)]
    draws.append(Streams(6).rng("data").random(4).tolist())
    assert len({tuple(d) for d in draws}) == len(draws)


def test_node_rng_is_a_pure_function_of_seed_name_and_index():
    """node_rng(name, i) is the same however many other node streams were made or drawn from before."""
    alone = Streams(11).node_rng("compute", 3).random(8)
    s = Streams(11)
    for i in range(100):
        s.node_rng("compute", i).random(10)
    s.rng("compute").random(10)
    assert np.array_equal(s.node_rng("compute", 3).random(8), alone)


def test_node_rngs_are_the_node_streams_made_once_on_first_use():
    """node_rngs(name, n)[i] is node_rng(name, i), made on first access and then the same
    object (its draws continue); an unknown name fails at once."""
    rngs = Streams(11).node_rngs("data", 4)
    assert len(rngs) == 4 and rngs._made == [None] * 4  # nothing made yet
    first = rngs[2].random(3)
    assert np.array_equal(first, Streams(11).node_rng("data", 2).random(3))
    assert rngs[2] is rngs[-2] and rngs._made.count(None) == 3
    assert np.array_equal(rngs[2].random(3), Streams(11).node_rng("data", 2).random(6)[3:])
    with pytest.raises(IndexError):
        rngs[4]
    with pytest.raises(TypeError):
        rngs[0:2]  # a node's index, not a slice
    with pytest.raises(ValueError, match="unknown random stream 'noise'"):
        Streams(0).node_rngs("noise", 2)


def test_unknown_stream_name_is_rejected():
    """An unknown stream name raises ValueError listing the known ones."""
    known = r"known: data, init, compute, network, faults, policy"
    with pytest.raises(ValueError, match=r"unknown random stream 'noise'; " + known):
        Streams(0).rng("noise")
    with pytest.raises(ValueError, match=r"unknown random stream 'noise'; " + known):
        Streams(0).node_rng("noise", 0)


def test_child_seeds_are_reproducible_and_distinct():
    """child_seeds(n) gives n distinct non-negative seeds, the same for the same root seed."""
    seeds = Streams(9).child_seeds(5)
    assert seeds == Streams(9).child_seeds(5)
    assert len(set(seeds)) == 5 and all(0 <= s < 2**63 for s in seeds)
    assert seeds[:3] == Streams(9).child_seeds(3)
    assert seeds != Streams(10).child_seeds(5)


def test_broadcast_sends_one_copy_after_the_other():
    """broadcast(dsts, payload): copy k arrives at latency + k b / bandwidth; the returned
    event fires when the last copy has left; every copy is counted."""
    sim, cluster, (src, *dsts) = make_cluster(4)
    logs = {d.name: [] for d in dsts}
    for d in dsts:
        d.start(listener, d, logs[d.name])
    payload = np.zeros(32)  # 256 bytes
    done = src.broadcast(dsts, payload)
    sim.run(until=10.0)
    b = 256 / BANDWIDTH
    assert [logs[d.name][0][0] for d in dsts] == [LATENCY + k * b for k in (1, 2, 3)]
    assert done.processed and src.bytes_sent == 3 * 256 and src.messages_sent == 3
    sim2, _, (src2, dst2) = make_cluster(2)
    sent = src2.broadcast([dst2], payload)
    sim2.run(until=sent)
    assert sim2.now == b


def test_random_failures_repair_only_their_own_crashes():
    """A node crashed for good by crash_at is not brought back by a random-failure
    process whose own crash found it already down."""
    sim, cluster, (a,) = make_cluster(1)
    sim.process(crash_at(a, 0.5), daemon=True)
    sim.process(random_failures(a, 1.0, 0.1, np.random.default_rng(0)), daemon=True)
    sim.run(until=100.0)
    assert not a.is_up and [k for _, _, k in cluster.instants] == ["crash"]


# ------------------------------------------------------------------ public read-only views

def test_crash_times_and_last_crash_time_follow_the_crashes():
    """crash_times lists every crash, oldest first; last_crash_time is the newest (None before any)."""
    sim = Simulator()
    node = Cluster(sim).add_node("w")
    assert node.crash_times == () and node.last_crash_time is None
    sim.process(crash_at(node, 1.0, recover_after=0.5))
    sim.process(crash_at(node, 2.0))
    sim.run(until=3.0)
    assert node.crash_times == (1.0, 2.0) and node.last_crash_time == 2.0


def test_work_ends_at_its_planned_end_or_where_it_was_cut():
    """A compute's ends_at is its planned end, and the abandon time once abandoned."""
    sim = Simulator()
    cluster = Cluster(sim)
    node = cluster.add_node("w", speed=1e9)
    seen = []

    def job():
        work = node.compute(2e9)
        seen.append(work.ends_at)
        yield sim.timeout(0.5)
        node.abandon(work)
        seen.append(work.ends_at)
    node.start(job)
    sim.run()
    assert seen == [2.0, 0.5]
    assert cluster.spans == [Span("w", "compute_dropped", 0.0, 0.5, 0)]


def test_open_spans_are_the_ones_still_running():
    """open_spans holds every span of the node that ends after now (a copy of the list)."""
    sim = Simulator()
    node = Cluster(sim).add_node("w", speed=1e9)
    node.start(lambda: (yield node.compute(1e9)))
    sim.run(until=0.5)
    assert node.open_spans() == [Span("w", "compute", 0.0, 1.0)]
    node.open_spans().clear()
    assert len(node.open_spans()) == 1


def test_the_cluster_uses_no_underscored_name_of_the_kernel_but_its_package_private_api():
    """cluster.py and trace.py read no other object's underscored attribute, except the
    kernel's package-private API made for the message path."""
    import ast
    import inspect

    import simdml.cluster
    import simdml.network
    import simdml.trace
    allowed = {"_fire_at", "_deliver",   # the kernel's package-private API
               "_arrive_cb"}             # a Node's callback, read by another Node
    for module in (simdml.cluster, simdml.network, simdml.trace):
        tree = ast.parse(inspect.getsource(module))
        reached = {node.attr for node in ast.walk(tree)
                   if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                   and not node.attr.startswith("__")
                   and not (isinstance(node.value, ast.Name) and node.value.id == "self")}
        assert reached <= allowed, (module.__name__, reached - allowed)
