# %% [markdown]
# # Lesson 2 — synchronous or asynchronous?
#
# ## Question
#
# On a cluster of unequal workers, should the server wait for everybody (sync), for
# nobody (async), for at most a few pushes of difference (ssp), or should the workers
# talk among themselves (ring all-reduce) or only now and then (local SGD)?
#
# ## Setup
#
# Softmax regression on the 8x8 digits (10 classes, 64 features). Eight workers:
# four at 20 Mflop/s, three at 10, one straggler at 2.5 Mflop/s, all with lognormal
# jitter (30 %); a 100 Mbit/s network with 0.5 ms latency. Every strategy gets the
# same 3 s of simulated time and the same step size. An async push moves the model by
# `lr * (n_i / n) * g_i`: one push from every worker on the same model is one sync
# step, so the strategies differ only in *where they wait*.


# %%
"""Lesson 2 — synchronous or asynchronous?"""
import os
from pathlib import Path

from matplotlib.colors import to_hex
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots
from simdml.metrics import time_to_target

STRATEGIES = {                       # label -> scenario changes
    "sync": {"strategy.kind": "sync"},
    "async": {"strategy.kind": "async", "eval_every": 8},
    "ssp (s=2)": {"strategy.kind": "ssp", "strategy.staleness": 2, "eval_every": 8},
    "all-reduce": {"strategy.kind": "allreduce"},
    "local SGD (H=4)": {"strategy.kind": "local_sgd", "strategy.local_steps": 4},
}
CLUSTER = {
    "cluster.workers": 8,
    "cluster.speed": [2e7] * 4 + [1e7] * 3 + [2.5e6],   # flop/s: the last one straggles
    "cluster.compute_time": "lognormal", "cluster.jitter": 0.3,
    "cluster.server_speed": 1e9,
    "network.latency": 5e-4, "network.bandwidth": 1.25e7,   # s, bytes/s (100 Mbit/s)
}
DATA = {"data.dataset": "digits", "strategy.lr": 0.5}
TIME = 3.0                           # s of simulated time per strategy
TARGET = 0.90                        # accuracy for the time-to-target column
ACCURACY_FLOOR = 80                  # %: the accuracy axis starts here (every run starts at
                                     # 10 %, chance on ten classes; below 80 % is the first 0.2 s)
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "02_sync_vs_async.png"


# %%
def simulate(quick: bool = False) -> dict:
    """Every strategy for TIME s of simulated time (a third of it when quick):
    label -> Result."""
    base = Scenario(name="sync_vs_async").replace(**CLUSTER, **DATA, **{
        "stop.time": TIME / 3 if quick else TIME, "stop.rounds": 10**6,
        "stop.target_accuracy": None})
    return {label: simdml.run(base.replace(**changes)) for label, changes in STRATEGIES.items()}


def print_table(results: dict) -> dict:
    """Print a row per strategy; return them (the lesson's numbers)."""
    print(f"{'strategy':16} {'updates':>8} {'epochs':>7} {'loss':>7} {'accuracy':>9} "
          f"{'time to ' + format(TARGET, '.0%'):>12} {'staleness':>10} {'max':>4}")
    table = {}
    for label, r in results.items():
        ttt = time_to_target(r.history, TARGET)
        row = {"updates": r.summary["updates"], "epochs": r.history[-1]["epoch"],
               "loss": r.summary["final_loss"], "accuracy": r.summary["final_accuracy"],
               "time_to_target": ttt, "staleness_mean": r.summary.get("staleness_mean"),
               "staleness_max": r.summary.get("staleness_max"),
               "loss_by_update": {h["update"]: h["loss"] for h in r.history},
               "history": [{k: h[k] for k in ("update", "epoch", "loss")} for h in r.history]}
        table[label] = row
        stale, worst = (("-", "-") if row["staleness_mean"] is None else
                        (f"{row['staleness_mean']:.2f}", row["staleness_max"]))
        print(f"{label:16} {row['updates']:>8} {row['epochs']:>7.1f} {row['loss']:>7.4f} "
              f"{100 * row['accuracy']:>8.1f}% "
              f"{'never' if ttt is None else format(ttt, '.3f') + ' s':>12} {stale:>10} {worst:>4}")
    return table


def figure(results: dict) -> Figure:
    """Accuracy and loss against time, loss per update, and the staleness histogram."""
    fig = Figure(figsize=(12, 8.5), layout="constrained")
    (acc, loss), (per_update, stale) = fig.subplots(2, 2)
    plots.history(results, x="time", ax_loss=loss, ax_acc=acc)
    per_update.set_xscale("log")
    plots.history(results, x="update", ax_loss=per_update)
    per_update.set_title("Loss per global model update (log scale)")
    loss.set_title("Loss against simulated time")
    best = max(100 * h["accuracy"] for r in results.values() for h in r.history)
    acc.set_ylim(ACCURACY_FLOOR, min(100, best + 1.5))
    acc.set_title(f"Accuracy against simulated time (axis from {ACCURACY_FLOOR} %)")
    plots.staleness({k: r for k, r in results.items() if "staleness_histogram" in r.summary},
                    ax=stale)
    fig.suptitle("Same data, same step size, five ways to train on 8 unequal workers")
    return fig


def colors(fig: Figure) -> dict:
    """Each panel's colour per strategy label (lines and bars): title -> label -> colour."""
    out = {}
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        out[ax.get_title()] = {label: to_hex(h.get_color() if hasattr(h, "get_color")
                                             else h.patches[0].get_facecolor())
                               for h, label in zip(handles, labels)}
    return out


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    results = simulate(quick)
    table = print_table(results)
    fig = figure(results)
    path = plots.save(fig, Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    return {"table": table, "colors": colors(fig),
            "kinds": {label: r.scenario.strategy.kind for label, r in results.items()},
            "workers": results["sync"].scenario.cluster.workers,
            "ssp_bound": results["ssp (s=2)"].scenario.strategy.options["staleness"]}


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/02_sync_vs_async.py`
# does; `main()` runs them all at once (the tests and `simdml lesson 2` call it). With
# `SIMDML_QUICK=1` in the environment every run is short.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    results = simulate(QUICK)
    table = print_table(results)


# %% [markdown]
# ## What the figure shows
#
# One colour per strategy in every panel (`plots.STRATEGY_COLORS`). Top left: test
# accuracy against simulated time, the axis from 80 % so that the differences show
# (every run starts at 10 %, chance on ten classes, and passes 80 % within its first
# evaluations); top right: the training loss against simulated time -- async is far
# ahead on the clock, because nobody ever waits for the straggler. Bottom left: the
# same loss against the number of global model updates (log scale): per update,
# async and ssp are far behind, but by construction: each of their updates carries
# one worker's gradient, scaled by its share of the data (an eighth of a sync step
# here), so about eight pushes make one sync step. Per gradient computed (the
# table's epochs), staleness costs async some progress early -- a quarter to a third
# more loss than sync after 1-2 epochs of work -- and then little: the gap is under
# 5 % after 5 epochs and about 1 % after 16. (The sync curve hides under the
# all-reduce curve: the same arithmetic, carried by other messages.)
#
# Bottom right: how stale the gradients were -- for each gradient, the number of
# model versions between the one it was computed on and the one it was applied to.
# ssp brings the mean staleness down to 55-60 % of async's and cuts the tail
# (async's goes past 40), but its own tail reaches about 20, far above s = 2. That is no breach of the bound:
# s limits *clocks* -- a worker may push at most s times more than the slowest
# worker -- while staleness counts *versions*, and every worker's push makes one.
# While the straggler computes one gradient, each of the 7 other workers may push
# up to s + 1 = 3 times before ssp holds it, so the straggler's gradient lands up
# to 7 x 3 = 21 versions late. The table's last columns give the mean and the
# largest staleness of each run.


# %%
if __name__ == "__main__":
    fig = figure(results)
    print(f"wrote {plots.save(fig, FIGURES / FIGURE)}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Raise `strategy.lr` until async stops converging. Does sync survive the same
#    step size? Relate what you see to the staleness histogram.
# 2. Remove the straggler (all workers at 20 Mflop/s). Which strategy gains the most,
#    and why does async gain the least?
# 3. Local SGD with `local_steps = 1, 4, 16`: plot the time to 90 % accuracy. When
#    does communicating less pay, and what would non-iid shards do to it?
