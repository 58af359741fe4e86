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
LOSS_TIME = 0.25                       # s of simulated time in the loss panels
LOSS_SEEDS = (0, 1, 2, 3, 4)           # seeds of the loss runs (the first 3 when quick)
PER_UPDATE = 20                        # the loss after this many updates, in the table
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
    """Training for LOSS_TIME s with each k of KS_FOR_LOSS, over LOSS_SEEDS (3 when
    quick): k -> list of Results, one per seed."""
    base = Scenario(name="stragglers").replace(**BASE)
    seeds = LOSS_SEEDS[:3] if quick else LOSS_SEEDS
    return {k: [simdml.run(base.replace(**{"strategy.wait_for": k, "stop.rounds": 10**6,
                                          "stop.time": LOSS_TIME, "seed": seed}))
                for seed in seeds] for k in KS_FOR_LOSS}


def print_losses(losses: dict) -> dict:
    """Per k, over the seeds: updates, final loss, loss after PER_UPDATE updates, and how
    often a step made the training loss go up (printed); k -> those numbers."""
    n_seeds = len(next(iter(losses.values())))
    print(f"training for {LOSS_TIME} s of simulated time, mean ± sd over {n_seeds} seeds")
    print(f"{'k':>3} {'updates':>8} {'final loss':>16} {f'loss @{PER_UPDATE} updates':>18} "
          f"{'steps up':>9} {'largest rise':>13}")
    out = {}
    for k, runs in losses.items():
        curves = [np.array([h["loss"] for h in r.history]) for r in runs]
        steps = np.concatenate([np.diff(c) / c[:-1] for c in curves])  # relative change
        final, at = np.array([c[-1] for c in curves]), np.array([c[PER_UPDATE] for c in curves])
        out[k] = {"updates": float(np.mean([len(c) - 1 for c in curves])),
                  "final_mean": final.mean(), "final_sd": final.std(ddof=1),
                  "at_mean": at.mean(), "at_sd": at.std(ddof=1),
                  "rises": float(np.mean(steps > 0)), "largest_rise": float(max(steps.max(), 0))}
        row = out[k]
        print(f"{k:>3} {row['updates']:>8.1f} {row['final_mean']:>8.4f} ± {row['final_sd']:.4f} "
              f"{row['at_mean']:>10.4f} ± {row['at_sd']:.4f} {100 * row['rises']:>8.1f}% "
              f"{100 * row['largest_rise']:>12.2f}%")
    return out


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    t0, table = round_times(quick)
    losses = loss_runs(quick)
    noise = print_losses(losses)
    path = plots.save(figure(table, losses, t0), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    return {"t0": t0, "rounds": table, "losses": noise}


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
    """Round time against k with the prediction; the loss against time and against
    updates for a few k, mean ± sd over the seeds."""
    fig = Figure(figsize=(16, 4.8), layout="constrained")
    left, middle, right = fig.subplots(1, 3)
    ks = sorted(table)
    left.errorbar(ks, [1e3 * table[k]["simulated"] for k in ks],
                  yerr=[1e3 * table[k]["half_width"] for k in ks], fmt="o", capsize=3,
                  color="#1d3557", label="simulated (mean, 95 % interval)")
    dense = np.arange(1, N + 1)
    left.plot(dense, [1e3 * predicted_round_time(t0, N, k) for k in dense], "-",
              color="#e76f51", label=r"order statistics: $t_0 + t_0 (H_n - H_{n-k})$")
    left.set(xlabel=f"k: gradients the server waits for (of n = {N})",
             ylabel="mean round time (ms)", title="Round time of k-of-n synchronous training")
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    colors = dict(zip(KS_FOR_LOSS, ("#1d3557", "#457b9d", "#2a9d8f", "#e76f51")))
    grid = np.linspace(0.0, LOSS_TIME, 400)
    for k, runs in losses.items():
        # the loss is constant between evaluations: the last one at or before each t
        at_t = np.array([[r.history[np.searchsorted([h["time"] for h in r.history], t,
                                                    side="right") - 1]["loss"] for t in grid]
                         for r in runs])
        _band(middle, 1e3 * grid, at_t, colors[k], f"k = {k}")
        n = min(len(r.history) for r in runs)
        per_update = np.array([[h["loss"] for h in r.history[:n]] for r in runs])
        _band(right, np.arange(n), per_update, colors[k], f"k = {k}")
    n_seeds = len(next(iter(losses.values())))
    middle.set(xlabel="simulated time (ms)", ylabel="training loss", yscale="log",
               title=f"Loss against simulated time (mean ± sd, {n_seeds} seeds)")
    right.set(xlabel="global model updates", ylabel="training loss", yscale="log",
              title=f"Loss per update (mean ± sd, {n_seeds} seeds)")
    for ax in (middle, right):
        ticks = [0.1, 0.15, 0.2, 0.3, 0.5, 1, 2]
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks], minor=False)
        ax.set_yticks([], minor=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"Backup workers: waiting for k of {N} gradients -- the round time, "
                 f"and what it buys", fontsize=13)
    return fig


def _band(ax, x, curves, color, label):
    """The mean of ``curves`` (one per seed, as rows) as a line, ± sd as a band."""
    mean, sd = curves.mean(axis=0), curves.std(axis=0, ddof=1)
    ax.plot(x, mean, color=color, label=label, drawstyle="steps-post")
    ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.25, step="post", lw=0)


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
    noise = print_losses(losses)


# %% [markdown]
# ## What the figure shows
#
# Left: the mean simulated round time against k (dots, with 95 % intervals), and the
# order-statistics prediction (line). Waiting for the last few workers costs the
# most: the curve bends up sharply at k = n.
#
# Middle: the training loss against simulated time for a few k -- the mean over 5
# seeds, one standard deviation either side as a band (log scale). Fewer gradients
# per round make many more rounds fit in the same time (about 105 for k = 1 in
# 0.25 s, 25 for k = 16), and the final loss falls with k: the second table gives
# it, mean ± sd, and the bands do not overlap. Right: the same loss per update. The
# curves lie on top of each other: one shard's gradient (k = 1, a sixteenth of the
# data) makes nearly as good a step as all sixteen -- after 20 updates, k = 1's
# loss is within 3 % of k = 16's.
#
# Is k = 1 noisier, then? Yes, but not visibly: its training loss went *up* in
# about 4 % of its steps (never with k >= 4), and by less than 1 % each time (the
# table's last two columns). The shards are iid samples of about 84 rows, so each
# shard's gradient is close to the full one; with small or skewed shards, or a
# larger step, the noise would show.


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
