# %% [markdown]
# # Lesson 5 — distributed decision trees: exact histograms, votes, or a forest of locals?
#
# ## Question
#
# A decision tree needs, at every node, the class counts of every candidate split --
# over *all* the rows. When the rows are spread over many machines, what has to
# travel, and how does that grow with the number of workers and of features? Can we
# send less and still get (nearly) the same tree?
#
# ## Setup
#
# A 1 Gbit/s network (0.5 ms latency) and workers of 1 Gflop/s. Three methods:
#
# - hist_tree: every level, each worker sends the class histograms (feature x bin x
#   class counts) of the frontier nodes; the server sums them and splits. Exact: it
#   is the centralized tree on the same bins. With histogram subtraction (default)
#   only the smaller child of each split is built; its sibling is parent - child.
# - voting_tree (PV-Tree): each worker votes for its `TOP_K` best local features
#   per node; only the 2 x TOP_K most voted features' histograms travel.
# - local trees + soft vote (local_fusion): every worker grows its own tree on its
#   shard; the server averages their class probabilities. One message per worker.


# %%
"""Lesson 5 — distributed decision trees: exact histograms, votes, or a forest of locals?"""
import os
from pathlib import Path

from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots
from simdml.experiment import prepare_data

TOP_K = 4
WORKERS = (2, 4, 8, 16)
FEATURES = (8, 16, 32, 64)
TOP_KS = (1, 2, 4, 8, 16, 32)
BASE = {"model.kind": "tree", "strategy.kind": "hist_tree", "data.dataset": "digits",
        "cluster.speed": 1e9,
        "network.latency": 5e-4, "network.bandwidth": 1.25e8}
METHODS = {
    "hist_tree (exact)": {"strategy.kind": "hist_tree"},
    f"voting_tree (top_k={TOP_K})": {"strategy.kind": "voting_tree", "strategy.top_k": TOP_K},
    "local trees + soft vote": {"strategy.kind": "local_fusion", "strategy.rule": "soft"},
}
COLORS = ("#1d3557", "#e76f51", "#2a9d8f")
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "05_distributed_trees.png"


# %%
def simulate(quick: bool = False) -> dict:
    """Each method against the workers (printed) and the features, and the vote against
    top_k (fewer of each when quick)."""
    workers = WORKERS[:3] if quick else WORKERS
    features = FEATURES[::3] if quick else FEATURES
    top_ks = (1, 4, 32) if quick else TOP_KS
    base = Scenario(name="distributed_trees").replace(**BASE)

    by_workers = {m: {} for m in METHODS}
    print(f"{'method':<26} {'workers':>7} {'accuracy':>9} {'time (ms)':>10} {'bytes':>12}")
    for method, changes in METHODS.items():
        for n in workers:
            s = simdml.run(base.replace(**{**changes, "cluster.workers": n})).summary
            by_workers[method][n] = {"accuracy": s["final_accuracy"], "time": s["sim_time"],
                                     "bytes": s["bytes_sent"]}
            print(f"{method:<26} {n:>7} {100 * s['final_accuracy']:>8.1f}% "
                  f"{1e3 * s['sim_time']:>10.2f} {s['bytes_sent']:>12,}")

    by_features = {m: {} for m in METHODS}
    for method, changes in METHODS.items():
        for d in features:
            s = simdml.run(base.replace(**{**changes, "cluster.workers": 8,
                                           "data.dataset": "synthetic", "data.n_samples": 2000,
                                           "data.n_features": d, "data.n_classes": 4,
                                           "model.max_depth": 8})).summary
            by_features[method][d] = s["bytes_sent"]

    votes = {}
    for k in top_ks:
        s = simdml.run(base.replace(**{"strategy.kind": "voting_tree", "strategy.top_k": k,
                                       "cluster.workers": 4})).summary
        votes[k] = {"accuracy": s["final_accuracy"], "bytes": s["bytes_sent"]}
    return {"by_workers": by_workers, "by_features": by_features, "votes": votes}


def figure(out: dict) -> tuple[Figure, dict]:
    """Six panels (the last one a run of its own, in 2-D); the figure and that run's numbers."""
    by_workers, by_features, votes = out["by_workers"], out["by_features"], out["votes"]
    workers = list(next(iter(by_workers.values())))
    fig = Figure(figsize=(15, 9), layout="constrained")
    axes = fig.subplots(2, 3)
    _lines(axes[0, 0], by_workers, "bytes", 1e-6, "bytes sent (MB)", "Bytes vs workers (digits)")
    _lines(axes[0, 1], by_workers, "time", 1e3, "simulated time (ms)", "Training time vs workers")
    for (method, series), color in zip(by_features.items(), COLORS):
        axes[0, 2].plot(list(series), [1e-6 * b for b in series.values()], "o-", color=color,
                        label=method)
    axes[0, 2].set(xlabel="number of features", ylabel="bytes sent (MB)", yscale="log",
                   title="Bytes vs features (synthetic, 8 workers)")
    _lines(axes[1, 0], by_workers, "accuracy", 100, "test accuracy (%)", "Accuracy vs workers")
    _top_k_panel(axes[1, 1], votes, by_workers["hist_tree (exact)"])
    two_d = _regions(axes[1, 2])
    for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        ax.set_xlabel("number of workers")
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(workers), [str(n) for n in workers])
    axes[0, 0].set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Distributed decision trees: what travels per level, and what it buys",
                 fontsize=14)
    return fig, two_d


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    out = simulate(quick)
    fig, two_d = figure(out)
    plots.save(fig, out_dir / FIGURE)
    print(f"figure: {out_dir / FIGURE}")
    return {**out, "two_d": two_d}
def _lines(ax, table, key, scale, ylabel, title):
    for (method, series), color in zip(table.items(), COLORS):
        ax.plot(list(series), [scale * v[key] for v in series.values()], "o-", color=color,
                label=method)
    ax.set(ylabel=ylabel, title=title)


def _top_k_panel(ax, votes, exact):
    ks = list(votes)
    ax.plot(ks, [100 * votes[k]["accuracy"] for k in ks], "o-", color=COLORS[1],
            label="voting_tree accuracy")
    ax.axhline(100 * exact[4]["accuracy"], color=COLORS[0], ls="--", label="hist_tree accuracy")
    # hist_tree with 4 workers is in every run of the lesson (WORKERS includes 4)
    ax.set(xscale="log", xlabel="top_k (features voted per worker and node)",
           ylabel="test accuracy (%)", title="The vote's trade-off (digits, 4 workers)")
    ax.set_xticks(ks, [str(k) for k in ks])
    twin = ax.twinx()
    twin.plot(ks, [1e-6 * votes[k]["bytes"] for k in ks], "s:", color="#6c757d",
              label="voting_tree bytes")
    twin.axhline(1e-6 * exact[4]["bytes"], color="#6c757d", ls="-.", label="hist_tree bytes")
    twin.set_ylabel("bytes sent (MB)")
    lines = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="lower right")


def _regions(ax) -> dict:
    s = Scenario(name="tree_2d").replace(**{
        "model.kind": "tree", "strategy.kind": "hist_tree", "cluster.workers": 4,
        "model.max_depth": 4, "data.dataset": "synthetic", "data.n_samples": 400,
        "data.n_features": 2, "data.n_classes": 3, "data.class_sep": 1.2})
    r = simdml.run(s)
    split = prepare_data(s)
    plots.decision_regions(r.model.predict, split.X_train, split.y_train, ax=ax,
                           title=f"One hist_tree (depth {r.model.depth_}, {r.model.n_leaves_} "
                                 f"leaves): {100 * r.summary['final_accuracy']:.0f} % test")
    ax.legend(loc="lower right", fontsize=8)
    return {"accuracy": r.summary["final_accuracy"], "leaves": r.model.n_leaves_}


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python
# lessons/05_distributed_trees.py` does; `main()` runs them all at once (the tests and
# `simdml lesson 5` call it). With `SIMDML_QUICK=1` in the environment every run is
# short.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    out = simulate(QUICK)


# %% [markdown]
# ## What the figure shows
#
# Top left: bytes on the wire against the number of workers (digits, 64 features):
# the histogram methods grow linearly with the workers (each sends its histograms
# every level), the voting tree at a fraction of hist_tree's bytes, local trees far
# below (one small tree each). Top middle: simulated time -- the server receives
# every histogram through one network card, so hist_tree's time grows with the
# workers too (incast); the voting tree pays two round trips per level but far fewer
# bytes. Top right: bytes against the number of features (synthetic data, 8
# workers): hist_tree grows with the features, the voting tree hardly at all (at 8
# features it asks for every histogram and pays its votes on top).
# Bottom left: test accuracy against workers: hist_tree *is* the centralized tree
# (a flat line, whatever the partition); the vote loses accuracy as each worker's
# ranking rests on fewer rows; the local trees are each worse than the exact tree,
# but their average is a small random forest and beats it. Bottom middle: the vote's
# trade-off, accuracy and bytes against TOP_K (at 2 TOP_K >= 64 it is the exact tree,
# with more bytes: no histogram subtraction). Bottom right: one hist_tree's decision
# regions on 2-D data -- axis-aligned boxes, one per leaf.


# %%
if __name__ == "__main__":
    fig, two_d = figure(out)
    plots.save(fig, FIGURES / FIGURE)
    print(f"figure: {FIGURES / FIGURE}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Turn histogram subtraction off (`strategy.subtraction = false`). By what
#    factor do the bytes grow, and why is it less than 2?
# 2. Make the shards label-skewed (`data.partition = "label_skew"`, alpha 0.1).
#    Which method's accuracy suffers, and why does hist_tree's not move at all?
# 3. Set `model.max_depth = 6`. How do bytes and time change for each method, and
#    which method's accuracy drops most?
