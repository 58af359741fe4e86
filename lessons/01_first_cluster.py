# %% [markdown]
# # Lesson 1 — your first cluster: who does what, when?
#
# ## Question
#
# Four workers train softmax regression on iris with a synchronous parameter server.
# Two are fast, one is half as fast, one is a quarter as fast. How long does a round
# take, and what do the fast workers do with their time?
#
# ## Setup
#
# The bundled `iris_sync` scenario: 4 workers at 2, 2, 1 and 0.5 Mflop/s with
# lognormal jitter (20 %), a 10 Mbit/s network with 1 ms latency, 60 rounds of exact
# full-batch gradient descent (the math does not care who is slow; the clock does).


# %%
"""Lesson 1 — your first cluster: who does what, when?"""
import os
from pathlib import Path

from matplotlib.figure import Figure

import simdml
from simdml import plots

SCENARIO = "iris_sync"
TIMELINE_ROUNDS = 6                 # rounds shown in the Gantt chart
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "01_first_cluster.png"


# %%
def simulate(quick: bool = False):
    """The bundled scenario (12 rounds when quick): its Result."""
    scenario = simdml.load_scenario(SCENARIO)
    if quick:
        scenario = scenario.replace(**{"stop.rounds": 12})
    return simdml.run(scenario)


def print_table(result) -> dict:
    """Print the round time and each node's utilization; return the lesson's numbers."""
    times = [h["time"] for h in result.history]
    round_time = (times[-1] - times[0]) / (len(times) - 1)
    nodes = result.nodes
    print(f"{len(times) - 1} rounds in {times[-1]:.3f} s of simulated time "
          f"({1e3 * round_time:.1f} ms per round); final test accuracy "
          f"{100 * result.summary['final_accuracy']:.1f} %")
    print(f"{'node':8} {'speed (flop/s)':>14} {'compute s':>10} {'wait s':>8} {'utilization':>12}")
    cluster = result.scenario.cluster
    speeds = {"server": cluster.server_speed} | {
        f"worker{i}": v for i, v in enumerate(cluster.speed)}
    for name, t in nodes.items():
        print(f"{name:8} {speeds[name]:>14.3g} {t['compute']:>10.3f} {t['wait']:>8.3f} "
              f"{100 * t['utilization']:>11.1f}%")
    return {"round_time": round_time,
            "utilization": {n: t["utilization"] for n, t in nodes.items()},
            "wait": {n: t["wait"] for n, t in nodes.items()}}


def figure(result) -> Figure:
    """Loss and accuracy against simulated time, and the timeline of the first rounds."""
    times = [h["time"] for h in result.history]
    fig = plots.run_overview(result, timeline_until=times[min(TIMELINE_ROUNDS, len(times) - 1)])
    fig.suptitle("Lesson 1: a synchronous round lasts as long as its slowest worker "
                 "(worker3 at 0.5 Mflop/s)")
    return fig


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    result = simulate(quick)
    numbers = print_table(result)
    path = plots.save(figure(result), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    return numbers


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/01_first_cluster.py`
# does; `main()` runs them all at once (the tests and `simdml lesson 1` call it). With
# `SIMDML_QUICK=1` in the environment every run is short.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    result = simulate(QUICK)
    numbers = print_table(result)


# %% [markdown]
# ## What the figure shows
#
# Top: the real training loss and test accuracy against *simulated* time. Bottom: a
# Gantt chart of the first rounds, one row per node: green bars are computation, the
# thin orange and yellow ticks are the NICs receiving and sending, grey is waiting.
# Every round ends when the slowest worker (worker3) has pushed its gradient, so the
# fast workers spend most of each round grey: synchronous training runs at the pace
# of its slowest member. The table gives each node's utilization (compute / time).


# %%
if __name__ == "__main__":
    fig = figure(result)
    print(f"wrote {plots.save(fig, FIGURES / FIGURE)}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Give every worker the same speed (`cluster.speed = 2e6`). How much shorter is a
#    round, and how much higher the fast workers' utilization? Predict it first.
# 2. Make the network 100 times slower (`network.bandwidth = 1.25e4`). Which kind of
#    bar now dominates the chart, and on which node?
# 3. Shards proportional to speed (`data.partition = "proportional"`) balance the
#    work without changing the math. Check both claims: the round time and the final
#    loss (is it *exactly* the same? why?).
