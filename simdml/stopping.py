"""When a run stops, and what its stop reason says: the wall-clock guard, the judge of
a stalled cluster, and the simulation loop that turns each ending into a sentence."""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time

from .cluster import Cluster
from .engine import Deadlock, Interrupt, Simulator
from .scenario import Scenario, ScenarioError
from .strategies import STRATEGIES, Job, Monitor

__all__ = ["stall_judge", "wall_clock_guard", "within_wall_time", "simulate"]


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


@contextlib.contextmanager
def wall_clock_guard(seconds: float):
    """Raise _WallClock inside the run after ``seconds`` of real time (main thread only:
    signals cannot reach others; there the guard is off)."""
    if (not seconds < 1e8  # inf, or beyond what a timer can hold (3 years): no guard
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def expire(signum, frame):
        raise _WallClock()
    previous = signal.signal(signal.SIGALRM, expire)
    began = time.monotonic()
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay > 0:  # a timer of the caller's: give it back, minus the time spent
            left = max(old_delay - (time.monotonic() - began), 1e-6)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


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
    try:
        # at least a microsecond: a timer of 0 would be no timer at all
        with wall_clock_guard(max(s.stop.wall_time - spent, 1e-6)):
            sim.run(until=training, limit=limit)
    except _WallClock:
        return (f"wall-clock guard: stopped after stop.wall_time={s.stop.wall_time:g} s of real "
                f"time, at simulated t={sim.now:.4g} s; bound the run with stop.rounds or "
                f"stop.time, or raise stop.wall_time")
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
