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
    """Print the round time and its parts, and each node's time; return the numbers."""
    times = [h["time"] for h in result.history]
    n_rounds = len(times) - 1
    round_time = (times[-1] - times[0]) / n_rounds
    nodes, cluster = result.nodes, result.scenario.cluster
    latency = result.scenario.network.latency
    slowest = max((n for n in nodes if n != "server"), key=lambda n: nodes[n]["compute"])
    compute = nodes[slowest]["compute"] / n_rounds
    rest = round_time - compute - 2 * latency
    print(f"{n_rounds} rounds in {times[-1]:.3f} s of simulated time "
          f"({1e3 * round_time:.1f} ms per round); final test accuracy "
          f"{100 * result.summary['final_accuracy']:.1f} %")
    print(f"a round = {1e3 * compute:.1f} ms of {slowest}'s computing + 2 x "
          f"{1e3 * latency:.1f} ms of latency (the model out, the gradient back: "
          f"{2 * latency / round_time:.0%} of the round)\n  + {1e3 * rest:.1f} ms of the rest "
          f"(messages going on and off the NICs, one at a time)")
    # every round, each worker waits through two latencies: its gradient in flight to
    # the server, then the new model in flight back (the first model comes the same way)
    in_flight = 2 * latency * n_rounds
    print(f"{'node':8} {'speed (flop/s)':>14} {'compute s':>10} {'NIC s':>7} {'wait s':>7} "
          f"{'in flight':>10} {'utilization':>12}")
    speeds = {"server": cluster.server_speed} | {
        f"worker{i}": v for i, v in enumerate(cluster.speed)}
    for name, t in nodes.items():
        flight = "-" if name == "server" else f"{in_flight:.3f}"
        print(f"{name:8} {speeds[name]:>14.3g} {t['compute']:>10.3f} "
              f"{t['send'] + t['recv']:>7.3f} {t['wait']:>7.3f} {flight:>10} "
              f"{100 * t['utilization']:>11.1f}%")
    return {"round_time": round_time, "slowest": slowest, "slowest_compute": compute,
            "latency": latency, "rest": rest, "in_flight": in_flight,
            "run_time": times[-1] - times[0],
            "utilization": {n: t["utilization"] for n, t in nodes.items()},
            "wait": {n: t["wait"] for n, t in nodes.items()}}


def figure(result) -> Figure:
    """Loss and accuracy against simulated time, and the timeline of the first rounds."""
    times = [h["time"] for h in result.history]
    fig = plots.run_overview(result, timeline_until=times[min(TIMELINE_ROUNDS, len(times) - 1)])
    fig.suptitle("Lesson 1: a synchronous round lasts as long as its slowest worker "
                 "(worker3 at 0.5 Mflop/s), plus two network latencies")
    for legend in fig.legends + [ax.get_legend() for ax in fig.axes]:
        for text in (legend.get_texts() if legend else []):
            if text.get_text() == "wait":  # the latency is drawn grey too: say so
                text.set_text(f"wait (incl. {1e3 * result.scenario.network.latency:g} ms "
                              f"network latency per message)")
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
# fast workers spend most of each round grey (over 80 % of their time): synchronous
# training runs at the pace of its slowest member.
#
# Grey is *any* waiting, the network's included. A message occupies a NIC only while
# its bytes go on or off the wire (the ticks, about 0.1 ms for this small model);
# then it is in flight for the 1 ms latency, and the node at either end waits. Every
# round a worker waits through two latencies -- its gradient going to the server,
# the new model coming back -- 2 ms of the 6.7 ms round, about 30 %. That is the
# grey even worker3 shows after each bar: it hardly waits for the others, over three
# quarters of its grey is latency. The table splits it out: `wait s` is all the
# grey, `in flight` the part of it spent on latency (2 x 1 ms a round), `NIC s` the
# ticks; the line above it adds up a round: worker3's computing, two latencies, and
# the rest (the NICs, the server's taking one message at a time).
# Utilization is compute / time.


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
