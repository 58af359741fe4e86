"""Contracts of experiments: a pool gives the serial results, a resumed sweep loses
nothing and repeats nothing, a failing run is recorded and the rest go on."""
import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, compare, run, sweep
from simdml._rng import Streams
from simdml.cli import main

BASE = Scenario(name="sweep_base").replace(**{
    "stop.rounds": 15, "cluster.speed": 1e6, "cluster.compute_time": "exponential"})
GRID = {"cluster.workers": [2, 4], "strategy.kind": ["sync", "async"]}


@pytest.fixture(scope="module")
def serial():
    return sweep(BASE, GRID, seeds=[0, 1])


def test_a_pool_gives_the_serial_results(serial):
    """Seeds come from the grid point and replicate, not from the process: a process pool
    produces the same records, in the same (grid) order."""
    with ProcessPoolExecutor(2) as pool:
        pooled = sweep(BASE, GRID, seeds=[0, 1], executor=pool)
    assert pooled.records == serial.records
    assert [r["replicate"] for r in serial.records] == [0, 1] * 4


def test_replicate_seeds_are_spawned_from_the_base_seed(serial):
    children = Streams(BASE.seed).child_seeds(2)
    assert [r["seed"] for r in serial.records[:2]] == children
    record = serial.records[1]
    again = run(BASE.replace(**record["point"], seed=record["seed"]))
    assert again.summary["final_accuracy"] == record["summary"]["final_accuracy"]
    other = sweep(BASE.replace(seed=7), {"cluster.workers": [2]}, seeds=[0])
    assert other.records[0]["seed"] != children[0]


def test_numpy_integers_are_replicate_indices(serial):
    """seeds=[np.int64(1)] is replicate 1, recorded as a plain integer (JSON-able)."""
    one = sweep(BASE, {"cluster.workers": [2]}, seeds=[np.int64(1)])
    assert one.records[0]["replicate"] == 1 and type(one.records[0]["replicate"]) is int
    assert one.records[0]["seed"] == serial.records[1]["seed"]
    json.dumps(one.records[0])


def test_aggregate_is_the_mean_and_spread_of_the_replicates(serial):
    rows = serial.aggregate("final_accuracy")
    assert len(rows) == 4
    for row in rows:
        values = [r["summary"]["final_accuracy"] for r in serial.records
                  if r["point"] == {k: row[k] for k in GRID}]
        assert row["n"] == 2 and row["mean"] == pytest.approx(np.mean(values))
        assert row["std"] == pytest.approx(np.std(values, ddof=1))


def test_results_stream_and_a_resumed_sweep_loses_nothing(tmp_path, serial):
    """Every finished run is a line of the output file; after an interruption (three
    runs done, a fourth half-written) --resume runs only the missing ones, and the
    result is the uninterrupted sweep's."""
    out = tmp_path / "runs.jsonl"
    full = sweep(BASE, GRID, seeds=[0, 1], out=out)
    lines = out.read_text().splitlines()
    assert len(lines) == 8 and full.records == serial.records
    out.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    with pytest.warns(UserWarning, match=r"1 line\(s\) are not records of a sweep \(lines 4\)"):
        resumed = sweep(BASE, GRID, seeds=[0, 1], out=out, resume=True)
    assert resumed.skipped == 3 and resumed.records == serial.records
    assert len(out.read_text().splitlines()) == 3 + 1 + 5  # the half line stays, ignored


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    """A grid point that can only fail at run time (more workers than iris has training
    rows) is recorded with its error; the other points run; the CLI exits 1."""
    result = sweep(BASE, {"cluster.workers": [2, 500]}, seeds=[0], out=tmp_path / "r.jsonl")
    assert [r["error"] is None for r in result.records] == [True, False]
    assert "more than the 111 training samples" in result.failures[0]["error"]
    assert "1 run(s) failed" in result.format()


def test_bad_grids_are_refused_before_anything_runs():
    with pytest.raises(ScenarioError, match=r"grid point \{'cluster.workers': 0\}: "
                                            r"cluster.workers must be"):
        sweep(BASE, {"cluster.workers": [2, 0]})
    with pytest.raises(ScenarioError, match=r"grid must map each dotted key to a non-empty list"):
        sweep(BASE, {"cluster.workers": []})
    with pytest.raises(ScenarioError, match=r"seeds must be replicate indices >= 0"):
        sweep(BASE, GRID, seeds=[-1])


def test_compare_lines_up_the_runs():
    c = compare({"sync": BASE, "async": BASE.replace(**{"strategy.kind": "async"})})
    table = c.table()
    for label, r in c.results.items():
        assert table[label]["final_accuracy"] == r.summary["final_accuracy"]
        assert table[label]["bytes_sent"] == r.summary["bytes_sent"]
    assert c.format().splitlines()[0].startswith("run")
    fig = c.plot()
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["sync", "async"]


def test_sweep_plot_draws_means_with_error_bars(serial):
    fig = serial.plot(x="cluster.workers")
    ax = fig.axes[0]
    bars = {c.get_label(): c for c in ax.containers}  # one errorbar container per line
    assert set(bars) == {"strategy.kind=sync", "strategy.kind=async"}
    rows = [row for row in serial.aggregate() if row["strategy.kind"] == "sync"]
    data_line, caps, (spans,) = bars["strategy.kind=sync"]
    np.testing.assert_allclose(np.asarray(data_line.get_ydata(), dtype=float),
                               [row["mean"] for row in rows])
    heights = [seg[1][1] - seg[0][1] for seg in spans.get_segments()]
    np.testing.assert_allclose(heights, [2 * row["std"] for row in rows])
    assert ax.get_xlabel() == "cluster.workers"


# ------------------------------------------------------------------ command line


def test_cli_compare_sweep_plot_and_lessons(tmp_path, capsys):
    assert main(["compare", "iris_sync", "crash_recovery", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"iris_sync", "crash_recovery"}
    out = tmp_path / "s.jsonl"
    assert main(["sweep", "iris_sync", "--grid", "cluster.speed=1e6", "--grid",
                 "cluster.workers=2,4", "--grid", "stop.rounds=5", "--seeds", "0,1",
                 "--out", str(out), "--no-progress"]) == 0
    assert len(out.read_text().splitlines()) == 4
    assert main(["sweep", "iris_sync", "--grid", "cluster.speed=1e6", "--grid",
                 "cluster.workers=2,4", "--grid", "stop.rounds=5", "--seeds", "0,1",
                 "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "resumed: 4 run(s) already in" in capsys.readouterr().out
    result = tmp_path / "r.json"
    assert main(["run", "iris_sync", "--out", str(result)]) == 0
    for kind in ("loss", "utilization"):
        assert main(["plot", str(result), "--kind", kind, "--out", str(tmp_path / f"{kind}.png")]) == 0
    assert main(["lessons"]) == 0
    assert "Lesson 7" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["sweep", "iris_sync", "--grid", "cluster.workers"], "--grid must be KEY=V1,V2"),
    (["sweep", "iris_sync", "--grid", "cluster.workers=2", "--resume"], "--resume needs --out"),
    (["sweep", "iris_sync", "--grid", "cluster.workers=2", "--out", "x.csv"], "--out must end in .jsonl"),
    (["sweep", "iris_sync", "--grid", "cluster.workers=2", "--seeds", "a"], "--seeds must be integers"),
    (["plot", "nosuch.json", "--out", "x.png"], "cannot read result file 'nosuch.json': No such file"),
    (["lesson", "99"], "no lesson 99; lessons: 1, 2, 3"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_every_command_help_has_an_example(capsys):
    for command in ("run", "validate", "show", "list", "demo", "compare", "sweep", "plot", "lessons",
                    "lesson"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "example: simdml" in capsys.readouterr().out


def test_plots_draw_the_numbers_of_the_run():
    """Utilization bars are the nodes' shares of the run; speedup is T(n0) n0 / T(n);
    a confusion matrix shows counts and row shares."""
    from simdml import plots
    r = run("iris_sync")
    fig = plots.utilization(r)
    compute_bars = fig.axes[0].containers[0]
    shares = [100 * t["compute"] / r.trace.end for t in r.nodes.values()]
    np.testing.assert_allclose([b.get_height() for b in compute_bars], shares)
    runs = {n: run(BASE.replace(**{"cluster.workers": n, "stop.rounds": 5})) for n in (1, 2, 4)}
    fig = plots.speedup(runs)
    speed = fig.axes[0].get_lines()[0]
    t = [runs[n].summary["sim_time"] for n in (1, 2, 4)]
    np.testing.assert_allclose(np.asarray(speed.get_ydata(), float), [t[0] / x for x in t])
    fig = plots.confusion([[3, 1], [0, 4]], class_names=["a", "b"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["3\n75 %", "1\n25 %", "0\n0 %", "4\n100 %"]


def test_a_serial_sweep_writes_each_run_as_it_finishes(tmp_path, monkeypatch):
    """In one process the runs go one at a time: an interruption after the second run
    leaves both in the file (it used to run everything before writing anything)."""
    import importlib
    sweep_module = importlib.import_module("simdml.sweep")  # simdml.sweep is the function
    calls = {"n": 0}
    original = sweep_module.run_record

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args)
    monkeypatch.setattr(sweep_module, "run_record", interrupted)
    out = tmp_path / "runs.jsonl"
    with pytest.raises(KeyboardInterrupt):
        sweep(BASE, {"cluster.workers": [2, 3, 4]}, out=out)
    assert len(out.read_text().splitlines()) == 2 and calls["n"] == 3


@pytest.mark.parametrize("argv, message", [
    (["sweep", "iris_sync", "--grid", "cluster.workers=2", "--metric", "accuracy"],
     "metric must be one of final_accuracy,"),
    (["sweep", "iris_sync", "--grid", "cluster.workers=2", "--jobs", "0"], "--jobs must be >= 1; got 0"),
])
def test_cli_sweep_options_are_checked_before_any_run(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------- categories, n = 1, duplicates (issue 17)


def test_one_replicate_has_no_spread_and_the_table_says_n_a():
    """With n = 1 the sd is unknown: aggregate gives nan and the table 'n/a', never 0."""
    one = sweep(BASE, {"cluster.workers": [2, 4]}, seeds=[0])
    assert all(row["n"] == 1 and np.isnan(row["std"]) for row in one.aggregate())
    lines = one.format().splitlines()
    assert lines[0].split() == ["cluster.workers", "final_accuracy", "mean", "sd", "n"]
    mean = one.aggregate()[0]["mean"]
    assert lines[1].split() == ["2", f"{mean:.4g}", "n/a", "1"]
    assert "± 0" not in one.format()


def test_equal_replicates_have_a_spread_of_zero(serial):
    """Two replicates that agree exactly have sd 0 (measured), not n/a."""
    same = sweep(BASE.replace(**{"cluster.compute_time": "deterministic"}),
                 {"cluster.workers": [2]}, seeds=[0, 1])
    row, = same.aggregate("sim_time")
    assert row["n"] == 2 and row["std"] == 0.0
    assert same.format("sim_time").splitlines()[1].split()[2] == "0"


def test_grid_points_that_are_one_scenario_are_refused():
    """1 and [1, 1, 1, 1] are the same slowdown for 4 workers: one run counted twice."""
    with pytest.raises(ScenarioError, match=r"grid points \{'cluster.slowdown': 1\} and "
                                            r"\{'cluster.slowdown': \[1, 1, 1, 1\]\} are the "
                                            r"same scenario: its runs would count twice"):
        sweep(BASE, {"cluster.slowdown": [1, [1, 1, 1, 1]]})
    with pytest.raises(ScenarioError, match=r"grid cluster.workers lists a value twice"):
        sweep(BASE, {"cluster.workers": [2, 2]})


def test_a_grid_of_lists_runs_each_list_and_prints_it_as_toml():
    result = sweep(BASE, {"cluster.slowdown": [[1, 1, 1, 4], [1, 1, 1, 1]]})
    assert [r["point"] for r in result.records] == [{"cluster.slowdown": [1, 1, 1, 4]},
                                                    {"cluster.slowdown": [1, 1, 1, 1]}]
    slow, even = (r["summary"]["sim_time"] for r in result.records)
    assert slow > even  # the straggler slows every synchronous round
    assert [line.split()[:4] for line in result.format().splitlines()[1:]] == [
        ["[1,", "1,", "1,", "4]"], ["[1,", "1,", "1,", "1]"]]


def test_a_categorical_key_is_drawn_as_dodged_points_not_lines(serial):
    """x = strategy.kind: one tick per category, each series' points beside each other
    (offset by 0.8 / series), no line joining sync to async; error bars are the sd."""
    fig = serial.plot(x="strategy.kind")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sync", "async"]
    bars = {c.get_label(): c for c in ax.containers}
    assert set(bars) == {"cluster.workers=2", "cluster.workers=4"}
    for label, offset in (("cluster.workers=2", -0.2), ("cluster.workers=4", 0.2)):
        data_line, _, (spans,) = bars[label]
        assert data_line.get_linestyle() == "None"
        np.testing.assert_allclose(np.asarray(data_line.get_xdata(), float),
                                   [0 + offset, 1 + offset])
        rows = [row for row in serial.aggregate() if f"cluster.workers={row['cluster.workers']}"
                == label]
        heights = [seg[1][1] - seg[0][1] for seg in spans.get_segments()]
        np.testing.assert_allclose(heights, [2 * row["std"] for row in rows])
    numeric = serial.plot(x="cluster.workers").axes[0]
    assert numeric.containers[0][0].get_linestyle() == "-"  # numbers keep their lines


def test_a_single_seed_plot_says_it_has_no_spread():
    one = sweep(BASE, {"strategy.kind": ["sync", "async"]}, seeds=[0])
    ax = one.plot().axes[0]
    assert ax.get_ylabel() == "final_accuracy (1 seed: no spread measured)"
    _, _, (spans,) = ax.containers[0]
    assert [seg[1][1] - seg[0][1] for seg in spans.get_segments()] == [0.0, 0.0]


def test_cli_sweep_over_lists(tmp_path, capsys):
    """--grid with list values runs one point per list, in order."""
    out = tmp_path / "lists.jsonl"
    assert main(["sweep", "iris_sync", "--grid", "cluster.slowdown=[1,1,1,4],[1,1,1,1]",
                 "--grid", "stop.rounds=3", "--out", str(out), "--quiet"]) == 0
    points = [json.loads(line)["point"] for line in out.read_text().splitlines()]
    assert points == [{"cluster.slowdown": [1, 1, 1, 4], "stop.rounds": 3},
                      {"cluster.slowdown": [1, 1, 1, 1], "stop.rounds": 3}]
