"""Network topologies: the links a message crosses, and the queue of every link.

The default topology, ``switch``, is no graph at all: every node's NIC is a pair of
queues (one sending, one receiving) on a perfect switch, and a message of ``b`` bytes
costs ``latency + b / bandwidth`` (``simdml.cluster``). Every other topology is a graph
of **links**, one per direction of each cable, between vertices that are the nodes
(hosts: the server is node 0, worker ``i`` node ``i + 1``) and switches:

* ``ring``: worker ``i`` is cabled to workers ``i - 1`` and ``i + 1`` (mod ``n``);
* ``torus``: ``rows x cols`` workers on a 2-D grid that wraps round, each cabled to its
  four neighbours (worker ``r * cols + c`` at row ``r``, column ``c``);
* ``racks`` (alias ``fat_tree``): ``hosts_per_rack`` consecutive workers hang off their
  rack's top-of-rack switch; each rack's switch has one uplink to a core switch, of
  ``hosts_per_rack * bandwidth / oversubscription`` bytes/s (a two-level fat tree whose
  rack uplinks are aggregated into one);
* ``links``: an explicit graph, ``network.links`` entries between ``"server"``, worker
  indices and switches (any other name).

The server is cabled to worker 0 (``ring``, ``torus``) or to the core switch
(``racks``). On ``ring`` and ``torus`` every link has the network's ``latency`` and
``bandwidth``; on ``racks`` every link has half the latency, so that a message inside a
rack costs what it costs on the switch (two links) and one between racks twice that
(four links).

**Routing.** The path with the fewest links, ties broken the same way every time
(breadth-first search visiting neighbours in the order of their vertex numbers: nodes
by index, then switches in the order they were made).

**Link model.** A link serves the messages in the order they reach it, each for
``nbytes / bandwidth`` of its time, and delivers its first byte ``latency`` later; a
message cannot leave a link before its last byte has arrived there. A switch passes a
message on as it comes (cut-through: the next link may start as soon as the first byte
is in); a host that forwards a message (on a ring or a torus) first receives it whole
(store-and-forward), so ``h`` hops alone cost ``h (latency + nbytes / bandwidth)``. A
fast link fed by slow ones serves them side by side, as interleaved packets would: its
throughput never exceeds its bandwidth, and contention -- incast on a server's link,
hot spots, an oversubscribed uplink -- emerges from the messages themselves.

Simplifications: one path per pair (no multipath or adaptive routing); no flow control
or packet loss from full buffers (a queue is unbounded); forwarding costs a host no
compute; the bytes a crashed host had queued still occupy its links.
"""
from __future__ import annotations

import math
from collections import deque

from .cluster import _Transfer

_new = object.__new__

__all__ = ["Link", "Topology", "TOPOLOGIES", "ALIASES", "build_topology", "torus_shape"]

TOPOLOGIES = ("switch", "ring", "torus", "racks", "links")
ALIASES = {"fat_tree": "racks"}


class Link:
    """One direction of a cable: a FIFO queue with a latency (s) and a bandwidth (bytes/s),
    and what crossed it."""

    __slots__ = ("name", "latency", "bandwidth", "head", "store", "free", "nbytes", "messages")

    def __init__(self, name: str, latency: float, bandwidth: float, head: int, store: bool):
        self.name = name
        self.latency = float(latency)
        self.bandwidth = float(bandwidth)
        self.head = head      # the vertex it leads to
        self.store = store    # that vertex is a host: it stores a message whole, then forwards
        self.free = 0.0       # when it can start on the next message (s)
        self.nbytes = 0       # bytes that entered it
        self.messages = 0

    def __repr__(self) -> str:
        return f"<Link {self.name} {self.latency:g} s {self.bandwidth:g} B/s>"


class Topology:
    """A graph of links over ``n_nodes`` hosts (vertices ``0 .. n_nodes - 1``, the nodes by
    index) and switches (the vertices after them), with its routes."""

    def __init__(self, name: str, n_nodes: int, names: list[str]):
        self.name = name
        self.n_nodes = n_nodes
        self.names = list(names)   # a vertex's name: node names, then switch names
        self._out: list[list[tuple[int, Link]]] = [[] for _ in names]
        self.links: list[Link] = []
        self._parents: dict[int, list[int]] = {}   # per source, its shortest-path tree
        self._routes: dict[tuple[int, int], tuple[Link, ...]] = {}

    def add_switch(self, name: str) -> int:
        self.names.append(name)
        self._out.append([])
        return len(self.names) - 1

    def cable(self, a: int, b: int, latency: float, bandwidth: float) -> None:
        """Two links, ``a -> b`` and ``b -> a``, with the same latency and bandwidth."""
        for tail, head in ((a, b), (b, a)):
            link = Link(f"{self.names[tail]}->{self.names[head]}", latency, bandwidth, head,
                        store=head < self.n_nodes)
            self._out[tail].append((head, link))
            self.links.append(link)
        for out in (self._out[a], self._out[b]):
            out.sort(key=lambda edge: edge[0])

    def route(self, src: int, dst: int) -> tuple[Link, ...]:
        """The links from node ``src`` to node ``dst``, in order (fewest, fixed ties)."""
        route = self._routes.get((src, dst))
        if route is None:
            parents = self._parents.get(src)
            if parents is None:
                parents = self._parents[src] = self._tree(src)
            if parents[dst] < 0:
                raise ValueError(f"no route from {self.names[src]} to {self.names[dst]} "
                                 f"in the {self.name!r} topology")
            hops, v = [], dst
            while v != src:
                u = parents[v]
                hops.append(next(link for head, link in self._out[u] if head == v))
                v = u
            route = self._routes[(src, dst)] = tuple(reversed(hops))
        return route

    def _tree(self, src: int) -> list[int]:
        """Breadth-first search from ``src``: each vertex's parent (-1: unreachable)."""
        parents = [-1] * len(self.names)
        parents[src] = src
        frontier = deque([src])
        while frontier:
            u = frontier.popleft()
            for v, _ in self._out[u]:
                if parents[v] < 0:
                    parents[v] = u
                    frontier.append(v)
        return parents

    # -- the message path (the cluster's nodes call transmit; the rest are callbacks) --
    def transmit(self, node, dst, payload, nbytes: int, now: float) -> float:
        """Queue a message from ``node`` to ``dst`` on the first link of its route; its
        events take it over the others. Returns when it has left ``node``."""
        network = node.cluster.network
        route = self.route(node.index, dst.index)
        t = _new(_Transfer)
        t.src, t.dst, t.payload, t.nbytes = node, dst, payload, nbytes
        t.src_epoch, t.route, t.hop, t.last = node.epoch, route, 0, now
        start, end = self._book(t, now)
        t.tx_end = end
        node.bytes_sent += nbytes
        node.messages_sent += 1
        node._span("send", start, end, nbytes)
        if network.drops() or (network.partitions and network.cut(node.index, dst.index)):
            node.cluster.lose(end)
        else:
            self._pass_on(t, now)
        return end

    def _hop(self, t: _Transfer) -> None:
        """The first byte of ``t`` reaches the next link of its route: queue it there."""
        at, cluster = t.route[t.hop - 1].head, t.src.cluster  # a host forwards only while up
        if at < self.n_nodes and not cluster.nodes[at].is_up:
            cluster.lose(t.tx_end)
            return
        now = cluster.sim.now
        self._book(t, now)
        self._pass_on(t, now)

    @staticmethod
    def _book(t: _Transfer, now: float) -> tuple[float, float]:
        """Queue ``t`` on its next link, its first byte in at ``now``: the link serves it
        for ``nbytes / bandwidth`` once free, and it leaves no sooner than its last byte
        came in (``t.last``, then updated to when the last byte is through)."""
        link = t.route[t.hop]
        start = link.free if link.free > now else now
        link.free = end = start + t.nbytes / link.bandwidth
        if end < t.last:
            end = t.last
        link.nbytes += t.nbytes
        link.messages += 1
        t.last = end + link.latency
        t.duration = end - now  # the last link: how long its receiver hears it
        return start, end

    def _pass_on(self, t: _Transfer, now: float) -> None:
        """Send ``t`` on from the link just booked: to the receiver, who hears it from its
        first byte on; to a switch, which passes it on at once; to a host, once whole."""
        link = t.route[t.hop]
        t.hop += 1
        sim = t.src.sim
        if t.hop == len(t.route):
            sim._fire_at(t, now + link.latency, t.dst._arrive_routed_cb)
        else:
            sim._fire_at(t, t.last if link.store else now + link.latency, self._hop)

    def unreachable(self, src: int = 0) -> list[str]:
        """The nodes that no route joins to node ``src``."""
        parents = self._tree(src)
        return [self.names[v] for v in range(self.n_nodes) if parents[v] < 0]

    def time_alone(self, nbytes: int, src: int, dst: int) -> float:
        """How long a message takes from ``src`` to ``dst`` on an idle network: the
        link model of the module's docstring with every queue empty."""
        first = last = 0.0   # when the first and the last byte reach the next link
        for link in self.route(src, dst):
            start = first
            end = max(start + nbytes / link.bandwidth, last)
            last = end + link.latency
            first = last if link.store else start + link.latency
        return last

    def report(self, elapsed: float) -> dict[str, dict]:
        """Per link that carried anything: ``bytes``, ``messages``, ``busy`` (s of
        transmission, bytes / bandwidth) and ``utilization`` (busy / elapsed)."""
        out = {}
        for link in self.links:
            if link.messages:
                busy = link.nbytes / link.bandwidth
                out[link.name] = {"bytes": link.nbytes, "messages": link.messages,
                                  "busy": busy,
                                  "utilization": busy / elapsed if elapsed > 0 else 0.0}
        return out


def torus_shape(n: int) -> tuple[int, int]:
    """The most square ``rows x cols = n`` with ``rows <= cols``."""
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    return rows, n // rows


def build_topology(name: str, names: list[str], *, latency: float, bandwidth: float,
                   shape: tuple | None = None, hosts_per_rack: int = 1,
                   oversubscription: float = 1.0, edges=()) -> Topology | None:
    """The topology ``name`` over the nodes ``names`` (the server first, then the
    workers); ``None`` for the switch. ``edges``: ``(a, b, latency, bandwidth)`` with
    ``a``, ``b`` vertex names (``links``: names that are not nodes are switches)."""
    name = ALIASES.get(name, name)
    if name == "switch":
        return None
    topo = Topology(name, len(names), names)
    workers = list(range(1, len(names)))
    if name == "ring":
        _ring(topo, workers, latency, bandwidth)
        _attach_server(topo, workers, latency, bandwidth)
    elif name == "torus":
        rows, cols = shape or torus_shape(len(workers))
        for r in range(rows):
            _ring(topo, workers[r * cols:(r + 1) * cols], latency, bandwidth)
        for c in range(cols):
            _ring(topo, workers[c::cols], latency, bandwidth)
        _attach_server(topo, workers, latency, bandwidth)
    elif name == "racks":
        core = topo.add_switch("core")
        uplink = hosts_per_rack * bandwidth / oversubscription
        for j, first in enumerate(range(0, len(workers), hosts_per_rack)):
            tor = topo.add_switch(f"rack{j}")
            topo.cable(tor, core, latency / 2, uplink)
            for w in workers[first:first + hosts_per_rack]:
                topo.cable(w, tor, latency / 2, bandwidth)
        topo.cable(0, core, latency / 2, bandwidth)
    elif name == "links":
        index = {n: i for i, n in enumerate(names)}
        for a, b, lat, bw in edges:
            for end in (a, b):
                if end not in index:
                    index[end] = topo.add_switch(end)
            topo.cable(index[a], index[b], lat, bw)
    else:
        raise ValueError(f"unknown topology {name!r}; known: "
                         f"{', '.join((*TOPOLOGIES, *ALIASES))}")
    return topo


def _ring(topo: Topology, hosts: list[int], latency: float, bandwidth: float) -> None:
    """Cable ``hosts`` in a cycle (two hosts: one cable; one host: none)."""
    n = len(hosts)
    for k in range(n if n > 2 else n - 1):
        topo.cable(hosts[k], hosts[(k + 1) % n], latency, bandwidth)


def _attach_server(topo: Topology, workers: list[int], latency: float, bandwidth: float) -> None:
    topo.cable(0, workers[0], latency, bandwidth)
