# %% [markdown]
# # Lesson 3 — stragglers and backup workers: is waiting for everybody worth it?
#
# ## Question
#
# In a synchronous round the server waits for the slowest of n workers. If it used
# only the first k gradients that arrive (k of n, "backup workers"), how much shorter
# would a round be -- and can we predict it?
#
# ## Setup
#
# 16 identical workers, each computation taking `t0 + Exp(mean t0)` (a shifted
# exponential: a fixed part plus a random delay), and a network and server fast
# enough to ignore. Softmax regression on the digits, synchronous parameter server
# with `wait_for = k`; when the k-th gradient arrives the round closes, and workers
# still computing drop their work as soon as the next model reaches them.
#
# Theory: the round time is the k-th smallest of n compute times, whose mean for the
# shifted exponential is `t0 + t0 (H_n - H_(n-k))` with `H_m = 1 + 1/2 + ... + 1/m`
# (the k-th order statistic of n exponentials is a sum of k independent exponential
# gaps with rates n, n-1, ..., n-k+1).


# %%
"""Lesson 3 — stragglers and backup workers: is waiting for everybody worth it?"""
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots
from simdml.experiment import prepare_data
from simdml.models import LogisticRegression

N = 16                                 # workers
JITTER = 1.0                           # Exp delay with mean JITTER * t0
ROUNDS = 400                           # rounds per k, for the mean round time
KS_FOR_LOSS = (16, 8, 4, 1)            # k shown in the right panel
LOSS_TIME = 0.25                       # s of simulated time in the right panel
BASE = {
    "cluster.workers": N, "cluster.speed": 1e8, "cluster.server_speed": math.inf,
    "cluster.compute_time": "shifted_exponential", "cluster.jitter": JITTER,
    "network.latency": 0.0, "network.bandwidth": math.inf,
    "data.dataset": "digits", "strategy.kind": "sync", "strategy.lr": 0.5,
}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "03_stragglers.png"


# %%
def predicted_round_time(t0: float, n: int, k: int, jitter: float = JITTER) -> float:
    """E[k-th smallest of n draws of t0 + Exp(mean jitter * t0)]."""
    return t0 + jitter * t0 * sum(1.0 / j for j in range(n - k + 1, n + 1))


def round_times(quick: bool = False) -> tuple[float, dict]:
    """t0, and per k the mean simulated round time against the prediction (printed)."""
    rounds = ROUNDS // 4 if quick else ROUNDS
    ks = (1, 4, 8, 12, 14, 16) if quick else tuple(range(1, N + 1))
    base = Scenario(name="stragglers").replace(**BASE)
    t0 = _nominal_time(base)

    print(f"t0 = {1e3 * t0:.3f} ms per gradient; {rounds} rounds per k")
    print(f"{'k':>3} {'simulated (ms)':>15} {'predicted (ms)':>15} {'dropped':>8}")
    table = {}
    for k in ks:
        r = simdml.run(base.replace(**{"strategy.wait_for": k, "stop.rounds": rounds,
                                       "eval_every": rounds}))
        times = np.diff([0.0] + _round_ends(r))
        mean, half = times.mean(), 1.96 * times.std(ddof=1) / math.sqrt(len(times))
        table[k] = {"simulated": mean, "half_width": half,
                    "predicted": predicted_round_time(t0, N, k),
                    "dropped": r.summary.get("dropped_gradients", 0)}
        print(f"{k:>3} {1e3 * mean:>9.3f} ± {1e3 * half:.3f} {1e3 * table[k]['predicted']:>15.3f} "
              f"{table[k]['dropped']:>8}")
    return t0, table


def loss_runs(quick: bool = False) -> dict:
    """Training for LOSS_TIME s (half when quick) with each k of KS_FOR_LOSS: label -> Result."""
    base = Scenario(name="stragglers").replace(**BASE)
    return {f"k = {k}": simdml.run(base.replace(**{
        "strategy.wait_for": k, "stop.rounds": 10**6,
        "stop.time": LOSS_TIME / 2 if quick else LOSS_TIME})) for k in KS_FOR_LOSS}


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    t0, table = round_times(quick)
    losses = loss_runs(quick)
    path = plots.save(figure(table, losses, t0), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    return {"t0": t0, "rounds": table,
            "final_loss": {label: r.summary["final_loss"] for label, r in losses.items()}}


def _nominal_time(scenario) -> float:
    """t0 = flops / speed of one worker's gradient (shards differ by at most one row)."""
    model = LogisticRegression()
    split = prepare_data(scenario)
    model.init_params(split.X_train.shape[1], int(split.y_train.max()) + 1)
    return float(np.mean([model.grad_flops(len(p)) for p in split.parts])) / scenario.cluster.speed[0]


def _round_ends(result) -> list[float]:
    """A round ends when the server has taken its step: the ends of its compute spans."""
    return [s.end for s in result.trace.spans if s.node == "server" and s.kind == "compute"]


def figure(table, losses, t0) -> Figure:
    """Round time against k with the prediction; the loss against time for a few k."""
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    ks = sorted(table)
    left.errorbar(ks, [1e3 * table[k]["simulated"] for k in ks],
                  yerr=[1e3 * table[k]["half_width"] for k in ks], fmt="o", capsize=3,
                  label="simulated (mean, 95 % interval)")
    dense = np.arange(1, N + 1)
    left.plot(dense, [1e3 * predicted_round_time(t0, N, k) for k in dense], "-",
              label=r"order statistics: $t_0 + t_0 (H_n - H_{n-k})$")
    left.set(xlabel=f"k: gradients the server waits for (of n = {N})",
             ylabel="mean round time (ms)", title="Round time of k-of-n synchronous training")
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    plots.history(losses, x="time", ax_loss=right)
    right.set_title("Loss against simulated time, for several k")
    return fig


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/03_stragglers.py`
# does; `main()` runs them all at once (the tests and `simdml lesson 3` call it). With
# `SIMDML_QUICK=1` in the environment every run is short.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    t0, table = round_times(QUICK)
    losses = loss_runs(QUICK)


# %% [markdown]
# ## What the figure shows
#
# Left: the mean simulated round time against k (dots, with 95 % intervals), and the
# order-statistics prediction (line). Waiting for the last few workers costs the
# most: the curve bends up sharply at k = n. Right: the training loss against
# simulated time for a few k: fewer gradients per round make each step use less of
# the data (with k = 1, one shard's gradient: visibly noisier), but many more steps
# fit in a second.


# %%
if __name__ == "__main__":
    fig = figure(table, losses, t0)
    print(f"wrote {plots.save(fig, FIGURES / FIGURE)}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Switch `compute_time` to `pareto` (a heavy tail) with the same mean. Which k
#    reaches a training loss of 0.3 first now, and why does the gap between k = n - 1
#    and k = n grow?
# 2. Put a real network back (`latency = 1e-3`, `bandwidth = 1.25e6`). Which part
#    of the prediction no longer holds, and why?
# 3. With a permanent straggler (`slowdown = [1, ..., 1, 4]`), compare k = 15 with
#    shards proportional to speed and k = 16. Which fixes the problem, and at what cost?
