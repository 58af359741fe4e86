"""A sweep's results file: the records of its runs, their fingerprints, the locked
JSON-lines file they stream to, and what a resumed sweep keeps of it.

Every record carries a ``fingerprint`` of what determines its run (the resolved
scenario, its seed included, and simdml's version). An existing file is refused unless
the sweep resumes it or overwrites it; resuming refuses a file whose record of a grid
point and replicate has another fingerprint (two experiments are never mixed). The file
is locked (``fcntl.flock``) while a sweep writes it, so that a second sweep on it is
refused; where there is no ``fcntl`` (Windows) there is no lock.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from contextlib import contextmanager
from pathlib import Path

from ._checks import is_integer
from ._version import __version__
from .data.files import content_digest, parse_source
from .result import RESULT_MAX_BYTES, jsonable
from .scenario import ScenarioError, read_bounded

__all__ = ["fingerprint", "make_record", "record_key", "results_file", "resumed_records",
           "load_records", "is_record"]


def fingerprint(scenario_dict: dict) -> str:
    """What determines a run, as a hash: the resolved scenario (``Scenario.to_dict``,
    its seed included) and simdml's version. Two runs with one fingerprint give the
    same numbers; resume refuses a record whose fingerprint is not its task's. A data
    file's contents count too (``data.dataset = "csv:PATH"``): a file edited between two
    sweeps changes the fingerprint of every run that reads it."""
    dataset = scenario_dict.get("data", {}).get("dataset")
    files = {"data_file": content_digest(dataset)} if parse_source(dataset) else {}
    text = json.dumps({"scenario": jsonable(scenario_dict), "simdml": __version__, **files},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def make_record(scenario_dict, point, replicate, *, summary=None, row=None, error=None) -> dict:
    """One run's record: its grid point, replicate, seed and fingerprint, and either its
    summary and row or its error."""
    return {"point": point, "replicate": replicate, "seed": scenario_dict["seed"],
            "fingerprint": fingerprint(scenario_dict), "summary": summary, "row": row,
            "error": error}


def record_key(point: dict, replicate: int) -> tuple[str, int]:
    """A record's place in a sweep: its grid point and replicate."""
    return json.dumps(point, sort_keys=True), replicate


@contextmanager
def results_file(path: Path, *, resume: bool, overwrite: bool):
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


def resumed_records(path: Path, tasks: list) -> list[dict]:
    """The records of ``path`` to keep; a record of one of ``tasks`` with another
    fingerprint is refused, so that a resumed sweep never mixes two experiments."""
    expected = {record_key(p, k): fingerprint(s) for s, p, k in tasks}
    kept = {}
    for record in load_records(path):
        key = record_key(record["point"], record["replicate"])
        if key in expected and record.get("fingerprint") != expected[key]:
            raise ScenarioError(
                f"out {str(path)!r} holds runs of another experiment: grid point "
                f"{record['point']} #{record['replicate']} was run with another scenario, "
                f"seed or simdml version; use --overwrite or another file")
        kept.setdefault(key, record)  # a copied line is one run, kept once
    return list(kept.values())


def load_records(path: Path) -> list[dict]:
    """The records of a JSON-lines file. A line that is not a record (a killed sweep's
    half line, a foreign line) is skipped, with one warning naming the lines."""
    records, foreign = [], []
    text = read_bounded(path, "results file", RESULT_MAX_BYTES).decode("utf-8", "replace")
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if is_record(record):
            records.append(record)
        else:
            foreign.append(number)
    if foreign:
        shown = ", ".join(map(str, foreign[:10])) + (", ..." if len(foreign) > 10 else "")
        warnings.warn(f"{path}: {len(foreign)} line(s) are not records of a sweep (lines "
                      f"{shown}): skipped", stacklevel=4)
    return records


def is_record(record) -> bool:
    """A record as ``sweep.run_record`` writes it: a point, a replicate, and either a row and
    a summary or an error."""
    return (isinstance(record, dict) and isinstance(record.get("point"), dict)
            and is_integer(record.get("replicate"))
            and (isinstance(record.get("error"), str)
                 or record.get("error", 0) is None and isinstance(record.get("row"), dict)
                 and isinstance(record.get("summary"), dict)))
