# %% [markdown]
# # Lesson 8 — two kinds of imbalance: rare classes, and skewed workers.
#
# ## Question
#
# "Imbalanced" means two different things in distributed learning. A *class* can be
# rare (5 % of the rows are fraud); and the *workers* can hold different data (one
# hospital sees mostly one disease). What does each do to a model, and which remedy
# fixes which?
#
# ## Setup
#
# Class imbalance (left): 2-class synthetic data whose minority share goes from 50 %
# down to 2 %, 4 workers, synchronous softmax regression. Remedies: none, balanced
# class weights (`model.class_weight = "balanced"`), random oversampling,
# undersampling, SMOTE (`[imbalance] method`). Measured: the minority class's test
# recall.
# Imbalance across nodes (middle): the digits on 8 workers with label-skewed shards
# (Dirichlet `alpha`: small is extreme), local SGD (200 local steps per round, 5
# rounds: few messages, much drift). Remedies: FedProx (`strategy.mu`), and rebalancing the shards
# (`data.rebalance`: rows move over the network before training). Measured:
# balanced accuracy; synchronous SGD for reference.
# Right: confusion matrices on `breast_cancer_rare` (20 malignant of 377), without
# and with balanced class weights.


# %%
"""Lesson 8 — two kinds of imbalance: rare classes, and skewed workers."""
import os
from pathlib import Path

from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots

MINORITY = (0.5, 0.2, 0.1, 0.05, 0.02)
REMEDIES = {"none": {}, "class weights": {"model.class_weight": "balanced"},
            "oversample": {"imbalance.method": "oversample"},
            "undersample": {"imbalance.method": "undersample"},
            "SMOTE": {"imbalance.method": "smote"}}
ALPHAS = (0.05, 0.1, 0.3, 1.0, 10.0, 100.0)
NODE_REMEDIES = {"local SGD": {}, "local SGD + FedProx (mu=0.1)": {"strategy.mu": 0.1},
                 "local SGD + rebalance": {"data.rebalance": True},
                 "sync (reference)": {"strategy.kind": "sync", "stop.rounds": 600}}
RARE = {"data.dataset": "synthetic", "data.n_samples": 3000, "data.n_features": 4,
        "data.n_classes": 2, "data.class_sep": 0.7, "cluster.workers": 4, "stop.rounds": 150}
SKEW = {"data.dataset": "digits", "cluster.workers": 8, "data.partition": "label_skew",
        "strategy.kind": "local_sgd", "strategy.local_steps": 200, "stop.rounds": 5,
        "strategy.lr": 1.0, "eval_every": 5}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "08_imbalance.png"


# %%
def rare_classes(quick: bool = False) -> dict:
    """The minority's recall with each remedy at each minority share (printed)."""
    minority = MINORITY[::2] if quick else MINORITY
    recall = {name: {} for name in REMEDIES}
    print(f"{'remedy':<14} " + " ".join(f"{100 * m:>7.0f} %" for m in minority)
          + "   (minority recall at each minority share)")
    for name, changes in REMEDIES.items():
        for m in minority:
            s = simdml.run(Scenario(name="rare").replace(**{
                **RARE, "data.weights": [1 - m, m], **changes})).summary
            recall[name][m] = {"recall": s["recall"][1], "accuracy": s["final_accuracy"],
                               "balanced": s["balanced_accuracy"]}
        print(f"{name:<14} " + " ".join(f"{100 * recall[name][m]['recall']:>7.1f} %"
                                        for m in minority))
    return recall


def skewed_workers(quick: bool = False) -> tuple[dict, dict]:
    """Balanced accuracy of each node remedy against the skew (printed), and the rows
    that rebalancing moved."""
    alphas = ALPHAS[::2] if quick else ALPHAS
    skew = {name: {} for name in NODE_REMEDIES}
    moved = {}
    for name, changes in NODE_REMEDIES.items():
        for a in alphas:
            changes_a = {**SKEW, "data.alpha": a, **changes}
            if changes.get("strategy.kind") == "sync":
                changes_a.pop("strategy.local_steps")
                changes_a.update({"eval_every": 600, "strategy.lr": 0.5})
            r = simdml.run(Scenario(name="skew").replace(**changes_a))
            skew[name][a] = r.summary["balanced_accuracy"]
            if "data.rebalance" in changes:
                moved[a] = (r.summary["rows_moved"], r.summary["bytes_sent"])
    print(f"{'across nodes':<30} " + " ".join(f"a={a:<6g}" for a in alphas)
          + "   (balanced accuracy)")
    for name in skew:
        print(f"{name:<30} " + " ".join(f"{100 * skew[name][a]:>7.1f}%" for a in alphas))
    print("rebalancing moved " + ", ".join(f"{rows} rows at alpha={a:g}" for a, (rows, _) in moved.items()))
    return skew, moved


def confusions() -> dict:
    """breast_cancer_rare without and with balanced class weights: name -> summary."""
    matrices = {}
    for name, cw in (("plain", None), ("class weights", "balanced")):
        changes = {"data.dataset": "breast_cancer_rare", "stop.rounds": 200}
        if cw:
            changes["model.class_weight"] = cw
        matrices[name] = simdml.run(Scenario(name="rare_real").replace(**changes)).summary
    return matrices


def figure(recall: dict, skew: dict, matrices: dict) -> Figure:
    """Recall against the minority share; balanced accuracy against the skew; two
    confusion matrices."""
    minority = list(next(iter(recall.values())))
    alphas = list(next(iter(skew.values())))
    fig = Figure(figsize=(16, 5.2), layout="constrained")
    left, middle, right = fig.subfigures(1, 3, width_ratios=[1.1, 1.1, 1.2])
    ax = left.subplots()
    for name in recall:
        ax.plot([100 * m for m in minority], [100 * recall[name][m]["recall"] for m in minority],
                "o-", label=name)
    ax.set(xscale="log", xlabel="minority class share of the rows (%)",
           ylabel="minority recall on the test set (%)", ylim=(0, 105),
           title="A rare class: recall with each remedy")
    ax.minorticks_off()
    ax.set_xticks([100 * m for m in minority], [f"{100 * m:g}" for m in minority])
    ax.legend(fontsize=8, title="class weights = oversampling here", title_fontsize=8)
    ax = middle.subplots()
    for name in skew:
        ax.plot(list(alphas), [100 * skew[name][a] for a in alphas], "o-", label=name)
    ax.set(xscale="log", xlabel="label skew alpha (small: each worker sees few classes)",
           ylabel="balanced accuracy (%)", title="Skewed workers (digits, 8 workers)")
    ax.legend(fontsize=8)
    axes = right.subplots(1, 2)
    for ax, (name, s) in zip(axes, matrices.items()):
        plots.confusion(s["confusion_matrix"], ax=ax, class_names=["malignant", "benign"],
                        title=f"{name}\nmalignant recall {100 * s['recall'][0]:.0f} %")
    right.suptitle("breast_cancer_rare (20 malignant of 377)")
    fig.suptitle("Class imbalance and node imbalance are different problems", fontsize=14)
    return fig


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    recall = rare_classes(quick)
    skew, moved = skewed_workers(quick)
    matrices = confusions()
    plots.save(figure(recall, skew, matrices), out_dir / FIGURE)
    print(f"figure: {out_dir / FIGURE}")
    return {"recall": recall, "skew": skew, "moved": moved,
            "matrices": {k: v["confusion_matrix"] for k, v in matrices.items()},
            "malignant_recall": {k: v["recall"][0] for k, v in matrices.items()}}


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/08_imbalance.py` does;
# `main()` runs them all at once (the tests and `simdml lesson 8` call it). With
# `SIMDML_QUICK=1` in the environment every run is short.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    recall = rare_classes(QUICK)
    skew, moved = skewed_workers(QUICK)
    matrices = confusions()


# %% [markdown]
# ## What the figure shows
#
# Left: as the minority shrinks, the plain model gives up on it -- predicting the
# majority is almost always right -- and its recall collapses; every remedy keeps the
# rare class's recall high, at the price of some false alarms (accuracy drops a
# little). Class weights and random oversampling draw the same curve: for gradient
# descent, repeating a row and weighting it are the same loss in expectation. Middle: the more skewed the shards, the more local SGD's local models
# drift towards their own classes, and their average loses several points. FedProx's
# pull towards the global model does not help here -- it slows every local step, and
# for this convex model the drift is not what limits the average (its use is bounding
# the drift of harder, non-convex models);
# rebalancing removes the skew altogether (at the rows and bytes it costs, printed in
# the table) and gets local SGD back to the level of iid shards. Sync does not care:
# its update is the full-batch gradient, however the rows are spread.
# Right: the counts behind a recall (the test set holds 5 malignant tumours) --
# balanced weights trade a few benign false alarms for the tumour the plain model
# missed.


# %%
if __name__ == "__main__":
    fig = figure(recall, skew, matrices)
    plots.save(fig, FIGURES / FIGURE)
    print(f"figure: {FIGURES / FIGURE}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. In the left panel, which remedy costs the most overall accuracy at a 2 % minority,
#    and why does undersampling throw away so much?
# 2. Apply SMOTE locally (`imbalance.where = "local"`) on label-skewed shards. Why
#    can a worker not balance a class it does not have?
# 3. Rebalancing sends rows over the network: at what network bandwidth would it take
#    longer than the whole training run?
