"""Issue 16's integrity guarantees: nothing lost, nothing mixed, every read bounded.

Each test reproduces one failure that was found by trying to break simdml, and says in
its docstring what it guards. Everything here is bounded in time (timeouts on every
subprocess and every blocking wait) and in memory (small runs, small files)."""
import json
import os
import subprocess
import sys
from pathlib import Path

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
