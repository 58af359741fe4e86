"""The sections of the machine a scenario runs on: ``[cluster]``, ``[network]`` (with
its ``links``) and ``[faults]`` (with its ``crash`` and ``partition`` entries); one frozen
dataclass each, validated when built (``simdml._section``: the errors name the dotted
key). ``simdml.sections`` re-exports them with the other sections.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from . import _checks
from ._section import (ScenarioError, _check, _integer, _list, _node_ref, _number,
                       _per_item, _section, _store, _table, _choice)
from .aggregation import ATTACKS
from .cluster import COMPUTE_TIMES
from .topology import ALIASES as TOPOLOGY_ALIASES
from .topology import TOPOLOGIES, Topology, build_topology

__all__ = ["ClusterConfig", "NetworkConfig", "LinkConfig", "FaultsConfig", "CrashConfig",
           "PartitionConfig"]

_INF = math.inf
NODE_NBYTES = 16_000  # a node as a run holds it, roughly: ~3 kB built (measured), and its
                     # mailbox, streams and trace totals grow during the run


@_section("cluster")
@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    workers: int = 4                       # number of worker nodes (the server is extra)
    speed: float | tuple = 1e9             # flop/s of each worker; a number or one per worker
    server_speed: float = 1e10             # flop/s; a server is typically a bigger machine
    compute_time: str = "deterministic"    # distribution of a job's duration around flops/speed
    jitter: float = 0.0                    # dispersion of compute_time (see README), >= 0
    slowdown: float | tuple = 1.0          # duration multiplier per worker; > 1 is a straggler
    memory: float | tuple = _INF           # bytes of memory of each worker; a number or one per
                                           # worker; inf: unlimited (the peak is still reported)
    server_memory: float = _INF            # bytes of memory of the server; inf: unlimited

    def __post_init__(self):
        _integer("cluster.workers", self.workers, low=1)
        # before the per-worker tuples below: 2**31 - 1 workers would be a 16 GB tuple
        _check(_checks.fits_in_memory, f"cluster.workers={self.workers}",
               f"{self.workers + 1:.2g} nodes of {NODE_NBYTES // 1000} kB",
               nbytes=(self.workers + 1) * NODE_NBYTES)
        _store(self, "speed", _per_item("cluster.speed", self.speed, self.workers, "cluster.workers",
                                        low=0, strict_low=True, finite=False, unit="flop/s"))
        _number("cluster.server_speed", self.server_speed, low=0, strict_low=True,
                finite=False, unit="flop/s")
        _choice("cluster.compute_time", self.compute_time, tuple(COMPUTE_TIMES))
        _number("cluster.jitter", self.jitter, low=0)
        _store(self, "slowdown", _per_item("cluster.slowdown", self.slowdown, self.workers, "cluster.workers",
                                           low=0, strict_low=True))
        _store(self, "memory", _per_item("cluster.memory", self.memory, self.workers, "cluster.workers",
                                         low=0, strict_low=True, finite=False, unit="bytes"))
        _number("cluster.server_memory", self.server_memory, low=0, strict_low=True,
                finite=False, unit="bytes")


@_section("network.links")
@dataclass(frozen=True, kw_only=True)
class LinkConfig:
    a: int | str                # a worker index, or "server" (topology = "links": or a
                                # switch, by any other name)
    b: int | str                # the other end; the link works both ways
    latency: float | None = None    # s; None: network.latency
    bandwidth: float | None = None  # bytes/s; None: network.bandwidth


@_section("network")
@dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    latency: float = 1e-4       # s per message (alpha); 100 µs is a datacenter LAN
    bandwidth: float = 1.25e9   # bytes/s (1/beta); 1.25e9 is 10 Gbit/s; inf allowed
    loss: float = 0.0           # probability that a message is lost, in [0, 1)
    links: tuple = ()           # LinkConfig entries: a slow or fast cable between two nodes
                                # (topology = "links": every cable of the graph)
    topology: str = "switch"    # switch (every NIC on one perfect switch), ring, torus,
                                # racks (alias fat_tree), links (simdml.topology)
    shape: tuple | None = None  # torus: (rows, cols); None: the most square
    hosts_per_rack: int | None = None  # racks: workers per rack (consecutive indices)
    oversubscription: float = 1.0      # racks: hosts x bandwidth / a rack uplink's bandwidth

    def __post_init__(self):
        _number("network.latency", self.latency, low=0, unit="s")
        _number("network.bandwidth", self.bandwidth, low=0, strict_low=True, finite=False,
                unit="bytes/s")
        _number("network.loss", self.loss, low=0)
        if self.loss >= 1:
            raise ScenarioError(f"network.loss must be < 1 (a probability); got {self.loss!r}")
        self._check_topology()
        graph = self.topology == "links"
        links = []
        for i, link in enumerate(_list("network.links", self.links)):
            key = f"network.links[{i}]"
            link = _table(key, link, LinkConfig, required=("a", "b"))
            for end in ("a", "b"):
                ref = getattr(link, end)
                if not (graph and isinstance(ref, str) and ref):  # else: a switch's name
                    _node_ref(f"{key}.{end}", ref)
            if link.a == link.b:
                raise ScenarioError(f"{key} joins {link.a!r} to itself; a link joins two ends")
            if link.latency is not None:
                _number(f"{key}.latency", link.latency, low=0, unit="s")
            if link.bandwidth is not None:
                _number(f"{key}.bandwidth", link.bandwidth, low=0, strict_low=True,
                        finite=False, unit="bytes/s")
            links.append(link)
        _store(self, "links", tuple(links))
        if graph and not links:
            raise ScenarioError("network.topology = 'links' needs network.links: the cables "
                                "of the graph (a, b, and optionally latency and bandwidth)")

    def graph(self, workers: int) -> Topology | None:
        """The topology over the server and ``workers`` workers (None: the switch)."""
        def vertex(ref):  # a node's name, or a switch's (topology = "links")
            return ref if isinstance(ref, str) else f"worker{ref}"
        names = ["server", *(f"worker{i}" for i in range(workers))]
        edges = [(vertex(link.a), vertex(link.b),
                  self.latency if link.latency is None else link.latency,
                  self.bandwidth if link.bandwidth is None else link.bandwidth)
                 for link in self.links]
        return build_topology(self.topology, names, latency=self.latency,
                              bandwidth=self.bandwidth, shape=self.shape,
                              hosts_per_rack=self.hosts_per_rack or 1,
                              oversubscription=self.oversubscription, edges=edges)

    def _check_topology(self) -> None:
        _choice("network.topology", self.topology, (*TOPOLOGIES, *TOPOLOGY_ALIASES))
        kind = TOPOLOGY_ALIASES.get(self.topology, self.topology)
        if self.links and kind not in ("switch", "links"):
            raise ScenarioError(f"network.links overrides pairs of nodes on the switch, or is "
                                f"the graph with topology = 'links'; with topology = "
                                f"{self.topology!r} the links are the topology's: remove them")
        if self.shape is not None:
            if kind != "torus":
                raise ScenarioError(f"network.shape is the torus's (rows, cols); got "
                                    f"topology = {self.topology!r}")
            shape = _list("network.shape", self.shape)
            if len(shape) != 2:
                raise ScenarioError(f"network.shape must be [rows, cols]; got {self.shape!r}")
            for k, n in zip(("rows", "cols"), shape):
                _integer(f"network.shape ({k})", n, low=1)
            _store(self, "shape", tuple(shape))
        if self.hosts_per_rack is not None:
            if kind != "racks":
                raise ScenarioError(f"network.hosts_per_rack is a setting of topology = "
                                    f"'racks'; got topology = {self.topology!r}")
            _integer("network.hosts_per_rack", self.hosts_per_rack, low=1)
        elif kind == "racks":
            raise ScenarioError(f"network.topology = {self.topology!r} needs "
                                f"network.hosts_per_rack (workers per rack)")
        _number("network.oversubscription", self.oversubscription, low=0, strict_low=True)
        if self.oversubscription != 1 and kind != "racks":
            raise ScenarioError(f"network.oversubscription is a setting of topology = "
                                f"'racks'; got topology = {self.topology!r}")


@_section("faults.crash")
@dataclass(frozen=True, kw_only=True)
class CrashConfig:
    node: int | str | tuple     # a worker index, "server", or a list of them (a rack: at once)
    at: float                   # s of simulated time
    recover_after: float | None = None  # s; None: the node never comes back


@_section("faults.partition")
@dataclass(frozen=True, kw_only=True)
class PartitionConfig:
    nodes: tuple                # worker indices and/or "server": one side of the cut
    at: float                   # s of simulated time
    heal_after: float | None = None  # s; None: the partition never heals


@_section("faults")
@dataclass(frozen=True, kw_only=True)
class FaultsConfig:
    crash: tuple = ()           # CrashConfig entries
    partition: tuple = ()       # PartitionConfig entries: network cuts (messages across lost)
    mtbf: float = _INF          # s, mean time between failures of each worker; inf: none
    mttr: float = 0.0           # s, mean time to repair
    server_mtbf: float = _INF   # s, mean time between failures of the server; inf: none
    checkpoint_every: int = 0   # the server checkpoints every this many updates; 0: never
    checkpoint_time: float = 0.0  # s to write one checkpoint (the delta of Young and Daly)
    byzantine: tuple = ()       # the attackers: worker (fedavg: client) indices
    attack: str = "sign_flip"   # what they send: sign_flip | scaled | gaussian
    attack_scale: float = 4.0   # -scale v, scale v, or N(0, scale^2) entries

    def __post_init__(self):
        byzantine = tuple(_integer(f"faults.byzantine[{i}]", b, low=0)
                          for i, b in enumerate(_list("faults.byzantine", self.byzantine)))
        if len(set(byzantine)) != len(byzantine):
            raise ScenarioError(f"faults.byzantine lists a node twice: {list(byzantine)}")
        _store(self, "byzantine", byzantine)
        _choice("faults.attack", self.attack, ATTACKS)
        _number("faults.attack_scale", self.attack_scale, low=0)
        crashes = []
        for i, c in enumerate(_list("faults.crash", self.crash)):
            key = f"faults.crash[{i}]"
            c = _table(key, c, CrashConfig, required=("node", "at"))
            if isinstance(c.node, (list, tuple)):
                if not c.node:
                    raise ScenarioError(f"{key}.node must be a node or a non-empty list of "
                                        f"nodes; got []")
                for j, n in enumerate(c.node):
                    _node_ref(f"{key}.node[{j}]", n)
                c = dataclasses.replace(c, node=tuple(c.node))
            else:
                _node_ref(f"{key}.node", c.node)
            _number(f"{key}.at", c.at, low=0, unit="s")
            if c.recover_after is not None:
                _number(f"{key}.recover_after", c.recover_after, low=0, unit="s")
            crashes.append(c)
        _store(self, "crash", tuple(crashes))
        cuts = []
        for i, c in enumerate(_list("faults.partition", self.partition)):
            key = f"faults.partition[{i}]"
            c = _table(key, c, PartitionConfig, required=("nodes", "at"))
            nodes = _list(f"{key}.nodes", c.nodes)
            if not nodes:
                raise ScenarioError(f"{key}.nodes must list at least one node; got []")
            for j, n in enumerate(nodes):
                _node_ref(f"{key}.nodes[{j}]", n)
            _number(f"{key}.at", c.at, low=0, unit="s")
            if c.heal_after is not None:
                _number(f"{key}.heal_after", c.heal_after, low=0, unit="s")
            cuts.append(dataclasses.replace(c, nodes=tuple(nodes)))
        _store(self, "partition", tuple(cuts))
        _number("faults.mtbf", self.mtbf, low=0, strict_low=True, finite=False, unit="s")
        _number("faults.mttr", self.mttr, low=0, unit="s")
        _number("faults.server_mtbf", self.server_mtbf, low=0, strict_low=True, finite=False,
                unit="s")
        _integer("faults.checkpoint_every", self.checkpoint_every, low=0)
        _number("faults.checkpoint_time", self.checkpoint_time, low=0, unit="s")
