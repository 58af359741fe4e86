"""The virtual cluster: nodes that compute, a network that carries messages.

Time model
----------
* compute: a job of ``flops`` has the nominal duration ``t0 = flops / speed``; the node's
  compute-time distribution turns ``t0`` into a sampled duration, multiplied by the
  node's ``slowdown`` (a permanent straggler has ``slowdown > 1``).
* network: a message of ``b`` bytes from ``a`` to ``c`` takes
  ``latency(a, c) + b / bandwidth(a, c)``. Each NIC sends one message at a time and
  receives one at a time, first come first served: the sender's NIC is busy for
  ``b / bandwidth`` from when it is free, the first bit arrives ``latency`` later, and
  the receiver's NIC then needs ``b / bandwidth`` of its own, after the messages that
  arrived before. So n workers pushing to one server serialize on the server's NIC:
  the last of n simultaneous messages arrives at ``latency + n * b / bandwidth``.
* failures: a crashed node stops computing, sending and receiving. Its processes are
  interrupted with ``Interrupt(Crash(...))``, its mailbox is emptied, messages it was
  sending or receiving are lost. A recovered node restarts the programs started on it.

Everything a node does is recorded as a :class:`Span` (``node``, ``kind``, ``start``,
``end``, ``nbytes``) in ``cluster.spans``; observing costs no simulated time.
"""
from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass

import numpy as np

from . import _checks
from ._span import Span
from .engine import Event, Process, Simulator, Store, Timeout
from .compute_times import COMPUTE_TIMES
from .memory import Memory
from .network import Network, payload_nbytes

__all__ = ["COMPUTE_TIMES", "Crash", "Node", "Cluster", "Span"]

_INF = math.inf
_new = object.__new__


@dataclass(frozen=True)
class Crash:
    """The cause of the ``Interrupt`` a process receives when its node crashes."""

    node: str
    at: float  # simulated time of the crash (s)




class _Work(Timeout):
    """A computation on a node: a timeout that knows its trace span."""

    __slots__ = ("span",)

    @property
    def ends_at(self) -> float:
        """When the work ends (s): as planned, or when a crash or ``abandon`` cut it."""
        return self.span.end


class _Transfer(Event):
    """One message on its way; the same event object is queued for arrival, then delivery."""

    __slots__ = ("src", "dst", "payload", "nbytes", "duration", "tx_end", "src_epoch", "dst_epoch",
                 "route", "hop", "last")  # on a topology: its links, the next one, when its
                                          # last byte reaches that link (simdml.topology)

    def is_cut_by_sender(self) -> bool:
        """Whether the sender crashed before the last byte left its NIC (at ``tx_end``)."""
        src = self.src
        return src.epoch != self.src_epoch and src.crash_times[self.src_epoch] < self.tx_end


class Node:
    """A machine of the cluster: computes at ``speed`` flop/s, sends and receives messages.

    Processes running on a node use its events: ``yield node.compute(flops)``,
    ``yield node.send(dst, payload)``, ``payload = yield node.recv()``.
    """

    def __init__(self, cluster: Cluster, name: str, index: int, *, speed: float = 1e9,
                 compute_time: str = "deterministic", jitter: float = 0.0,
                 slowdown: float = 1.0, rng: np.random.Generator | None = None,
                 memory: float = _INF):
        if compute_time not in COMPUTE_TIMES:
            raise ValueError(f"unknown compute_time {compute_time!r}; known: "
                             f"{', '.join(COMPUTE_TIMES)}")
        _checks.number(f"speed of node {name}", speed, low=0, strict_low=True, finite=False,
                       unit="flop/s")
        _checks.finite_number(f"jitter of node {name}", jitter, low=0)
        _checks.finite_number(f"slowdown of node {name}", slowdown, low=0, strict_low=True)
        if compute_time != "deterministic" and rng is None:
            raise ValueError(f"node {name}: a random compute_time needs an rng")
        self.cluster = cluster
        self.sim: Simulator = cluster.sim
        self.name = name
        self.index = index
        self.speed = float(speed)
        self.compute_time = compute_time
        self._sample = COMPUTE_TIMES[compute_time]
        self.jitter = float(jitter)
        self.slowdown = float(slowdown)
        self.rng = rng
        self.mailbox = Store(self.sim, name=f"{name}.mailbox")
        self.memory = Memory(name, memory, self.sim)  # bytes held (memory.py); limit in bytes
        self._queued = deque()  # (payload, nbytes) booked as buffers, in the mailbox's order
        self.is_up = True
        self.recovery_due: float | None = None  # when a crashed node is due back, if known
        self.epoch = 0  # incremented at each crash
        self._crash_times = array("d")  # 8 bytes a crash: a run may crash millions of times
        self._tx_free = 0.0  # when the NIC can start sending the next message
        self._rx_free = 0.0  # when the NIC can start receiving the next message
        self._programs: list[tuple] = []
        self._down_events: list = []  # events waiting for this node's next crash
        self.processes: list[Process] = []
        self._open: list[Span] = []  # spans that may still be running (cut short by a crash)
        self._open_limit = 16
        self._record = cluster.spans if cluster.record_spans else None  # where spans go
        self.totals = dict.fromkeys(("compute", "send", "recv", "wait", "down", "checkpoint"),
                                    0.0)  # seconds
        self.bytes_sent = 0
        self.messages_sent = 0
        # perf: bound once, not once per message
        self._arrive_cb, self._deliver_cb = self._arrive, self._deliver
        self._arrive_routed_cb = self._arrive_routed
        self._waited_cb = self.waited

    def __repr__(self) -> str:
        return f"<Node {self.name} speed={self.speed:g} flop/s>"

    @property
    def crash_times(self) -> tuple[float, ...]:
        """When this node crashed (s), oldest first; ``crash_times[e]`` ended epoch ``e``."""
        return tuple(self._crash_times)

    @property
    def last_crash_time(self) -> float | None:
        """When this node last crashed (s), or None if it never did."""
        return self._crash_times[-1] if self._crash_times else None

    # -- what processes yield -------------------------------------------------
    def compute(self, flops: float) -> Timeout:
        """An event that fires when ``flops`` operations are done on this node."""
        if not self.is_up:
            raise RuntimeError(f"node {self.name} is down and cannot compute")
        t0 = flops / self.speed
        duration = self._sample(t0, self.jitter, self.rng) * self.slowdown
        work = _Work(self.sim, duration)
        work.span = self._span("compute", self.sim.now, work.delay + self.sim.now, 0)
        return work

    def checkpoint(self, seconds: float) -> Timeout:
        """An event that fires when a checkpoint taking ``seconds`` is written (the node
        is busy meanwhile; no jitter: writing state is I/O, not computation)."""
        if not self.is_up:
            raise RuntimeError(f"node {self.name} is down and cannot checkpoint")
        work = _Work(self.sim, seconds)
        work.span = self._span("checkpoint", self.sim.now, self.sim.now + seconds, 0)
        return work

    def abandon(self, work: _Work) -> None:
        """Stop a computation before it ends (its result is no longer wanted).

        The node is free at once; the trace shows the work as ``compute_dropped``.
        """
        span = work.span
        if span.end > self.sim.now and span.kind == "compute":
            self._cut(span, self.sim.now, "_dropped")

    def _cut(self, span: Span, at: float, suffix: str) -> None:
        """End ``span`` at ``at`` (no later than it began) and mark why."""
        start = min(span.start, at)
        self.totals[span.kind] -= (span.end - span.start) - (at - start)
        span.start, span.end = start, at
        span.kind += suffix

    def send(self, dst: Node, payload, nbytes: int | None = None) -> Timeout:
        """Send ``payload`` to ``dst``'s mailbox; the event fires when it has left this NIC
        (a sender that does not wait for that uses ``post``)."""
        if nbytes is None:
            nbytes = payload_nbytes(payload)
        return self.sim.timeout(self._transmit(dst, payload, nbytes) - self.sim.now)

    def post(self, dst: Node, payload, nbytes: int | None = None) -> float:
        """``send`` without the event, for a sender that goes on at once (a ring step, a
        reply): the same message at the same times; returns when it will have left."""
        if nbytes is None:
            nbytes = payload_nbytes(payload)
        return self._transmit(dst, payload, nbytes)

    def broadcast(self, dsts, payload, nbytes: int | None = None) -> Timeout:
        """Send ``payload`` to each node of ``dsts``, one copy after the other on this NIC
        (its size computed once); the event fires when the last copy has left."""
        if nbytes is None:
            nbytes = payload_nbytes(payload)
        last = self.sim.now
        for dst in dsts:
            last = self._transmit(dst, payload, nbytes)
        return self.sim.timeout(last - self.sim.now)

    def _transmit(self, dst: Node, payload, nbytes: int) -> float:
        """Queue one message on this NIC; returns when its last byte will have left."""
        if not self.is_up:
            raise RuntimeError(f"node {self.name} is down and cannot send")
        sim = self.sim
        now = sim.now
        network = self.cluster.network
        if network.topology is not None:
            return network.topology.transmit(self, dst, payload, nbytes, now)
        latency, bandwidth = network.link(self.index, dst.index)
        duration = nbytes / bandwidth
        start = self._tx_free if self._tx_free > now else now
        end = start + duration
        self._tx_free = end
        self.bytes_sent += nbytes
        self.messages_sent += 1
        self._span("send", start, end, nbytes)
        if not network.drops() and not (network.partitions and network.cut(self.index, dst.index)):
            # perf: no __init__ frame (the kernel's _fire_at makes it an event) and no
            # checks (start + latency >= now by construction): one per message
            t = _new(_Transfer)
            t.src, t.dst, t.payload, t.nbytes = self, dst, payload, nbytes
            t.duration, t.tx_end, t.src_epoch = duration, end, self.epoch
            sim._fire_at(t, start + latency, dst._arrive_cb)
        else:
            self.cluster.lose(end)
        return end

    def recv(self):
        """An event that fires with the next payload delivered to this node."""
        items, queued = self.mailbox.items, self._queued
        if queued and items and items[0] is queued[0][0]:  # taken now: the process holds it
            self.memory.release("buffers", queued.popleft()[1])
        return self.mailbox.get()

    def skip_to_newest(self, payload):
        """``payload``, or the newest one already waiting in the mailbox (older ones are
        dropped and counted): a worker that fell behind skips models it has no use for."""
        items = self.mailbox.items
        if items:
            self.cluster.messages_skipped += len(items)
            payload = items[-1]
            items.clear()
            while self._queued:  # skipped, or taken: out of the buffers either way
                self.memory.release("buffers", self._queued.popleft()[1])
        return payload

    # -- message path (callbacks; they run inside the event loop) ----------------
    def _arrive(self, t: _Transfer) -> None:
        if t.is_cut_by_sender():
            self.cluster.lose(t.tx_end)  # the sender crashed before the message left
            return
        if not self.is_up:
            self.cluster.lose(t.tx_end)
            return
        now = self.sim.now
        start = self._rx_free if self._rx_free > now else now
        end = start + t.duration
        self._rx_free = end
        self._span("recv", start, end, t.nbytes)
        self.memory.hold("buffers", t.nbytes)  # at this node until a process takes it
        t.dst_epoch = self.epoch
        self.sim._fire_at(t, end, self._deliver_cb)  # the same event, queued again

    def _arrive_routed(self, t: _Transfer) -> None:
        """The first byte of ``t`` is here (its last link is booked): receive it until its
        last byte is in, ``t.duration`` from now."""
        if t.is_cut_by_sender() or not self.is_up:
            self.cluster.lose(t.tx_end)
            return
        now = self.sim.now
        self._span("recv", now, now + t.duration, t.nbytes)
        self.memory.hold("buffers", t.nbytes)
        t.dst_epoch = self.epoch
        self.sim._fire_at(t, now + t.duration, self._deliver_cb)

    def _deliver(self, t: _Transfer) -> None:
        if self.epoch != t.dst_epoch or not self.is_up:
            self.cluster.lose(t.tx_end)  # crashed while receiving (the crash freed it)
            return
        if t.is_cut_by_sender():
            # when latency < b / bandwidth the first bit arrives before the last one
            # leaves: a sender crash in between must still lose the message
            self.cluster.lose(t.tx_end)
            self.memory.release("buffers", t.nbytes)
            return
        self.cluster.messages_delivered += 1
        if self.mailbox.oldest_get is None:  # nobody waits: it stays in the buffers
            self._queued.append((t.payload, t.nbytes))
        else:  # a process takes it at once
            self.memory.release("buffers", t.nbytes)
        self.mailbox._deliver(t.payload, self._waited_cb)

    def _span(self, kind: str, start: float, end: float, nbytes: int) -> Span:
        """Account for a period of activity: in the node's running totals always, in the
        cluster's list of spans when it records them."""
        # perf: Span.__init__ inlined, a class call and a frame fewer (its frame was most of
        # a span's cost; several spans per message)
        span = _new(Span)
        span.node = self.name
        span.kind = kind
        span.start = start
        span.end = end
        span.nbytes = nbytes
        self.totals[kind] += end - start
        if self._record is not None:
            self._record.append(span)
        if end > self.sim.now:
            self._open.append(span)
            if len(self._open) > self._open_limit:
                self._prune()
        return span

    def waited(self, since: float) -> None:
        """Account for waiting from ``since`` until now (on the mailbox, or on a queue its
        demultiplexer fills): a span already over, so (perf) no span unless recorded."""
        now = self.sim.now
        self.totals["wait"] += now - since
        if self._record is not None:
            span = _new(Span)  # perf: as in _span
            span.node = self.name
            span.kind = "wait"
            span.start = since
            span.end = now
            span.nbytes = 0
            self._record.append(span)

    def stop_recording(self) -> None:
        """Keep no more spans in the cluster's list (the running totals go on)."""
        self._record = None

    def open_spans(self) -> list[Span]:
        """The spans that may still be running: every one that ends after now is here."""
        return list(self._open)

    def _prune(self) -> None:
        # Only when the list has doubled: amortized O(1) per span, even for a server
        # with thousands of queued sends.
        now = self.sim.now
        self._open = [s for s in self._open if s.end > now]
        self._open_limit = max(16, 2 * len(self._open))

    # -- programs, crashes and recovery ------------------------------------------
    def start(self, program, *args, name: str | None = None) -> Process:
        """Run ``program(*args)`` (a generator function) on this node as a process.

        The program is remembered: after a crash and recovery it is started again
        (it resumes from whatever state it keeps, e.g. the server's last checkpoint).
        """
        self._programs.append((program, args, name))
        return self._launch(program, args, name)

    def _launch(self, program, args, name) -> Process:
        proc = self.sim.process(program(*args), name=name or f"{program.__name__}@{self.name}")
        self.processes.append(proc)
        return proc

    def crash(self) -> bool:
        """Stop this node now: processes interrupted, mailbox emptied, work lost.

        Returns False (and does nothing) when the node is already down."""
        if not self.is_up:
            return False
        now = self.sim.now
        self.is_up = False
        self.epoch += 1
        self._crash_times.append(now)
        for span in self._open:
            if span.end > now:  # running, or queued behind others: cut at the crash
                self._cut(span, now, "_lost")
        self._open.clear()
        for getter in self.mailbox.getters:
            if getter.since < now:
                self.waited(getter.since)
        self.mailbox.items.clear()
        self._queued.clear()
        self.memory.crash()
        cause = Crash(self.name, now)
        for proc in self.processes:
            if proc.is_alive:
                proc.interrupt(cause)
        self.processes = []
        events, self._down_events = self._down_events, []
        for event in events:
            event.succeed(cause)
        self.cluster.instant(self.name, "crash")
        return True

    def when_down(self):
        """An event that fires (with the ``Crash``) at this node's next crash: what a
        failure detector watches."""
        event = self.sim.event()
        self._down_events.append(event)
        return event

    def recover(self) -> None:
        """Bring a crashed node back and restart its programs."""
        if self.is_up:
            return
        now = self.sim.now
        self.is_up = True
        self.recovery_due = None
        self._tx_free = self._rx_free = now
        self._span("down", self.last_crash_time, now, 0)
        self.cluster.instant(self.name, "recover")
        for program, args, name in self._programs:
            self._launch(program, args, name)


class Cluster:
    """Nodes and a network on one simulator, with the trace of what they did.

    Every node keeps running totals of its time per kind of activity. With
    ``record_spans=False`` the individual spans are not kept: memory stays flat however
    many messages a run sends, but there is no timeline to draw.
    """

    def __init__(self, sim: Simulator, network: Network | None = None, *,
                 record_spans: bool = True):
        self.sim = sim
        self.network = network or Network()
        self.nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}  # a dict: 10,000 workers must not cost n^2 checks
        self.spans: list[Span] = []       # if recorded
        self.record_spans = record_spans
        self.instants: list[tuple] = []   # (time, node, kind)
        self.trace_cut_at: float | None = None  # when spans and instants stopped being kept
        self.messages_lost = 0
        self.messages_delivered = 0
        self.messages_skipped = 0  # delivered, then superseded by a newer one unread

    def lose(self, nic_busy_until: float) -> None:
        """Count a lost message; its sender's NIC is busy until ``nic_busy_until`` all the
        same, so no run ends or stalls sooner (``send``'s event marks that, ``post`` has
        none; a delivered message's own events always outlast its sending)."""
        self.messages_lost += 1
        if nic_busy_until > self.sim.now:                  # the very timeout send makes
            self.sim.timeout(nic_busy_until - self.sim.now)

    def link_report(self) -> dict[str, dict]:
        """Per link of the topology that carried a message: bytes, messages, busy seconds
        and utilization over the run so far; empty on the default switch."""
        topology = self.network.topology
        return {} if topology is None else topology.report(self.sim.now)

    def instant(self, node: str, kind: str) -> None:
        """Record that ``kind`` (crash, recover, partition, heal) happened at ``node`` now."""
        if self.trace_cut_at is None:
            self.instants.append((self.sim.now, node, kind))

    def cut_trace(self) -> None:
        """Keep no more spans or instants from now on, so that the trace's memory stays
        bounded however long the run goes; the nodes' running totals stay exact."""
        if self.trace_cut_at is None:
            self.trace_cut_at = self.sim.now
            for node in self.nodes:
                node.stop_recording()

    def add_node(self, name: str, **kwargs) -> Node:
        """Add a node; its index is its position in ``nodes`` (used by ``Network.links``)."""
        if name in self._by_name:
            raise ValueError(f"a node named {name!r} already exists")
        node = Node(self, name, len(self.nodes), **kwargs)
        self.nodes.append(node)
        self._by_name[name] = node
        return node

    def node(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no node named {name!r}; nodes: "
                           f"{', '.join(n.name for n in self.nodes)}") from None

    def overrun(self, end: float) -> dict[str, dict[str, float]]:
        """Per node and kind, the seconds of activity planned beyond ``end`` (to clip)."""
        out = {}
        for n in self.nodes:
            for span in n.open_spans():
                if span.end > end:
                    kind = out.setdefault(n.name, {}).setdefault(span.kind, 0.0)
                    out[n.name][span.kind] = kind + span.end - max(span.start, end)
        return out

    def open_waits(self) -> list[tuple[str, float]]:
        """``(node, since)`` for every process now blocked on an empty mailbox."""
        return [(n.name, g.since) for n in self.nodes for g in n.mailbox.getters]

    @property
    def bytes_sent(self) -> int:
        return sum(n.bytes_sent for n in self.nodes)

    @property
    def messages_sent(self) -> int:
        return sum(n.messages_sent for n in self.nodes)
