"""A node's memory: the ledger of the bytes it holds, by category, and its peak.

Every node has one (``node.memory``). What a node holds is booked where it changes, from
the sizes of the real arrays (``nbytes``), never from a formula of the scenario:

* the cluster books the message ``buffers`` itself: a message counts at its receiver from
  when it reaches the receiving NIC until a process takes it (or it is lost, skipped or
  emptied out by a crash);
* a strategy books the rest: ``set(category, nbytes)`` when what it holds changes (the
  model arrives, a gradient is computed, sent), ``hold`` / ``release`` for what comes and
  goes piece by piece (the gradients a server gathers).

The ledger keeps the running total and the **peak** with its breakdown at that moment.
A node whose total would exceed its ``limit`` raises :class:`OutOfMemory` at once, from
the booking that overflowed: the run ends there, with the exception's text as its stop
reason (``out of memory on worker3: needs 3.2 GB, has 2 GB (activations 2.1 GB, ...)``).

>>> m = Memory("worker0", limit=1000)
>>> m.set("shard", 600); m.set("params", 100); m.hold("grads", 100); m.set("grads", 0)
>>> m.total, m.peak, m.at_peak["grads"]
(700, 800, 100)
>>> m.set("activations", 400)
Traceback (most recent call last):
...
simdml.memory.OutOfMemory: out of memory on worker0: needs 1.1 kB, has 1 kB (shard 600 bytes, activations 400 bytes, params 100 bytes)

Not counted (see the README's memory section): Python's own objects, the temporaries of
one numpy expression, outgoing messages (they are the sender's own arrays, booked as what
they are until sent), and anything a strategy does not book.
"""
from __future__ import annotations

import math

from . import _checks

__all__ = ["CATEGORIES", "Memory", "OutOfMemory", "format_bytes"]

#: what a node holds; a strategy may book another name too (it is reported after these)
CATEGORIES = ("params", "grads", "optimizer", "activations", "buffers", "shard")

format_bytes = _checks.format_bytes


class OutOfMemory(Exception):
    """A node needed more memory than it has; the text is the run's stop reason."""

    def __init__(self, node: str, needs: int, has: float, held: dict, at: float):
        self.node, self.needs, self.has, self.held, self.at = node, needs, has, held, at
        parts = sorted(((n, c) for c, n in held.items() if n), key=lambda p: -p[0])
        breakdown = ", ".join(f"{c} {format_bytes(n)}" for n, c in parts)
        digits = 3  # more, when 3 would print the same need and limit (2.03 kB, 2.03 kB)
        while digits < 15 and format_bytes(needs, digits) == format_bytes(has, digits):
            digits += 1
        super().__init__(f"out of memory on {node}: needs {format_bytes(needs, digits)}, has "
                         f"{format_bytes(has, digits)} ({breakdown})")


class Memory:
    """The bytes one node holds, by category; the peak and its breakdown; the limit.

    Parameters
    ----------
    node : str
        The node's name (for the message of :class:`OutOfMemory`).
    limit : float
        Bytes the node has, > 0; ``inf`` (the default) never runs out.
    sim : optional
        Anything with a ``now`` (the simulator): when the peak happened. None: 0.

    Attributes
    ----------
    held : dict
        category -> bytes held now (every category of ``CATEGORIES``, 0 if nothing).
    total, peak : int
        Bytes held now, and the most ever held at once.
    at_peak : dict
        ``held`` at the moment of the peak; ``peak_time`` (s) when it was.
    most : dict
        category -> the most bytes it ever held (each at its own moment: a pipeline's
        activations peak when its buffers do not).
    """

    # perf: a ledger call or two per message and per gradient; no per-call validation
    __slots__ = ("node", "limit", "held", "total", "peak", "at_peak", "peak_time", "most",
                 "_sim")

    def __init__(self, node: str, limit: float = math.inf, sim=None):
        if limit != math.inf:  # perf: the check is most of a ledger's making (10,000 nodes)
            _checks.number(f"memory of node {node}", limit, low=0, strict_low=True,
                           finite=False, unit="bytes")
        self.node = node
        self.limit = float(limit)
        self.held = dict.fromkeys(CATEGORIES, 0)
        self.total = 0
        self.peak = 0
        self.at_peak = dict(self.held)
        self.peak_time = 0.0
        self.most = dict(self.held)
        self._sim = sim

    def __repr__(self) -> str:
        return (f"<Memory {self.node}: {format_bytes(self.total)} held, peak "
                f"{format_bytes(self.peak)} of {format_bytes(self.limit)}>")

    def set(self, category: str, nbytes: int) -> None:
        """Hold ``nbytes`` of ``category`` from now on (instead of what it held)."""
        held = self.held
        self.total += nbytes - held.get(category, 0)
        held[category] = nbytes
        if nbytes > self.most.get(category, 0):
            self.most[category] = nbytes
        if self.total > self.peak:
            self._new_peak()

    def hold(self, category: str, nbytes: int) -> None:
        """Hold ``nbytes`` more of ``category``."""
        held = self.held
        now = held[category] = held.get(category, 0) + nbytes
        self.total += nbytes
        if now > self.most.get(category, 0):
            self.most[category] = now
        if self.total > self.peak:
            self._new_peak()

    def release(self, category: str, nbytes: int) -> None:
        """Hold ``nbytes`` less of ``category``."""
        self.held[category] -= nbytes
        self.total -= nbytes

    def free(self, category: str) -> None:
        """Hold nothing of ``category`` any more."""
        self.total -= self.held.get(category, 0)
        self.held[category] = 0

    def crash(self) -> None:
        """The node crashed: it holds nothing any more but its shard (its data are reloaded
        at the restart: kept booked, a simplification)."""
        for category in self.held:
            if category != "shard":
                self.held[category] = 0
        self.total = self.held["shard"]

    def _new_peak(self) -> None:
        # the peak is booked even when it overflows: the report shows what was needed
        self.peak = self.total
        self.at_peak = dict(self.held)
        self.peak_time = self._sim.now if self._sim is not None else 0.0
        if self.total > self.limit:
            raise OutOfMemory(self.node, self.total, self.limit, self.at_peak, self.peak_time)

    def report(self) -> dict:
        """``peak`` (bytes), ``peak_time`` (s), ``limit`` (bytes), ``breakdown`` (bytes
        per category at the peak, in the order of ``CATEGORIES``) and ``most`` (the most
        of each category ever held, each at its own moment)."""
        return {"peak": self.peak, "peak_time": self.peak_time, "limit": self.limit,
                "breakdown": dict(self.at_peak), "most": dict(self.most)}
