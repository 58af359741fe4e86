"""Events, timeouts, processes and conditions: what a process yields, and itself."""
from __future__ import annotations

from heapq import heappush
from types import GeneratorType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["Event", "Timeout", "Process", "Condition", "Interrupt", "Deadlock", "PENDING",
           "URGENT", "NORMAL"]

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
        # time) and has no `since` (what waits on it is not stuck). perf: Simulator._schedule
        # inlined (a node's every computation is a Timeout made here)
        self.sim = sim
        self.callbacks = []
        self._value = value
        self._ok = True
        self.delay = delay
        heappush(sim._queue, (sim.now + delay, NORMAL, next(sim._eid), self))

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
