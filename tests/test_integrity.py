"""Issue 16's integrity guarantees: nothing lost, nothing mixed, every read bounded.

Each test reproduces one failure that was found by trying to break simdml, and says in
its docstring what it guards. Everything here is bounded in time (timeouts on every
subprocess and every blocking wait) and in memory (small runs, small files)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, load_scenario
from simdml.cli import main

ROOT = Path(__file__).resolve().parents[1]


MEMORY_CAP = 2 * 2**30  # bytes of address space for a subprocess that could read forever


def _cap_memory():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _simdml(*args, timeout=60):
    """``python -m simdml ARGS`` in a subprocess, killed after ``timeout`` s, with at most
    MEMORY_CAP bytes of memory (a reproduction of an unbounded read must not eat the
    machine's)."""
    return subprocess.run([sys.executable, "-m", "simdml", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_cap_memory,
                          env={"MPLBACKEND": "Agg", "PATH": "", "PYTHONPATH": str(ROOT)})


# ------------------------------------------------------------ item 15: bounded reads


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.toml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_fifo_scenario_is_refused_at_once(fifo, command):
    """A FIFO as a scenario file used to block forever (open waits for a writer): it is
    refused at once, exit 2, naming the path (the subprocess timeout bounds the test)."""
    p = _simdml(command, fifo, timeout=20)
    assert p.returncode == 2, p.stderr
    assert f"{str(fifo)!r} is not a regular file" in p.stderr and p.stderr.count("\n") == 1


@pytest.mark.parametrize("args", [["validate", "/dev/zero"], ["plot", "/dev/zero", "--out",
                                                                  "{tmp}/p.png"]])
def test_dev_zero_is_refused_for_scenarios_and_results(tmp_path, args):
    """/dev/zero used to be read until MemoryError (validate) or 16 GB (plot): a device
    is not a regular file, for scenarios and results alike (the subprocess is capped)."""
    p = _simdml(*[a.format(tmp=tmp_path) for a in args], timeout=20)
    assert p.returncode == 2, p.stderr[-300:]
    assert "'/dev/zero' is not a regular file" in p.stderr and p.stderr.count("\n") == 1


def test_a_huge_scenario_file_is_refused_with_the_cap(tmp_path):
    """A scenario file over the cap (1 MiB) is refused without being read whole, and the
    error names the cap."""
    big = tmp_path / "big.toml"
    with big.open("wb") as f:
        f.truncate(2 * 2**20)  # sparse: no disk, no memory
    with pytest.raises(ScenarioError, match=r"big.toml' is larger than 1 MiB "
                                            r"\(the limit for a scenario file\)"):
        load_scenario(big)


# ------------------------------------------------- item 20: plot on malformed results


def _result(tmp_path, **changes) -> Path:
    data = {"scenario": "x", "score_name": "accuracy", "sim_time": 1.0,
            "history": [{"time": 0.0, "update": 0, "epoch": 0.0, "loss": 1.0, "score": 0.5}],
            "nodes": {"server": {"compute": 0.1, "wait": 0.5}}}
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("kind, changes, message", [
    ("loss", {"history": 5}, "history must be a list of evaluations"),
    ("loss", {"history": [5]}, "history[0] must be a table"),
    ("loss", {"history": [{"time": "soon", "loss": 1.0, "score": 0.5}]},
     "history[0].time must be a number"),
    ("loss", {"history": [{"time": 0.0, "score": 0.5}]}, "history[0].loss must be a number"),
    ("loss", {"history": None}, "is not a result file (simdml run --out writes one)"),
    ("utilization", {"sim_time": None}, "sim_time must be a number"),
    ("utilization", {"sim_time": "1 s"}, "sim_time must be a number"),
    ("utilization", {"nodes": [1]}, "nodes must be a table of node -> seconds"),
    ("utilization", {"nodes": {"server": {"compute": "a"}}}, "nodes.server.compute must be a number"),
    ("utilization", {"nodes": {"server": 3}}, "nodes.server must be a table"),
])
def test_plot_refuses_a_malformed_result_file(tmp_path, capsys, kind, changes, message):
    """`simdml plot` on a result whose fields have the wrong shape used to raise
    TypeError / KeyError (exit 1): one line naming the field, exit 2."""
    path = _result(tmp_path, **changes)
    assert main(["plot", str(path), "--kind", kind, "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "internal error" not in err


def test_a_diverged_result_reads_back_inf_and_nan_as_numbers(tmp_path, capsys):
    """JSON has no inf / nan, so a result stores them as the strings "inf" / "nan":
    they are read back as numbers (plot used to draw "100 * 'nan'" as a category)."""
    from simdml.result import load_result
    history = [{"time": 0.0, "loss": 1.0, "score": 0.5}, {"time": 1.0, "loss": "inf",
                                                          "score": "nan"}]
    path = _result(tmp_path, history=history)
    row = load_result(path)["history"][1]
    assert row["loss"] == float("inf") and row["score"] != row["score"]
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png")]) == 0, capsys.readouterr()


# --------------------------------------------- items 1, 2, 5: the results of a sweep

import importlib  # noqa: E402  (the sweep module: simdml.sweep is the function)

from simdml import sweep  # noqa: E402

SWEEP = importlib.import_module("simdml.sweep")
BASE = Scenario(name="integrity").replace(**{"stop.rounds": 3, "cluster.speed": 1e6})
GRID = {"cluster.workers": [2, 3]}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_resume_refuses_the_records_of_another_experiment(tmp_path):
    """Resume used to key records on grid point and replicate only: resuming with another
    lr reused the old runs and mixed two experiments. Every record carries a fingerprint
    of its scenario (seed included) and simdml's version; a mismatch is refused."""
    out = tmp_path / "runs.jsonl"
    first = sweep(BASE, GRID, seeds=[0, 1], out=out)
    assert all(r["fingerprint"] == SWEEP.fingerprint(s) for r, (s, _, _) in
               zip(first.records, SWEEP._tasks(BASE, GRID, [0, 1])))
    again = sweep(BASE, GRID, seeds=[0, 1], out=out, resume=True)  # the same: nothing runs
    assert again.skipped == 4 and again.records == first.records
    with pytest.raises(ScenarioError, match=r"runs.jsonl' holds runs of another experiment: "
                                            r"grid point \{'cluster.workers': 2\} #0"):
        sweep(BASE.replace(**{"strategy.lr": 0.05}), GRID, seeds=[0, 1], out=out, resume=True)
    with pytest.raises(ScenarioError, match="holds runs of another experiment"):
        sweep(BASE.replace(seed=1), GRID, seeds=[0, 1], out=out, resume=True)
    assert len(_lines(out)) == 4  # refused before anything was written


def test_an_existing_results_file_is_refused_unless_resumed_or_overwritten(tmp_path, capsys):
    """A sweep used to empty an existing --out silently: it is refused (exit 2) unless
    --resume or --overwrite says what to do with its runs."""
    out = tmp_path / "runs.jsonl"
    sweep(BASE, {"cluster.workers": [2]}, out=out)
    with pytest.raises(ScenarioError, match=r"runs.jsonl' already holds the records of a "
                                            r"sweep: resume=True"):
        sweep(BASE, {"cluster.workers": [2]}, out=out)
    assert len(_lines(out)) == 1
    argv = ["sweep", "iris_sync", "--grid", "cluster.workers=4", "--grid", "stop.rounds=2",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 2 and "(--resume) adds the missing runs" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    assert [r["point"] for r in _lines(out)] == [{"cluster.workers": 4, "stop.rounds": 2}]
    assert main(argv + ["--overwrite", "--resume"]) == 2
    assert "--resume and --overwrite exclude each other" in capsys.readouterr().err


def test_a_results_file_is_locked_while_a_sweep_writes_it(tmp_path):
    """Two sweeps on one --out used to interleave and truncate each other: the second
    finds the file locked and is refused before touching it."""
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "runs.jsonl"
    with out.open("ab") as other:  # another sweep, writing
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ScenarioError, match=r"runs.jsonl' is being written by another "
                                                r"sweep \(it is locked\)"):
            sweep(BASE, {"cluster.workers": [2]}, out=out, overwrite=True)
    assert out.read_bytes() == b""


def test_foreign_lines_are_skipped_with_a_warning(tmp_path):
    """A foreign line (`[1, 2]`, a record without `row`) used to raise TypeError on
    resume: it is skipped, with a warning naming the lines."""
    out = tmp_path / "runs.jsonl"
    sweep(BASE, GRID, out=out)
    good = out.read_text().splitlines()
    out.write_text("\n".join([good[0], "[1, 2]", '{"point": {}, "replicate": 0}', "7"]) + "\n")
    with pytest.warns(UserWarning, match=r"runs.jsonl: 3 line\(s\) are not records of a "
                                         r"sweep \(lines 2, 3, 4\): skipped"):
        resumed = sweep(BASE, GRID, out=out, resume=True)
    assert resumed.skipped == 1 and [r["point"] for r in resumed.records] == [
        {"cluster.workers": 2}, {"cluster.workers": 3}]


def test_resume_never_writes_a_record_twice(tmp_path):
    """Resume used to re-run failed runs and append them again (8 lines for 6 runs): a
    run is a function of its fingerprint, so its record, failed or not, is kept."""
    out = tmp_path / "runs.jsonl"
    grid = {"cluster.workers": [2, 500]}  # 500: more workers than rows, fails at run time
    first = sweep(BASE, grid, seeds=[0, 1], out=out)
    assert len(first.failures) == 2
    resumed = sweep(BASE, grid, seeds=[0, 1], out=out, resume=True)
    assert resumed.skipped == 4 and len(resumed.failures) == 2
    assert len(_lines(out)) == 4


_RUN_RECORD = SWEEP.run_record


def _killing_run_record(scenario_dict, point, replicate):
    """run_record, except that the run of 3 workers kills its own process (kill -9)."""
    if point["cluster.workers"] == 3:
        os.kill(os.getpid(), 9)
    return _RUN_RECORD(scenario_dict, point, replicate)


def test_a_killed_pool_worker_loses_only_its_run(tmp_path, monkeypatch):
    """A pool worker killed mid-sweep used to abort the sweep with BrokenProcessPool and
    lose the other runs in flight: the killed run is recorded as failed, once, and every
    other run is done (the pool is forked, so the patched run_record is the workers')."""
    from concurrent.futures import ProcessPoolExecutor
    monkeypatch.setattr(SWEEP, "run_record", _killing_run_record)
    out = tmp_path / "runs.jsonl"
    with ProcessPoolExecutor(2) as pool:
        result = sweep(BASE, {"cluster.workers": [2, 3, 4, 5]}, seeds=[0], executor=pool,
                       out=out)
    errors = [r["error"] for r in result.records]
    assert [e is None for e in errors] == [True, False, True, True]
    assert errors[1].startswith("BrokenProcessPool: the process running it died")
    assert len(_lines(out)) == 4


# --------------------------------------------------------- item 3: the output paths


def _no_run(*args, **kwargs):
    raise AssertionError("the run started before its output paths were checked")


@pytest.mark.parametrize("argv, message", [
    (["run", "iris_sync", "--out", "{tmp}/r.json", "--trace", "{tmp}/r.json"],
     "--trace and --out are the same file"),
    (["run", "iris_sync", "--out", "{tmp}/p.png", "--plot", "{tmp}/p.png"],
     "--plot and --out are the same file"),
    (["sweep", "iris_sync", "--grid", "cluster.workers=2", "--out", "{tmp}/p.jsonl",
      "--plot", "{tmp}/./p.jsonl"], "--plot and --out are the same file"),
    (["run", "iris_sync", "--out", "{tmp}/file.txt/r.json"], "'file.txt' is not a folder"),
    (["run", "iris_sync", "--out", "{tmp}"], "is a folder; give the path of a file"),
    (["run", "iris_sync", "--out", "{tmp}/left.json"], "a folder 'left.json.tmp' is in the way"),
    (["run", "iris_sync", "--out", "{pkg}/scenarios/zz_test_output.json"],
     "is inside the installed simdml package"),
    (["sweep", "iris_sync", "--grid", "cluster.workers=2", "--out", "{tmp}/fifo.jsonl"],
     "fifo.jsonl' is not a regular file"),
])
def test_output_paths_are_checked_before_the_run(tmp_path, capsys, monkeypatch, argv, message):
    """Two outputs on one file, an output inside the installed package (the next `simdml
    run iris_sync` would fail), a folder, a path under a file, a leftover .tmp folder
    or a FIFO: each is refused, exit 2, before the run starts (it used to be found after
    the whole run, or never)."""
    import simdml.experiment
    import simdml.sweep  # noqa: F401
    package = Path(simdml.experiment.__file__).resolve().parent
    (tmp_path / "file.txt").write_text("")
    (tmp_path / "left.json.tmp").mkdir()
    os.mkfifo(tmp_path / "fifo.jsonl")
    monkeypatch.setattr(simdml.experiment, "run", _no_run)
    monkeypatch.setattr(SWEEP, "run_record", _no_run)
    leftover = package / "scenarios" / "zz_test_output.json"
    try:
        assert main([a.format(tmp=tmp_path, pkg=package) for a in argv]) == 2
    finally:
        leftover.unlink(missing_ok=True)
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ------------------------------------------- item 4: pool workers die with the parent


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc; zombies are dead)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # it ended while we looked
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_pool_workers_exit_when_the_sweep_is_killed(tmp_path):
    """`kill -9` of a `sweep --jobs 2` used to leave its workers running (re-parented,
    190 MB each): they exit within seconds. Every wait is bounded, and whatever is
    left is killed at the end."""
    import signal
    import time
    parent = subprocess.Popen(
        [sys.executable, "-m", "simdml", "sweep", "iris_sync", "--jobs", "2", "--no-progress",
         "--grid", "cluster.speed=1e6,2e6", "--grid", "stop.rounds=100000000",
         "--grid", "stop.wall_time=30", "--out", str(tmp_path / "r.jsonl")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"MPLBACKEND": "Agg", "PATH": "", "PYTHONPATH": str(ROOT)})
    workers = []
    try:
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            time.sleep(0.1)
            workers = _children(parent.pid)
        assert len(workers) == 2, "the sweep did not start its two workers"
        time.sleep(2)  # into their runs: an idle worker sees its queue close and exits
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, workers)), "a worker outlived its killed parent"
    finally:
        parent.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_resume_refuses_records_made_from_another_version_of_a_data_file(tmp_path):
    """A scenario that reads a data file ("csv:PATH") is fingerprinted with the file's
    contents: after the file is edited, resume refuses the old records instead of mixing
    runs on two datasets; with the file as it was, it skips them."""
    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    rows = [(*rng.normal(size=3).round(6), i % 2) for i in range(40)]
    data.write_text("a,b,c,y\n" + "".join(f"{a},{b},{c},{y}\n" for a, b, c, y in rows))
    base = BASE.replace(**{"data.dataset": f"csv:{data}", "data.label": "y"})
    out = tmp_path / "runs.jsonl"
    sweep(base, GRID, seeds=[0], out=out)
    assert sweep(base, GRID, seeds=[0], out=out, resume=True).skipped == 2
    data.write_text(data.read_text().replace(f"{rows[0][0]},", f"{rows[0][0] + 1},", 1))
    with pytest.raises(ScenarioError, match="holds runs of another experiment"):
        sweep(base, GRID, seeds=[0], out=out, resume=True)
