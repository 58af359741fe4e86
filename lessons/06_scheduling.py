# %% [markdown]
# # Lesson 6 — scheduling and load balancing: who should compute which block?
#
# ## Question
#
# A synchronous round is only as fast as its slowest worker. If the round's work is
# cut into blocks, a scheduler can give the slow workers less. Which policy balances
# the load best -- and does it depend on whether the scheduler *knows* the speeds?
#
# ## Setup
#
# 8 workers train softmax regression on the digits; each round is cut into 32 blocks
# (`[scheduling] policy = ..., blocks = 32`). The model is the same under every
# policy (the block gradients are summed in block order); only the time differs.
#
# - **A.** One straggler: worker 7 is 4x slower, but nobody told the scheduler (its
#   nominal speed is the others'; `cluster.slowdown` hides the truth).
# - **B.** A long tail of known speeds: nominal speeds drawn from a lognormal
#   distribution (sigma = 1), stated in the scenario, so a static policy can use them.
#
# Policies: round_robin, random, least_loaded (LPT on rows), power_of_two (static,
# speed-oblivious); proportional (static, uses the stated speeds); earliest_finish
# (static per round, learns the speeds it observes); pull (idle workers take the next
# block); work_stealing (round robin, then idle workers steal).


# %%
"""Lesson 6 — scheduling and load balancing: who should compute which block?"""
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots
from simdml.scheduling import POLICIES

WORKERS = 8
BLOCKS = 32
ROUNDS = 12
POLICY_ORDER = ("round_robin", "random", "least_loaded", "power_of_two", "proportional",
                "earliest_finish", "pull", "work_stealing")
BASE = {"data.dataset": "digits", "cluster.workers": WORKERS, "stop.rounds": ROUNDS,
        "scheduling.blocks": BLOCKS, "network.latency": 5e-5, "network.bandwidth": 1.25e9,
        "eval_every": ROUNDS}
STRAGGLER = {"cluster.speed": 1e8, "cluster.slowdown": [1.0] * (WORKERS - 1) + [4.0]}
TAIL_SPEEDS = (1e8 * np.random.default_rng(6).lognormal(0.0, 1.0, WORKERS)).round(-5).tolist()
LONG_TAIL = {"cluster.speed": TAIL_SPEEDS}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "06_scheduling.png"


# %%
def simulate(quick: bool = False) -> tuple[dict, dict]:
    """Every policy on scenarios A and B (half the rounds when quick), printed: the table
    (policy -> case -> numbers) and the runs ((policy, case) -> Result)."""
    assert set(POLICY_ORDER) == set(POLICIES)
    policies = POLICY_ORDER
    rounds = ROUNDS // 2 if quick else ROUNDS
    base = Scenario(name="scheduling").replace(**{**BASE, "stop.rounds": rounds,
                                                  "eval_every": rounds})
    table, runs = {}, {}
    print(f"{'policy':<16} {'A: round (ms)':>14} {'A: util %':>10} {'B: round (ms)':>14} "
          f"{'B: util %':>10} {'moved':>6}")
    for policy in policies:
        row = {}
        for case, changes in (("A", STRAGGLER), ("B", LONG_TAIL)):
            r = simdml.run(base.replace(**{**changes, "scheduling.policy": policy}))
            util = np.mean([t["utilization"] for n, t in r.nodes.items() if n != "server"])
            row[case] = {"makespan": r.summary["sim_time"] / rounds, "utilization": util,
                         "moved": r.summary.get("blocks_moved", 0),
                         "params": r.model.params_, "blocks": _blocks_computed(r)}
            runs[(policy, case)] = r
        table[policy] = row
        print(f"{policy:<16} {1e3 * row['A']['makespan']:>14.3f} "
              f"{100 * row['A']['utilization']:>10.1f} {1e3 * row['B']['makespan']:>14.3f} "
              f"{100 * row['B']['utilization']:>10.1f} {row['A']['moved']:>6}")
    return table, runs


def _blocks_computed(r) -> dict:
    """Per worker, the blocks it computed over the run (one compute span per block)."""
    counts = {name: 0 for name in r.nodes if name != "server"}
    for span in r.trace.spans:
        if span.kind == "compute" and span.node in counts:
            counts[span.node] += 1
    return counts


def figure(table: dict, runs: dict) -> Figure:
    """Makespan and utilization per policy above; two timelines of scenario A below."""
    policies = POLICY_ORDER
    fig = Figure(figsize=(15, 10), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
    ax_time, ax_util = top.subplots(1, 2)
    x = np.arange(len(policies))
    for j, (case, label, color) in enumerate((("A", "A: one hidden straggler", "#e76f51"),
                                              ("B", "B: long tail of known speeds", "#457b9d"))):
        ax_time.bar(x + (j - 0.5) * 0.38, [1e3 * table[p][case]["makespan"] for p in policies],
                    0.38, label=label, color=color)
        ax_util.bar(x + (j - 0.5) * 0.38, [100 * table[p][case]["utilization"] for p in policies],
                    0.38, label=label, color=color)
    for ax, ylabel, title in ((ax_time, "mean round time (ms)", "Makespan per round"),
                              (ax_util, "mean worker utilization (%)", "Utilization")):
        ax.set_xticks(x, policies, rotation=25, ha="right")
        ax.set(ylabel=ylabel, title=f"{title} per policy ({WORKERS} workers, {BLOCKS} blocks)")
        ax.legend(loc="upper left")
    ax_util.set_ylim(0, 110)
    axes = bottom.subplots(1, 2)
    until = 2.2 * table["round_robin"]["A"]["makespan"]
    for ax, policy in zip(axes, ("round_robin", "pull")):
        plots.timeline(runs[(policy, "A")].trace, ax=ax, until=until)
        ax.set_title(f"A under {policy}: the first {1e3 * until:.0f} ms")
    fig.suptitle("Scheduling blocks of a synchronous round: same model, different clocks",
                 fontsize=14)
    return fig


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    table, runs = simulate(quick)
    plots.save(figure(table, runs), out_dir / FIGURE)
    print(f"figure: {out_dir / FIGURE}")
    return table


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/06_scheduling.py`
# does; `main()` runs them all at once (the tests and `simdml lesson 6` call it). With
# `SIMDML_QUICK=1` in the environment every run is short.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    table, runs = simulate(QUICK)


# %% [markdown]
# ## What the figure shows
#
# Top: the mean round time (makespan) and the mean utilization of the workers per
# policy, for A and B. In A the speed-oblivious static policies wait for the
# straggler every round; proportional believes the stated speeds and does no better;
# pull and work stealing adapt within the round and halve the round time, but the
# straggler still starts every round with `prefetch` = 2 blocks and holds the round
# up with them (9.2 ms: two of its 4.5 ms blocks, and the messages); earliest_finish
# learns after one round to give it a single block, and wins. In B proportional is at
# its best: the speeds it was told are the true ones, and the slowest worker (76x
# slower than the fastest) gets no block at all. Pull and work stealing know nothing:
# each worker starts with `prefetch` blocks, so the slowest one holds two blocks and
# the round waits for them.
# Bottom: the same stretch of time (two round-robin rounds) of scenario A under round
# robin and under pull, as timelines: under round robin seven workers wait (grey) for
# worker 7 every round; under pull they compute the blocks it would have had, and wait
# only for its second block.


# %%
if __name__ == "__main__":
    fig = figure(table, runs)
    plots.save(fig, FIGURES / FIGURE)
    print(f"figure: {FIGURES / FIGURE}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Set `prefetch` to 1 in scenario B. How much faster is pull, and why? Then set
#    `blocks` to 8 (one per worker) and to 128 in scenario A: why does pull gain
#    from more blocks, and what limits the gain (look at the send/recv bars)?
# 2. Make the straggler's slowness random instead (`compute_time = "pareto"`,
#    `jitter = 1`) with equal speeds. Which policies still help, and why can no
#    static policy?
# 3. Crash a worker mid-round (`faults.crash`, with `recover_after`) under pull and
#    under round robin. Check that the model is still the same, and compare the rounds
#    that had the crash.
