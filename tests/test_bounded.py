"""Every run is bounded: in real time from its first step (data preparation included),
and in what it attempts when it cannot make progress (issue 16, items 11-13)."""
import time

import pytest

import simdml.experiment
from simdml import Scenario, ScenarioError, run


def _s(**changes):
    return Scenario(name="bounded").replace(**{"stop.rounds": 5, **changes})


def test_the_wall_clock_guard_covers_data_preparation(monkeypatch):
    """Guards item 13: stop.wall_time bounds the whole run, not only the simulation; a
    slow data preparation (here a stand-in that spins for 3 s) is cut at the limit."""
    prepare = simdml.experiment.split_data

    def slow_split(s, streams):
        began = time.monotonic()
        while time.monotonic() - began < 3.0:  # pure Python: the alarm can interrupt it
            pass
        return prepare(s, streams)
    monkeypatch.setattr(simdml.experiment, "split_data", slow_split)
    began = time.monotonic()
    with pytest.raises(ScenarioError, match=r"stop.wall_time=0.2 s of real time passed while "
                                            r"preparing the run"):
        run(_s(**{"stop.wall_time": 0.2}))
    assert time.monotonic() - began < 1.5


def _iris(**changes):
    from simdml import load_scenario
    return load_scenario("iris_sync").replace(**{"stop.wall_time": 5.0, **changes})


@pytest.mark.parametrize("timeout", [1e-6, 1e-300])
def test_a_round_shorter_than_any_round_trip_is_a_stop_reason(timeout):
    """Guards item 11: a round_timeout below the shortest possible round trip (1.46
    million empty rounds and 3.9 GB in 60 s at 1e-6; no time passing at all at 1e-300)
    stops at once, naming the round trip."""
    began = time.monotonic()
    r = run(_iris(**{"strategy.round_timeout": timeout}))
    reason = r.summary["stop_reason"]
    assert reason.startswith("every round closes before an answer to it can arrive: the "
                             "shortest possible round trip is 0.002"), reason
    assert f"strategy.round_timeout={timeout:g} s" in reason
    assert time.monotonic() - began < 2.0


@pytest.mark.parametrize("mtbf", [1e-9, 1e-300])
def test_workers_that_fail_faster_than_a_round_trip_are_a_stop_reason(mtbf):
    """Guards item 12: workers whose mean time between failures is a tiny fraction of
    the shortest round trip can make no progress (89 s and 2.8 GB before "stalled" at
    1e-9; the 900 s wall guard at 1e-300): the run stops at once and says why."""
    began = time.monotonic()
    r = run(_iris(**{"faults.mtbf": mtbf, "strategy.round_timeout": 0.05}))
    reason = r.summary["stop_reason"]
    assert reason.startswith(f"the cluster can make no progress: faults.mtbf={mtbf:g} s"), reason
    assert "shortest possible round trip is 0.002" in reason
    assert time.monotonic() - began < 2.0


@pytest.mark.parametrize("timeout", [0.004, 0.01])
def test_empty_rounds_do_not_pile_models_up_in_the_server_nic(timeout):
    """Guards item 11 (its second half): a round_timeout longer than a round trip but
    shorter than a broadcast to 16 workers (16 × 1.1 ms) closes rounds before their models
    have left the server. The next broadcast waits for the NIC, so what was queued but
    never sent when the run stops is at most one broadcast and one gradient per worker;
    before, every empty round queued another 16 copies (8.4 MB unsent at 4 ms, 5 updates
    in 20 s instead of 66)."""
    r = run(_iris(**{"cluster.workers": 16, "cluster.speed": 2e6, "network.bandwidth": 1.25e5,
                     "strategy.round_timeout": timeout, "stop.time": 20.0,
                     "stop.rounds": 10**6, "stop.wall_time": 30.0}))
    assert r.summary["stop_reason"] == "time limit stop.time=20 s reached"
    left = sum(s.nbytes for s in r.trace.spans if s.kind == "send" and s.end <= 20.0)
    unsent = r.summary["bytes_sent"] - left
    model = r.trace.spans[0].nbytes                 # the first span: the model to worker0
    assert 0 <= unsent <= 2 * 16 * model
    assert r.summary["updates"] > 50


def test_the_trace_is_cut_at_its_memory_budget_and_the_totals_stay_exact(monkeypatch):
    """Guards item 12's "keep memory bounded while it tries": however long a run goes
    (here a crash-prone cluster, 3,000 rounds), the watchdog cuts the trace once it
    keeps more spans and instants than its budget; from then on nothing more is kept,
    the summary says when it was cut, and every number of the run (history, per-node
    totals, bytes) is the uncut run's, bit for bit."""
    import simdml.stopping as stopping
    scenario = _iris(**{"stop.rounds": 3_000, "faults.mtbf": 0.5, "faults.mttr": 0.05,
                        "strategy.round_timeout": 0.05, "stop.wall_time": 60.0})
    whole = run(scenario)
    assert "trace_cut_at" not in whole.summary
    monkeypatch.setattr(stopping, "WATCH_EVERY", 0.01)
    monkeypatch.setattr(stopping, "trace_budget", lambda: 5_000)
    cut = run(scenario)
    at = cut.summary.pop("trace_cut_at")
    assert 0 < at < cut.summary["sim_time"]
    assert 5_000 <= len(cut.trace.spans) + len(cut.trace.instants) < len(whole.trace.spans)
    # a span is kept when it is recorded (a NIC's when queued, possibly starting later; a
    # wait's when it ends): every span over by the cut is kept, and no kept span is new
    as_tuple = lambda s: (s.node, s.kind, s.start, s.end, s.nbytes)  # noqa: E731
    whole_spans = {as_tuple(s) for s in whole.trace.spans}
    cut_spans = {as_tuple(s) for s in cut.trace.spans}
    tail = {as_tuple(s) for s in cut.trace.spans if s.end == cut.trace.end}  # still open
    assert {t for t in whole_spans if t[3] < at} <= cut_spans
    assert cut_spans - tail <= whole_spans
    assert all(t <= at for t, _, _ in cut.trace.instants)
    # instants before the cut are all kept; at the cut's own simulated time, those that
    # came after it (the watchdog cuts between two events of one instant) are not
    assert [i for i in cut.trace.instants if i[0] < at] == [
        i for i in whole.trace.instants if i[0] < at]
    assert cut.trace.instants == whole.trace.instants[:len(cut.trace.instants)]
    assert cut.history == whole.history and cut.summary == whole.summary
    assert cut.trace.totals() == whole.trace.totals()


def test_the_watchdog_looks_at_the_run_even_without_a_wall_time(monkeypatch):
    """stop.wall_time = inf sets no time limit, but the memory watch still runs."""
    import simdml.stopping as stopping
    looks = []
    monkeypatch.setattr(stopping, "WATCH_EVERY", 0.01)
    with stopping.wall_clock_guard(float("inf"), watch=lambda: looks.append(1)):
        began = time.monotonic()
        while time.monotonic() - began < 0.2:
            pass
    assert len(looks) >= 5
