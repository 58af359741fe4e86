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

Results file: every record carries a ``fingerprint`` of what determines its run (the
resolved scenario, its seed included, and simdml's version). An existing file is
refused unless the sweep resumes it or overwrites it; resuming refuses a file whose
record of a grid point and replicate has another fingerprint (two experiments are
never mixed). The file is locked (``fcntl.flock``) while a sweep writes it, so that a
second sweep on it is refused; where there is no ``fcntl`` (Windows) there is no lock.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import stat
import sys
import threading
import time
import warnings
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import display
from ._checks import did_you_mean, fits_in_memory, is_integer, shown
from ._rng import Streams
from ._version import __version__
from .experiment import Result, run
from .result import RESULT_MAX_BYTES, jsonable
from .scenario import Scenario, ScenarioError, load_scenario, read_bounded

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


def compare(scenarios: dict, *, seed: int | None = None) -> Comparison:
    """Run each scenario (a Scenario, a TOML path or a bundled name) and line them up.

    Parameters
    ----------
    scenarios : dict of label -> Scenario | str | Path
    seed : int, optional
        Override every scenario's seed (same randomness for all).
    """
    if not scenarios:
        raise ScenarioError("compare needs at least one scenario")
    return Comparison({label: run(s, seed=seed) for label, s in scenarios.items()})


# --------------------------------------------------------------------------- sweep


def fingerprint(scenario_dict: dict) -> str:
    """What determines a run, as a hash: the resolved scenario (``Scenario.to_dict``,
    its seed included) and simdml's version. Two runs with one fingerprint give the
    same numbers; resume refuses a record whose fingerprint is not its task's."""
    text = json.dumps({"scenario": jsonable(scenario_dict), "simdml": __version__},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def run_record(scenario_dict: dict, point: dict, replicate: int) -> dict:
    """One run of a sweep, as a JSON-able record; an error is recorded, not raised.
    A top-level function of plain data, so that any executor can ship it."""
    try:
        result = run(Scenario.from_dict(scenario_dict))
    except Exception as exc:  # recorded with the run, so the sweep goes on
        return _record(scenario_dict, point, replicate, error=f"{type(exc).__name__}: {exc}")
    return _record(scenario_dict, point, replicate, summary=jsonable(result.summary),
                   row=jsonable(_row(result.summary, result.nodes)))


def _record(scenario_dict, point, replicate, *, summary=None, row=None, error=None) -> dict:
    return {"point": point, "replicate": replicate, "seed": scenario_dict["seed"],
            "fingerprint": fingerprint(scenario_dict), "summary": summary, "row": row,
            "error": error}


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
        over the replicates that ran without error."""
        check_metric(metric)
        out = []
        for point in _points(self.grid):
            values = [r["row"][metric] if metric in r["row"] else r["summary"][metric]
                      for r in self.records
                      if r["point"] == point and r["error"] is None]
            values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
            out.append({**point, "metric": metric, "n": len(values),
                        "mean": float(np.mean(values)) if values else float("nan"),
                        "std": float(np.std(values, ddof=1))
                        if len(values) > 1 and max(values) > min(values) else 0.0})
        return out

    def format(self, metric: str = "final_accuracy") -> str:
        keys = list(self.grid)
        rows = self.aggregate(metric)
        lines = ["  ".join(f"{k:>16}" for k in keys) + f"  {metric + ' (mean ± sd)':>28}  {'n':>3}"]
        for row in rows:
            lines.append("  ".join(f"{str(row[k]):>16}" for k in keys)
                         + f"  {_cell(row['mean']) + ' ± ' + _cell(row['std']):>28}  {row['n']:>3}")
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
    show = sys.stderr.isatty() if progress is None else progress
    if resume and overwrite:
        raise ScenarioError("resume and overwrite exclude each other: resume keeps the runs "
                            "of the results file, overwrite empties it")
    if out is None:
        return _result(tasks, [], _execute(tasks, executor, None, show), grid, None)
    path = Path(out)
    with _results_file(path, resume=resume, overwrite=overwrite) as f:
        done = _resumed(path, tasks) if resume else []
        finished = {_key(r["point"], r["replicate"]) for r in done}
        todo = [t for t in tasks if _key(t[1], t[2]) not in finished]
        new = _execute(todo, executor, f, show)
    return _result(tasks, done, new, grid, path, skipped=len(tasks) - len(todo))


def _result(tasks, done, new, grid, path, skipped=0) -> SweepResult:
    """The records, old and new, in grid order (records of other points last)."""
    order = {_key(p, k): i for i, (_, p, k) in enumerate(tasks)}
    records = sorted(done + new, key=lambda r: order.get(_key(r["point"], r["replicate"]),
                                                         len(order)))
    return SweepResult(records, dict(grid), path, skipped=skipped,
                       failures=[r for r in records if r["error"] is not None])


def _key(point: dict, replicate: int) -> tuple[str, int]:
    """A record's place in a sweep: its grid point and replicate."""
    return json.dumps(point, sort_keys=True), replicate


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
    tasks = []
    for point in _points(grid):
        try:
            scenario = base.replace(**point)  # checked here, before any run
        except ScenarioError as exc:
            raise ScenarioError(f"grid point {point}: {exc}") from None
        for k in seeds:
            tasks.append((scenario.replace(seed=child[k]).to_dict(), point, k))
    return tasks


@contextmanager
def _results_file(path: Path, *, resume: bool, overwrite: bool):
    """The results file, open for appending and locked, after the checks: a regular
    file (a FIFO would block), not another sweep's (the lock), and, if it holds
    records, a sweep that says what to do with them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_NONBLOCK: opening a FIFO must not wait for a reader; nothing is truncated yet
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NONBLOCK", 0),
                 0o644)
    with os.fdopen(fd, "r+b") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ScenarioError(f"out {str(path)!r} is not a regular file (a FIFO or a "
                                f"device); give the path of a file")
        _lock(fd, path)
        size = os.fstat(fd).st_size
        if size and not (resume or overwrite):
            raise ScenarioError(f"out {str(path)!r} already holds the records of a sweep: "
                                f"resume=True (--resume) adds the missing runs, overwrite="
                                f"True (--overwrite) replaces them; or choose another file")
        if overwrite:
            f.truncate(0)
        elif size and os.pread(fd, 1, size - 1) != b"\n":  # a killed sweep's half line:
            f.write(b"\n")                                  # end it, so that the next
        yield f                                             # record starts a line


def _lock(fd: int, path: Path) -> None:
    """Lock the results file for this sweep (released when it is closed)."""
    try:
        import fcntl
    except ImportError:  # not POSIX (Windows): no lock; one sweep per results file
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ScenarioError(f"out {str(path)!r} is being written by another sweep (it is "
                            f"locked); wait for it to end, or choose another file") from None


def _execute(todo: list, executor, f, show: bool) -> list[dict]:
    """Run ``todo`` (in this process, or on ``executor``), appending each record to the
    results file ``f`` as it finishes; returns the records in the order they finished."""
    started = time.perf_counter()
    new = []

    def emit(record: dict) -> None:
        new.append(record)
        if f is not None:
            f.write((json.dumps(record) + "\n").encode())
            f.flush()
        if show:
            _progress(len(new), len(todo), time.perf_counter() - started)

    if executor is None:  # in this process, one run at a time: Ctrl-C stops at once
        for task in todo:
            emit(run_record(*task))
    else:
        for task in _run_on(executor, todo, emit):
            emit(_run_alone(task))
    if show and todo:
        print(file=sys.stderr)
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
            return _record(*task, error=f"{type(exc).__name__}: the process running it died "
                                        f"(killed, out of memory or crashed), twice")


def _resumed(path: Path, tasks: list) -> list[dict]:
    """The records of ``path`` to keep; a record of one of ``tasks`` with another
    fingerprint is refused, so that a resumed sweep never mixes two experiments."""
    expected = {_key(p, k): fingerprint(s) for s, p, k in tasks}
    kept = {}
    for record in _load_records(path):
        key = _key(record["point"], record["replicate"])
        if key in expected and record.get("fingerprint") != expected[key]:
            raise ScenarioError(
                f"out {str(path)!r} holds runs of another experiment: grid point "
                f"{record['point']} #{record['replicate']} was run with another scenario, "
                f"seed or simdml version; use --overwrite or another file")
        kept.setdefault(key, record)  # a copied line is one run, kept once
    return list(kept.values())


def _load_records(path: Path) -> list[dict]:
    """The records of a JSON-lines file. A line that is not a record (a killed sweep's
    half line, a foreign line) is skipped, with one warning naming the lines."""
    records, foreign = [], []
    text = read_bounded(path, "results file", RESULT_MAX_BYTES).decode("utf-8", "replace")
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if _is_record(record):
            records.append(record)
        else:
            foreign.append(number)
    if foreign:
        shown = ", ".join(map(str, foreign[:10])) + (", ..." if len(foreign) > 10 else "")
        warnings.warn(f"{path}: {len(foreign)} line(s) are not records of a sweep (lines "
                      f"{shown}): skipped", stacklevel=4)
    return records


def _is_record(record) -> bool:
    """A record as ``run_record`` writes it: a point, a replicate, and either a row and
    a summary or an error."""
    return (isinstance(record, dict) and isinstance(record.get("point"), dict)
            and is_integer(record.get("replicate"))
            and (isinstance(record.get("error"), str)
                 or record.get("error", 0) is None and isinstance(record.get("row"), dict)
                 and isinstance(record.get("summary"), dict)))


def _progress(done: int, total: int, elapsed: float) -> None:
    left = elapsed / done * (total - done)
    print(f"\r[{done}/{total}] {elapsed:.0f} s elapsed, ~{left:.0f} s left  ",
          end="", file=sys.stderr, flush=True)
