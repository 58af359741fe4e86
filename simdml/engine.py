"""The simulation kernel: a virtual clock, an event queue and generator processes.

Pure standard library. A *process* is a plain generator function that ``yield``\\ s
events; the simulator resumes it when the event fires, sending the event's value back in.
Simultaneous events are ordered by (time, priority, insertion order), so a run is
deterministic: below, both processes wake at t=2, and "slow" goes first because its
timeout was created first (at t=0). The kernel draws no random numbers.

>>> sim = Simulator()
>>> def clock(sim, name, tick):
...     while sim.now < 3:
...         print(name, sim.now)
...         yield sim.timeout(tick)
>>> _ = sim.process(clock(sim, "fast", 1.0))
>>> _ = sim.process(clock(sim, "slow", 2.0))
>>> sim.run()
fast 0.0
slow 0.0
fast 1.0
slow 2.0
fast 2.0

References
----------
The event/process design follows SimPy (https://simpy.readthedocs.io): processes are
generators, a process is itself an event, and the queue key is
``(time, priority, sequence number)``.

Package-private API: the cluster's message path (:mod:`simdml.cluster`) uses
``Simulator._fire_at`` and ``Store._deliver``, made for it; nothing outside this module
touches the kernel's underscored attributes.
"""
from __future__ import annotations

import gc
import threading
from collections import deque
from heapq import heappop, heappush
from itertools import count
from types import GeneratorType

__all__ = [
    "Simulator", "Event", "Timeout", "Process", "Condition", "Store",
    "Interrupt", "Deadlock", "URGENT", "NORMAL",
]

GC_OLDEST_THRESHOLD = 100  # while running (the default is 10): see Simulator.run
URGENT = 0  # process starts and interrupts go before ordinary events at the same time
NORMAL = 1
_INF = float("inf")
_new = object.__new__


class _Pending:
    __slots__ = ()

    def __repr__(self) -> str:
        return "PENDING"


PENDING = _Pending()  # the value of an event that has not been triggered yet


class Interrupt(Exception):
    """Raised inside a process by :meth:`Process.interrupt`; ``cause`` says why."""

    @property
    def cause(self):
        return self.args[0]


class Deadlock(RuntimeError):
    """The event queue ran empty while processes were still waiting.

    ``waiting`` lists ``(process name, what it waits on, since when)``.
    """

    def __init__(self, message: str, waiting: list[tuple[str, str, float]]):
        super().__init__(message)
        self.waiting = waiting


class _StopSimulation(Exception):
    pass


class Event:
    """Something that happens at a point of simulated time.

    An event is *pending* until it is triggered with :meth:`succeed` or :meth:`fail`;
    it is then scheduled, and when the simulator processes it, it calls its callbacks
    (for example the processes waiting on it). A failed event throws its exception into
    every process waiting on it; a failed event nobody waits on is raised by
    :meth:`Simulator.run`, so errors are never lost.
    """

    __slots__ = ("sim", "callbacks", "_value", "_ok", "since")

    def __init__(self, sim: Simulator):
        self.sim = sim
        self.callbacks: list | None = []  # None once processed
        self._value = PENDING
        self._ok = True
        self.since = sim.now  # when it was made (for the deadlock report)

    @property
    def triggered(self) -> bool:
        return self._value is not PENDING

    @property
    def processed(self) -> bool:
        return self.callbacks is None

    @property
    def ok(self) -> bool:
        return self._ok

    @property
    def value(self):
        if self._value is PENDING:
            raise AttributeError(f"the value of {self!r} is not yet available")
        return self._value

    def succeed(self, value=None, priority: int = NORMAL) -> Event:
        """Trigger the event now with ``value``; returns the event."""
        if self._value is not PENDING:
            raise RuntimeError(f"{self!r} has already been triggered")
        self._value = value
        self.sim._schedule(self, 0.0, priority)
        return self

    def fail(self, exception: BaseException) -> Event:
        """Trigger the event now as failed: waiting processes get ``exception`` raised."""
        if self._value is not PENDING:
            raise RuntimeError(f"{self!r} has already been triggered")
        if not isinstance(exception, BaseException):
            raise TypeError(f"fail() needs an exception instance; got {exception!r}")
        self._ok = False
        self._value = exception
        self.sim._schedule(self, 0.0, NORMAL)
        return self

    def _abandon(self, callback) -> None:
        """``callback`` no longer waits for this event (its waiter was interrupted)."""
        if self.callbacks is not None and callback in self.callbacks:
            self.callbacks.remove(callback)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x}>"


class Timeout(Event):
    """An event that fires ``delay`` seconds of simulated time after its creation."""

    __slots__ = ("delay",)

    def __init__(self, sim: Simulator, delay: float, value=None):
        if not 0.0 <= delay < _INF:
            raise _bad_delay(delay)
        # Not Event.__init__: a timeout is triggered from the start (it only waits for its
        # time) and has no `since` (what waits on it is not stuck).
        self.sim = sim
        self.callbacks = []
        self._value = value
        self._ok = True
        self.delay = delay
        sim._schedule(self, delay)

    def __repr__(self) -> str:
        return f"<Timeout delay={self.delay!r} at {id(self):#x}>"


def _bad_delay(delay) -> ValueError:
    return ValueError(f"timeout delay must be finite and >= 0 (s); got {delay!r}")


class Process(Event):
    """A running generator. As an event it fires with the generator's return value
    (or fails with the exception that escaped from it)."""

    __slots__ = ("_generator", "_target", "_resume_cb", "_send", "_throw", "name", "daemon")

    def __init__(self, sim: Simulator, generator, name: str | None = None,
                 daemon: bool = False):
        if not isinstance(generator, GeneratorType):
            raise TypeError(
                f"process() needs a generator, i.e. the result of calling a function that "
                f"contains 'yield'; got {generator!r}")
        super().__init__(sim)
        self._generator = generator
        # perf: bound methods made once, not at every resume
        self._resume_cb = self._resume
        self._send, self._throw = generator.send, generator.throw
        self.name = name or generator.__name__
        start = Event(sim)
        start._value = None
        start.callbacks.append(self._resume_cb)
        self._target = start
        sim._schedule(start, 0.0, URGENT)
        self.daemon = daemon
        if not daemon:
            sim._alive[self] = None

    @property
    def is_alive(self) -> bool:
        return self._value is PENDING

    @property
    def target(self) -> Event:
        """The event this process waits on."""
        return self._target

    def interrupt(self, cause=None) -> None:
        """Raise ``Interrupt(cause)`` inside this process, now (before other events)."""
        if self._value is not PENDING:
            raise RuntimeError(f"process '{self.name}' has terminated and cannot be interrupted")
        if self._generator.gi_running:  # only its own code can be running now
            raise RuntimeError(f"process '{self.name}' cannot interrupt itself")
        event = Event(self.sim)
        event._ok = False
        event._value = Interrupt(cause)
        event.callbacks.append(self._interrupted)
        self.sim._schedule(event, 0.0, URGENT)

    def _interrupted(self, event: Event) -> None:
        if self._value is not PENDING:
            return  # ended in the meantime
        self._target._abandon(self._resume_cb)
        self._resume(event)

    def _resume(self, event: Event) -> None:
        # perf: the kernel's hot path: one call per event a process waited on
        while True:
            try:
                if event._ok:
                    event = self._send(event._value)
                else:
                    event = self._throw(event._value)
            except StopIteration as stop:
                self._end(True, stop.value)
                break
            except Exception as exc:
                self._end(False, exc)
                break
            try:
                callbacks = event.callbacks
            except AttributeError:
                event = _not_an_event(self, event)
                continue
            if callbacks is not None:
                callbacks.append(self._resume_cb)
                self._target = event
                if self.daemon and type(event) is Timeout:
                    self.sim._daemon_events.add(event)
                break
            # the event was already processed: resume at once with its value

    def _end(self, ok: bool, value) -> None:
        self.sim._alive.pop(self, None)
        self._target = None
        self._ok = ok
        self._value = value
        self.sim._schedule(self, 0.0, NORMAL)

    def __repr__(self) -> str:
        return f"<Process {self.name!r}>"


def _not_an_event(process: Process, value) -> Event:
    """A failed event carrying the error for a process that yielded a non-event."""
    err = TypeError(
        f"process '{process.name}' yielded {value!r}, which is not an event. Yield an "
        f"event such as sim.timeout(1.0) or node.recv(); a plain value or None usually "
        f"means a missing 'yield' inside a helper function.")
    event = Event(process.sim)
    event._ok = False
    event._value = err
    event.callbacks = None
    return event


class Condition(Event):
    """Fires when ``k`` of ``events`` have fired.

    Its value is the list of the first ``k`` events in firing order (:meth:`Simulator.first_of`);
    it fails as soon as one of them fails.
    """

    __slots__ = ("_events", "_k", "_fired")

    def __init__(self, sim: Simulator, k: int, events):
        super().__init__(sim)
        self._events = list(events)
        for ev in self._events:
            if not isinstance(ev, Event):
                raise TypeError(f"conditions take events; got {ev!r}")
            if ev.sim is not sim:
                raise ValueError(f"{ev!r} belongs to another simulator")
        if not 0 <= k <= len(self._events):
            raise ValueError(f"k must be between 0 and the number of events "
                             f"({len(self._events)}); got {k}")
        self._k = k
        self._fired: list[Event] = []
        if k == 0:
            self.succeed([])
            return
        for ev in self._events:
            if ev.callbacks is None:
                self._check(ev)
            else:
                ev.callbacks.append(self._check)

    def _check(self, event: Event) -> None:
        if self._value is not PENDING:
            return
        if not event._ok:
            self._release()
            self.fail(event._value)
            return
        self._fired.append(event)
        if len(self._fired) == self._k:
            self._release()
            self.succeed(self._result())

    def _result(self) -> list:
        return self._fired

    def _abandon(self, callback) -> None:
        super()._abandon(callback)
        if not self.callbacks and self._value is PENDING:
            self._release()  # nobody waits for this condition any more

    def _release(self) -> None:
        # The events that have not fired no longer matter to this condition; a mailbox
        # get among them is withdrawn so that it does not swallow a later message.
        for ev in self._events:
            if ev.callbacks is not None:
                ev._abandon(self._check)


class _AllOf(Condition):
    """:meth:`Simulator.all_of`: every event; its value is their values in the given order."""

    __slots__ = ()

    def _result(self) -> list:
        return [ev._value for ev in self._events]


class Store:
    """An unbounded FIFO mailbox: ``put(item)`` now, ``get()`` as an event.

    Getters are served in the order they asked. A get that its waiter abandons (an
    interrupt, or an ``any_of`` that fired on another event) is withdrawn, so no item
    is ever handed to nobody.
    """

    __slots__ = ("sim", "items", "_getters", "name")

    def __init__(self, sim: Simulator, name: str = "store"):
        self.sim = sim
        self.name = name
        self.items: deque = deque()
        self._getters: deque[StoreGet] = deque()

    def put(self, item) -> None:
        """Add ``item``; the oldest waiting getter (if any) receives it now."""
        if self._getters:
            self._getters.popleft().succeed(item)
        else:
            self.items.append(item)

    @property
    def oldest_get(self) -> StoreGet | None:
        """The get that has waited longest and will receive the next item, or None."""
        return self._getters[0] if self._getters else None

    @property
    def getters(self) -> tuple[StoreGet, ...]:
        """The gets still waiting, oldest first (a snapshot: withdraw one by abandoning it)."""
        return tuple(self._getters)

    def _deliver(self, item) -> None:
        """``put``, for a callback running inside the event loop (a message arriving):
        the oldest waiting getter receives ``item`` and its waiter resumes at once, at
        this same simulated time, instead of after an event of its own. So it resumes
        before the events queued behind this one for the same instant, as the (time,
        priority, insertion) order says: a message whose delivery was queued first wins
        an ``any_of`` against a timeout ending at that instant, and is taken before an
        interrupt or a crash queued after it.

        Package-private, for the cluster's message path (perf: one event per message at
        the receiver, not two). Not for a process's own code: the waiter would run
        before the putter yields.
        """
        if not self._getters:
            self.items.append(item)
            return
        get = self._getters.popleft()
        get._value = item
        if get is self.sim._until:  # the event a run waits for: queued, so the run sees it
            self.sim._schedule(get, 0.0, NORMAL)
            return
        callbacks, get.callbacks = get.callbacks, None  # processed now, as the loop would
        for callback in callbacks:
            callback(get)

    def get(self) -> StoreGet:
        """An event that fires with the oldest item."""
        return StoreGet(self)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"<Store {self.name!r} items={len(self.items)} getters={len(self._getters)}>"


class StoreGet(Event):
    """The event returned by :meth:`Store.get`; ``since`` is when it was asked for."""

    __slots__ = ("store",)

    def __init__(self, store: Store):
        # perf: Event.__init__ inlined (two per gradient in sync training)
        self.sim = sim = store.sim
        self.callbacks = []
        self._value = PENDING
        self._ok = True
        self.since = sim.now
        self.store = store
        if store.items:
            self.succeed(store.items.popleft())
        else:
            store._getters.append(self)

    def _abandon(self, callback) -> None:
        super()._abandon(callback)
        if self.callbacks:
            return  # someone else still waits
        if self._value is PENDING:
            self.store._getters.remove(self)
        elif self.callbacks is not None:
            # triggered but not yet processed: give the item back, first in line (the
            # event stays queued and is processed later with nobody waiting)
            item, self._value = self._value, PENDING
            self.store.items.appendleft(item)
            if self.store._getters:
                self.store._getters.popleft().succeed(self.store.items.popleft())

    def __repr__(self) -> str:
        return f"<get from {self.store.name!r}>"


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
        # perf: the one inlined copy of Timeout.__init__ and _schedule (keep them in step):
        # it saves the class call and a frame on the kernel's most frequent event.
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
