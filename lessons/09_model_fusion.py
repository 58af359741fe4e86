# %% [markdown]
# # Lesson 9 — model fusion: one model from many local ones.
#
# ## Question
#
# Eight workers each train a model on their own data only, once, and send it to a
# server. How should the server combine them -- pick the best, average parameters,
# vote, or learn how to combine (stacking)? How close does that come to a model
# trained on all the data, and does the answer change when the workers' data differ?
#
# ## Setup
#
# The digits, 8 workers, `local_fusion` with each rule, for three learners: softmax
# regression (linear: its parameters can be averaged), an RBF kernel SVM and a
# decision tree. Shards are iid, or label-skewed (Dirichlet alpha = 0.2: each worker
# sees mostly two or three digits). The reference is the same learner fitted on all
# the training rows. `best` and `stack` hold out 20 % of each shard as a pooled
# validation split; the other rules fit on the whole shard. Every number is the mean
# over `SEEDS` (each seed another split, partition and initialization), with their
# standard deviation.


# %%
"""Lesson 9 — model fusion: one model from many local ones."""
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots

WORKERS = 8
ALPHA = 0.2
SEEDS = (0, 1, 2)   # each seed: another split, partition and initialization
LEARNERS = {"softmax regression": "logistic", "RBF kernel SVM": "kernel_svm",
            "decision tree": "tree"}
RULES = ("best", "average", "vote", "soft", "stack")
PARTITIONS = {"iid": {"data.partition": "iid"},
              f"label skew (α={ALPHA:g})": {"data.partition": "label_skew", "data.alpha": ALPHA}}
PARTITION_COLORS = ("#457b9d", "#e76f51")   # iid, skewed: as in lesson 4
BASE = {"data.dataset": "digits", "cluster.workers": WORKERS, "strategy.kind": "local_fusion"}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "09_model_fusion.png"


# %%
def _accuracy(scenario: Scenario, seeds) -> dict:
    """The test accuracy of ``scenario`` run with each seed: mean, sd and the values."""
    values = [simdml.run(scenario.replace(seed=seed)).summary["final_accuracy"] for seed in seeds]
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)),
            "values": [float(v) for v in values]}


def simulate(quick: bool = False) -> dict:
    """Every rule for every learner (no SVM when quick) on iid and skewed shards, with the
    centralized accuracy, over the seeds, printed:
    (learner, shards) -> rule -> {"mean", "sd", "values"}."""
    learners = {k: v for k, v in LEARNERS.items() if not (quick and v == "kernel_svm")}
    seeds = SEEDS[:2] if quick else SEEDS
    base = Scenario(name="fusion").replace(**{**BASE, "model.kind": "logistic"})
    table = {}
    print(f"test accuracy (%), mean ± sd over {len(seeds)} seeds")
    print(f"{'learner':<20} {'shards':<18} " + " ".join(f"{r:>11}" for r in ("central",) + RULES))
    for label, kind in learners.items():
        central = _accuracy(base.replace(**{"model.kind": kind, "cluster.workers": 1,
                                            "strategy.rule": "vote"}), seeds)
        for part, changes in PARTITIONS.items():
            row = {"central": central}
            for rule in RULES:
                if rule == "average" and kind != "logistic":
                    continue
                row[rule] = _accuracy(base.replace(**{**changes, "model.kind": kind,
                                                      "strategy.rule": rule}), seeds)
            table[(label, part)] = row
            print(f"{label:<20} {part:<18} " + " ".join(
                f"{100 * row[r]['mean']:>5.1f} ±{100 * row[r]['sd']:>4.1f}" if r in row
                else f"{'-':>11}" for r in ("central",) + RULES))
    return table


def figure(table: dict) -> Figure:
    """Accuracy per rule, iid and skewed, one panel per learner; error bars and the
    band around the centralized line: sd over the seeds."""
    learners = list(dict.fromkeys(label for label, _ in table))
    n_seeds = len(next(iter(table.values()))["central"]["values"])
    fig = Figure(figsize=(15, 5.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(learners), sharey=True))
    for ax, label in zip(axes, learners):
        rules = [r for r in RULES if r in table[(label, next(iter(PARTITIONS)))]]
        x = np.arange(len(rules))
        for j, (part, color) in enumerate(zip(PARTITIONS, PARTITION_COLORS)):
            row = table[(label, part)]
            ax.bar(x + (j - 0.5) * 0.38, [100 * row[r]["mean"] for r in rules], 0.38,
                   yerr=[100 * row[r]["sd"] for r in rules], capsize=3,
                   label=f"{part} shards", color=color)
        central = table[(label, next(iter(PARTITIONS)))]["central"]
        ax.axhspan(100 * (central["mean"] - central["sd"]), 100 * (central["mean"] + central["sd"]),
                   color="black", alpha=0.12, lw=0)
        ax.axhline(100 * central["mean"], color="black", ls="--",
                   label="centralized (all rows; band: ± sd)")
        ax.set_xticks(x, rules)
        ax.set(xlabel="fusion rule", title=label, ylim=(0, 100))
    axes[0].set_ylabel(f"test accuracy (%), mean ± sd over {n_seeds} seeds")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
               ncols=3, fontsize=9)
    fig.suptitle(f"Fusing {WORKERS} local models (digits): which rule, which learner, "
                 f"which shards", fontsize=14)
    return fig


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    table = simulate(quick)
    plots.save(figure(table), out_dir / FIGURE)
    print(f"figure: {out_dir / FIGURE}")
    return table


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/09_model_fusion.py`
# does; `main()` runs them all at once (the tests and `simdml lesson 9` call it). With
# `SIMDML_QUICK=1` in the environment every run is short.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    table = simulate(QUICK)


# %% [markdown]
# ## What the figure shows
#
# Test accuracy per rule, per learner, for iid (left bar) and skewed (right bar)
# shards, and the centralized model as a dashed line; the error bars and the grey band
# are the standard deviation over the seeds, and the axis starts at 0. With iid shards
# every rule but "best" is within about three points of the centralized model (trees
# even beat it: eight trees voting are a small random forest); "best" keeps one
# worker's model, fitted on an eighth of the data, and is well below. With skewed
# shards "best" collapses -- no single worker knows all the digits -- and the plain vote
# loses eight points or more: members vote confidently on digits they never saw.
# Parameter averaging (linear models only) and the soft vote lose less -- except for
# trees, whose fully grown leaves are pure (probabilities of 0 or 1), so that their soft vote
# is their vote. Stacking holds up best by far, within about four points of the
# centralized model for every learner: its meta-learner, fitted on the pooled
# validation rows, learns per class which member to trust.


# %%
if __name__ == "__main__":
    fig = figure(table)
    plots.save(fig, FIGURES / FIGURE)
    print(f"figure: {FIGURES / FIGURE}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Give stacking less validation data (`strategy.validation = 0.05`). Which
#    learner suffers most, and why?
# 2. Weight the vote equally (`strategy.weighting = "equal"`) on `size_skew`
#    shards. When does weighting by shard size matter?
# 3. Average 8 logistic models each fitted with `model.n_iter = 20` instead of 300.
#    Why is the average then *better* than with 300 steps on skewed shards?
