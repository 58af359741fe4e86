"""The simdml command, driven as a subprocess the way a user types it."""
import csv
import json
import subprocess
import sys

import pytest

QUICK = """
name = "quick"
[cluster]
workers = 2
[stop]
rounds = 3
"""


def simdml(*args, cwd=None):
    """Run ``python -m simdml ARGS``; returns the CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "simdml", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"MPLBACKEND": "Agg", "PATH": "", "PYTHONPATH": _root()})


def _root():
    from pathlib import Path
    return str(Path(__file__).resolve().parents[1])


@pytest.fixture
def quick(tmp_path):
    path = tmp_path / "quick.toml"
    path.write_text(QUICK)
    return path


def test_run_json_prints_one_object_with_the_summary_at_top_level(quick):
    """`run --json` prints one JSON object and nothing else, summary fields at top level."""
    p = simdml("run", quick, "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in ("sim_time", "updates", "final_loss", "final_accuracy", "bytes_sent",
                "stop_reason", "history", "nodes"):
        assert key in out
    assert out["updates"] == 3 and len(out["history"]) == 4
    assert set(out["nodes"]) == {"server", "worker0", "worker1"}


def test_seed_override_and_outputs(quick, tmp_path):
    """--seed changes the seed; --trace/--plot/--out write their files; a table is printed."""
    trace, plot, out = tmp_path / "t.json", tmp_path / "p.png", tmp_path / "r.json"
    p = simdml("run", quick, "--seed", 5, "--trace", trace, "--plot", plot, "--out", out)
    assert p.returncode == 0, p.stderr
    assert "quick (seed 5)" in p.stdout and "final accuracy" in p.stdout
    assert json.loads(trace.read_text())["traceEvents"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(out.read_text())["seed"] == 5
    spans = tmp_path / "t.csv"
    assert simdml("run", quick, "--trace", spans).returncode == 0
    rows = list(csv.DictReader(spans.open()))
    assert rows and {"node", "kind", "start_s", "end_s"} <= set(rows[0])


@pytest.mark.parametrize("args, message", [
    (["run", "nosuch"], "no scenario file or bundled scenario named 'nosuch'"),
    (["run", "{bad}"], "cluster.workers must be an integer >= 1; got 0"),
    (["validate", "{bad}"], "cluster.workers must be an integer >= 1; got 0"),
    (["run", "{quick}", "--plot", "out.txt"], "--plot path must end in .png or .svg or .pdf"),
    (["run", "{quick}", "--trace", "out.txt"], "--trace path must end in .json or .csv"),
])
def test_bad_input_exits_2_with_one_line(args, message, quick, tmp_path):
    """Bad input: exit code 2, one line on stderr naming the problem, no traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[cluster]\nworkers = 0\n")
    args = [a.format(bad=bad, quick=quick) for a in args]
    p = simdml(*args, cwd=tmp_path)
    assert p.returncode == 2
    assert message in p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert p.stdout == ""


def test_validate_and_list(quick):
    """validate says ok for a good file; list shows every bundled scenario."""
    p = simdml("validate", quick)
    assert p.returncode == 0 and "ok" in p.stdout
    p = simdml("list")
    assert p.returncode == 0 and "iris_sync" in p.stdout


def test_demo_prints_a_table_and_writes_the_figure(tmp_path):
    """`simdml demo` prints the summary table and writes figures/demo.png where it runs."""
    p = simdml("demo", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "final accuracy" in p.stdout and "worker3" in p.stdout
    assert (tmp_path / "figures" / "demo.png").stat().st_size > 10_000


def test_validate_checks_the_data_too(tmp_path):
    """validate refuses more workers than training samples, as run does (exit 2)."""
    path = tmp_path / "big.toml"
    path.write_text("[cluster]\nworkers = 500\n")
    p = simdml("validate", path)
    assert p.returncode == 2 and "cluster.workers=500 is more than the 111 training samples" in p.stderr
