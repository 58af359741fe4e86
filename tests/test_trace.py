"""Tests for simdml.trace: spans collected from a cluster, their totals and their exports."""
import csv
import io
import json
import math

import pytest

from simdml import Cluster, Network, Scenario, Simulator, Trace, load_scenario, run
from simdml.faults import crash_at
from simdml.trace import TRACKS, Span
from tests.golden import cases as golden_cases

END = 5.0  # s


def hand_trace(end=END):
    """A run small enough to know every span (latency 0.5 s, 256 bytes = 0.25 s, 1e9 flop/s).

    w0 computes [0, 1], sends to the server [1, 1.25], computes [1.25, 3.25];
    the server waits [0, 1.75] (receiving [1.5, 1.75]) and computes [1.75, 2.25];
    w1 computes from 0 but crashes at 2 for good.
    """
    sim = Simulator()
    cluster = Cluster(sim, Network(latency=0.5, bandwidth=1024.0))
    server = cluster.add_node("server", speed=1e9)
    w0 = cluster.add_node("w0", speed=1e9)
    w1 = cluster.add_node("w1", speed=1e9)

    def serve():
        yield server.recv()
        yield server.compute(0.5e9)

    def work():
        yield w0.compute(1e9)
        yield w0.send(server, None, nbytes=256)
        yield w0.compute(2e9)

    def doomed():
        yield w1.compute(4e9)

    server.start(serve)
    w0.start(work)
    w1.start(doomed)
    sim.process(crash_at(w1, 2.0))
    sim.run(until=end)
    return Trace.from_cluster(cluster, sim.now)


HAND_SPANS = [
    Span("w0", "compute", 0.0, 1.0),
    Span("server", "wait", 0.0, 1.75),
    Span("w1", "compute_lost", 0.0, 2.0),
    Span("w0", "send", 1.0, 1.25, 256),
    Span("w0", "compute", 1.25, 3.25),
    Span("server", "recv", 1.5, 1.75, 256),
    Span("server", "compute", 1.75, 2.25),
    Span("w1", "down", 2.0, END),
]


@pytest.fixture(scope="module")
def tiny_run():
    return run(Scenario().replace(**{"stop.rounds": 3}))


def test_from_cluster_collects_every_span_sorted_by_start():
    """Trace.from_cluster holds every span of the run, sorted by (start, end)."""
    trace = hand_trace()
    assert trace.spans == HAND_SPANS
    assert trace.nodes == ["server", "w0", "w1"]
    assert trace.instants == [(2.0, "w1", "crash")]
    assert trace.end == END


def test_spans_of_a_real_run_are_sorted_by_start(tiny_run):
    """The spans of a simdml.run trace are sorted by start time and lie within [0, end]."""
    spans = tiny_run.trace.spans
    assert len(spans) > 0
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    assert all(0.0 <= s.start <= s.end <= tiny_run.trace.end for s in spans)


def test_node_still_down_at_the_end_gets_a_down_span_to_the_end():
    """A node down when the run stops has a 'down' span from its crash to the trace's end."""
    trace = hand_trace(end=4.0)
    assert [s for s in trace.spans if s.kind == "down"] == [Span("w1", "down", 2.0, 4.0)]


def test_spans_still_running_at_the_end_are_clipped():
    """A span still running when the run stops ends at the trace's end."""
    trace = hand_trace(end=3.0)
    assert Span("w0", "compute", 1.25, 3.0) in trace.spans


def test_totals_of_the_hand_run():
    """totals() sums each kind per node (lost work counted in its kind), and idle = end - compute - down."""
    totals = hand_trace().totals()
    assert totals["w0"] == {"compute": 3.0, "send": 0.25, "recv": 0.0, "wait": 0.0, "down": 0.0,
                            "checkpoint": 0.0, "idle": 2.0, "utilization": 3.0 / END}
    assert totals["server"] == {"compute": 0.5, "send": 0.0, "recv": 0.25, "wait": 1.75,
                                "down": 0.0, "checkpoint": 0.0, "idle": 4.5,
                                "utilization": 0.5 / END}
    assert totals["w1"] == {"compute": 2.0, "send": 0.0, "recv": 0.0, "wait": 0.0, "down": 3.0,
                            "checkpoint": 0.0, "idle": 0.0, "utilization": 2.0 / END}


def test_totals_of_a_real_run_match_its_spans(tiny_run):
    """For every node of a run, totals()' compute is the sum of its compute spans and idle = end - compute - down."""
    trace = tiny_run.trace
    totals = trace.totals()
    assert set(totals) == set(trace.nodes) and tiny_run.nodes == totals
    for node, t in totals.items():
        compute = sum(s.duration for s in trace.spans if s.node == node
                      and s.kind in ("compute", "compute_lost"))
        assert t["compute"] == pytest.approx(compute, rel=1e-12)
        assert t["idle"] == pytest.approx(trace.end - t["compute"] - t["down"], rel=1e-12)


def test_spans_csv_parses_back():
    """spans_csv() is CSV with a header row and one row per span, whose numbers read back exactly."""
    trace = hand_trace()
    rows = list(csv.reader(io.StringIO(trace.spans_csv())))
    assert rows[0] == ["node", "kind", "start_s", "end_s", "duration_s", "nbytes"]
    assert len(rows) == 1 + len(trace.spans)
    back = [Span(n, k, float(s), float(e), int(b)) for n, k, s, e, _, b in rows[1:]]
    assert back == trace.spans
    assert [float(r[4]) for r in rows[1:]] == [s.duration for s in trace.spans]


def test_chrome_trace_has_a_process_per_node_and_a_track_per_resource():
    """chrome() names a process per node and a thread per resource used (cpu, send NIC,
    recv NIC, mailbox wait), puts each span on its resource's track (µs), and each instant
    on its node's cpu track."""
    trace = hand_trace()
    events = trace.chrome()["traceEvents"]
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert processes == {0: "simdml cluster", 1: "server", 2: "w0", 3: "w1"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
               if e["name"] == "thread_name"}
    assert sorted(threads.values()) == ["server cpu", "server mailbox wait", "server recv NIC",
                                        "w0 cpu", "w0 send NIC", "w1 cpu"]
    assert len({tid for _, tid in threads}) == len(threads)  # tids unique across processes
    track = {name: key for key, name in threads.items()}
    where = {"compute": "cpu", "down": "cpu", "send": "send NIC", "recv": "recv NIC",
             "wait": "mailbox wait"}
    complete = [e for e in events if e["ph"] == "X"]
    assert [(e["name"], (e["pid"], e["tid"]), e["ts"], e["dur"], e["args"]["nbytes"])
            for e in complete] == [
        (s.kind, track[f"{s.node} {where[s.kind.partition('_')[0]]}"], s.start * 1e6,
         s.duration * 1e6, s.nbytes) for s in trace.spans]  # these times are whole ns
    assert (complete[2]["name"], complete[2]["cat"]) == ("compute_lost", "compute")
    instants = [e for e in events if e["ph"] == "i"]
    assert [(e["name"], (e["pid"], e["tid"]), e["ts"]) for e in instants] == [
        ("crash", track["w1 cpu"], 2e6)]


def _overlaps(events):
    """The pairs of 'X' events on one track that overlap in time (touching ends do not),
    in nanoseconds as Perfetto reads them (``ts`` and ``dur`` each rounded to the ns)."""
    by_track = {}
    for e in events:
        if e["ph"] == "X":
            start = round(e["ts"] * 1000)
            by_track.setdefault((e["pid"], e["tid"]), []).append(
                (start, start + round(e["dur"] * 1000), e["name"]))
    bad = []
    for key, slices in by_track.items():
        slices.sort()
        for (a0, a1, a), (b0, b1, b) in zip(slices, slices[1:]):
            if b0 < a1:
                bad.append((key, (a, a0, a1), (b, b0, b1)))
    return bad


def test_overlap_detector_sees_a_partial_overlap():
    """The check below finds two slices of one track that overlap (so it can fail)."""
    events = [{"ph": "X", "name": k, "pid": 1, "tid": 0, "ts": ts, "dur": 2.0}
              for k, ts in (("send", 0.0), ("recv", 1.999))]
    assert len(_overlaps(events)) == 1  # by one ns
    events[1]["ts"] = 2.0
    assert _overlaps(events) == []
    events[1]["ts"] = 1.0
    events[1]["tid"] = 1
    assert _overlaps(events) == []


TRACK_OF = dict(zip(("compute", "send", "recv", "wait"), TRACKS)) | {"down": "cpu",
                                                                     "checkpoint": "cpu"}
_OVERLAP_CASES = sorted(golden_cases.CASES)  # every strategy, policy, fault kind
_FAULTY = {  # more faults, on other seeds: crashes, failures, loss, a server that restarts
    "async/mtbf": ("iris_sync", {"strategy.kind": "async", "faults.mtbf": 0.1, "faults.mttr": 0.02,
                                 "seed": 3}),
    "ssp/loss": ("iris_sync", {"strategy.kind": "ssp", "strategy.staleness": 2, "seed": 5,
                               "faults.crash": [{"node": 0, "at": 0.01, "recover_after": 0.01}]}),
    "sync/loss": ("iris_sync", {"network.loss": 0.2, "strategy.round_timeout": 0.01, "seed": 7}),
    "local_sgd/crash": ("iris_sync", {"strategy.kind": "local_sgd", "seed": 2,
                                      "faults.crash": [{"node": 1, "at": 0.02}]}),
}


@pytest.mark.parametrize("label", _OVERLAP_CASES + sorted(_FAULTY))
def test_no_two_slices_of_a_track_overlap(label):
    """For every strategy, with and without faults, the slices of each track of the Chrome
    trace follow one another: none overlaps another (so Perfetto draws them as they are)."""
    if label in _FAULTY:
        name, changes = _FAULTY[label]
        scenario = load_scenario(name).replace(**{"stop.rounds": 12, **changes})
    else:
        scenario = golden_cases.scenario(label)
    trace = run(scenario).trace
    assert trace.spans, label
    assert _overlaps(trace.chrome()["traceEvents"]) == []
    by_track = {}  # and in the spans themselves, to the bit
    for s in trace.spans:
        by_track.setdefault((s.node, TRACK_OF[s.kind.partition("_")[0]]), []).append(s)
    for spans in by_track.values():
        assert all(a.end <= b.start for a, b in zip(spans, spans[1:])), label


def test_times_are_whole_nanoseconds_so_back_to_back_slices_touch():
    """A span's end and the next one's start, equal in seconds, are the same ns in the
    export, although end - start in µs would round past it (0.1 + 0.2 - 0.1 != 0.2)."""
    trace = Trace(nodes=["a"], spans=[Span("a", "send", 0.1, 0.30000000000000004, 8),
                                      Span("a", "send", 0.30000000000000004, 0.5, 8)], end=1.0)
    first, second = [e for e in trace.chrome()["traceEvents"] if e["ph"] == "X"]
    assert (first["ts"], first["dur"], second["ts"]) == (1e5, 2e5, 3e5)
    assert _overlaps([first, second]) == []


def test_chrome_trace_has_counter_events():
    """Each counter point becomes a 'C' event at its time in µs."""
    trace = Trace(nodes=["a"], counters={"loss": [(0.0, 2.0), (0.5, 1.0)]}, end=1.0)
    counters = [(e["name"], e["ts"], e["args"]) for e in trace.chrome()["traceEvents"]
                if e["ph"] == "C"]
    assert counters == [("loss", 0.0, {"loss": 2.0}), ("loss", 5e5, {"loss": 1.0})]


def strict_json(text):
    """Parse JSON as a browser does: NaN and Infinity are not JSON."""
    def reject(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=reject)


def test_save_json_writes_a_chrome_trace(tmp_path):
    """save('x.json') writes the Chrome trace as valid JSON, creating the folder, leaving no temp file."""
    trace = hand_trace()
    path = trace.save(tmp_path / "out" / "trace.json")
    assert path == tmp_path / "out" / "trace.json"
    assert strict_json(path.read_text()) == json.loads(json.dumps(trace.chrome()))
    assert "traceEvents" in strict_json(path.read_text())
    assert [p.name for p in path.parent.iterdir()] == ["trace.json"]


def test_save_json_of_a_diverged_run_is_valid_json(tmp_path):
    """A counter that became inf or nan (a diverged loss) still gives strictly valid JSON."""
    trace = Trace(nodes=["a"], counters={"loss": [(0.0, 1.0), (0.5, math.inf), (1.0, math.nan)]},
                  end=1.0)
    data = strict_json(trace.save(tmp_path / "trace.json").read_text())
    assert [e["args"]["loss"] for e in data["traceEvents"] if e["ph"] == "C"] == [1.0]


def test_save_csv_writes_the_spans(tmp_path):
    """save('x.csv') writes spans_csv()."""
    trace = hand_trace()
    path = trace.save(tmp_path / "spans.csv")
    assert path.read_text() == trace.spans_csv()


def test_save_with_a_bad_suffix_is_rejected(tmp_path):
    """save() to a path that is neither .json nor .csv raises ValueError naming the path."""
    with pytest.raises(ValueError, match=r"trace path must end in \.json \(Chrome trace\) or "
                                         r"\.csv \(spans\); got '.*trace\.txt'"):
        hand_trace().save(tmp_path / "trace.txt")
    assert list(tmp_path.iterdir()) == []


def test_exporting_changes_nothing():
    """Exporting a trace (dict, CSV, Chrome) leaves its spans, instants and end unchanged."""
    trace = hand_trace()
    before = trace.to_dict()
    trace.spans_csv()
    trace.chrome()
    trace.totals()
    assert trace.to_dict() == before == hand_trace().to_dict()


CRASHY = {"stop.rounds": 3, "cluster.compute_time": "lognormal", "cluster.jitter": 0.5,
          "faults.crash": [{"node": 1, "at": 0.0003, "recover_after": 0.0002}],
          "strategy.round_timeout": 0.001}


def test_same_scenario_gives_the_same_trace():
    """Running one scenario twice (random compute times and a crash included) gives identical traces."""
    scenario = Scenario().replace(**CRASHY)
    first, second = run(scenario).trace, run(scenario).trace
    assert first.to_dict() == second.to_dict()
    assert any(kind == "crash" for _, _, kind in first.instants)
    assert first.end == second.end


def test_different_seeds_give_different_traces():
    """With random compute times, another seed gives other spans."""
    scenario = Scenario().replace(**CRASHY)
    assert run(scenario, seed=1).trace.spans != run(scenario, seed=2).trace.spans


def test_a_process_still_waiting_at_the_end_gets_a_wait_span_to_the_end():
    """A process blocked on recv() when the run stops has a 'wait' span up to the end."""
    sim = Simulator()
    cluster = Cluster(sim)
    node = cluster.add_node("lonely")

    def listen():
        yield node.recv()

    node.start(listen)
    sim.run(until=2.5)
    trace = Trace.from_cluster(cluster, sim.now)
    assert trace.spans == [Span("lonely", "wait", 0.0, 2.5)]


def test_sends_queued_behind_a_crash_are_lost_at_the_crash_time():
    """Sends still queued on a crashed node's NIC become zero-length 'send_lost' spans at
    the crash, not spans in the node's future."""
    sim = Simulator()
    cluster = Cluster(sim, Network(latency=0.0, bandwidth=1.0))
    a, b = cluster.add_node("a"), cluster.add_node("b")
    for _ in range(3):
        a.send(b, None, nbytes=1)  # on the wire [0, 1], [1, 2], [2, 3]
    sim.run(until=0.5)
    a.crash()
    sim.run(until=4.0)
    sends = [s for s in Trace.from_cluster(cluster, sim.now).spans if s.node == "a"]
    assert [(s.kind, s.start, s.end) for s in sends] == [
        ("send_lost", 0.0, 0.5), ("send_lost", 0.5, 0.5), ("send_lost", 0.5, 0.5),
        ("down", 0.5, 4.0)]
    assert cluster.messages_delivered == 0


@pytest.mark.parametrize("changes", [
    {"faults.crash": [{"node": 1, "at": 2e-4, "recover_after": 3e-4}, {"node": 2, "at": 4e-4}],
     "strategy.round_timeout": 1e-3},
    {"strategy.wait_for": 2, "cluster.compute_time": "exponential"},
    {"stop.time": 1.5e-3, "stop.rounds": 10**6, "strategy.kind": "async"},
])
def test_running_totals_equal_the_spans_and_need_no_spans(changes):
    """The nodes' running totals equal the sums over the recorded spans (crashes, dropped
    work and a time limit included), and a run that keeps no spans reports the same."""
    s = Scenario().replace(**{"stop.rounds": 30, **changes})
    full = run(s)
    from_spans = Trace(nodes=full.trace.nodes, spans=full.trace.spans, end=full.trace.end)
    for node, t in full.trace.totals().items():
        for kind, seconds in from_spans.totals()[node].items():
            assert t[kind] == pytest.approx(seconds, abs=1e-12), (node, kind)
    lean = run(s.replace(trace_spans=False))
    assert lean.trace.spans == [] and lean.history == full.history
    assert lean.trace.totals() == full.trace.totals()


def test_span_has_named_fields_compares_by_value_and_unpacks():
    """A span reads by name, equals another with the same fields, unpacks in field order,
    and is not hashable (the cluster cuts spans short)."""
    span = Span("w0", "send", 1.0, 1.25, 256)
    assert (span.node, span.kind, span.start, span.end, span.nbytes) == ("w0", "send", 1.0, 1.25, 256)
    assert span.duration == 0.25 and tuple(span) == ("w0", "send", 1.0, 1.25, 256)
    assert span == Span("w0", "send", 1.0, 1.25, 256) != Span("w0", "send", 1.0, 1.5, 256)
    assert Span("w0", "wait", 0.0, 1.0).nbytes == 0
    assert span != ("w0", "send", 1.0, 1.25, 256)  # a span is not a tuple
    assert repr(span) == "Span(node='w0', kind='send', start=1.0, end=1.25, nbytes=256)"
    with pytest.raises(TypeError):
        hash(span)


def test_trace_spans_are_the_cluster_records_and_clipping_copies():
    """Trace.spans hands out the cluster's own span objects; one running past the end is
    clipped in a copy, and the cluster's record is left as it was."""
    sim = Simulator()
    cluster = Cluster(sim)
    node = cluster.add_node("w", speed=1e9)

    def job():
        yield node.compute(1e9)
        yield node.compute(2e9)
    node.start(job)
    sim.run(until=2.0)
    trace = Trace.from_cluster(cluster, sim.now)
    done, running = cluster.spans
    assert trace.spans[0] is done
    assert trace.spans[1] == Span("w", "compute", 1.0, 2.0) and trace.spans[1] is not running
    assert running == Span("w", "compute", 1.0, 3.0)
