# %% [markdown]
# # Lesson 7 — training through failures: how often should the server checkpoint?
#
# ## Question
#
# The parameter server holds the model. If it crashes, everything since its last
# checkpoint is lost. Checkpoint too rarely and each crash throws away a lot of work;
# too often and the checkpoints themselves eat the time. Is there a best interval,
# and does the classic formula predict it?
#
# ## Setup
#
# Softmax regression on the digits, 4 workers, synchronous rounds, `UPDATES`
# updates. The server fails at random (`faults.server_mtbf = M`), is repaired after
# `MTTR`; a checkpoint takes `DELTA` s (`faults.checkpoint_time`) every N
# updates (`faults.checkpoint_every`). On a crash the server restarts from its last
# checkpoint; the workers simply wait for its next broadcast.
#
# Theory (first order, Young 1974): with T s of work between checkpoints, the time
# to do W s of work is about `W (1 + DELTA / T) / (1 - (T / 2 + MTTR) / M)` -- each
# checkpoint costs DELTA, each failure (one every M s) loses half an interval on
# average plus the repair. The best T is about `sqrt(2 DELTA M)` (Young), or
# Daly's refinement.


# %%
"""Lesson 7 — training through failures: how often should the server checkpoint?"""
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots
from simdml.faults import daly_interval, young_interval

UPDATES = 200
M = 0.05            # s, server MTBF
MTTR = 0.005        # s, server repair time
DELTA = 0.001       # s per checkpoint
INTERVALS = (1, 2, 5, 9, 13, 18, 35, 70)   # checkpoint every N updates (Young's: 9)
QUICK_INTERVALS = (1, 5, 9, 18, 70)        # the same shape: far, half, Young, twice, far
SEEDS = range(5)    # failure histories per interval; the same five for every interval
BASE = {"data.dataset": "digits", "cluster.workers": 4, "stop.rounds": UPDATES,
        "network.latency": 1e-4, "eval_every": 5}
FAILING = {"faults.server_mtbf": M, "faults.mttr": MTTR, "faults.checkpoint_time": DELTA}
# The sweep needs only each run's simulated time: no evaluation on the way, per-node totals
# only. Neither costs simulated time (a test checks), and the runs are a third faster.
SWEEP_ONLY = {"eval_every": UPDATES, "trace_spans": False}
CURVE_COLORS = {"no failures": "#1d3557", "no checkpoint": "#9d0208",   # lost work: dark red
                "too often": "#8338ec", "young": "#e76f51", "too rarely": "#6a994e"}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "07_failures.png"


# %%
def simulate(quick: bool = False) -> dict:
    """A run without failures, then the time to finish against the checkpoint interval
    over several failure histories (fewer of both when quick), printed."""
    intervals = QUICK_INTERVALS if quick else INTERVALS
    seeds = SEEDS[:3] if quick else SEEDS
    base = Scenario(name="failures").replace(**BASE)
    calm = simdml.run(base)
    tau = calm.summary["sim_time"] / UPDATES          # s per update without failures
    young, daly = young_interval(DELTA, M), daly_interval(DELTA, M)
    print(f"{1e3 * tau:.3f} ms per update; Young's interval {1e3 * young:.1f} ms = "
          f"{young / tau:.1f} updates, Daly's {1e3 * daly:.1f} ms")

    sweep = {}
    print(f"{'every N':>8} {'time (ms)':>10} {'sd':>8} {'restarts':>9} {'lost':>6}")
    for n in intervals:
        runs = [simdml.run(base.replace(**{**FAILING, **SWEEP_ONLY, "faults.checkpoint_every": n,
                                           "seed": s})) for s in seeds]
        times = [r.summary["sim_time"] for r in runs]
        assert all(r.summary["updates"] == UPDATES for r in runs), "every run finishes"
        sweep[n] = {"mean": float(np.mean(times)), "std": float(np.std(times, ddof=1)),
                    "restarts": float(np.mean([r.summary.get("server_restarts", 0) for r in runs])),
                    "lost": float(np.mean([r.summary.get("updates_lost", 0) for r in runs]))}
        print(f"{n:>8} {1e3 * sweep[n]['mean']:>10.1f} {1e3 * sweep[n]['std']:>8.1f} "
              f"{sweep[n]['restarts']:>9.1f} {sweep[n]['lost']:>6.1f}")
    return {"calm": calm, "tau": tau, "work": calm.summary["sim_time"], "young": young,
            "daly": daly, "sweep": sweep, "n_seeds": len(seeds)}


def failure_curves(study: dict) -> dict:
    """One failure history without checkpoints and with three intervals (too often,
    Young's, too rarely): label -> (colour key, Result)."""
    base = Scenario(name="failures").replace(**BASE)
    n_young = max(1, round(study["young"] / study["tau"]))
    curves = {"no failures": ("no failures", study["calm"]),
              "failures, no checkpoint": ("no checkpoint", simdml.run(base.replace(**{
                  "faults.server_mtbf": M, "faults.mttr": MTTR})))}
    for n, key, note in ((2, "too often", ""), (n_young, "young", " (Young's)"),
                         (40, "too rarely", "")):
        curves[f"failures, checkpoint every {n}{note}"] = (key, simdml.run(
            base.replace(**{**FAILING, "faults.checkpoint_every": n})))
    return curves


def figure(study: dict, curves: dict) -> Figure:
    """The loss of each failure curve; the time to finish against the interval."""
    sweep, tau, work = study["sweep"], study["tau"], study["work"]
    young, daly = study["young"], study["daly"]
    fig = Figure(figsize=(14, 5.5), layout="constrained")
    ax_loss, ax_n = fig.subplots(1, 2)
    for label, (key, r) in curves.items():
        ends = key == "no checkpoint"  # short: it ends at the first crash; drawn on top
        ax_loss.plot([h["time"] for h in r.history], [h["loss"] for h in r.history],
                     drawstyle="steps-post", zorder=3 if ends else 2, lw=3 if ends else 1.5,
                     color=CURVE_COLORS[key],
                     label=label + (f" (ends at t={r.summary['sim_time']:.3f} s)" if ends else ""))
    ax_loss.set(xlabel="simulated time (s)", ylabel="training loss", yscale="log",
                title=f"One failure history (server MTBF {1e3 * M:g} ms, checkpoint "
                      f"{1e3 * DELTA:g} ms)")
    ax_loss.legend(fontsize=8)

    ns = np.array(list(sweep))
    ax_n.errorbar(ns, [1e3 * sweep[n]["mean"] for n in ns], [1e3 * sweep[n]["std"] for n in ns],
                  fmt="o-", capsize=3, color="black",
                  label=f"measured (mean ± sd over {study['n_seeds']} failure histories)")
    grid = np.geomspace(ns.min(), ns.max(), 100)
    ax_n.plot(grid, [1e3 * model_time(work, n * tau) for n in grid], "--", color="gray",
              label="first-order model")
    ax_n.axvline(young / tau, color=CURVE_COLORS["young"], label=f"Young: {young / tau:.1f} updates")
    ax_n.axvline(daly / tau, color="#2a9d8f", ls=":", label=f"Daly: {daly / tau:.1f} updates")
    top = max(1e3 * (sweep[n]["mean"] + sweep[n]["std"]) for n in ns)
    ax_n.set(xscale="log", xlabel="checkpoint every N updates", ylabel="time to finish (ms)",
             title=f"Time to {UPDATES} updates vs checkpoint interval", ylim=(0, 1.3 * top))
    ax_n.minorticks_off()
    ax_n.set_xticks(ns, [str(n) for n in ns])
    ax_n.legend(fontsize=8)
    fig.suptitle("Checkpointing a parameter server that fails", fontsize=14)
    return fig


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    study = simulate(quick)
    curves = failure_curves(study)
    plots.save(figure(study, curves), out_dir / FIGURE)
    print(f"figure: {out_dir / FIGURE}")
    return {"sweep": study["sweep"], "young_updates": study["young"] / study["tau"],
            "daly_updates": study["daly"] / study["tau"],
            "curve_times": {label: r.summary["sim_time"] for label, (_, r) in curves.items()},
            "no_checkpoint": curves["failures, no checkpoint"][1].summary["stop_reason"],
            "work": study["work"]}


def model_time(work: float, interval: float) -> float:
    """First-order expected time to do ``work`` s of updates, checkpointing every
    ``interval`` s of work (see Setup)."""
    lost_per_failure = interval / 2 + MTTR
    return work * (1 + DELTA / interval) / max(1e-9, 1 - lost_per_failure / M) \
        if lost_per_failure < M else math.inf


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/07_failures.py` does;
# `main()` runs them all at once (the tests and `simdml lesson 7` call it). With
# `SIMDML_QUICK=1` in the environment every run is short.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    study = simulate(QUICK)
    curves = failure_curves(study)


# %% [markdown]
# ## What the figure shows
#
# Left: training loss against simulated time for one random failure history: without
# failures; with failures and no checkpoint (the run ends at the first crash -- there
# is nothing to restart from); with checkpoints every 2 updates, at Young's interval
# (9 updates), and every 40 updates. Each crash sends the loss back to the last
# checkpoint (the steps up); checkpointing too often stretches the whole curve, too
# rarely makes the steps tall, and both finish after the run at Young's interval.
# Right: the mean time to finish over five failure histories (error bars: their
# standard deviation; the same five histories at every interval) against the
# checkpoint interval, the first-order model, and Young's and Daly's intervals. The
# fastest interval is near Young's, and the curve is flat around it: at half or twice
# Young's interval the run takes at most 15 % longer than at the best one, while
# checkpointing after every update, or every 70, takes over 30 % longer.


# %%
if __name__ == "__main__":
    fig = figure(study, curves)
    plots.save(fig, FIGURES / FIGURE)
    print(f"figure: {FIGURES / FIGURE}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Halve `M`. By how much does the best interval shrink, and does the formula
#    follow (it predicts a factor of sqrt(2))?
# 2. Make checkpoints almost free (`DELTA = 1e-6`). Where does the best interval go,
#    and why is failing still not free (look at `updates_lost` and
#    `server_restarts`)?
# 3. Crash a worker instead of the server, with `strategy.round_timeout` and then
#    with `[scheduling] policy = "pull"`. Which one changes the model, and why?
