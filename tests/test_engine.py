"""Contract tests for the simulation kernel (simdml/engine/).

In the SimPy manner, processes append ``(name, now)`` tuples to a log and each test
asserts the exact list. The last section checks the kernel against queueing theory
(M/M/1 and M/M/2 mean sojourn times) with batch-means confidence intervals.
"""
import math
import traceback

import numpy as np
import pytest

from simdml import Deadlock, Interrupt, Simulator
from simdml.engine import URGENT, Timeout


# -- ordering -----------------------------------------------------------------------

def test_events_fire_in_time_order():
    """Timeouts fire in order of their due time, whatever order they were created in."""
    sim = Simulator()
    log = []

    def sleeper(sim, name, delay):
        yield sim.timeout(delay)
        log.append((name, sim.now))

    for name, delay in [("c", 3.0), ("a", 1.0), ("b", 2.0)]:
        sim.process(sleeper(sim, name, delay))
    sim.run()
    assert log == [("a", 1.0), ("b", 2.0), ("c", 3.0)]


def test_simultaneous_events_are_fifo():
    """Events due at the same time with the same priority fire in the order they were scheduled."""
    sim = Simulator()
    log = []

    def sleeper(sim, name):
        yield sim.timeout(2.0)
        log.append((name, sim.now))

    for name in ["p0", "p1", "p2", "p3"]:
        sim.process(sleeper(sim, name))
    sim.run()
    assert log == [("p0", 2.0), ("p1", 2.0), ("p2", 2.0), ("p3", 2.0)]


def test_urgent_priority_goes_before_normal_at_the_same_time():
    """At equal times an URGENT event fires before a NORMAL one scheduled earlier."""
    sim = Simulator()
    log = []
    normal, urgent = sim.event(), sim.event()

    def waiter(sim, name, ev):
        yield ev
        log.append((name, sim.now))

    def trigger(sim):
        yield sim.timeout(1.0)
        normal.succeed()
        urgent.succeed(priority=URGENT)

    sim.process(waiter(sim, "normal", normal))
    sim.process(waiter(sim, "urgent", urgent))
    sim.process(trigger(sim))
    sim.run()
    assert log == [("urgent", 1.0), ("normal", 1.0)]


def test_process_start_is_urgent():
    """A process started at t runs before ordinary events already scheduled for t."""
    sim = Simulator()
    log = []
    ev = sim.event()

    def waiter(sim):
        yield ev
        log.append(("waiter", sim.now))

    def child(sim):
        log.append(("child", sim.now))
        yield sim.timeout(0.0)

    def parent(sim):
        yield sim.timeout(1.0)
        ev.succeed()                 # NORMAL at t=1, scheduled first
        sim.process(child(sim))      # its start is URGENT at t=1, scheduled second

    sim.process(waiter(sim))
    sim.process(parent(sim))
    sim.run()
    assert log == [("child", 1.0), ("waiter", 1.0)]


def test_timeout_value_is_sent_into_the_process():
    """`yield sim.timeout(d, value)` evaluates to value, at now + d."""
    sim = Simulator()
    log = []

    def proc(sim):
        got = yield sim.timeout(1.5, value="ding")
        log.append((got, sim.now))

    sim.process(proc(sim))
    sim.run()
    assert log == [("ding", 1.5)]


def test_process_is_an_event_with_the_return_value():
    """A process fires, when its generator returns, with the return value."""
    sim = Simulator()
    log = []

    def child(sim):
        yield sim.timeout(2.0)
        return 42

    def parent(sim):
        got = yield sim.process(child(sim))
        log.append(("parent", sim.now, got))

    sim.process(parent(sim))
    sim.run()
    assert log == [("parent", 2.0, 42)]


def test_run_until_time_stops_before_events_at_that_time_and_resumes():
    """`run(until=t)` processes events before t only, sets now = t, and a later run continues."""
    sim = Simulator()
    log = []

    def ticker(sim):
        for _ in range(4):
            yield sim.timeout(1.0)
            log.append(("tick", sim.now))

    sim.process(ticker(sim))
    assert sim.run(until=2.0) is None
    assert (log, sim.now) == ([("tick", 1.0)], 2.0)
    sim.run(until=3.5)
    assert (log, sim.now) == ([("tick", 1.0), ("tick", 2.0), ("tick", 3.0)], 3.5)
    sim.run()
    assert log == [("tick", 1.0), ("tick", 2.0), ("tick", 3.0), ("tick", 4.0)]
    assert sim.now == 4.0


def test_run_until_event_returns_its_value():
    """`run(until=event)` stops when the event fires and returns its value."""
    sim = Simulator()

    def proc(sim):
        yield sim.timeout(2.5)
        return "done"

    p = sim.process(proc(sim))
    assert sim.run(until=p) == "done"
    assert sim.now == 2.5
    assert sim.run(until=p) == "done"  # already processed: returns at once


def test_run_until_event_resumes_every_waiter_of_that_event():
    """Processes that wait on the `until` event are resumed before run() returns."""
    sim = Simulator()
    log = []

    def child(sim):
        yield sim.timeout(1.0)
        return 42

    def parent(sim, c):
        got = yield c
        log.append(("parent", sim.now, got))

    c = sim.process(child(sim))
    sim.process(parent(sim, c))  # starts, and waits on c, only once run() has begun
    assert sim.run(until=c) == 42
    assert log == [("parent", 1.0, 42)]


def test_run_until_time_aborted_by_an_error_does_not_stop_a_later_run():
    """After run(until=t) raised, a later run(until=t2) processes every event before t2."""
    sim = Simulator()
    log = []

    def crasher(sim):
        yield sim.timeout(1.0)
        raise ValueError("boom")

    def ticker(sim):
        while True:
            yield sim.timeout(1.0)
            log.append(("tick", sim.now))

    sim.process(crasher(sim))
    sim.process(ticker(sim))
    with pytest.raises(ValueError, match="boom"):
        sim.run(until=5.0)
    sim.run(until=7.5)
    assert log == [("tick", t) for t in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]
    assert sim.now == 7.5


def test_run_until_a_time_in_the_past_is_an_error():
    """`run(until=t)` with t < now raises ValueError naming both times."""
    sim = Simulator()
    sim.run(until=3.0)
    with pytest.raises(ValueError, match=r"until=1\.0 lies before now=3\.0"):
        sim.run(until=1.0)


# -- determinism --------------------------------------------------------------------

def _busy_workload() -> list:
    """50 processes with scrambled delays (and many ties), logging every wake-up."""
    sim = Simulator()
    log = []
    store = sim.store()

    def worker(sim, i):
        for step in range(5):
            delay = ((i * 7919 + step * 104729) % 13) / 4.0  # quarter seconds: many ties
            yield sim.timeout(delay)
            log.append((f"w{i}", sim.now))
            if (i + step) % 3 == 0:
                store.put((i, step))
            else:
                item = yield sim.any_of([store.get(), sim.timeout(1.0)])
                log.append((f"w{i}-got", sim.now, len(item)))

    for i in range(50):
        sim.process(worker(sim, i), name=f"w{i}")
    sim.run()
    return log


def test_same_workload_gives_the_identical_log():
    """Running the same workload twice yields the identical event log."""
    first, second = _busy_workload(), _busy_workload()
    assert len(first) > 250
    assert first == second
    assert [entry[1] for entry in first] == sorted(entry[1] for entry in first)


# -- errors -------------------------------------------------------------------------

def test_yielding_a_number_names_the_process_and_the_value():
    """`yield 5` raises TypeError naming the process and the value, from the student's line."""
    sim = Simulator()

    def forgetful(sim):
        yield sim.timeout(1.0)
        yield 5

    sim.process(forgetful(sim))
    message = "process 'forgetful' yielded 5, which is not an event"
    with pytest.raises(TypeError, match=message) as info:
        sim.run()
    frames = traceback.extract_tb(info.value.__traceback__)
    assert any(f.name == "forgetful" and f.line == "yield 5" for f in frames)


def test_yielding_none_hints_at_a_missing_yield():
    """`yield None` (a helper that forgot to return its event) raises TypeError saying so."""
    sim = Simulator()

    def pause(sim):
        sim.timeout(1.0)  # the student forgot `return`

    def student(sim):
        yield pause(sim)

    sim.process(student(sim))
    with pytest.raises(TypeError, match=r"process 'student' yielded None, which is not an event.*"
                                        r"missing 'yield'") as info:
        sim.run()
    frames = traceback.extract_tb(info.value.__traceback__)
    assert any(f.name == "student" and f.line == "yield pause(sim)" for f in frames)


def test_a_process_can_catch_its_own_non_event_error():
    """The TypeError for a non-event is thrown into the generator, so it can be caught there."""
    sim = Simulator()
    log = []

    def careful(sim):
        try:
            yield "oops"
        except TypeError:
            log.append(("caught", sim.now))
        yield sim.timeout(1.0)
        log.append(("after", sim.now))

    sim.process(careful(sim))
    sim.run()
    assert log == [("caught", 0.0), ("after", 1.0)]


@pytest.mark.parametrize("delay", [-1.0, math.nan, math.inf])
def test_bad_timeout_delay_is_a_value_error(delay):
    """A negative, nan or infinite delay raises ValueError stating the rule and the value."""
    sim = Simulator()
    message = rf"timeout delay must be finite and >= 0 \(s\); got {delay!r}"
    with pytest.raises(ValueError, match=message):
        sim.timeout(delay)
    with pytest.raises(ValueError, match=message):
        Timeout(sim, delay)


def test_timeout_class_and_factory_make_the_same_event():
    """Timeout(sim, d) and sim.timeout(d) (its inlined copy) give equal events, queued in
    creation order: same value, delay, state, and no ``since``."""
    sim = Simulator()
    log = []
    made = [Timeout(sim, 1.0, "a"), sim.timeout(1.0, "b"), Timeout(sim, 1.0, "c")]
    for ev in made:
        ev.callbacks.append(lambda e: log.append((e.value, sim.now)))
    assert [(type(e), e.delay, e.triggered, e.ok, e.callbacks is not None) for e in made] \
        == [(Timeout, 1.0, True, True, True)] * 3
    assert not any(hasattr(e, "since") for e in made)
    sim.run()
    assert log == [("a", 1.0), ("b", 1.0), ("c", 1.0)]


def test_the_kernel_has_no_seed():
    """The kernel draws nothing, so a simulator takes and keeps no seed."""
    assert not hasattr(Simulator(), "seed")
    with pytest.raises(TypeError):
        Simulator(seed=0)


def test_fire_at_queues_a_bare_event_in_insertion_order():
    """_fire_at (the cluster's message path) triggers an event made without __init__ and
    queues it at the given time, FIFO with the other events of that time."""
    from simdml.engine import Event
    sim = Simulator()
    log = []
    sim.timeout(2.0).callbacks.append(lambda e: log.append(("timeout", sim.now)))
    bare = object.__new__(Event)
    sim._fire_at(bare, 2.0, lambda e: log.append(("bare", sim.now, e.value, e.ok)))
    sim.run()
    assert log == [("timeout", 2.0), ("bare", 2.0, None, True)]
    assert bare.processed and bare.sim is sim


def test_process_needs_a_generator():
    """`process(f)` with a function (not its generator) raises TypeError."""
    sim = Simulator()

    def proc(sim):
        yield sim.timeout(1.0)

    with pytest.raises(TypeError, match=r"process\(\) needs a generator.*got <function"):
        sim.process(proc)


def test_triggering_an_event_twice_is_an_error():
    """succeed() or fail() on an already triggered event raises RuntimeError."""
    sim = Simulator()
    ev = sim.event().succeed(1)
    with pytest.raises(RuntimeError, match="has already been triggered"):
        ev.succeed(2)
    with pytest.raises(RuntimeError, match="has already been triggered"):
        ev.fail(ValueError("late"))
    with pytest.raises(RuntimeError, match=r"<Timeout delay=1\.0 .*has already been triggered"):
        sim.timeout(1.0).succeed()


def test_fail_needs_an_exception():
    """fail() with something that is not an exception raises TypeError."""
    sim = Simulator()
    with pytest.raises(TypeError, match=r"fail\(\) needs an exception instance; got 'boom'"):
        sim.event().fail("boom")


def test_value_of_a_pending_event_is_unavailable():
    """Reading `.value` of a pending event raises AttributeError."""
    sim = Simulator()
    with pytest.raises(AttributeError, match="is not yet available"):
        sim.event().value


def test_interrupting_a_finished_process_is_an_error():
    """interrupt() on a process that has ended raises RuntimeError naming it."""
    sim = Simulator()

    def quick(sim):
        yield sim.timeout(1.0)

    p = sim.process(quick(sim))
    sim.run()
    message = "process 'quick' has terminated and cannot be interrupted"
    with pytest.raises(RuntimeError, match=message):
        p.interrupt("too late")


def test_a_process_cannot_interrupt_itself():
    """A process calling interrupt() on itself gets RuntimeError."""
    sim = Simulator()

    def selfish(sim):
        yield sim.timeout(1.0)
        me.interrupt()

    me = sim.process(selfish(sim))
    with pytest.raises(RuntimeError, match="process 'selfish' cannot interrupt itself"):
        sim.run()


def test_schedule_at_in_the_past_is_an_error():
    """schedule_at() before now raises ValueError naming both times."""
    sim = Simulator()
    sim.run(until=2.0)
    with pytest.raises(ValueError, match=r"cannot schedule at t=1\.0, before now=2\.0"):
        sim.schedule_at(sim.event(), 1.0)


# -- failing events -----------------------------------------------------------------

def test_failed_event_is_thrown_into_the_waiting_process():
    """A process waiting on an event that fails gets the exception raised and can catch it."""
    sim = Simulator()
    log = []
    ev = sim.event()

    def waiter(sim):
        try:
            yield ev
        except ValueError as exc:
            log.append(("caught", sim.now, str(exc)))

    def breaker(sim):
        yield sim.timeout(3.0)
        ev.fail(ValueError("broken link"))

    sim.process(waiter(sim))
    sim.process(breaker(sim))
    sim.run()
    assert log == [("caught", 3.0, "broken link")]


def test_uncaught_exception_propagates_out_of_run():
    """An exception that escapes a process is raised by run() with its original type."""
    sim = Simulator()

    def buggy(sim):
        yield sim.timeout(1.0)
        return 1 / 0

    sim.process(buggy(sim))
    with pytest.raises(ZeroDivisionError, match="division by zero"):
        sim.run()
    assert sim.now == 1.0


def test_waiting_on_a_failing_process_gets_its_exception():
    """A process waiting on a process that fails gets that exception, and run() is quiet."""
    sim = Simulator()
    log = []

    def child(sim):
        yield sim.timeout(1.0)
        raise KeyError("missing shard")

    def parent(sim):
        try:
            yield sim.process(child(sim))
        except KeyError as exc:
            log.append(("parent", sim.now, exc.args[0]))

    sim.process(parent(sim))
    sim.run()
    assert log == [("parent", 1.0, "missing shard")]


def test_failed_event_nobody_waits_on_is_raised_by_run():
    """A failed event with no waiter is raised by run(), so errors are never lost."""
    sim = Simulator()
    sim.event().fail(OSError("nobody listens"))
    with pytest.raises(OSError, match="nobody listens"):
        sim.run()


# -- interrupts ---------------------------------------------------------------------

def test_interrupt_during_a_timeout():
    """The victim sees Interrupt(cause) at the interrupt time; its old timeout never resumes it."""
    sim = Simulator()
    log = []

    def victim(sim):
        try:
            yield sim.timeout(10.0)
            log.append(("slept", sim.now))
        except Interrupt as intr:
            log.append(("interrupted", sim.now, intr.cause))
        yield sim.timeout(20.0)
        log.append(("done", sim.now))

    def attacker(sim, p):
        yield sim.timeout(3.0)
        p.interrupt("crash")

    p = sim.process(victim(sim))
    sim.process(attacker(sim, p))
    sim.run()
    assert log == [("interrupted", 3.0, "crash"), ("done", 23.0)]


def test_interrupt_during_a_get_does_not_lose_a_later_item():
    """After an interrupted get, an item put later goes to the next get, by the same process."""
    sim = Simulator()
    log = []
    inbox = sim.store("inbox")

    def receiver(sim):
        try:
            yield inbox.get()
        except Interrupt as intr:
            log.append(("interrupted", sim.now, intr.cause))
        item = yield inbox.get()
        log.append(("got", sim.now, item))

    def driver(sim, p):
        yield sim.timeout(1.0)
        p.interrupt("timeout")
        yield sim.timeout(1.0)
        inbox.put("msg")

    p = sim.process(receiver(sim))
    sim.process(driver(sim, p))
    sim.run()
    assert log == [("interrupted", 1.0, "timeout"), ("got", 2.0, "msg")]


def test_interrupt_during_a_get_leaves_the_item_for_another_process():
    """An item put after a get was interrupted stays in the store for the next getter."""
    sim = Simulator()
    log = []
    inbox = sim.store("inbox")

    def receiver(sim, name):
        item = yield inbox.get()
        log.append((name, sim.now, item))

    def driver(sim, p):
        yield sim.timeout(1.0)
        p.interrupt("crash")
        yield sim.timeout(1.0)
        inbox.put("msg")
        assert len(inbox) == 1
        yield sim.timeout(1.0)
        sim.process(receiver(sim, "other"))

    p = sim.process(receiver(sim, "crashed"))
    sim.process(driver(sim, p))
    sim.run()
    assert log == [("other", 3.0, "msg")]
    assert len(inbox) == 0


def test_interrupt_after_the_item_arrived_gives_it_back():
    """An interrupt landing between a put and the get's delivery returns the item to the store."""
    sim = Simulator()
    log = []
    inbox = sim.store("inbox")

    def receiver(sim, name):
        try:
            item = yield inbox.get()
            log.append((name, sim.now, item))
        except Interrupt:
            log.append((name, "interrupted", sim.now))

    def driver(sim, p):
        yield sim.timeout(1.0)
        inbox.put("msg")       # the get is triggered, to be delivered at t=1 ...
        p.interrupt("crash")   # ... but the URGENT interrupt goes first
        yield sim.timeout(1.0)
        assert len(inbox) == 1
        sim.process(receiver(sim, "other"))

    p = sim.process(receiver(sim, "crashed"))
    sim.process(driver(sim, p))
    sim.run()
    assert log == [("crashed", "interrupted", 1.0), ("other", 2.0, "msg")]


def test_interrupt_during_all_of_with_a_get_does_not_lose_a_later_item():
    """A get inside an all_of whose waiter is interrupted is withdrawn, so a later item stays."""
    sim = Simulator()
    log = []
    inbox = sim.store("inbox")

    def receiver(sim):
        try:
            yield sim.all_of([inbox.get(), sim.timeout(10.0)])
        except Interrupt:
            log.append(("interrupted", sim.now))

    def driver(sim, p):
        yield sim.timeout(1.0)
        p.interrupt("crash")
        yield sim.timeout(1.0)
        inbox.put("msg")

    p = sim.process(receiver(sim))
    sim.process(driver(sim, p))
    sim.run()
    assert log == [("interrupted", 1.0)]
    assert len(inbox) == 1


def test_interrupt_before_start_is_delivered_at_the_first_yield():
    """An interrupt issued before a process started reaches it at its first yield, at once."""
    sim = Simulator()
    log = []

    def proc(sim):
        log.append(("start", sim.now))
        try:
            yield sim.timeout(5.0)
        except Interrupt as intr:
            log.append(("interrupted", sim.now, intr.cause))

    p = sim.process(proc(sim))
    p.interrupt("early")
    sim.run()
    assert log == [("start", 0.0), ("interrupted", 0.0, "early")]
    assert sim.now == 5.0  # the abandoned timeout still passes, resuming nobody


def test_uncaught_interrupt_ends_the_process_quietly():
    """A process that does not catch Interrupt just ends; run() does not raise."""
    sim = Simulator()
    log = []

    def victim(sim):
        yield sim.timeout(10.0)
        log.append(("never", sim.now))

    def attacker(sim, p):
        yield sim.timeout(2.0)
        p.interrupt("crash")
        log.append(("attacker", sim.now))

    p = sim.process(victim(sim))
    sim.process(attacker(sim, p))
    assert sim.run() is None
    assert log == [("attacker", 2.0)]
    assert not p.is_alive and not p.ok and isinstance(p.value, Interrupt)


# -- conditions ---------------------------------------------------------------------

def test_all_of_returns_values_in_given_order_after_the_last():
    """all_of fires when its last event fires, with the values in the order given."""
    sim = Simulator()
    log = []

    def proc(sim):
        a, b, c = sim.timeout(3.0, "a"), sim.timeout(1.0, "b"), sim.timeout(2.0, "c")
        got = yield sim.all_of([a, b, c])
        log.append((got, sim.now))

    sim.process(proc(sim))
    sim.run()
    assert log == [(["a", "b", "c"], 3.0)]


def test_any_of_returns_the_first_event():
    """any_of fires with `[first event]` when the first of its events fires."""
    sim = Simulator()
    log = []

    def proc(sim):
        slow, fast = sim.timeout(5.0), sim.timeout(2.0)
        got = yield sim.any_of([slow, fast])
        log.append((len(got), got[0] is fast, sim.now))

    sim.process(proc(sim))
    sim.run()
    assert log == [(1, True, 2.0)]


def test_first_of_returns_the_first_k_in_firing_order():
    """first_of(k, events) fires at the k-th event with the first k events in firing order."""
    sim = Simulator()
    log = []

    def proc(sim):
        t3, t1, t2, t5 = (sim.timeout(d, value=d) for d in (3.0, 1.0, 2.0, 5.0))
        got = yield sim.first_of(2, [t3, t1, t2, t5])
        log.append(([ev.value for ev in got], sim.now))

    sim.process(proc(sim))
    sim.run()
    assert log == [([1.0, 2.0], 2.0)]


def test_first_of_zero_fires_at_once():
    """first_of(0, events) fires at once with an empty list."""
    sim = Simulator()
    log = []

    def proc(sim):
        yield sim.timeout(1.0)
        got = yield sim.first_of(0, [sim.timeout(4.0)])
        log.append((got, sim.now))

    sim.process(proc(sim))
    sim.run()
    assert log == [([], 1.0)]


@pytest.mark.parametrize("k", [-1, 3])
def test_first_of_k_out_of_range_is_an_error(k):
    """first_of with k < 0 or k > number of events raises ValueError with both numbers."""
    sim = Simulator()
    message = rf"k must be between 0 and the number of events \(2\); got {k}"
    with pytest.raises(ValueError, match=message):
        sim.first_of(k, [sim.timeout(1.0), sim.timeout(2.0)])


def test_condition_needs_events():
    """A condition over something that is not an event raises TypeError naming it."""
    sim = Simulator()
    with pytest.raises(TypeError, match="conditions take events; got 5"):
        sim.any_of([sim.timeout(1.0), 5])


def test_already_processed_events_count_for_a_condition():
    """Events that already fired count towards a condition, in the order they are listed."""
    sim = Simulator()
    log = []

    def proc(sim):
        early = sim.timeout(1.0, "early")
        yield sim.timeout(2.0)
        got = yield sim.any_of([sim.timeout(5.0), early])
        log.append(([ev.value for ev in got], sim.now))
        got = yield sim.first_of(2, [sim.timeout(5.0, "late"), early, sim.timeout(1.0, "next")])
        log.append(([ev.value for ev in got], sim.now))

    sim.process(proc(sim))
    sim.run()
    assert log == [(["early"], 2.0), (["early", "next"], 3.0)]


@pytest.mark.parametrize("combine", ["any_of", "all_of"])
def test_a_failing_sub_event_fails_the_condition(combine):
    """A condition fails, at once, with the exception of the first sub-event that fails."""
    sim = Simulator()
    log = []
    bad = sim.event()

    def proc(sim):
        try:
            yield getattr(sim, combine)([sim.timeout(5.0), bad])
        except ValueError as exc:
            log.append(("caught", sim.now, str(exc)))

    def breaker(sim):
        yield sim.timeout(1.0)
        bad.fail(ValueError("lost"))

    sim.process(proc(sim))
    sim.process(breaker(sim))
    sim.run()
    assert log == [("caught", 1.0, "lost")]


def test_any_of_get_and_timeout_withdraws_the_get():
    """any_of([get, timeout]) that fires on the timeout withdraws the get: a later item stays."""
    sim = Simulator()
    log = []
    inbox = sim.store("inbox")

    def receiver(sim):
        get = inbox.get()
        fired = yield sim.any_of([get, sim.timeout(1.0)])
        log.append(("timed out" if fired[0] is not get else "got", sim.now))

    def late_sender(sim):
        yield sim.timeout(2.0)
        inbox.put("late")

    sim.process(receiver(sim))
    sim.process(late_sender(sim))
    sim.run()
    assert log == [("timed out", 1.0)]
    assert list(inbox.items) == ["late"]


# -- Store --------------------------------------------------------------------------

def test_store_is_fifo_and_counts_its_items():
    """Items come out in the order they were put; len() counts the items waiting."""
    sim = Simulator()
    log = []
    box = sim.store()
    assert len(box) == 0
    for item in ["a", "b", "c"]:
        box.put(item)
    assert len(box) == 3

    def taker(sim):
        for _ in range(3):
            item = yield box.get()
            log.append((item, sim.now, len(box)))

    sim.process(taker(sim))
    sim.run()
    assert log == [("a", 0.0, 2), ("b", 0.0, 1), ("c", 0.0, 0)]


def test_getters_are_served_in_request_order():
    """Several waiting getters receive items in the order they asked."""
    sim = Simulator()
    log = []
    box = sim.store()

    def getter(sim, name, delay):
        yield sim.timeout(delay)
        item = yield box.get()
        log.append((name, item, sim.now))

    def putter(sim):
        yield sim.timeout(5.0)
        for item in ["x", "y", "z"]:
            box.put(item)

    for name, delay in [("late", 3.0), ("first", 1.0), ("second", 2.0)]:
        sim.process(getter(sim, name, delay))
    sim.process(putter(sim))
    sim.run()
    assert log == [("first", "x", 5.0), ("second", "y", 5.0), ("late", "z", 5.0)]


def _message_log(how, monkeypatch):
    """A process takes three items that arrive as events at t=1, 2, 2 and hand them over
    with ``box.put`` or ``box._deliver``; returns (what it got when, events processed)."""
    from simdml.engine import simulator as engine  # the module whose loop pops
    processed = []
    pop = engine.heappop
    monkeypatch.setattr(engine, "heappop", lambda q: processed.append(1) or pop(q))
    sim = Simulator()
    box, log = sim.store(), []

    def taker(sim):
        for _ in range(3):
            item = yield box.get()
            log.append((item, sim.now))

    sim.process(taker(sim))
    for at, item in [(1.0, "a"), (2.0, "b"), (2.0, "c")]:
        arrival = sim.event()
        arrival._value = None
        arrival.callbacks.append(lambda _, item=item: getattr(box, how)(item))
        sim.schedule_at(arrival, at)
    sim.run()
    return log, len(processed)


def test_deliver_resumes_a_waiting_getter_within_the_same_event(monkeypatch):
    """An item delivered from a callback resumes the process already waiting for it at
    once, at the same time, with no event of its own: the same log as put(), one event
    fewer per item (8 events: start, 3 arrivals, 3 gets, the end; 5 with deliver)."""
    put_log, put_events = _message_log("put", monkeypatch)
    log, events = _message_log("_deliver", monkeypatch)
    assert log == put_log == [("a", 1.0), ("b", 2.0), ("c", 2.0)]
    assert (put_events, events) == (8, 5)


def test_a_delivery_queued_first_wins_a_tie_with_a_timeout():
    """At one instant, events go in insertion order: the delivery queued before the
    timeout resumes its receiver first, so any_of([get, timeout]) returns the get (with
    put() the get's own event came after the timeout and the timeout won)."""
    sim = Simulator()
    box, log = sim.store(), []
    arrival = sim.event()
    arrival._value = None
    arrival.callbacks.append(lambda _: box._deliver("x"))
    sim.schedule_at(arrival, 1.0)  # queued first

    def listener(sim):
        get = box.get()
        first, = yield sim.any_of([get, sim.timeout(1.0)])  # the timeout queued second
        log.append((first is get, sim.now, len(box)))

    sim.process(listener(sim))
    sim.run()
    assert log == [(True, 1.0, 0)]


def test_gc_setting_is_restored_when_the_last_of_overlapping_runs_ends():
    """Runs that overlap (nested, or in threads of a sweep) raise the oldest generation's
    threshold once and restore the caller's when the last one ends."""
    import gc
    from simdml.engine.simulator import GC_OLDEST_THRESHOLD, _gc_runs
    before = gc.get_threshold()
    _gc_runs.enter()
    _gc_runs.enter()
    _gc_runs.leave()
    assert gc.get_threshold()[2] == max(before[2], GC_OLDEST_THRESHOLD)  # one still runs
    _gc_runs.leave()
    assert gc.get_threshold() == before


def test_a_run_inside_a_run_gives_the_outer_run_its_stop_back():
    """A run started from a callback of a run of the same simulator restores the outer
    run's stop event when it returns, so a delivery to the get the outer run waits for
    still ends the outer run there."""
    sim = Simulator()
    box = sim.store()
    get = box.get()

    def arrive(_):
        sim.run(until=sim.now)  # a (null) run inside the outer run's callback
        box._deliver("x")

    arrival = sim.event()
    arrival._value = None
    arrival.callbacks.append(arrive)
    sim.schedule_at(arrival, 2.0)
    later = sim.timeout(5.0)
    assert sim.run(until=get) == "x"
    assert sim.now == 2.0 and later.callbacks is not None  # stopped at the get
    assert sim._until is None  # and nothing left behind


def test_store_shows_its_waiting_gets_oldest_first():
    """oldest_get and getters show the gets still waiting, oldest first; a get withdrawn
    (its waiter took another event) is no longer among them."""
    sim = Simulator()
    box = sim.store()
    assert box.oldest_get is None and box.getters == ()
    first, second = box.get(), box.get()
    assert box.oldest_get is first and box.getters == (first, second)
    wait = sim.any_of([first, sim.timeout(1.0)])
    sim.run(until=2.0)
    assert wait.processed  # the timeout won: the first get was withdrawn
    assert box.oldest_get is second and box.getters == (second,)


def test_deliver_with_nobody_waiting_keeps_the_item_in_order():
    sim = Simulator()
    box = sim.store()
    box.put("a")
    box._deliver("b")
    assert len(box) == 2
    assert [box.get().value, box.get().value] == ["a", "b"]


def test_deliver_to_the_event_a_run_waits_for_ends_that_run():
    """A get that ``run(until=...)`` waits for is still seen by the run when delivered."""
    sim = Simulator()
    box = sim.store()
    get = box.get()
    arrival = sim.event()
    arrival._value = None
    arrival.callbacks.append(lambda _: box._deliver("x"))
    sim.schedule_at(arrival, 3.0)
    assert sim.run(until=get) == "x"
    assert sim.now == 3.0


def test_deliver_to_a_get_inside_any_of_fires_the_condition():
    """A process waiting on any_of([get, timeout]) gets the delivered item, not the timeout."""
    sim = Simulator()
    box, log = sim.store(), []

    def listener(sim):
        get = box.get()
        first, = yield sim.any_of([get, sim.timeout(5.0)])
        log.append((first is get, get.value, sim.now))

    sim.process(listener(sim))
    arrival = sim.event()
    arrival._value = None
    arrival.callbacks.append(lambda _: box._deliver("x"))
    sim.schedule_at(arrival, 1.0)
    sim.run()
    assert log == [(True, "x", 1.0)]


def test_run_scans_the_oldest_gc_generation_less_often_and_restores_it():
    """During a run the oldest generation's threshold is raised (pending events would
    otherwise make the collector re-scan the simulation); after the run, and after a
    run that raised, the caller's thresholds are back."""
    import gc
    from simdml.engine import GC_OLDEST_THRESHOLD
    before = gc.get_threshold()
    sim = Simulator()
    seen = []

    def look(sim):
        seen.append(gc.get_threshold())
        yield sim.timeout(1.0)
        raise ValueError("boom")

    sim.process(look(sim))
    with pytest.raises(ValueError, match="boom"):
        sim.run()
    assert seen == [(before[0], before[1], max(before[2], GC_OLDEST_THRESHOLD))]
    assert gc.get_threshold() == before


# -- deadlock -----------------------------------------------------------------------

def test_deadlock_names_who_waits_on_what_since_when():
    """run() with a process waiting forever raises Deadlock naming it, its event and since when."""
    sim = Simulator()
    inbox = sim.store("inbox")

    def stuck(sim):
        yield sim.timeout(2.0)
        yield inbox.get()

    def idle(sim):
        yield inbox.get()

    sim.process(stuck(sim), name="stuck")
    sim.process(idle(sim), name="idle")
    message = r"(?s)deadlock at t=2 s.*process 'stuck' waits on <get from 'inbox'> since t=2 s"
    with pytest.raises(Deadlock, match=message) as info:
        sim.run()
    assert str(info.value) == (
        "deadlock at t=2 s: no events left (but daemons'), 2 process(es) still waiting:\n"
        "  - process 'stuck' waits on <get from 'inbox'> since t=2 s\n"
        "  - process 'idle' waits on <get from 'inbox'> since t=0 s")
    assert info.value.waiting == [("stuck", "<get from 'inbox'>", 2.0),
                                  ("idle", "<get from 'inbox'>", 0.0)]
    assert sim.waiting() == info.value.waiting


def test_run_until_an_event_that_never_fires_is_a_deadlock():
    """run(until=event) raises Deadlock when the queue empties before the event fires."""
    sim = Simulator()
    never = sim.event()

    def stuck(sim):
        yield never

    def finisher(sim):
        yield sim.timeout(1.0)

    sim.process(stuck(sim))
    sim.process(finisher(sim))
    with pytest.raises(Deadlock, match=r"(?s)deadlock at t=1 s: no events left before <Event .*"
                                       r"process 'stuck' waits on <Event") as info:
        sim.run(until=never)
    assert info.value.waiting == [(info.value.waiting[0][0], repr(never), 0.0)]  # made at 0


def test_waiting_on_a_timeout_is_waiting_since_now():
    """waiting() lists a process asleep in a timeout (which keeps no 'since') as waiting
    from the moment asked."""
    sim = Simulator()
    seen = []

    def sleeper(sim):
        yield sim.timeout(5.0)

    def asker(sim):
        yield sim.timeout(1.5)
        seen.extend(w for w in sim.waiting() if w[0] == "sleeper")

    sim.process(sleeper(sim), name="sleeper")
    sim.process(asker(sim), name="asker")
    sim.run()
    assert len(seen) == 1 and seen[0][2] == 1.5


def test_time_bounded_run_with_a_stuck_process_does_not_raise():
    """run(until=t) with a process waiting forever just stops at t."""
    sim = Simulator()
    inbox = sim.store("inbox")

    def stuck(sim):
        yield inbox.get()

    sim.process(stuck(sim))
    assert sim.run(until=5.0) is None
    assert sim.now == 5.0
    assert sim.waiting() == [("stuck", "<get from 'inbox'>", 0.0)]


# -- queueing theory ----------------------------------------------------------------

def _mmc_sojourn_times(lam: float, mu: float, n_servers: int, n_customers: int,
                       seed: int) -> np.ndarray:
    """Sojourn times, in arrival order, of an M/M/c FIFO queue simulated on the kernel.

    The queue is a Store of customer ids; each of the ``n_servers`` server processes
    takes the oldest waiting customer (idle servers in the order they became idle).
    """
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / lam, n_customers).tolist()
    services = rng.exponential(1.0 / mu, n_customers).tolist()
    arrival = [0.0] * n_customers
    sojourn = [0.0] * n_customers
    sim = Simulator()
    queue = sim.store("queue")
    all_done = sim.event()
    n_done = 0

    def source(sim):
        for i, gap in enumerate(gaps):
            yield sim.timeout(gap)
            arrival[i] = sim.now
            queue.put(i)

    def server(sim):
        nonlocal n_done
        while True:
            i = yield queue.get()
            yield sim.timeout(services[i])
            sojourn[i] = sim.now - arrival[i]
            n_done += 1
            if n_done == n_customers:
                all_done.succeed()

    sim.process(source(sim))
    for _ in range(n_servers):
        sim.process(server(sim))
    sim.run(until=all_done)
    return np.array(sojourn)


def _batch_means_ci(x: np.ndarray, n_batches: int = 25) -> tuple[float, float]:
    """Mean of ``x`` and the half-width of its 95 % batch-means confidence interval.

    References: Law, A. M. (2015). Simulation Modeling and Analysis, 5th ed., sec. 9.5.3.
    """
    batches = x[: len(x) // n_batches * n_batches].reshape(n_batches, -1).mean(axis=1)
    t_975 = 2.064  # Student t quantile, 0.975, n_batches - 1 = 24 degrees of freedom
    return float(batches.mean()), t_975 * float(batches.std(ddof=1)) / math.sqrt(n_batches)


def _erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load a = lam/mu.

    References: Kleinrock, L. (1975). Queueing Systems, Vol. 1, eq. (3.40);
    Harchol-Balter, M. (2013). Performance Modeling and Design of Computer Systems, ch. 14.
    """
    tail = a**c / math.factorial(c) * c / (c - a)
    return tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)


WARM_UP = 2_000  # customers discarded while the queue forgets that it started empty


def test_mm1_mean_sojourn_matches_theory():
    """The simulated M/M/1 mean sojourn time has 1/(mu - lam) in its 95 % batch-means CI."""
    lam, mu = 0.6, 1.0
    sojourn = _mmc_sojourn_times(lam, mu, n_servers=1, n_customers=30_000, seed=20240601)
    mean, half_width = _batch_means_ci(sojourn[WARM_UP:])
    w_theory = 1.0 / (mu - lam)  # Kleinrock (1975), eq. (3.26)
    assert abs(mean - w_theory) < half_width
    assert half_width < 0.1 * w_theory


def test_mm2_mean_sojourn_matches_erlang_c():
    """The simulated M/M/2 mean sojourn time has 1/mu + C(2, a)/(2 mu - lam) in its 95 % CI."""
    lam, mu = 1.2, 1.0
    sojourn = _mmc_sojourn_times(lam, mu, n_servers=2, n_customers=30_000, seed=20240602)
    mean, half_width = _batch_means_ci(sojourn[WARM_UP:])
    w_theory = 1.0 / mu + _erlang_c(2, lam / mu) / (2 * mu - lam)
    assert abs(mean - w_theory) < half_width
    assert half_width < 0.1 * w_theory


# -- daemons and time limits ---------------------------------------------------------

def _ticker(sim, log=None):
    while True:
        yield sim.timeout(1.0)
        if log is not None:
            log.append(sim.now)


def test_a_daemon_alone_does_not_keep_the_simulation_going():
    """run() with only a daemon left returns instead of ticking for ever."""
    sim = Simulator()
    log = []
    sim.process(_ticker(sim, log), daemon=True)
    assert sim.run() is None
    assert log == []


def test_a_stall_behind_a_ticking_daemon_is_a_deadlock():
    """A process waiting in vain is reported even while a daemon keeps ticking."""
    sim = Simulator()
    sim.process(_ticker(sim), daemon=True)

    def stuck():
        yield sim.event()
    p = sim.process(stuck())
    with pytest.raises(Deadlock, match=r"process 'stuck' waits on <Event"):
        sim.run(until=p)
    assert [name for name, _, _ in sim.waiting()] == ["stuck"]


def test_on_idle_can_veto_a_stall_until_something_changes():
    """on_idle returning False lets the daemons go on (a recovery may un-stall the run)."""
    sim = Simulator()
    box = sim.store()

    def reviver():
        yield sim.timeout(3.0)
        box.put("back")
        while True:
            yield sim.timeout(1.0)

    def waiter():
        return (yield box.get())
    sim.process(reviver(), daemon=True)
    p = sim.process(waiter())
    sim.on_idle = lambda: sim.now >= 10.0
    assert sim.run(until=p) == "back" and sim.now == 3.0


def test_a_time_limit_does_not_hide_a_stall():
    """run(until=event, limit=t): a stalled run is still a deadlock; a busy one just stops at t."""
    sim = Simulator()

    def stuck():
        yield sim.event()
    with pytest.raises(Deadlock):
        sim.run(until=sim.process(stuck()), limit=50.0)
    busy = Simulator()

    def forever():
        while True:
            yield busy.timeout(1.0)
    assert busy.run(until=busy.process(forever()), limit=4.5) is None
    assert busy.now == 4.5


def test_a_time_bounded_run_with_a_daemon_runs_to_its_time():
    """run(until=t) with a stuck process and a daemon goes on to t and does not raise."""
    sim = Simulator()
    log = []
    sim.process(_ticker(sim, log), daemon=True)

    def stuck():
        yield sim.event()
    sim.process(stuck())
    assert sim.run(until=5.5) is None
    assert sim.now == 5.5 and log == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_process_waiting_while_only_daemons_run_is_a_deadlock():
    """With no time bound, a process that waits for ever while only daemons have events
    is a Deadlock (the daemons alone never end a run, nor keep it going)."""
    sim = Simulator()
    inbox = sim.store("inbox")

    def ticker(sim):
        while True:
            yield sim.timeout(1.0)

    def waiter(sim):
        yield inbox.get()

    sim.process(ticker(sim), name="ticker", daemon=True)
    sim.process(waiter(sim), name="waiter")
    with pytest.raises(Deadlock, match=r"process 'waiter' waits on <get from 'inbox'>"):
        sim.run()


def test_a_condition_two_processes_share_outlives_one_of_them():
    """Two processes wait on one any_of; interrupting one leaves the condition (and its
    mailbox get) in place for the other, which still receives the message."""
    from simdml import Interrupt
    sim = Simulator()
    inbox = sim.store("inbox")
    get = inbox.get()
    either = sim.any_of([get, sim.timeout(10.0)])
    got = []

    def waiter(sim, name):
        try:
            first, = yield either
            got.append((name, first.value if first is get else "timeout", sim.now))
        except Interrupt:
            got.append((name, "interrupted", sim.now))

    a = sim.process(waiter(sim, "a"))
    sim.process(waiter(sim, "b"))

    def driver(sim):
        yield sim.timeout(1.0)
        a.interrupt()
        yield sim.timeout(1.0)
        inbox.put("hello")

    sim.process(driver(sim))
    sim.run()
    assert got == [("a", "interrupted", 1.0), ("b", "hello", 2.0)]
