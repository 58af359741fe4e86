"""Experiments: ``compare`` a few scenarios side by side, ``sweep`` a grid over seeds on
any executor, with results that stream to disk and a sweep that resumes.

>>> c = compare({"sync": "iris_sync", "async": s})            # doctest: +SKIP
>>> print(c.format())                                          # doctest: +SKIP
>>> sw = sweep(base, grid={"cluster.workers": [2, 4, 8]}, seeds=[0, 1, 2],
...            out="runs.jsonl")                                # doctest: +SKIP
>>> sw.aggregate("final_accuracy")                              # doctest: +SKIP

Seeds: replicate ``k`` of every grid point runs with seed ``child_seeds[k]``, derived
from the base scenario's seed by ``numpy.random.SeedSequence.spawn``
(``simdml._rng.Streams.child_seeds``): a run's numbers depend only on its grid point
and its replicate, never on the order, the process or the machine it ran in.

Executors: anything with ``submit(fn, *args) -> concurrent.futures.Future``. None runs
in this process, one run after the other. A ``ProcessPoolExecutor`` uses the local
cores; on a real cluster, dask's ``Client.get_executor()`` or a small Ray adapter (a
class whose ``submit`` wraps ``ray.remote(fn).remote(*args)`` in a Future) fit the
same slot -- neither is a dependency. ``worker_pool(n)`` is a process pool whose workers
exit when the sweep's process dies (``kill -9`` included).

Results file: each record streams to a locked JSON-lines file, with a fingerprint of
what determines its run, so that a resumed sweep never mixes two experiments (see
``simdml.records``).
"""
from __future__ import annotations

import itertools
import json
import math
import os
import threading
import time
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import display
from ._checks import did_you_mean, fits_in_memory, is_integer, shown
from ._progress import ProgressLine, is_wanted
from ._rng import Streams
from ._toml import shown_value
from .experiment import Result, run
from .records import fingerprint, make_record, record_key, results_file, resumed_records
from .result import jsonable
from .scenario import Scenario, ScenarioError, load_scenario

__all__ = ["compare", "Comparison", "sweep", "SweepResult", "COLUMNS", "METRICS",
           "fingerprint", "worker_pool"]

PARENT_POLL_S = 0.5  # s of real time between a pool worker's looks at its parent

# the summary fields a comparison or a sweep reports, with how to show them
COLUMNS = {"final_accuracy": "accuracy", "balanced_accuracy": "balanced acc.",
           "time_to_target": "time to target (s)", "sim_time": "sim. time (s)",
           "updates_per_s": "updates/s", "bytes_sent": "bytes sent",
           "utilization": "worker util."}


# what a sweep can aggregate: the columns, and other numbers every summary has
METRICS = tuple(COLUMNS) + ("final_loss", "final_score", "macro_f1", "updates", "messages_sent")


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ScenarioError(f"metric must be one of {', '.join(METRICS)}; got "
                            f"{metric!r}{did_you_mean(metric, METRICS)}")


def _row(summary: dict, nodes: dict | None = None) -> dict:
    """The columns of one run (mean worker utilization from its nodes)."""
    row = {k: summary.get(k) for k in COLUMNS if k != "utilization"}
    if nodes:
        workers = [t["utilization"] for n, t in nodes.items() if n != "server"]
        row["utilization"] = float(np.mean(workers)) if workers else None
    return row


# ------------------------------------------------------------------------- compare


@dataclass
class Comparison:
    """Several runs side by side: ``results`` (label -> Result), ``table()`` rows,
    ``format()`` text and ``plot()`` a figure of loss and accuracy against time."""

    results: dict[str, Result]
    __repr__ = display.comparison_text  # a few lines (display.py); HTML in a notebook
    _repr_html_ = display.comparison_html

    def table(self) -> dict[str, dict]:
        return {label: _row(r.summary, r.nodes) for label, r in self.results.items()}

    def format(self) -> str:
        table = self.table()
        width = max(len(label) for label in table)
        lines = [f"{'run':<{width}}  " + "  ".join(f"{h:>18}" for h in COLUMNS.values())]
        for label, row in table.items():
            lines.append(f"{label:<{width}}  " + "  ".join(f"{_cell(row[k]):>18}" for k in COLUMNS))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {label: {**row, "stop_reason": self.results[label].summary["stop_reason"]}
                for label, row in self.table().items()}

    def plot(self, x: str = "time"):
        from . import plots
        return plots.history(self.results, x=x)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def compare(scenarios: dict, *, seed: int | None = None,
            progress: bool | None = False) -> Comparison:
    """Run each scenario (a Scenario, a TOML path or a bundled name) and line them up.

    Parameters
    ----------
    scenarios : dict of label -> Scenario | str | Path
    seed : int, optional
        Override every scenario's seed (same randomness for all).
    progress : bool, optional
        Each long run's simulated time on stderr (see ``run``); None: when stderr is a
        terminal.
    """
    if not scenarios:
        raise ScenarioError("compare needs at least one scenario")
    return Comparison({label: run(s, seed=seed, progress=progress)
                       for label, s in scenarios.items()})


# --------------------------------------------------------------------------- sweep


def run_record(scenario_dict: dict, point: dict, replicate: int) -> dict:
    """One run of a sweep, as a JSON-able record; an error is recorded, not raised.
    A top-level function of plain data, so that any executor can ship it."""
    try:
        result = run(Scenario.from_dict(scenario_dict))
    except Exception as exc:  # recorded with the run, so the sweep goes on
        return make_record(scenario_dict, point, replicate, error=f"{type(exc).__name__}: {exc}")
    return make_record(scenario_dict, point, replicate, summary=jsonable(result.summary),
                   row=jsonable(_row(result.summary, result.nodes)))


def worker_pool(n_workers: int) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` whose workers exit when this process dies.

    A killed parent (``kill -9``) runs no clean-up, and its workers, re-parented, would
    run on; each worker watches its parent instead (``os.getppid`` every PARENT_POLL_S
    seconds) and exits once it has changed.
    """
    return ProcessPoolExecutor(n_workers, initializer=_exit_with_parent,
                               initargs=(os.getpid(),))


def _exit_with_parent(parent: int) -> None:
    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)  # no clean-up to do: the run's record has nobody to go to
    threading.Thread(target=watch, name="simdml-parent-watch", daemon=True).start()


@dataclass
class SweepResult:
    """The records of a sweep (one per grid point and replicate), in grid order."""

    records: list[dict]
    grid: dict
    path: Path | None = None
    skipped: int = 0  # runs found in the output file and not run again (resume)
    failures: list[dict] = field(default_factory=list)
    __repr__ = display.sweep_text  # the grid and the first rows of format()
    _repr_html_ = display.sweep_html

    def aggregate(self, metric: str = "final_accuracy") -> list[dict]:
        """Per grid point: the mean, standard deviation (ddof=1) and count of ``metric``
        over the replicates that ran without error. With fewer than two replicates
        there is no spread to measure: ``std`` is nan (printed "n/a"), never 0."""
        check_metric(metric)
        out = []
        for point in _points(self.grid):
            values = [r["row"][metric] if metric in r["row"] else r["summary"][metric]
                      for r in self.records
                      if r["point"] == point and r["error"] is None]
            values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            out.append({**point, "metric": metric, "n": len(values),
                        "mean": float(np.mean(values)) if values else float("nan"),
                        "std": float("nan") if len(values) < 2 else
                        float(np.std(values, ddof=1)) if max(values) > min(values) else 0.0})
        return out

    def format(self, metric: str = "final_accuracy") -> str:
        """A text table: per grid point, the mean and sd of ``metric`` and the number
        of replicates (sd "n/a" below two)."""
        keys = list(self.grid)
        rows = self.aggregate(metric)
        width = max(12, len(metric) + 5)
        lines = ["  ".join(f"{k:>16}" for k in keys)
                 + f"  {metric + ' mean':>{width}}  {'sd':>10}  {'n':>3}"]
        for row in rows:
            lines.append("  ".join(f"{shown_value(row[k]):>16}" for k in keys)
                         + f"  {_cell(row['mean']):>{width}}  {_cell(row['std']):>10}"
                         f"  {row['n']:>3}")
        if self.failures:
            lines.append(f"{len(self.failures)} run(s) failed: " + "; ".join(
                f"{f['point']} #{f['replicate']}: {f['error']}" for f in self.failures[:3]))
        return "\n".join(lines)

    def plot(self, x: str | None = None, metric: str = "final_accuracy"):
        """Mean ± sd of ``metric`` against grid key ``x`` (default: the first), one line
        per value of the other keys."""
        from . import plots
        return plots.sweep(self, x=x or next(iter(self.grid)), metric=metric)



def _points(grid: dict) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def sweep(base, grid: dict, *, seeds=(0,), executor=None, out: str | Path | None = None,
          resume: bool = False, overwrite: bool = False,
          progress: bool | None = None) -> SweepResult:
    """One run per grid point and replicate, on ``executor``.

    Parameters
    ----------
    base : Scenario, TOML path or bundled name
    grid : dict of dotted key -> list of values
        E.g. ``{"cluster.workers": [4, 8], "strategy.kind": ["sync", "async"]}``; every
        combination is checked (a ScenarioError names the bad one) before anything runs.
    seeds : sequence of int
        Replicate indices; replicate k runs with the k-th child seed of ``base.seed``.
    executor : object with ``submit(fn, *args) -> Future``, optional
        A run whose worker dies (``BrokenExecutor``) is run once more in a process of
        its own; if that dies too, it is recorded as failed and the sweep goes on.
    out : path, optional
        A JSON-lines file, locked while the sweep writes it; each record is appended
        (and flushed) as its run finishes, so an interrupted or crashed sweep keeps
        every finished run. An existing file is refused unless ``resume`` or
        ``overwrite`` is given.
    resume : bool
        Run only what ``out`` does not hold: every recorded run, failed or not, is
        kept (a run is a function of its fingerprint), so no record is written twice.
        A record of a grid point and replicate with another fingerprint (another
        scenario, seed or simdml version) is refused: nothing is run or written.
    overwrite : bool
        Empty an existing ``out`` first (its runs are lost).
    progress : bool, optional
        Count, elapsed time and an estimate on stderr; default: when stderr is a terminal.

    Raises
    ------
    ScenarioError
        A bad grid point, or a results file that is locked, exists, or holds another
        experiment's runs.
    """
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ScenarioError(f"executor must have submit(fn, *args) (a concurrent.futures "
                            f"Executor); got {shown(executor)}")
    tasks = _tasks(base, grid, seeds)  # every grid point checked before anything runs
    show = is_wanted(progress)
    if resume and overwrite:
        raise ScenarioError("resume and overwrite exclude each other: resume keeps the runs "
                            "of the results file, overwrite empties it")
    if out is None:
        return _result(tasks, [], _execute(tasks, executor, None, show), grid, None)
    path = Path(out)
    with results_file(path, resume=resume, overwrite=overwrite) as f:
        done = resumed_records(path, tasks) if resume else []
        finished = {record_key(r["point"], r["replicate"]) for r in done}
        todo = [t for t in tasks if record_key(t[1], t[2]) not in finished]
        new = _execute(todo, executor, f, show)
    return _result(tasks, done, new, grid, path, skipped=len(tasks) - len(todo))


def _result(tasks, done, new, grid, path, skipped=0) -> SweepResult:
    """The records, old and new, in grid order (records of other points last)."""
    order = {record_key(p, k): i for i, (_, p, k) in enumerate(tasks)}
    records = sorted(done + new, key=lambda r: order.get(record_key(r["point"], r["replicate"]),
                                                         len(order)))
    return SweepResult(records, dict(grid), path, skipped=skipped,
                       failures=[r for r in records if r["error"] is not None])


SEED_NBYTES = 1_000  # a child seed being made (a numpy SeedSequence: ~470 bytes measured)


def _fits(key: str, what: str, nbytes: float) -> None:
    try:
        fits_in_memory(key, what, nbytes)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def _tasks(base, grid: dict, seeds) -> list[tuple[dict, dict, int]]:
    """``(scenario as a dict, grid point, replicate)`` per run, each scenario validated."""
    if not isinstance(base, Scenario):
        base = load_scenario(base)
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, (list, tuple)) and v
                                                         for v in grid.values()):
        raise ScenarioError("grid must map each dotted key to a non-empty list of values; "
                            f"got {shown(grid)}")
    for key, values in grid.items():  # a value listed twice would count its point twice
        if len({json.dumps(jsonable(v), sort_keys=True) for v in values}) < len(values):
            raise ScenarioError(f"grid {key} lists a value twice; got {shown(values)}")
    if isinstance(seeds, (str, bytes, dict)) or not hasattr(seeds, "__iter__"):
        raise ScenarioError(f"seeds must be a list of replicate indices >= 0; got {shown(seeds)}")
    seeds = list(seeds)
    if not seeds or any(not is_integer(k) or k < 0 for k in seeds):
        raise ScenarioError(f"seeds must be replicate indices >= 0; got {shown(seeds)}")
    seeds = [int(k) for k in seeds]  # numpy's integers too, written to JSON as numbers
    _fits(f"seeds (replicate index {max(seeds)})",
          f"{max(seeds) + 1:,} child seeds of {SEED_NBYTES} bytes", (max(seeds) + 1) * SEED_NBYTES)
    child = Streams(base.seed).child_seeds(max(seeds) + 1)
    tasks, seen = [], {}
    for point in _points(grid):
        try:
            scenario = base.replace(**point)  # checked here, before any run
        except ScenarioError as exc:
            raise ScenarioError(f"grid point {point}: {exc}") from None
        same = seen.setdefault(json.dumps(jsonable(scenario.to_dict()), sort_keys=True), point)
        if same is not point:  # e.g. slowdown 1 and [1, 1, 1, 1]: one run, counted twice
            raise ScenarioError(f"grid points {same} and {point} are the same scenario: its "
                                f"runs would count twice; give each value once")
        for k in seeds:
            tasks.append((scenario.replace(seed=child[k]).to_dict(), point, k))
    return tasks


def _execute(todo: list, executor, f, show: bool) -> list[dict]:
    """Run ``todo`` (in this process, or on ``executor``), appending each record to the
    results file ``f`` as it finishes; returns the records in the order they finished."""
    started = time.perf_counter()
    new = []
    line = ProgressLine() if show else None

    def emit(record: dict) -> None:
        new.append(record)
        if f is not None:
            f.write((json.dumps(record) + "\n").encode())
            f.flush()
        if line is not None:  # the last run's line always: it stays on the screen
            line.update(_progress(len(new), len(todo), time.perf_counter() - started),
                        force=len(new) == len(todo))

    if executor is None:  # in this process, one run at a time: Ctrl-C stops at once
        for task in todo:
            emit(run_record(*task))
    else:
        for task in _run_on(executor, todo, emit):
            emit(_run_alone(task))
    if line is not None:
        line.close()
    return new


def _run_on(executor, todo: list, emit) -> list:
    """Submit ``todo``, emitting each record as it finishes; returns the tasks whose
    worker died (the executor cannot say which of its runs killed it)."""
    futures = {executor.submit(run_record, *task): i for i, task in enumerate(todo)}
    lost = []
    try:
        for future in as_completed(futures):
            try:
                record = future.result()
            except BrokenExecutor:
                lost.append(futures[future])
                continue
            emit(record)
    except KeyboardInterrupt:  # Ctrl-C: drop what has not started; what finished is saved
        for future in futures:
            future.cancel()
        raise
    return [todo[i] for i in sorted(lost)]


def _run_alone(task: tuple) -> dict:
    """A run whose worker died, once more in a process of its own: the run that killed
    it dies again and is recorded as failed; a run that only shared its pool is done."""
    with worker_pool(1) as pool:
        try:
            return pool.submit(run_record, *task).result()
        except BrokenExecutor as exc:
            return make_record(*task, error=f"{type(exc).__name__}: the process running it died "
                                        f"(killed, out of memory or crashed), twice")


def _progress(done: int, total: int, elapsed: float) -> str:
    """A sweep's progress: runs done of all, real time elapsed, and the time left if the
    runs to come take as long as those done."""
    left = elapsed / done * (total - done)
    return f"[{done}/{total}] runs done, {elapsed:.0f} s elapsed, ~{left:.0f} s left"
