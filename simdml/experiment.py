"""``run(scenario) -> Result``: build the cluster, the data and the learner, train, report.

A run is a pure function of its scenario (and so of its seed): the random streams are
derived from ``scenario.seed`` only (see ``simdml._rng``). Each step lives in its own
module: ``pipeline`` (the data), ``build`` (cluster, faults, job, training processes),
``stopping`` (the clock, and why it stopped) and ``result`` (the record).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from ._checks import shown
from ._progress import is_wanted, watching
from ._rules import compression_problem
from ._rng import Streams
from .build import build_cluster, build_job, start_faults, start_training
from .pipeline import DataSplit, prepare_data, split_data
from .result import Result, report
from .scenario import Scenario, ScenarioError, load_scenario
from .stopping import simulate, stall_judge, within_wall_time

__all__ = ["run", "Result", "prepare_data", "DataSplit"]


def run(scenario: Scenario | str | Path, *, seed: int | None = None,
        progress: bool | None = False, compression=None, staleness=None) -> Result:
    """Run a scenario (an object, a TOML path or a bundled name) and return its Result.

    ``seed`` overrides ``scenario.seed``. ``progress``: a line on stderr with the
    simulated time and the updates reached, from the first second of real time on (a
    thread reads the clock; the run's numbers do not change); None: when stderr is a
    terminal; default False (a library prints nothing unasked). ``compression``: a
    ``simdml.compression.Compression`` of your own (``Compression.custom(compress,
    decompress)``, exercise 5.1) in place of ``[compression]``, in any strategy that
    compresses (``_rules.COMPRESSING``). ``staleness``: FedBuff's weight of an update
    ``s`` versions old, a function ``s -> float`` of your own (exercise 12.1) in place of
    ``strategy.staleness``, in ``strategy.kind = "fedavg"`` with ``mode = "buffered"``.

    Examples
    --------
    >>> r = run(Scenario(stop=StopConfig(rounds=5)))        # doctest: +SKIP
    >>> r.summary["updates"]                                # doctest: +SKIP
    5
    """
    if not isinstance(scenario, (Scenario, str, Path)):  # the command line's message
        raise ScenarioError(f"scenario must be a Scenario, a TOML path or a bundled name; "
                            f"got {shown(scenario)}")
    s = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if seed is not None:
        s = s.replace(seed=seed)
    if compression is not None:
        problem = ("compression= stands in place of [compression]; set compression.kind = "
                   "'none'" if s.compression.kind != "none" else
                   compression_problem(s, "compression="))
        if problem:
            raise ScenarioError(problem)
    if staleness is not None:
        problem = _staleness_problem(s, staleness)
        if problem:
            raise ScenarioError(problem)
    began = time.monotonic()                       # stop.wall_time counts from here
    split, job, training = within_wall_time(s, lambda: _prepare(s))  # 1.-5.
    if compression is not None:                    # read by the workers as they run
        job.compression = compression
    if staleness is not None:
        job.federation.weight = staleness
    with watching(_reached(s, job, began), enabled=is_wanted(progress)):
        stop_reason = simulate(job.sim, training, s, job,  # 6. run the clock until it stops
                               spent=time.monotonic() - began)
    return report(s, job, split, stop_reason)      # 7. history, trace, summary


def _staleness_problem(s: Scenario, staleness) -> str | None:
    """Why ``run(s, staleness=...)`` cannot weigh FedBuff's updates, or None."""
    options = s.strategy.options
    if s.strategy.kind != "fedavg" or options.get("mode", "sync") != "buffered":
        return (f"staleness= weighs FedBuff's updates: strategy.kind = 'fedavg' with "
                f"strategy.mode = 'buffered'; got strategy.kind={s.strategy.kind!r}, "
                f"strategy.mode={options.get('mode', 'sync')!r}")
    if "staleness" in options:
        return (f"staleness= stands in place of strategy.staleness; leave it out (it is "
                f"{options['staleness']!r})")
    if not callable(staleness):
        return f"staleness= takes a function s -> weight; got {shown(staleness)}"
    return None


def _reached(s: Scenario, job, began: float):
    """What a run's progress line says: the simulated time and updates reached."""
    def read() -> str:
        limit = f" of {s.stop.time:g} s" if math.isfinite(s.stop.time) else ""
        return (f"run {s.name}: t = {job.sim.now:.4g} s simulated{limit}, "
                f"{job.monitor.updates:,} of {s.stop.rounds:,} updates, "
                f"{time.monotonic() - began:.0f} s elapsed")
    return read


def _prepare(s: Scenario):
    """Steps 1-5 of a run: its data, cluster, faults, job and training processes."""
    streams = Streams(s.seed)                      # every random number's one root
    split = split_data(s, streams)                 # 1. load, split, partition, standardize
    cluster = build_cluster(s, streams)            # 2. the virtual cluster: server, workers
    start_faults(s, cluster, streams)              # 3. its crashes, partitions, failures
    job = build_job(s, cluster, split, streams)    # 4. learner, shards, monitor
    cluster.sim.on_idle = stall_judge(cluster, job.monitor)
    training = start_training(s, job, split)       # 5. the strategy's processes
    return split, job, training
