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
# validation split; the other rules fit on the whole shard.


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
LEARNERS = {"softmax regression": "logistic", "RBF kernel SVM": "kernel_svm",
            "decision tree": "tree"}
RULES = ("best", "average", "vote", "soft", "stack")
PARTITIONS = {"iid": {"data.partition": "iid"},
              f"label skew (α={ALPHA:g})": {"data.partition": "label_skew", "data.alpha": ALPHA}}
BASE = {"data.dataset": "digits", "cluster.workers": WORKERS, "strategy.kind": "local_fusion"}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "09_model_fusion.png"


# %%
def simulate(quick: bool = False) -> dict:
    """Every rule for every learner (no SVM when quick) on iid and skewed shards, with the
    centralized accuracy, printed: (learner, shards) -> rule -> accuracy."""
    learners = {k: v for k, v in LEARNERS.items() if not (quick and v == "kernel_svm")}
    base = Scenario(name="fusion").replace(**{**BASE, "model.kind": "logistic"})
    table = {}
    print(f"{'learner':<20} {'shards':<20} " + " ".join(f"{r:>8}" for r in ("central",) + RULES))
    for label, kind in learners.items():
        central = simdml.run(base.replace(**{"model.kind": kind, "cluster.workers": 1,
                                             "strategy.rule": "vote"})).summary["final_accuracy"]
        for part, changes in PARTITIONS.items():
            row = {"central": central}
            for rule in RULES:
                if rule == "average" and kind != "logistic":
                    continue
                s = base.replace(**{**changes, "model.kind": kind, "strategy.rule": rule})
                row[rule] = simdml.run(s).summary["final_accuracy"]
            table[(label, part)] = row
            print(f"{label:<20} {part:<20} " + " ".join(
                f"{100 * row[r]:>7.1f}%" if r in row else f"{'-':>8}" for r in ("central",) + RULES))
    return table


def figure(table: dict) -> Figure:
    """Accuracy per rule, iid and skewed, one panel per learner."""
    learners = list(dict.fromkeys(label for label, _ in table))
    fig = Figure(figsize=(15, 5), layout="constrained")
    axes = fig.subplots(1, len(learners), sharey=True)
    for ax, label in zip(np.atleast_1d(axes), learners):
        rules = [r for r in RULES if r in table[(label, next(iter(PARTITIONS)))]]
        x = np.arange(len(rules))
        for j, (part, color) in enumerate(zip(PARTITIONS, ("#457b9d", "#e76f51"))):
            ax.bar(x + (j - 0.5) * 0.38, [100 * table[(label, part)][r] for r in rules], 0.38,
                   label=f"{part} shards", color=color)
        ax.axhline(100 * table[(label, next(iter(PARTITIONS)))]["central"], color="black",
                   ls="--", label="centralized (all rows)")
        ax.set_xticks(x, rules)
        ax.set(xlabel="fusion rule", title=label, ylim=(40, 100))
    np.atleast_1d(axes)[0].set_ylabel("test accuracy (%)")
    fig.legend(*np.atleast_1d(axes)[0].get_legend_handles_labels(), loc="outside lower center",
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
# shards, and the centralized model as a dashed line. With iid shards every rule but
# "best" is within a few points of the centralized model (trees even beat it: eight
# trees voting are a small random forest); "best" keeps one worker's model, fitted on
# an eighth of the data, and is well below. With skewed shards "best" collapses -- no
# single worker knows all the digits -- and the plain vote loses ten points or more:
# members vote confidently on digits they never saw. The soft vote and (linear models
# only) parameter averaging lose less. Stacking holds up best by far, within a few
# points of the centralized model for every learner: its meta-learner, fitted on the
# pooled validation rows, learns per class which member to trust.


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
