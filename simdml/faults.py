"""Failure models: crashes at given times, random failures (MTBF/MTTR).

Run them as daemon processes (``sim.process(..., daemon=True)``): they go on for as long
as the simulation does, but they are not progress, so a training that stalls while they
tick is still reported as stalled. A node with a recovery scheduled says so
(``node.recovery_due``), because its restart may un-stall the training.

Message loss lives in :class:`simdml.network.Network` (``loss``), since it is a property
of the links. A crash is carried out by :meth:`simdml.cluster.Node.crash`; these
functions only decide *when*.
"""
from __future__ import annotations

import math

import numpy as np

from . import _checks
from .cluster import Node

__all__ = ["crash_at", "random_failures", "partition_at", "young_interval", "daly_interval"]


def crash_at(node: Node, at: float, recover_after: float | None = None):
    """Process: crash ``node`` at time ``at`` (s); recover it ``recover_after`` s later.

    ``recover_after=None`` means the node never comes back.
    """
    if not at >= node.sim.now:  # checked here, at the call, not when the process starts
        raise ValueError(f"crash time must be >= now ({node.sim.now}); got {at!r}")
    if recover_after is not None and not (_checks.is_real(recover_after) and recover_after >= 0):
        raise ValueError(f"recover_after must be >= 0 (s) or None; got {recover_after!r}")
    return _crash_at(node, at, recover_after)


def _crash_at(node: Node, at: float, recover_after: float | None):
    sim = node.sim
    yield sim.timeout(at - sim.now)
    node.crash()  # a node that is down already stays as it is
    if recover_after is not None and math.isfinite(recover_after):
        node.recovery_due = sim.now + recover_after
        yield sim.timeout(recover_after)
        node.recover()


def partition_at(cluster, nodes: list[Node], at: float, heal_after: float | None = None):
    """Process: from time ``at`` the network separates ``nodes`` from all the others
    (messages across are lost) until ``heal_after`` s later; None: it never heals."""
    if not at >= cluster.sim.now:
        raise ValueError(f"partition time must be >= now ({cluster.sim.now}); got {at!r}")
    if heal_after is not None and not (_checks.is_real(heal_after) and heal_after >= 0):
        raise ValueError(f"heal_after must be >= 0 (s) or None; got {heal_after!r}")
    return _partition_at(cluster, frozenset(n.index for n in nodes), at, heal_after)


def _partition_at(cluster, side: frozenset, at: float, heal_after: float | None):
    sim = cluster.sim
    yield sim.timeout(at - sim.now)
    heals = math.inf if heal_after is None else sim.now + heal_after
    entry = [side, heals]
    cluster.network.partitions.append(entry)
    names = sorted(n.name for n in cluster.nodes if n.index in side)
    cluster.instant(names[0], "partition")
    if heal_after is not None:
        yield sim.timeout(heal_after)
        cluster.network.partitions.remove(entry)
        cluster.instant(names[0], "heal")


def random_failures(node: Node, mtbf: float, mttr: float, rng: np.random.Generator):
    """Process: ``node`` fails after Exp(mean ``mtbf``) s of up time and is repaired after
    Exp(mean ``mttr``) s, for ever (an alternating renewal process).

    Long-run availability is ``mtbf / (mtbf + mttr)``.
    """
    _checks.finite_number("mtbf", mtbf, low=0, strict_low=True, unit="s")
    _checks.finite_number("mttr", mttr, low=0, unit="s")
    return _random_failures(node, mtbf, mttr, rng)


def _random_failures(node: Node, mtbf: float, mttr: float, rng: np.random.Generator):
    sim = node.sim
    while True:
        up = rng.exponential(mtbf)
        if not math.isfinite(up):  # an mtbf near the float limit: the draw overflows
            return                 # -- as good as never failing again
        yield sim.timeout(up)
        if not node.crash():
            continue  # down already (another failure model's crash): not ours to repair
        repair = rng.exponential(mttr) if mttr > 0 else 0.0
        if not math.isfinite(repair):
            return  # never repaired
        node.recovery_due = sim.now + repair
        yield sim.timeout(repair)
        node.recover()


def young_interval(checkpoint_time: float, mtbf: float) -> float:
    """Young's optimal time between checkpoints, ``sqrt(2 delta M)`` (s), for a
    checkpoint taking ``delta`` s and failures every ``M`` s on average: it balances the
    time spent writing checkpoints against the work lost at a failure (half an interval
    on average).

    References
    ----------
    J. W. Young, "A first order approximation to the optimum checkpoint interval",
    Communications of the ACM 17(9), 1974.
    """
    _check_interval_args(checkpoint_time, mtbf)
    return math.sqrt(2.0 * checkpoint_time * mtbf)


def daly_interval(checkpoint_time: float, mtbf: float) -> float:
    """Daly's higher-order optimum (s): ``sqrt(2 delta M) [1 + sqrt(delta / 2M) / 3 +
    delta / 18M] - delta`` for ``delta < 2M``, else ``M``.

    References
    ----------
    J. T. Daly, "A higher order estimate of the optimum checkpoint interval for restart
    dumps", Future Generation Computer Systems 22(3), 2006, eq. (37).
    """
    _check_interval_args(checkpoint_time, mtbf)
    d, m = checkpoint_time, mtbf
    if d >= 2 * m:
        return m
    x = d / (2 * m)
    return math.sqrt(2 * d * m) * (1 + math.sqrt(x) / 3 + x / 9) - d


def _check_interval_args(checkpoint_time: float, mtbf: float) -> None:
    _checks.finite_number("checkpoint_time", checkpoint_time, low=0, strict_low=True, unit="s")
    _checks.finite_number("mtbf", mtbf, low=0, strict_low=True, unit="s")
