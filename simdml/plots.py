"""Figures of runs, built on ``matplotlib.figure.Figure`` (no global pyplot state).

Every function returns the Figure, so it shows inline in a notebook; ``save(fig, path)``
writes it for slides (PNG, or SVG / PDF by the file's suffix).
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = ["history", "timeline", "run_overview", "save", "KIND_COLORS"]

KIND_COLORS = {
    "compute": "#2a9d8f", "send": "#e9c46a", "recv": "#f4a261", "wait": "#d9d9d9",
    "down": "#e63946", "compute_lost": "#9d0208", "send_lost": "#9d0208", "recv_lost": "#9d0208",
    "compute_dropped": "#a8dadc",
}


def _runs(results) -> dict:
    return results if isinstance(results, dict) else {results.scenario.name: results}


def history(results, *, x: str = "time", ax_loss=None, ax_acc=None) -> Figure:
    """Training loss and test accuracy of one or several runs.

    Parameters
    ----------
    results : Result or dict of label -> Result
    x : {"time", "update"}
        Against simulated time (s) or against the number of global model updates.
    """
    if x not in ("time", "update"):
        raise ValueError(f"x must be 'time' or 'update'; got {x!r}")
    fig = None
    if ax_loss is None or ax_acc is None:
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
    xlabel = "simulated time (s)" if x == "time" else "global model updates"
    for label, r in _runs(results).items():
        xs = [h[x] for h in r.history]
        ax_loss.plot(xs, [h["loss"] for h in r.history], label=label)
        ax_acc.plot(xs, [100 * h["accuracy"] for h in r.history], label=label)
    ax_loss.set(xlabel=xlabel, ylabel="training loss (cross-entropy)", title="Loss")
    ax_acc.set(xlabel=xlabel, ylabel="test accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    return fig or ax_loss.figure


def timeline(trace, *, ax=None, until: float | None = None, max_nodes: int = 32) -> Figure:
    """A Gantt chart: one row per node, a bar per span, crashes and recoveries marked."""
    fig = None
    if ax is None:
        n = min(len(trace.nodes), max_nodes)
        fig = Figure(figsize=(10, 1.2 + 0.35 * n), layout="constrained")
        ax = fig.subplots()
    nodes = trace.nodes[:max_nodes]
    row = {n: i for i, n in enumerate(nodes)}
    end = trace.end if until is None else until
    # draw the background kinds first so that short bars stay visible on top
    order = {"wait": 0, "down": 1, "recv": 2, "send": 3, "compute": 4}
    for span in sorted(trace.spans, key=lambda s: order.get(s.kind.partition("_")[0], 5)):
        if span.node not in row or span.start > end:
            continue
        base = span.kind.partition("_")[0]
        lane = {"send": 0.25, "recv": -0.25}.get(base, 0.0)
        height = 0.3 if base in ("send", "recv") else 0.6
        ax.broken_barh([(span.start, min(span.end, end) - span.start)],
                       (row[span.node] + lane - height / 2, height),
                       facecolors=KIND_COLORS.get(span.kind, "gray"))
    for t, node, kind in trace.instants:
        if node in row and t <= end:
            ax.plot([t], [row[node]], marker="x" if kind == "crash" else "^",
                    color="black", markersize=8)
    ax.set_yticks(range(len(nodes)), nodes)
    ax.invert_yaxis()
    ax.set_xlim(0, end if end > 0 else 1)
    title = "What each node does, when"
    if end < trace.end:
        title += f" (first {end:.3g} s of {trace.end:.3g} s)"
    ax.set(xlabel="simulated time (s)", title=title)
    kinds = ["compute", "send", "recv", "wait", "down"]
    handles = [Patch(color=KIND_COLORS[k], label=k) for k in kinds]
    if any(s.kind.endswith("_lost") for s in trace.spans):
        handles.append(Patch(color=KIND_COLORS["compute_lost"], label="lost to a crash"))
    if any(s.kind == "compute_dropped" for s in trace.spans):
        handles.append(Patch(color=KIND_COLORS["compute_dropped"], label="dropped (stale)"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18 if fig else -0.25),
              ncol=len(handles), fontsize="small", frameon=False)
    return fig or ax.figure


def run_overview(result, *, timeline_until: float | None = None) -> Figure:
    """Loss and accuracy vs simulated time above, the nodes' timeline below."""
    n = min(len(result.trace.nodes), 16)
    fig = Figure(figsize=(11, 5.5 + 0.3 * n), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[4, 2 + 0.3 * n])
    history(result, ax_loss=top.add_subplot(1, 2, 1), ax_acc=top.add_subplot(1, 2, 2))
    timeline(result.trace, ax=bottom.subplots(), until=timeline_until, max_nodes=16)
    fig.suptitle(f"{result.scenario.name}: {result.scenario.strategy.kind} on "
                 f"{result.scenario.cluster.workers} workers ({result.scenario.data.dataset})")
    return fig


def save(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` (format from the suffix: .png, .svg, .pdf), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
