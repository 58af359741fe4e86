# %% [markdown]
# # Lesson 16 — Gossip: how fast do neighbours agree, and what does the graph cost?
#
# ## Question
#
# Without a parameter server or an all-reduce, each worker can simply average its model
# with its neighbours' after every local step (decentralized SGD, D-PSGD; Lian et al.
# 2017). The models then disagree a little: how fast does the disagreement shrink, and
# what sets the speed? A denser graph agrees faster but sends more copies a round. Which
# graph trains fastest in simulated time: a ring, a 2-D torus, an exponential graph or
# the complete graph?
#
# ## Setup
#
# 16 workers, 1 Gflop/s each, on a 1 Gbit/s network (latency 100 µs, 1.25e8 bytes/s).
# Softmax regression on synthetic data, 4 classes, 200 features (4,004 parameters, 32 kB a
# model), 3,200 rows split with label skew (`data.partition = "label_skew"`, Dirichlet
# 0.5): each worker's shard pulls its model its own way. `strategy.kind = "gossip"`,
# Metropolis weights (uniform on the complete graph, where that gives W = 11'/p). A round:
# every worker steps on its shard, sends its model to each of its d neighbours, averages
# with theirs, `x_i <- sum_j W_ij x_j`.
#
# Two facts about the mixing matrix W (symmetric, doubly stochastic) carry the lesson:
#
#     the average is kept:        mean_i x_i  is unchanged by mixing
#     the disagreement shrinks:   ||x - x_bar|| is multiplied by at most lambda a round,
#                                 lambda = max(|lambda_2(W)|, |lambda_p(W)|) < 1
#
# so the consensus distance (1/p) sum_i ||x_i - x_bar||^2 falls by lambda^2 a round when
# nothing else moves the models (Boyd et al. 2006); 1 - lambda is the spectral gap. The
# price is the network: a round costs the compute plus alpha + d b beta (each worker's
# NIC sends d copies of b bytes one after the other and receives d).
#
# (a) The pure mixing: three rounds of training pull the models apart, then the learning
# rate drops to 1e-300 (`optimizer.schedule = "step"`), and the consensus distance is
# measured round by round against lambda^2. (b) Training: consensus distance and
# training loss of the average model against simulated time, 3 seeds (data and shards
# drawn anew each time), beside `sync` (every gradient through a server).


# %%
"""Lesson 16 — Gossip: how fast do neighbours agree, and what does the graph cost?"""
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots
from simdml.graphs import mixing_matrix, neighbours, second_eigenvalue

WORKERS = 16
GRAPHS = ("ring", "torus", "exponential", "complete")
SEEDS = (0, 1, 2)
BASE = {
    "cluster.workers": WORKERS, "cluster.speed": 1e9,
    "network.latency": 1e-4, "network.bandwidth": 1.25e8,
    "data.dataset": "synthetic", "data.n_samples": 4266, "data.test_size": 0.25,
    "data.n_features": 1000, "data.n_classes": 4, "data.partition": "label_skew",
    "data.alpha": 0.5, "data.class_sep": 0.5, "data.label_noise": 0.05, "strategy.lr": 0.5,
}
ROUNDS = 40                             # (b): rounds of training
MIX_ROUNDS = 30                         # (a): rounds in all, 3 of them with gradient steps
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "16_gossip.png"
COLORS = {"ring": "#e76f51", "torus": "#e9c46a", "exponential": "#2a9d8f",
          "complete": "#1d3557", "sync": "#888888"}


# %%
def gossip(graph: str, seed: int = 0, **changes) -> Scenario:
    weights = "uniform" if graph == "complete" else "metropolis"
    return Scenario(name=graph, seed=seed).replace(**{
        **BASE, "strategy.kind": "gossip", "strategy.graph": graph,
        "strategy.weights": weights, **changes})


def mixing(quick: bool = False) -> dict:
    """(a) lambda of each graph, the predicted decay lambda^2 a round, the measured one
    (the last rounds of a run whose gradient steps stop after 3), and the round time
    against compute + alpha + d b beta (printed)."""
    rounds = 15 if quick else MIX_ROUNDS
    rows = {}
    print(f"(a) {WORKERS} workers: mixing alone after 3 rounds of training")
    print(f"{'graph':>12} {'d':>3} {'lambda':>7} {'lambda^2':>9} {'measured':>9} "
          f"{'round (ms), equal shards':>25} {'formula':>8}")
    for g in GRAPHS:
        nbrs = neighbours(g, WORKERS)
        lam = second_eigenvalue(mixing_matrix(nbrs, "uniform" if g == "complete"
                                              else "metropolis"))
        r = simdml.run(gossip(g, **{"optimizer.schedule": "step", "optimizer.step_size": 3,
                                    "optimizer.gamma": 1e-300, "stop.rounds": rounds}))
        d = [h["consensus"] for h in r.history]
        above = [t for t in range(5, len(d)) if d[t - 1] > 1e-14 * d[3]]  # above rounding
        measured = d[above[-1]] / d[above[-1] - 1] if above else d[4] / d[3]
        even = gossip(g, **{"stop.rounds": 3, "data.partition": "iid"})  # equal shards
        free = simdml.run(even.replace(**{"network.latency": 0.0,
                                          "network.bandwidth": math.inf}))
        compute = free.history[-1]["time"] - free.history[-2]["time"]
        nbytes = 8 * r.model.params_.size
        formula = compute + BASE["network.latency"] + len(nbrs[0]) * nbytes / BASE[
            "network.bandwidth"]
        timed = simdml.run(even)
        measured_round = timed.history[-1]["time"] - timed.history[-2]["time"]
        rows[g] = {"degree": len(nbrs[0]), "lambda": lam, "predicted": lam ** 2,
                   "measured": measured, "consensus": d, "round": measured_round,
                   "round_formula": formula}
        print(f"{g:>12} {len(nbrs[0]):>3} {lam:>7.4f} {lam ** 2:>9.4f} {measured:>9.4f} "
              f"{1e3 * measured_round:>25.4f} {1e3 * formula:>8.4f}")
    return rows


def training(quick: bool = False) -> dict:
    """(b) Each graph and sync over the seeds: the history of each run; the final loss
    and the simulated time of the whole run (printed)."""
    rounds = 20 if quick else ROUNDS
    runs = {}
    for g in (*GRAPHS, "sync"):
        for seed in SEEDS[:1] if quick else SEEDS:
            s = (gossip(g, seed, **{"stop.rounds": rounds}) if g != "sync" else
                 Scenario(name="sync", seed=seed).replace(**{**BASE, "stop.rounds": rounds}))
            runs[(g, seed)] = simdml.run(s).history
    print(f"(b) {rounds} rounds, mean over {len(SEEDS[:1] if quick else SEEDS)} seeds")
    print(f"{'':>12} {'time (ms)':>10} {'final loss':>11} {'consensus':>10}")
    summary = {}
    for g in (*GRAPHS, "sync"):
        hs = [h for (k, _), h in runs.items() if k == g]
        t = float(np.mean([h[-1]["time"] for h in hs]))
        loss = float(np.mean([h[-1]["loss"] for h in hs]))
        cons = float(np.mean([h[-1].get("consensus", 0.0) for h in hs]))
        summary[g] = {"time": t, "loss": loss, "consensus": cons,
                      "losses": [h[-1]["loss"] for h in hs]}
        print(f"{g:>12} {1e3 * t:>10.2f} {loss:>11.4f} {cons:>10.2e}")
    return {"runs": runs, "summary": summary}


# %%
def figure(mix: dict, train: dict) -> Figure:
    fig = Figure(figsize=(15, 4.8), layout="constrained")
    ax_a, ax_b, ax_c = fig.subplots(1, 3)
    for g in GRAPHS:
        d = np.array(mix[g]["consensus"])
        t = np.arange(len(d))
        ax_a.semilogy(t[1:], d[1:], "o", ms=3, color=COLORS[g],
                      label=f"{g} (λ = {mix[g]['lambda']:.2f})")
        ax_a.semilogy(t[3:], d[3] * mix[g]["predicted"] ** (t[3:] - 3.0), "-",
                      color=COLORS[g], alpha=0.5)
    ax_a.set_ylim(1e-33, 1e3)
    ax_a.set_xlabel("round")
    ax_a.set_ylabel("consensus distance (1/p) Σ‖x_i − x̄‖²")
    ax_a.set_title("(a) mixing alone after round 3: simulated (dots), λ^(2t) (lines)",
                   fontsize=10)
    seeds = sorted({s for _, s in train["runs"]})
    for g in (*GRAPHS, "sync"):
        for seed in seeds:
            h = train["runs"][(g, seed)]
            label = g if seed == seeds[0] else None
            times = [1e3 * r["time"] for r in h]
            if g not in ("sync", "complete"):   # complete: at rounding, about 1e-31
                ax_b.semilogy(times[1:], [r["consensus"] for r in h][1:], color=COLORS[g],
                              alpha=0.8, label=label)
            ax_c.plot(times, [r["loss"] for r in h], color=COLORS[g], alpha=0.8,
                      label=label, ls="--" if g == "sync" else "-")
    ax_b.set_xlabel("simulated time (ms)")
    ax_b.set_ylabel("consensus distance")
    ax_b.set_title(f"(b) training: disagreement ({len(seeds)} seeds; complete: ~1e-31)",
                   fontsize=10)
    ax_c.set_xlabel("simulated time (ms)")
    ax_c.set_ylabel("training loss of the average model")
    ax_c.set_title(f"(c) training: loss ({len(seeds)} seeds)", fontsize=10)
    for ax in (ax_a, ax_b, ax_c):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Gossip on {WORKERS} workers: a denser graph agrees faster and costs "
                 "more bytes a round")
    return fig


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the tables, write the figure; return the numbers."""
    mix = mixing(quick)
    train = training(quick)
    path = plots.save(figure(mix, train), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    return {"mixing": {g: {k: v for k, v in r.items() if k != "consensus"}
                       for g, r in mix.items()},
            "summary": train["summary"]}


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    numbers = main(quick=QUICK)


# %% [markdown]
# ## What the figure shows
#
# **(a) Mixing.** Once the gradient steps stop, every dot falls on its line: the
# consensus distance shrinks by lambda^2 a round, 0.90 on the ring, 0.36 on the torus,
# 0.25 on the exponential graph (the table's "measured" column is the simulated ratio of
# two late rounds). The complete graph with uniform weights agrees after a single round
# (lambda = 0: every model is the average), down to rounding. The ring's spectral gap,
# 1 - lambda = 0.05, shrinks like 1/p^2 as the ring grows: a ring of 64 would mix 16
# times more slowly. With equal shards a round costs the compute plus alpha + d b beta,
# to the table's four decimals on the ring, the torus and the exponential graph, whose
# workers send to the same offsets in the same order; on the complete graph the copies
# of some senders reach one receiver at once and queue, a round 0.2 % above the formula.
#
# **(b, c) Training on skewed shards.** Each worker's shard pulls its model its own way,
# and mixing pulls them back: at the end of the run the ring's models still disagree by
# about 0.3, the torus's by 1e-2 and the exponential graph's by 1e-3 (mean of 3 seeds);
# the disagreement costs loss, the ring ending at about twice the torus's final loss.
# The complete graph with uniform weights is sync GD, round for round (the same final
# loss), and both pay for it in time: every worker sends 15 copies a round, or every
# gradient goes through the server's NIC. The ring and the torus take the same time:
# with label skew the shards differ in size, and the largest shard's compute, not the
# network, sets the pace -- its neighbours' copies are there before it needs them. In
# simulated time the torus and the exponential graph reach a low loss first.


# %% [markdown]
# ## Exercises
#
# 1. Compute lambda of the ring with uniform weights for p = 8, 16, 32, 64 from the
#    closed form (1 + 2 cos(2 pi / p)) / 3. How many rounds does each need to cut the
#    consensus distance by 10^6?
# 2. Run (b) with `data.partition = "iid"`. Does the graph still matter for the loss?
#    For the time?
# 3. Try `strategy.graph = "random_regular"` with `strategy.degree = 3` and a few
#    `strategy.graph_seed`s: where does its lambda fall between the torus and the
#    exponential graph?
# 4. Switch to `strategy.mode = "async"` on a cluster with one slow worker
#    (`cluster.slowdown = [4, 1, 1, ...]`). Who waits for whom now?
