"""The simulator: the virtual clock, the event queue and the loop that runs it."""
from __future__ import annotations

import gc
import threading
from heapq import heappop, heappush
from itertools import count

from .events import (_INF, NORMAL, URGENT, Condition, Deadlock, Event, Interrupt, Process,
                     Timeout, _AllOf, _bad_delay, _new, _StopSimulation)
from .store import Store

__all__ = ["Simulator", "GC_OLDEST_THRESHOLD"]

GC_OLDEST_THRESHOLD = 100  # while running (the default is 10): see Simulator.run


class _GCRuns:
    """The garbage collector's setting while simulations run (see ``Simulator.run``): the
    oldest generation's threshold is raised when the first run starts and the caller's
    thresholds are restored when the last one ends, also for runs overlapping in threads
    (a sweep on a thread pool)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = None

    def enter(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._saved = gc.get_threshold()
                if self._saved[2] < GC_OLDEST_THRESHOLD:
                    gc.set_threshold(self._saved[0], self._saved[1], GC_OLDEST_THRESHOLD)
            self._depth += 1

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                gc.set_threshold(*self._saved)


_gc_runs = _GCRuns()


class Simulator:
    """Virtual clock and event queue.

    The kernel draws no random numbers: randomness belongs to the models built on top
    (``simdml._rng``), so a simulator has no seed.

    Examples
    --------
    >>> sim = Simulator()
    >>> def hello(sim):
    ...     yield sim.timeout(2.5)
    ...     return "done at %.1f" % sim.now
    >>> p = sim.process(hello(sim))
    >>> sim.run(until=p)
    'done at 2.5'
    """

    def __init__(self):
        self.now = 0.0
        self._queue: list = []
        self._eid = count()
        self._alive: dict[Process, None] = {}  # ordered set of running non-daemon processes
        self._daemon_events: set[Event] = set()  # queued timeouts only daemons wait for
        self.on_idle = None  # called when only daemons are busy; True = really stuck
        self._until: Event | None = None  # the event the current run waits for

    # -- making events -------------------------------------------------------
    def event(self) -> Event:
        """A pending event, triggered by hand with ``succeed(value)`` or ``fail(exc)``."""
        return Event(self)

    def timeout(self, delay: float, value=None) -> Timeout:
        """An event that fires after ``delay`` seconds with ``value``."""
        # perf: Timeout.__init__ inlined (keep the two in step): it saves the class call
        # and a frame on the kernel's most frequent event.
        if not 0.0 <= delay < _INF:
            raise _bad_delay(delay)
        event = _new(Timeout)
        event.sim = self
        event.callbacks = []
        event._value = value
        event._ok = True
        event.delay = delay
        heappush(self._queue, (self.now + delay, NORMAL, next(self._eid), event))
        return event

    def process(self, generator, name: str | None = None, daemon: bool = False) -> Process:
        """Start ``generator`` as a process now; returns the process (an event).

        A *daemon* process (a failure model, a clock) runs for as long as the simulation
        does but does not keep it going: when only daemons have events left, every other
        process is stuck, and ``run`` reports a deadlock (or, with nothing waiting, ends).
        """
        return Process(self, generator, name, daemon)

    def all_of(self, events) -> Condition:
        """Fires when every event has fired; its value is their values, in order."""
        events = list(events)
        return _AllOf(self, len(events), events)

    def any_of(self, events) -> Condition:
        """Fires with ``[first event]`` as soon as one of ``events`` fires."""
        return Condition(self, 1, events)

    def first_of(self, k: int, events) -> Condition:
        """Fires with the first ``k`` events to fire, in firing order (k of n)."""
        return Condition(self, k, events)

    def store(self, name: str = "store") -> Store:
        """A new FIFO mailbox."""
        return Store(self, name)

    def _schedule(self, event: Event, delay: float, priority: int = NORMAL) -> None:
        heappush(self._queue, (self.now + delay, priority, next(self._eid), event))

    def _fire_at(self, event: Event, at: float, callback) -> None:
        """Trigger ``event`` with value None, ``callback`` its only callback, and queue it
        for time ``at`` (unchecked: the caller's arithmetic keeps ``at >= now``).

        Package-private, for the cluster's message path: ``event`` may be an instance of
        an Event subclass made with ``object.__new__`` (no ``__init__`` frame), or one
        already processed that is queued again for its next step.
        """
        event.sim = self
        event.callbacks = [callback]
        event._value = None
        event._ok = True
        heappush(self._queue, (at, NORMAL, next(self._eid), event))

    def schedule_at(self, event: Event, at: float, priority: int = NORMAL) -> None:
        """Put an already triggered ``event`` on the queue for simulated time ``at``."""
        if not at >= self.now:
            raise ValueError(f"cannot schedule at t={at!r}, before now={self.now!r}")
        heappush(self._queue, (at, priority, next(self._eid), event))

    # -- running -------------------------------------------------------------
    def run(self, until: float | Event | None = None, *, limit: float | None = None):
        """Process events until ``until`` (a time or an event) or until none are left.

        Events scheduled exactly at time ``until`` (or ``limit``) are not processed. With
        an event, returns its value (or raises its exception). ``limit`` bounds the time
        of a run that waits for an event.

        Raises
        ------
        Deadlock
            When nothing but daemons can happen any more while ``until`` is an event that
            has not fired, or while processes still wait: the message says who waits on
            what since when (``on_idle``, if set, may veto: something may still change).

        Notes
        -----
        While it runs, Python's garbage collector scans its oldest generation at most a
        tenth as often (threshold ``GC_OLDEST_THRESHOLD``; restored when ``run``
        returns or raises). The queue keeps thousands of pending events alive for long
        stretches, so they are promoted to the oldest generation and the default
        heuristic re-scans the whole simulation again and again (in large runs, a large
        share of the time: see benchmarks/README.md). Young cyclic garbage is still
        collected as usual.
        """
        outer = self._until  # a run started inside a run gives the outer one back its stop
        _gc_runs.enter()
        try:
            return self._run(until, limit)
        finally:
            _gc_runs.leave()
            self._until = outer

    def _run(self, until, limit):
        stop = None
        if until is not None:
            if isinstance(until, Event):
                stop = until
                if until.callbacks is None:
                    return self._outcome(until)
            else:
                limit = float(until)
                if not limit >= self.now:
                    raise ValueError(f"until={until!r} lies before now={self.now!r}")
        end = None
        if limit is not None:
            if not limit >= self.now:
                raise ValueError(f"limit={limit!r} lies before now={self.now!r}")
            end = Event(self)  # a daemon's event: waiting for the clock is not progress
            end._value = None
            self.schedule_at(end, limit, URGENT)
            self._daemon_events.add(end)

        queue, daemon_events = self._queue, self._daemon_events
        self._until = stop  # what Store._deliver must leave to the loop
        try:
            # perf: the event loop is inlined; it is the kernel's hot path.
            while queue:
                self.now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
                if event is stop:
                    # after all its callbacks, so no waiter of `until` is left behind
                    raise _StopSimulation
                if not event._ok and not callbacks:
                    if not isinstance(event._value, Interrupt):
                        raise event._value
                if daemon_events:  # only runs with daemons pay for this
                    if event in daemon_events:
                        daemon_events.discard(event)
                        if event is end:
                            raise _StopSimulation
                    if len(queue) == len(daemon_events) and self._stuck(stop, end):
                        raise self._deadlock(until)
        except _StopSimulation:
            if end is not None and end.callbacks is not None:
                daemon_events.discard(end)  # a stop left in the queue stops no later run
                end.callbacks = []
            if event is stop:
                return self._outcome(stop)
            if (stop is not None and len(queue) == len(daemon_events)
                    and self._stuck(stop, end)):  # time ran out on a stalled simulation
                raise self._deadlock(until) from None
            return None
        if isinstance(until, Event) or self._alive:
            raise self._deadlock(until)
        return None

    def _stuck(self, stop, end) -> bool:
        """Only daemons have events left: is ``until`` (or, with no time bound, a process)
        waiting in vain? A time-bounded run goes on to its time."""
        if stop is None and end is not None:
            return False
        if stop is None and not self._alive:
            raise _StopSimulation  # nothing waits and nothing bounds the run: it is over
        return self.on_idle is None or bool(self.on_idle())

    @staticmethod
    def _outcome(event: Event):
        if event._ok:
            return event._value
        raise event._value

    def _deadlock(self, until) -> Deadlock:
        waiting = self.waiting()
        lines = [f"  - process '{n}' waits on {what} since t={since:g} s"
                 for n, what, since in waiting]
        goal = f" before {until!r} fired" if isinstance(until, Event) else ""
        msg = (f"deadlock at t={self.now:g} s: no events left{goal} (but daemons'), "
               f"{len(waiting)} process(es) still waiting:\n" + "\n".join(lines))
        return Deadlock(msg, waiting)

    def waiting(self) -> list[tuple[str, str, float]]:
        """``(process name, what it waits on, since when)`` for every live process."""
        return [(p.name, repr(p._target), getattr(p._target, "since", self.now))
                for p in self._alive]
