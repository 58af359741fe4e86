"""When a run stops, and what its stop reason says: the wall-clock guard, the judge of
a stalled cluster, and the simulation loop that turns each ending into a sentence."""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time

from ._checks import memory_budget
from .cluster import Cluster
from .engine import Deadlock, Interrupt, Simulator
from .memory import OutOfMemory
from .network import payload_nbytes
from .scenario import Scenario, ScenarioError
from .strategies import STRATEGIES, Job, Monitor

__all__ = ["stall_judge", "wall_clock_guard", "within_wall_time", "simulate",
           "shortest_round_trip", "cannot_progress"]

# A worker that must stay up for a round trip of r seconds, failing every mtbf seconds on
# average, makes it with probability exp(-r / mtbf); past this exponent (2e-9) the
# cluster is taken to make no progress: a billion crashes per update.
NO_PROGRESS_EXPONENT = 20.0


def stall_judge(cluster: Cluster, monitor: Monitor):
    """When only failure processes are busy, is training stuck for good? Not while a
    crashed node is due back that has not yet had its chance: its restart may un-stall
    it. A node seen up at an idle moment since the last update has had it (failures
    alone never end, so the judgement must)."""
    seen = {"updates": -1}
    spent: set[str] = set()  # nodes seen up at an idle moment since the last update

    def is_stuck() -> bool:
        if monitor.updates != seen["updates"]:
            seen["updates"] = monitor.updates
            spent.clear()
        # keyed by life (epoch): a node that crashed again since it was seen up has a
        # new chance coming
        spent.update((n.name, n.epoch) for n in cluster.nodes if n.is_up)
        return all((n.name, n.epoch) in spent for n in cluster.nodes
                   if n.recovery_due is not None)
    return is_stuck


class _WallClock(BaseException):  # not Exception: no process may catch it
    """The run took longer in real time than stop.wall_time."""


WATCH_EVERY = 0.5     # s of real time between two looks of the watchdog at the run
SPAN_BYTES = 160      # what a kept span (or instant) costs, measured with tracemalloc
TRACE_SHARE = 0.25    # of the memory budget (_checks.memory_budget) the trace may fill


def trace_budget() -> int:
    """How many spans and instants a run keeps before its trace is cut."""
    return int(TRACE_SHARE * memory_budget() / SPAN_BYTES)


def bound_the_trace(cluster: Cluster, budget: int):
    """The watchdog's look at memory: once the cluster keeps more than ``budget`` spans
    and instants, it keeps no more (``Cluster.cut_trace``; the totals stay exact)."""
    def watch() -> None:
        if cluster.trace_cut_at is None and len(cluster.spans) + len(cluster.instants) > budget:
            cluster.cut_trace()
    return watch


@contextlib.contextmanager
def wall_clock_guard(seconds: float, watch=None):
    """Raise _WallClock inside the run after ``seconds`` of real time, and again every
    WATCH_EVERY s until it has ended the run; call ``watch()`` every WATCH_EVERY s until
    then (main thread only: signals cannot reach others; there the guard and the watch
    are off)."""
    if not seconds < 1e8:  # inf, or beyond what a timer can hold (3 years): no limit
        seconds = math.inf
    if (threading.current_thread() is not threading.main_thread()
            or (seconds == math.inf and watch is None)):
        yield
        return

    def look(signum, frame):
        left = seconds - (time.monotonic() - began)
        if left <= 0:
            # again in a moment, should this raise land where it is swallowed (a weakref
            # or gc callback prints "Exception ignored" and the run would go on unbounded)
            signal.setitimer(signal.ITIMER_REAL, WATCH_EVERY)
            raise _WallClock()
        if watch is not None:
            watch()
        signal.setitimer(signal.ITIMER_REAL, min(WATCH_EVERY, left) if watch else left)
    previous = signal.signal(signal.SIGALRM, look)
    began = time.monotonic()
    old_delay, old_interval = signal.setitimer(
        signal.ITIMER_REAL, min(WATCH_EVERY, seconds) if watch else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:  # a timer of the caller's: give it back, minus the time spent
            left = max(old_delay - (time.monotonic() - began), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def shortest_round_trip(job: Job) -> float:
    """The shortest time (s) in which the server's model can reach a worker and a
    gradient of the same size come back: latency and transmission both ways on the
    fastest link, with no compute time (a random compute time may be near 0)."""
    nbytes = payload_nbytes(job.params)
    network, server = job.cluster.network, job.server.index
    if not job.workers:                     # a federated population: its fastest client
        fed = job.federation
        return 2 * (fed.latency + nbytes / float(fed.population.bandwidths.max()))
    return min(network.transfer_time(nbytes, server, w.index)
               + network.transfer_time(nbytes, w.index, server) for w in job.workers)


def cannot_progress(s: Scenario, job: Job) -> str | None:
    """Why the run can make no progress at all, before it starts; None if it can. Two
    cases: a sync round closes before any answer can arrive (``strategy.round_timeout``,
    with its retries), and the workers fail far faster than a round trip (``faults.mtbf``).
    Left to run, the first piles up empty rounds, the second crashes, for ever."""
    if job.params is None:  # a fitted-model strategy: neither timeouts nor random failures
        return None
    trip = shortest_round_trip(job)
    if job.federation is not None:
        deadline = job.federation.config.deadline
        if deadline < trip:
            return (f"every round closes before a report can arrive: the shortest possible "
                    f"round trip is {trip:.4g} s (model out, model back), and a round ends "
                    f"at clients.deadline={deadline:g} s; raise clients.deadline")
    timeout = getattr(job.options, "round_timeout", math.inf)
    window = timeout * (1 + getattr(job.options, "retries", 0))
    if window < trip:
        return (f"every round closes before an answer to it can arrive: the shortest "
                f"possible round trip is {trip:.4g} s (model out, gradient back), and a "
                f"round waits strategy.round_timeout={timeout:g} s × (1 + strategy.retries); "
                f"raise strategy.round_timeout")
    exponent = trip / s.faults.mtbf
    if exponent > NO_PROGRESS_EXPONENT:
        return (f"the cluster can make no progress: faults.mtbf={s.faults.mtbf:g} s, and the "
                f"shortest possible round trip is {trip:.4g} s, so a worker stays up through "
                f"one with probability exp(-{exponent:.3g}) < {math.exp(-NO_PROGRESS_EXPONENT):.0e}; "
                f"raise faults.mtbf")
    return None


def within_wall_time(s: Scenario, prepare):
    """``prepare()`` (the steps before the clock starts: data, cluster, learner) under
    the wall-clock guard, so that ``stop.wall_time`` bounds the whole run; its expiry
    here is a ScenarioError, since there is no model yet to report on."""
    try:
        with wall_clock_guard(s.stop.wall_time):
            return prepare()
    except _WallClock:
        raise ScenarioError(
            f"stop.wall_time={s.stop.wall_time:g} s of real time passed while preparing the "
            f"run (data, cluster, learner), before the simulated clock started; make the "
            f"data smaller (data.n_samples, data.n_features) or raise stop.wall_time") from None


def simulate(sim: Simulator, training, s: Scenario, job: Job, *, spent: float = 0.0) -> str | None:
    """Run until training ends, the time limit passes, or nothing can happen any more;
    the wall-clock guard allows what is left of ``stop.wall_time`` after the ``spent``
    seconds of preparation."""
    limit = s.stop.time if math.isfinite(s.stop.time) else None
    hopeless = cannot_progress(s, job)
    if hopeless is not None:
        return hopeless
    try:
        if s.scheduling.policy is None:  # task rounds read their blocks from shared storage
            job.hold_shards()            # the workers hold their rows when the clock starts
        # at least a microsecond: a timer of 0 would be no timer at all
        with wall_clock_guard(max(s.stop.wall_time - spent, 1e-6),
                              watch=bound_the_trace(job.cluster, trace_budget())):
            sim.run(until=training, limit=limit)
    except _WallClock:
        return (f"wall-clock guard: stopped after stop.wall_time={s.stop.wall_time:g} s of real "
                f"time, at simulated t={sim.now:.4g} s; bound the run with stop.rounds or "
                f"stop.time, or raise stop.wall_time")
    except OutOfMemory as exc:  # a node needed more than cluster.memory: its text says it
        return str(exc)
    except FloatingPointError as exc:  # a learner's arithmetic left float64 (it says how)
        job.monitor.diverge(str(exc))
        return job.monitor.stop_reason
    except Interrupt as exc:
        return (f"{exc.cause.node} crashed at t={exc.cause.at:.4g} s, and {s.strategy.kind} "
                f"cannot go on without it (no checkpoint to restart from)")
    except Deadlock:
        if job.workers_lost() or job.cut_off():
            return job.monitor.stop_reason
        if not job.server.is_up and job.server.recovery_due is None:
            return (f"the server crashed at t={job.server.last_crash_time:.4g} s and does "
                    f"not come back (faults.crash[...].recover_after)")
        last = job.monitor.history[-1]["time"] if job.monitor.history else 0.0
        hint = ("set scheduling.block_timeout so that a lost block is sent again"
                if s.scheduling.policy is not None else
                STRATEGIES[s.strategy.kind].stall_hint or
                f"{s.strategy.kind} has no timeout to retry a lost push or pull")
        return (f"stalled at t={sim.now:.4g} s (last update at t={last:.4g} s): every "
                f"process waits for a message that will never come (a crashed worker or "
                f"a lost message?); {hint}")
    if training.triggered:
        return None
    return f"time limit stop.time={s.stop.time:g} s reached"
