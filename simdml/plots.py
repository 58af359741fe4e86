"""Figures of runs, built on ``matplotlib.figure.Figure`` (no global pyplot state).

Every function returns the Figure, so it shows inline in a notebook; ``save(fig, path)``
writes it for slides (PNG, or SVG / PDF by the file's suffix).

Why a Figure shows inline in a fresh Jupyter kernel: IPython learns to draw a Figure as
PNG only when the inline backend module loads, which happens when ``pyplot`` is imported
(or on ``%matplotlib inline``). simdml never imports pyplot, so this module, when it is
imported inside a kernel, registers that PNG formatter itself. Outside a kernel it does
nothing: scripts and CI stay headless (``MPLBACKEND=Agg`` or not), and no window opens.
"""
from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ._toml import shown_value
from .tables import MAX_NODES_SHOWN, shown_nodes

__all__ = ["history", "timeline", "staleness", "run_overview", "decision_regions", "confusion",
           "utilization", "speedup", "sweep", "save", "png", "show_inline",
           "KIND_COLORS", "MEMORY_COLORS", "CLASS_COLORS", "EVENT_MARKERS", "STRATEGY_COLORS",
           "run_colors"]

KIND_COLORS = {
    "compute": "#2a9d8f", "send": "#e9c46a", "recv": "#f4a261", "wait": "#d9d9d9",
    "down": "#e63946", "compute_lost": "#9d0208", "send_lost": "#9d0208", "recv_lost": "#9d0208",
    "compute_dropped": "#a8dadc", "checkpoint": "#6a4c93", "checkpoint_lost": "#9d0208",
}


# one marker per instant of a trace, each in the timeline's legend
EVENT_MARKERS = {"crash": ("x", "crash"), "recover": ("^", "recovery"),
                 "partition": ("v", "partition"), "heal": ("D", "partition heals")}


# one colour per strategy, in every figure that compares strategies (lesson 2's async is
# orange in its loss, accuracy and staleness panels alike)
#: a node's memory by category (``simdml.memory.CATEGORIES``, and ZeRO's ``unsharded``)
MEMORY_COLORS = {
    "params": "#1d3557", "grads": "#457b9d", "optimizer": "#e76f51", "activations": "#2a9d8f",
    "unsharded": "#a8dadc", "buffers": "#e9c46a", "shard": "#d9d9d9",
}

STRATEGY_COLORS = {
    "sync": "#1d3557", "async": "#e76f51", "ssp": "#2a9d8f", "allreduce": "#e9c46a",
    "ddp": "#bc4749", "local_sgd": "#8338ec", "cascade_svm": "#457b9d", "admm_svm": "#f4a261",
    "local_fusion": "#6a994e", "hist_tree": "#1d3557", "voting_tree": "#e76f51",
}


def run_colors(runs: dict) -> dict:
    """A colour per run label: its strategy's (``STRATEGY_COLORS``) when every run is of
    a different strategy, else (or when a run does not say its scenario) matplotlib's
    cycle in label order (C0, C1, ...)."""
    kinds = [getattr(getattr(r, "scenario", None), "strategy", None) for r in runs.values()]
    kinds = [getattr(k, "kind", None) for k in kinds]  # a run read back from a file has none
    if len(set(kinds)) == len(kinds) and all(k in STRATEGY_COLORS for k in kinds):
        return {label: STRATEGY_COLORS[k] for label, k in zip(runs, kinds)}
    return {label: f"C{j % 10}" for j, label in enumerate(runs)}


CLASS_COLORS = ("#1d3557", "#e76f51", "#2a9d8f", "#e9c46a", "#8338ec", "#6c757d")


_X_LABELS = {"time": "simulated time (s)", "update": "global model updates",
             "epoch": "gradient work (epochs over the training set)"}


def _runs(results) -> dict:
    return results if isinstance(results, dict) else {results.scenario.name: results}


def history(results, *, x: str = "time", ax_loss=None, ax_acc=None) -> Figure:
    """Training loss and test accuracy of one or several runs.

    Draws on the axes given (either or both); with neither, makes a two-panel figure.

    Parameters
    ----------
    results : Result or dict of label -> Result
    x : {"time", "update", "epoch"}
        Against simulated time (s), the number of global model updates, or the gradient
        work done (epochs: passes over the training set, wasted work included).
    """
    if x not in _X_LABELS:
        raise ValueError(f"x must be one of {', '.join(map(repr, _X_LABELS))}; got {x!r}")
    fig = None
    if ax_loss is None and ax_acc is None:
        fig = Figure(figsize=(10, 4), layout="constrained")
        ax_loss, ax_acc = fig.subplots(1, 2)
    runs = _runs(results)
    # from the summary: a timing-only run (or one stopped before its first model) has none
    is_classifier = all(r.summary["score_name"] == "accuracy" for r in runs.values())
    score = ((100, "test accuracy (%)", "Accuracy") if is_classifier else
             (1, "test score (R²)", "Score"))
    timing = [label for label, r in runs.items() if r.summary.get("timing_only")]
    panels = [(ax, key, scale, ylabel, title) for ax, key, scale, ylabel, title in (
        (ax_loss, "loss", 1, "training loss", "Loss"),
        (ax_acc, "score", *score)) if ax is not None]
    colors = run_colors(runs)
    for ax, key, scale, ylabel, title in panels:
        is_log = ax.get_xscale() == "log"  # a log axis cannot show update 0
        for label, r in runs.items():
            if label in timing:
                continue
            rows = [h for h in r.history if h[x] > 0 or not is_log]
            # steps: the model is constant between two evaluations
            ax.plot([h[x] for h in rows], [scale * h[key] for h in rows], label=label,
                    drawstyle="steps-post", color=colors[label])
        ax.set(xlabel=_X_LABELS[x], ylabel=ylabel, title=title)
        ax.grid(alpha=0.3)
        if timing:                 # say what is missing, and why
            ax.text(0.5, 0.5, f"timing only (math = false): no {key}\n"
                    + ", ".join(timing), transform=ax.transAxes, ha="center", va="center",
                    fontsize="small", color="0.35")
        if len(timing) < len(runs):
            ax.legend(loc="best", fontsize="small")
    return fig or panels[0][0].figure


def timeline(trace, *, ax=None, until: float | None = None, max_nodes: int = 32) -> Figure:
    """A Gantt chart: one row per node, a bar per span, and a marker per event (crash,
    recovery, partition, heal: ``EVENT_MARKERS``), each in the legend. Past
    ``max_nodes`` nodes the title says how many workers are shown."""
    fig = None
    if ax is None:
        n = min(len(trace.nodes), max_nodes)
        fig = Figure(figsize=(10, 1.2 + 0.35 * n), layout="constrained")
        ax = fig.subplots()
    nodes, omitted = shown_nodes(trace.nodes, max_nodes)
    if not trace.spans and trace.end > 0:   # the run kept totals only: say so, not blank
        ax.text(0.5, 0.5, "no spans kept (trace_spans = false): per-node totals only",
                transform=ax.transAxes, ha="center", va="center", fontsize="small",
                color="0.35")
    row = {n: i for i, n in enumerate(nodes)}
    end = trace.end if until is None else until
    # draw the background kinds first so that short bars stay visible on top
    order = {"wait": 0, "down": 1, "recv": 2, "send": 3, "compute": 4, "checkpoint": 4}
    bars: dict = {}  # perf: one broken_barh per node and kind, not one per span
    for span in trace.spans:
        if span.node in row and span.start <= end:
            bars.setdefault((span.node, span.kind), []).append(
                (span.start, min(span.end, end) - span.start))
    for (node, kind), segments in sorted(bars.items(),
                                         key=lambda kv: order.get(kv[0][1].partition("_")[0], 5)):
        base = kind.partition("_")[0]
        # the NICs in bands of their own, above and below the CPU's: a message sent while
        # the node computes (ddp's all-reduce under its backward pass) shows beside it
        lane = {"send": 0.3, "recv": -0.3}.get(base, 0.0)
        height = 0.2 if base in ("send", "recv") else 0.4
        ax.broken_barh(segments, (row[node] + lane - height / 2, height),
                       facecolors=KIND_COLORS.get(kind, "gray"))
    events = set()
    for t, node, kind in trace.instants:
        if node in row and t <= end:
            ax.plot([t], [row[node]], marker=EVENT_MARKERS.get(kind, ("o", kind))[0],
                    linestyle="none", color="black", markersize=8)
            events.add(kind)
    ax.set_yticks(range(len(nodes)), nodes)
    ax.invert_yaxis()
    ax.set_xlim(0, end if end > 0 else 1)
    title = "What each node does, when"
    if end < trace.end:
        title += f" (first {end:.3g} s of {trace.end:.3g} s)"
    if omitted:
        title += f"; {omitted}"
    ax.set(xlabel="simulated time (s)", title=title)
    kinds = ["compute", "send", "recv", "wait"]  # a kind that never happened is not listed
    kinds += [k for k in ("down", "checkpoint") if any(s.kind == k for s in trace.spans)]
    handles = [Patch(color=KIND_COLORS[k], label=k) for k in kinds]
    if any(s.kind.endswith("_lost") for s in trace.spans):
        handles.append(Patch(color=KIND_COLORS["compute_lost"], label="lost to a crash"))
    if any(s.kind == "compute_dropped" for s in trace.spans):
        handles.append(Patch(color=KIND_COLORS["compute_dropped"], label="dropped (stale)"))
    for kind in sorted(events, key=lambda k: (list(EVENT_MARKERS) + [k]).index(k)):
        marker, label = EVENT_MARKERS.get(kind, ("o", kind))
        handles.append(Line2D([], [], marker=marker, linestyle="none", color="black",
                              markersize=7, label=label))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18 if fig else -0.25),
              ncol=len(handles), fontsize="small", frameon=False)
    return fig or ax.figure


def staleness(results, *, ax=None) -> Figure:
    """Histogram of gradient staleness (versions between computing and applying)."""
    fig = None
    if ax is None:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
    runs = _runs(results)
    width = 0.8 / max(1, len(runs))
    colors = run_colors(runs)
    for j, (label, r) in enumerate(runs.items()):
        hist = r.summary.get("staleness_histogram", [])
        total = sum(hist) or 1
        xs = [s + (j - (len(runs) - 1) / 2) * width for s in range(len(hist))]
        ax.bar(xs, [100 * c / total for c in hist], width=width, label=label,
               color=colors[label])
    ax.set(xlabel="staleness (model versions)", ylabel="gradients (%)",
           title="How stale were the gradients?")
    ax.grid(alpha=0.3, axis="y")
    if runs:
        ax.legend(fontsize="small")
    return fig or ax.figure


def run_overview(result, *, timeline_until: float | None = None) -> Figure:
    """Loss and accuracy vs simulated time above, the nodes' timeline below."""
    n = min(len(result.trace.nodes), MAX_NODES_SHOWN)
    fig = Figure(figsize=(11, 5.5 + 0.3 * n), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[4, 2 + 0.3 * n])
    history(result, ax_loss=top.add_subplot(1, 2, 1), ax_acc=top.add_subplot(1, 2, 2))
    timeline(result.trace, ax=bottom.subplots(), until=timeline_until,
             max_nodes=MAX_NODES_SHOWN)
    fig.suptitle(f"{result.scenario.name}: {result.scenario.strategy.kind} on "
                 f"{result.scenario.cluster.workers} workers ({result.scenario.data.dataset})")
    return fig


def decision_regions(predict, X, y, *, ax=None, highlight=None, resolution: int = 200,
                     title: str = "", xlabel: str = "feature 1 (standardized)",
                     ylabel: str = "feature 2 (standardized)") -> Figure:
    """The regions a classifier assigns to each class, on 2-D data, with the points.

    Parameters
    ----------
    predict : callable
        ``predict(X) -> labels`` for rows of shape (n, 2), e.g. ``model.predict``.
    X : ndarray of shape (n_samples, 2)
    y : ndarray of shape (n_samples,), class indices 0 .. k-1
    highlight : ndarray of row indices, optional
        Points to ring (support vectors).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision regions need 2-D data (n, 2); got shape {X.shape}")
    fig = None
    if ax is None:
        fig = Figure(figsize=(5, 4.5), layout="constrained")
        ax = fig.subplots()
    pad = 0.5
    (x0, y0), (x1, y1) = X.min(axis=0) - pad, X.max(axis=0) + pad
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    labels = predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    k = int(max(y.max(), labels.max())) + 1
    colors = [CLASS_COLORS[c % len(CLASS_COLORS)] for c in range(k)]
    ax.contourf(gx, gy, labels, levels=np.arange(k + 1) - 0.5, cmap=ListedColormap(colors), alpha=0.18)
    for c in range(k):
        ax.scatter(*X[y == c].T, s=10, color=colors[c], label=f"class {c}")
    if highlight is not None and len(highlight):
        ax.scatter(*X[highlight].T, s=40, facecolors="none", edgecolors="black", linewidths=0.8,
                   label="support vectors")
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel=xlabel, ylabel=ylabel, title=title)
    return fig if fig is not None else ax.figure


def confusion(matrix, *, ax=None, class_names=None, title: str = "Confusion matrix") -> Figure:
    """A confusion matrix (rows: true class, columns: predicted), each cell with its
    count and its share of the true class (the row's recall on the diagonal)."""
    m = np.asarray(matrix)
    fig = None
    if ax is None:
        fig = Figure(figsize=(4.5, 4), layout="constrained")
        ax = fig.subplots()
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    names = class_names or [str(c) for c in range(m.shape[0])]
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{m[i, j]}\n{100 * share[i, j]:.0f} %", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(m.shape[1]), names)
    ax.set_yticks(range(m.shape[0]), names)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    return fig if fig is not None else ax.figure


def utilization(result, *, ax=None, max_nodes: int = 32) -> Figure:
    """Per node, the share of the run spent computing, sending, receiving, waiting and
    down, as stacked bars (send and receive overlap computing: they are drawn beside).
    Past ``max_nodes`` nodes the title says how many workers are shown."""
    fig = None
    if ax is None:
        fig = Figure(figsize=(8, 4), layout="constrained")
        ax = fig.subplots()
    nodes = result.nodes
    names, omitted = shown_nodes(list(nodes), max_nodes)
    end = result.trace.end or 1.0
    x = np.arange(len(names))
    bottom = np.zeros(len(names))
    for kind in ("compute", "checkpoint", "down", "wait"):
        values = np.array([100 * nodes[n].get(kind, 0.0) / end for n in names])
        if values.any():
            ax.bar(x, values, 0.6, bottom=bottom, label=kind, color=KIND_COLORS[kind])
            bottom += values
    ax.set_xticks(x, names, rotation=30 if len(names) > 6 else 0)
    ax.set(ylabel="share of the run (%)", ylim=(0, 105),
           title=f"Where each node's time went ({end:.3g} s simulated"
                 + (f"; {omitted})" if omitted else ")"))
    ax.legend(loc="upper right", fontsize=8)
    return fig if fig is not None else ax.figure


def speedup(results: dict, *, ax=None) -> Figure:
    """Speedup ``T(1) / T(n)`` and efficiency ``speedup / n`` against the number of
    workers, from ``{n_workers: Result}`` (the run with the fewest workers is the
    baseline, scaled to it)."""
    fig = None
    if ax is None:
        fig = Figure(figsize=(7, 4), layout="constrained")
        ax = fig.subplots()
    ns = sorted(results)
    t = np.array([results[n].summary["sim_time"] for n in ns])
    base = t[0] * ns[0]  # T(1) estimated as n0 T(n0) when the baseline is not 1 worker
    ax.plot(ns, base / t, "o-", label="speedup T(1) / T(n)")
    ax.plot(ns, ns, "--", color="gray", label="ideal")
    ax.set(xlabel="workers", ylabel="speedup", title="Speedup and efficiency")
    twin = ax.twinx()
    twin.plot(ns, base / t / np.array(ns), "s:", color="#e76f51", label="efficiency")
    twin.set(ylabel="efficiency (speedup / workers)", ylim=(0, 1.1))
    lines, more = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=8)
    return fig if fig is not None else ax.figure


def sweep(result, *, x: str, metric: str = "final_accuracy", ax=None) -> Figure:
    """Mean ± standard deviation (error bars) of ``metric`` over a sweep's replicates
    against grid key ``x``, one series per combination of the other keys.

    A numeric ``x`` (workers, speeds) draws lines; a categorical one (``strategy.kind``,
    lists, booleans) draws points side by side ("dodged") at each category, joined by
    nothing: there is no order between categories to draw a line along. A point of a
    single replicate has no error bar (its spread is unknown, not 0).
    """
    fig = None
    if ax is None:
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.subplots()
    if x not in result.grid:
        raise ValueError(f"x must be one of the grid keys {list(result.grid)}; got {x!r}")
    rows = result.aggregate(metric)
    others = [k for k in result.grid if k != x and len(result.grid[k]) > 1]  # fixed keys: no label
    groups: dict = {}
    for row in rows:
        groups.setdefault(tuple(shown_value(row[k]) for k in others), []).append(row)
    categories = [shown_value(v) for v in result.grid[x]]
    is_numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                     for v in result.grid[x])
    width = 0.8 / len(groups)  # categorical: the series share each category's slot
    for j, (key, group) in enumerate(groups.items()):
        label = ", ".join(f"{k}={v}" for k, v in zip(others, key)) or metric
        if is_numeric:
            positions, fmt = [row[x] for row in group], "o-"
        else:
            offset = (j - (len(groups) - 1) / 2) * width
            positions, fmt = [categories.index(shown_value(row[x])) + offset for row in group], "o"
        errors = [0.0 if np.isnan(row["std"]) else row["std"] for row in group]
        ax.errorbar(positions, [row["mean"] for row in group], errors, fmt=fmt, capsize=3,
                    label=label)
    if not is_numeric:
        ax.set_xticks(range(len(categories)), categories)
        ax.set_xlim(-0.6, len(categories) - 0.4)
    n = max((row["n"] for row in rows), default=0)
    spread = f"mean ± sd over {n} seeds" if n > 1 else "1 seed: no spread measured"
    ax.set(xlabel=x, ylabel=f"{metric} ({spread})", title=f"{metric} vs {x}")
    ax.legend(fontsize=8)
    return fig if fig is not None else ax.figure



def save(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Write ``fig`` (format from the suffix: .png, .svg, .pdf), creating folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def png(fig: Figure, *, dpi: int = 100) -> bytes:
    """``fig`` as PNG bytes: what a notebook shows inline and an HTML repr embeds."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def png_base64(fig: Figure, *, dpi: int = 100) -> str:
    """``fig`` as base64-encoded PNG, for ``<img src="data:image/png;base64,...">``."""
    return base64.b64encode(png(fig, dpi=dpi)).decode("ascii")


def show_inline(fig: Figure) -> None:
    """Show ``fig`` as an output of the running notebook cell; in a script, do nothing
    (nothing is drawn, no window opens: ``save`` is how a script keeps a figure)."""
    if _kernel() is not None:
        from IPython.display import display
        display(fig)


def _kernel():
    """The running Jupyter kernel's IPython shell, or None (a script, a terminal)."""
    ipython = sys.modules.get("IPython")  # looked up, never imported: scripts stay without it
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if getattr(shell, "kernel", None) is not None else None


def _show_figures_inline() -> None:
    """In a kernel, draw every Figure as PNG when it is a cell's result, unless a
    formatter is already set (``%matplotlib inline`` set one, and replaces this one)."""
    shell = _kernel()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, png_base64)


_show_figures_inline()
