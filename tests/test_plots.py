"""Figures say what they show: each event its own marker in the timeline and its legend,
and a large cluster's figures and node table say how many workers they leave out."""
from types import SimpleNamespace

import pytest

from simdml import Scenario, run
from simdml import plots
from simdml.cli import format_summary
from simdml.plots import EVENT_MARKERS
from simdml.tables import node_table, shown_nodes


def _trace(n_workers: int, instants=()):
    nodes = ["server"] + [f"worker{i}" for i in range(n_workers)]
    return SimpleNamespace(nodes=nodes, spans=[], instants=list(instants), end=1.0)


def test_each_event_has_its_own_marker_and_a_legend_entry():
    """Crash x, recovery ^, partition v, heal D: four markers, all different (a partition
    used to share the recovery's ^), each drawn where it happened and named in the legend."""
    instants = [(0.1, "worker0", "crash"), (0.2, "worker0", "recover"),
                (0.3, "worker1", "partition"), (0.4, "worker1", "heal")]
    ax = plots.timeline(_trace(2, instants)).axes[0]
    drawn = [(line.get_xdata()[0], line.get_ydata()[0], line.get_marker()) for line in ax.lines]
    assert drawn == [(0.1, 1, "x"), (0.2, 1, "^"), (0.3, 2, "v"), (0.4, 2, "D")]
    assert len({m for m, _ in EVENT_MARKERS.values()}) == len(EVENT_MARKERS)
    legend = {h.get_label(): h for h in ax.get_legend().legend_handles}
    assert {label: legend[label].get_marker() for label in
            ("crash", "recovery", "partition", "partition heals")} == {
        "crash": "x", "recovery": "^", "partition": "v", "partition heals": "D"}


def test_the_legend_names_only_the_events_that_happened():
    ax = plots.timeline(_trace(2, [(0.1, "worker0", "crash")])).axes[0]
    labels = [h.get_label() for h in ax.get_legend().legend_handles]
    assert labels[-1] == "crash" and "recovery" not in labels and "partition" not in labels


def test_a_real_crash_and_recovery_are_in_the_legend():
    r = run("crash_recovery")
    ax = plots.timeline(r.trace).axes[0]
    labels = [h.get_label() for h in ax.get_legend().legend_handles]
    assert labels[-2:] == ["crash", "recovery"]


def test_a_timeline_of_a_large_cluster_says_what_it_leaves_out():
    ax = plots.timeline(_trace(2000), max_nodes=16).axes[0]
    assert ax.get_title() == "What each node does, when; 15 of 2,000 workers shown"
    assert [t.get_text() for t in ax.get_yticklabels()] == (
        ["server"] + [f"worker{i}" for i in range(15)])
    assert plots.timeline(_trace(15), max_nodes=16).axes[0].get_title() == (
        "What each node does, when")  # all shown: nothing to say


def test_shown_nodes_counts_workers_not_the_server():
    names = ["server"] + [f"worker{i}" for i in range(2000)]
    kept, note = shown_nodes(names, 16)
    assert kept == names[:16] and note == "15 of 2,000 workers shown"
    assert shown_nodes(names[:5], 16) == (names[:5], "")


@pytest.fixture(scope="module")
def forty():
    """40 workers: more than a figure or a table shows."""
    return run(Scenario(name="forty").replace(**{
        "cluster.workers": 40, "cluster.speed": 1e6, "stop.rounds": 2}))


def test_a_large_run_overview_and_utilization_say_what_they_omit(forty):
    fig = plots.run_overview(forty)
    titles = [ax.get_title() for ax in fig.get_axes()]
    assert "What each node does, when; 15 of 40 workers shown" in titles
    ax = plots.utilization(forty, max_nodes=16).axes[0]
    assert ax.get_title().endswith("; 15 of 40 workers shown)")
    assert len(ax.get_xticks()) == 16


def test_the_node_table_is_cut_like_the_figure_and_keeps_the_totals(forty):
    """Server and 15 workers, then a row summing all 40 workers (utilization: their
    mean), then a line saying what is left out."""
    lines = node_table(forty.nodes)
    names = [line.split()[0] for line in lines[1:17]]
    assert names == ["server"] + [f"worker{i}" for i in range(15)]
    workers = [t for n, t in forty.nodes.items() if n != "server"]
    total = lines[17]
    assert total.startswith("all 40 workers ")
    assert total.split()[3:] == [
        f"{sum(t['compute'] for t in workers):.4g}", f"{sum(t['send'] for t in workers):.3g}",
        f"{sum(t['recv'] for t in workers):.3g}", f"{sum(t['wait'] for t in workers):.3g}",
        f"{sum(t['down'] for t in workers):.3g}",
        f"{100 * sum(t['utilization'] for t in workers) / 40:.1f}"]
    assert lines[18] == ("(15 of 40 workers shown; the last row sums all of them, "
                         "utilization their mean)")
    assert len(lines) == 19 and "worker39" not in "\n".join(lines)
    with_memory = node_table(forty.nodes, memory=forty.memory)
    assert [line[:len(lines[0])] for line in with_memory[:-1]] == lines[:-1]
    assert with_memory[-1] == lines[-1][:-1] + ", peak mem their largest)"
    assert format_summary(forty).endswith("\n".join(with_memory))


def test_a_small_cluster_table_has_every_node_and_no_total():
    r = run(Scenario(name="small").replace(**{"stop.rounds": 2}))
    lines = node_table(r.nodes)
    assert [line.split()[0] for line in lines[1:]] == ["server"] + [f"worker{i}" for i in range(4)]


def test_a_strategy_has_one_colour_in_every_panel_that_compares_strategies():
    """Lesson 2's async was orange in the loss panel and blue in the staleness panel (the
    colour cycle follows the order of the runs): each strategy has its colour, in every
    figure, whatever the runs it is drawn with."""
    from matplotlib.colors import to_hex
    from simdml import Scenario, run
    base = Scenario(name="colours").replace(**{"stop.rounds": 3})
    runs = {k: run(base.replace(**{"strategy.kind": k})) for k in ("sync", "async", "ssp")}
    fig = plots.history(runs)
    for ax in fig.axes:
        assert {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()} == {
            k: plots.STRATEGY_COLORS[k] for k in runs}
    ax = plots.staleness({k: runs[k] for k in ("async", "ssp")}).axes[0]
    assert {c.get_label(): to_hex(c.patches[0].get_facecolor()) for c in ax.containers} == {
        k: plots.STRATEGY_COLORS[k] for k in ("async", "ssp")}
    two_syncs = {"a": runs["sync"], "b": runs["sync"]}   # the same strategy twice: the cycle
    assert plots.run_colors(two_syncs) == {"a": "C0", "b": "C1"}


def test_runs_read_back_from_a_file_take_the_colour_cycle():
    """A run loaded from a result file has no scenario: the cycle, not an AttributeError."""
    bare = SimpleNamespace(history=[], model=SimpleNamespace(is_classifier=True))
    assert plots.run_colors({"a": bare, "b": bare}) == {"a": "C0", "b": "C1"}


def test_the_legend_lists_down_time_and_checkpoints_only_when_they_happened():
    """A run without crashes has no 'down' bar, so its legend has no 'down' entry (lesson
    1's legend had one); a crash that keeps a node down adds it."""
    calm = run(Scenario(name="calm").replace(**{"stop.rounds": 3}))
    labels = [h.get_label() for h in plots.timeline(calm.trace).axes[0].get_legend().legend_handles]
    assert labels == ["compute", "send", "recv", "wait"]
    down = SimpleNamespace(nodes=["server", "worker0"], instants=[], end=1.0,
                           spans=[SimpleNamespace(node="worker0", kind="down", start=0.2, end=0.5,
                                                  nbytes=0, duration=0.3)])
    labels = [h.get_label() for h in plots.timeline(down).axes[0].get_legend().legend_handles]
    assert labels == ["compute", "send", "recv", "wait", "down"]
