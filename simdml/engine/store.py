"""Mailboxes: a FIFO store of items and the gets that wait for them."""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from .events import NORMAL, PENDING, Event

if TYPE_CHECKING:
    from .simulator import Simulator

__all__ = ["Store", "StoreGet"]


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

    def put(self, item, waited=None) -> None:
        """Add ``item``; the oldest waiting getter (if any) receives it now, first reported
        to ``waited(since)`` (if given) when it has waited since before now."""
        if self._getters:
            get = self._getters.popleft()
            if waited is not None and get.since < self.sim.now:
                waited(get.since)
            get.succeed(item)
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

    def _deliver(self, item, waited=None) -> None:
        """``put``, for a callback running inside the event loop (a message arriving):
        the oldest waiting getter receives ``item`` and its waiter resumes at once, at
        this same simulated time, instead of after an event of its own. So it resumes
        before the events queued behind this one for the same instant, as the (time,
        priority, insertion) order says: a message whose delivery was queued first wins
        an ``any_of`` against a timeout ending at that instant, and is taken before an
        interrupt or a crash queued after it. A getter that has waited since before now
        is first reported to ``waited(since)`` (if given), before its waiter resumes.

        Package-private, for the cluster's message path (perf: one event per message at
        the receiver, not two; the wait is reported from here, not read from
        ``oldest_get`` first). Not for a process's own code: the waiter would run before
        the putter yields.
        """
        if not self._getters:
            self.items.append(item)
            return
        get = self._getters.popleft()
        if waited is not None and get.since < self.sim.now:
            waited(get.since)
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
