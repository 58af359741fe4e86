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


# ------------------------------------------------- --set, show (issue 17), in process


def _main(capsys, *argv):
    """``simdml ARGV`` in this process: (exit code, stdout, stderr)."""
    from simdml.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_set_changes_the_scenario_that_runs(quick, capsys):
    """`run --set` runs the scenario with those keys changed, all at once: the same
    numbers as the Python API's replace (a float, a bare word, a list)."""
    from simdml import load_scenario, run
    sets = ["cluster.speed=2e6", "strategy.kind=async", "cluster.slowdown=[1,4]"]
    code, out, _ = _main(capsys, "run", quick, "--json", *(a for s in sets for a in ("--set", s)))
    assert code == 0
    expected = run(load_scenario(quick).replace(**{
        "cluster.speed": 2e6, "strategy.kind": "async", "cluster.slowdown": [1, 4]}))
    assert json.loads(out)["sim_time"] == expected.summary["sim_time"]
    assert json.loads(out)["updates"] == expected.summary["updates"]


def test_set_works_on_every_command_that_reads_a_scenario(quick, tmp_path, capsys):
    """validate, show, compare and sweep take --set as run does."""
    from simdml import load_scenario, sweep
    code, _, err = _main(capsys, "validate", quick, "--set", "cluster.workers=500")
    assert code == 2 and "cluster.workers=500 is more than the 111 training samples" in err
    code, out, _ = _main(capsys, "compare", "iris_sync", quick, "--set", "stop.rounds=2", "--json")
    assert code == 0
    assert {r["stop_reason"] for r in json.loads(out).values()} == {"2 updates done (stop.rounds)"}
    out_file = tmp_path / "s.jsonl"
    code, _, _ = _main(capsys, "sweep", quick, "--set", "cluster.speed=1e6", "--grid",
                       "cluster.workers=2,3", "--out", out_file, "--quiet")
    records = [json.loads(line) for line in out_file.read_text().splitlines()]
    expected = sweep(load_scenario(quick).replace(**{"cluster.speed": 1e6}),
                     {"cluster.workers": [2, 3]})
    assert code == 0 and records == expected.records


@pytest.mark.parametrize("sets, message", [
    (["cluster.sped=2e6"], "simdml: error: unknown key 'cluster.sped'; allowed in [cluster]: "
                           "workers, speed, server_speed, compute_time, jitter, slowdown, "
                           "memory, server_memory (did "
                           "you mean 'speed'?) (with --set cluster.sped=2e6)"),
    (["cluster.speed=-1"], "simdml: error: cluster.speed must be > 0 (flop/s); got -1.0 (with "
                           "--set cluster.speed=-1)"),
    (["strategy.kind=asink"], "strategy.kind must be one of"),
    (["nosuch.key=1"], "unknown section 'nosuch' in key 'nosuch.key'"),
    (["cluster.slowdown=[1,4"], "simdml: error: --set cluster.slowdown: '[1,4' is not a TOML "
                                "value (Unclosed array)"),
    (["cluster.speed"], "simdml: error: --set must be KEY=VALUE (e.g. cluster.speed=2e6); got "
                        "'cluster.speed'"),
    (["cluster.speed=1", "cluster.speed=2"], "simdml: error: --set cluster.speed is given "
                                             "twice; give it once"),
])
@pytest.mark.parametrize("command", ["run", "validate", "show", "compare", "sweep"])
def test_a_bad_set_is_one_line_naming_the_key_and_exit_2(command, sets, message, quick, capsys):
    extra = ["--grid", "stop.rounds=2"] if command == "sweep" else []
    code, out, err = _main(capsys, command, quick, *extra, *(a for s in sets for a in ("--set", s)))
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1


def test_show_prints_a_scenario_with_its_changes_as_toml(quick, capsys):
    """`show` prints TOML that loads back to the scenario, --set applied."""
    from simdml.scenario import load_scenario, parse_scenario
    code, out, _ = _main(capsys, "show", quick, "--set", "cluster.speed=2e6",
                         "--set", "strategy.kind=async")
    assert code == 0
    shown = parse_scenario(out)
    assert shown == load_scenario(quick).replace(**{"cluster.speed": 2e6, "strategy.kind": "async"})
    assert "speed = 2e6\n" in out and 'kind = "async"\n' in out
    code, _, err = _main(capsys, "show", "nosuch")
    assert code == 2 and "no scenario file or bundled scenario named 'nosuch'" in err


def _bundled():
    from simdml.scenario import bundled_scenarios
    return list(bundled_scenarios())


@pytest.mark.parametrize("name", _bundled())
def test_show_round_trips_every_bundled_scenario(name, tmp_path, capsys):
    """`simdml show NAME` is the scenario: loaded back it is equal (every field), and
    `Scenario.save` writes the same text."""
    from simdml.scenario import load_scenario, parse_scenario
    code, out, _ = _main(capsys, "show", name)
    assert code == 0 and parse_scenario(out) == load_scenario(name)
    path = load_scenario(name).save(tmp_path / f"{name}.toml")
    assert path.read_text() == out and load_scenario(path) == load_scenario(name)
