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
# recall (top) and the overall test accuracy (bottom).
# Imbalance across nodes (middle): the digits on 8 workers with label-skewed shards
# (Dirichlet `alpha`: small is extreme), local SGD (100 local steps per round, 5
# rounds: few messages, much drift). Remedies: FedProx (`strategy.mu`), and rebalancing
# the shards (`data.rebalance`: rows move over the network before training). Measured:
# balanced accuracy; synchronous SGD for reference.
# Every point is the mean over `SEEDS` (each seed another dataset draw, split, partition
# and initialization), its error bar their standard deviation.
# Right: confusion matrices on `breast_cancer_rare` (20 malignant of 377), without
# and with balanced class weights, for one split (and the recall over five).


# %%
"""Lesson 8 — two kinds of imbalance: rare classes, and skewed workers."""
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots

SEEDS = (0, 1, 2)   # each seed: another split, partition and initialization
MINORITY = (0.5, 0.2, 0.05, 0.02)
REMEDIES = {"none": {}, "class weights": {"model.class_weight": "balanced"},
            "oversample": {"imbalance.method": "oversample"},
            "undersample": {"imbalance.method": "undersample"},
            "SMOTE": {"imbalance.method": "smote"}}
ALPHAS = (0.05, 0.3, 3.0, 100.0)
NODE_REMEDIES = {"local SGD": {}, "local SGD + FedProx (mu=0.1)": {"strategy.mu": 0.1},
                 "local SGD + rebalance": {"data.rebalance": True},
                 "sync (reference)": {"strategy.kind": "sync", "stop.rounds": 300}}
RARE = {"data.dataset": "synthetic", "data.n_samples": 3000, "data.n_features": 4,
        "data.n_classes": 2, "data.class_sep": 0.7, "cluster.workers": 4, "stop.rounds": 150,
        "eval_every": 150}      # only the final model is scored: evaluate once
SKEW = {"data.dataset": "digits", "cluster.workers": 8, "data.partition": "label_skew",
        "strategy.kind": "local_sgd", "strategy.local_steps": 100, "stop.rounds": 5,
        "strategy.lr": 1.0, "eval_every": 300}
RARE_REAL = {"data.dataset": "breast_cancer_rare", "stop.rounds": 200, "eval_every": 200}
REAL_SEEDS = range(5)
# one colour per remedy; local SGD's variants in shades of its strategy colour
REMEDY_STYLE = {"none": ("#6c757d", "o"), "class weights": ("#e76f51", "s"),
                "oversample": ("#9d0208", "D"), "undersample": ("#2a9d8f", "^"),
                "SMOTE": ("#c9a227", "v")}
NODE_STYLE = {"local SGD": (plots.STRATEGY_COLORS["local_sgd"], "o", "-"),
              "local SGD + FedProx (mu=0.1)": ("#c77dff", "s", "--"),
              "local SGD + rebalance": (plots.STRATEGY_COLORS["local_sgd"], "^", ":"),
              "sync (reference)": (plots.STRATEGY_COLORS["sync"], "D", "-")}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "08_imbalance.png"


# %%
def _spread(values) -> dict:
    """The values over seeds, their mean and standard deviation."""
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)),
            "values": values}


def rare_classes(quick: bool = False) -> dict:
    """The minority's recall and the overall accuracy, with each remedy at each minority
    share, over the seeds (printed): remedy -> share -> {"recall", "accuracy"} spreads."""
    minority = (MINORITY[0], MINORITY[-1]) if quick else MINORITY
    seeds = SEEDS[:2] if quick else SEEDS
    table = {name: {} for name in REMEDIES}
    for name, changes in REMEDIES.items():
        for m in minority:
            runs = [simdml.run(Scenario(name="rare").replace(**{
                **RARE, "data.weights": [1 - m, m], "seed": seed, **changes})).summary
                    for seed in seeds]
            table[name][m] = {"recall": _spread(s["recall"][1] for s in runs),
                              "accuracy": _spread(s["final_accuracy"] for s in runs)}
    for metric in ("recall", "accuracy"):
        print(f"{'remedy':<14} " + " ".join(f"{100 * m:>11g} %" for m in minority)
              + f"   ({'minority recall' if metric == 'recall' else 'overall accuracy'}, "
                f"mean ± sd over {len(seeds)} seeds)")
        for name in table:
            print(f"{name:<14} " + " ".join(
                f"{100 * table[name][m][metric]['mean']:>7.1f} ±{100 * table[name][m][metric]['sd']:>4.1f}"
                for m in minority))
    return table


def _skew_changes(changes: dict, alpha: float, seed: int) -> dict:
    out = {**SKEW, "data.alpha": alpha, "seed": seed, **changes}
    if out["strategy.kind"] == "sync":
        out.pop("strategy.local_steps")     # a sync round is one full-batch gradient step
    return out


def skewed_workers(quick: bool = False) -> tuple[dict, dict]:
    """Balanced accuracy of each node remedy against the skew over the seeds (printed),
    and what rebalancing moved: alpha -> {"rows", "bytes", "training_bytes"} (means)."""
    alphas = (ALPHAS[0], ALPHAS[-1]) if quick else ALPHAS
    seeds = SEEDS[:2] if quick else SEEDS
    skew = {name: {} for name in NODE_REMEDIES}
    sent = {}
    for name, changes in NODE_REMEDIES.items():
        for a in alphas:
            runs = [simdml.run(Scenario(name="skew").replace(**_skew_changes(changes, a, seed)))
                    for seed in seeds]
            skew[name][a] = _spread(r.summary["balanced_accuracy"] for r in runs)
            sent[(name, a)] = [(r.summary.get("rows_moved", 0), r.summary["bytes_sent"])
                               for r in runs]
    # rebalancing's cost: its rows, and the bytes it adds to the same training's
    moved = {a: {"rows": float(np.mean([rows for rows, _ in sent[("local SGD + rebalance", a)]])),
                 "bytes": float(np.mean([b - b0 for (_, b), (_, b0) in zip(
                     sent[("local SGD + rebalance", a)], sent[("local SGD", a)])])),
                 "training_bytes": float(np.mean([b for _, b in sent[("local SGD", a)]]))}
             for a in alphas}
    print(f"{'across nodes':<30} " + " ".join(f"{'alpha=' + format(a, 'g'):>12}" for a in alphas)
          + f"   (balanced accuracy, mean ± sd over {len(seeds)} seeds)")
    for name in skew:
        print(f"{name:<30} " + " ".join(
            f"{100 * skew[name][a]['mean']:>6.1f} ±{100 * skew[name][a]['sd']:>4.1f}" for a in alphas))
    print(f"{'rebalancing moves':<30} " + " ".join(f"{m['rows']:>7.0f} rows" for m in moved.values()))
    print(f"{'  and sends':<30} " + " ".join(f"{m['bytes'] / 1e3:>9.0f} kB" for m in moved.values())
          + f"   (the training itself: {moved[alphas[0]]['training_bytes'] / 1e3:.0f} kB)")
    return skew, moved


def confusions() -> dict:
    """breast_cancer_rare without and with balanced class weights: name -> summaries,
    one per seed (the figure draws the first)."""
    matrices = {}
    for name, cw in (("plain", {}), ("class weights", {"model.class_weight": "balanced"})):
        matrices[name] = [simdml.run(Scenario(name="rare_real").replace(
            **{**RARE_REAL, "seed": seed, **cw})).summary for seed in REAL_SEEDS]
    recalls = {name: _spread(s["recall"][0] for s in runs) for name, runs in matrices.items()}
    print(f"breast_cancer_rare, malignant recall over {len(REAL_SEEDS)} splits: " + ", ".join(
        f"{name} {100 * r['mean']:.0f} ± {100 * r['sd']:.0f} %" for name, r in recalls.items()))
    return matrices


def _dodge(x: float, j: int, n: int) -> float:
    """x moved a little (on a log axis) so that n series' points sit side by side."""
    return x * 1.07 ** (j - (n - 1) / 2)


def _rare_panels(recall: dict, ax_recall, ax_acc) -> None:
    minority = list(next(iter(recall.values())))
    for j, name in enumerate(recall):
        color, marker = REMEDY_STYLE[name]
        for ax, metric in ((ax_recall, "recall"), (ax_acc, "accuracy")):
            ax.errorbar([_dodge(100 * m, j, len(recall)) for m in minority],
                        [100 * recall[name][m][metric]["mean"] for m in minority],
                        [100 * recall[name][m][metric]["sd"] for m in minority],
                        color=color, marker=marker, capsize=2, label=name)
    ax_recall.set(ylabel="minority recall (%)", ylim=(0, 105),
                  title="A rare class: what each remedy buys ...")
    ax_acc.set(xlabel="minority class share of the rows (%)", ylim=(0, 105),
               ylabel="overall accuracy (%)", title="... and what it costs")
    for ax in (ax_recall, ax_acc):
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks([100 * m for m in minority], [f"{100 * m:g}" for m in minority])
    ax_acc.legend(fontsize=8, loc="lower right", ncols=2, title_fontsize=8,
                  title="class weights and oversampling: nearly the same")


def _skew_panel(skew: dict, ax) -> None:
    alphas = list(next(iter(skew.values())))
    for j, name in enumerate(skew):
        color, marker, ls = NODE_STYLE[name]
        ax.errorbar([_dodge(a, j, len(skew)) for a in alphas],
                    [100 * skew[name][a]["mean"] for a in alphas],
                    [100 * skew[name][a]["sd"] for a in alphas],
                    color=color, marker=marker, ls=ls, capsize=3, label=name,
                    mfc="white" if ls == ":" else color)
    low = 5 * np.floor(min(100 * (v["mean"] - v["sd"]) for row in skew.values()
                           for v in row.values()) / 5)
    ax.set(xscale="log", xlabel="label skew alpha (small: each worker sees few classes)",
           ylabel=f"balanced accuracy (%; axis starts at {low:g} %)", ylim=(low, 100),
           title="Skewed workers (digits, 8 workers)")
    ax.minorticks_off()
    ax.set_xticks(alphas, [f"{a:g}" for a in alphas])
    ax.legend(fontsize=9, loc="lower right")


def figure(recall: dict, skew: dict, matrices: dict) -> Figure:
    """Recall and accuracy against the minority share; balanced accuracy against the
    skew; two confusion matrices. Error bars: sd over the seeds."""
    fig = Figure(figsize=(17, 7), layout="constrained")
    left, middle, right = fig.subfigures(1, 3, width_ratios=[1.1, 1.1, 1.2])
    _rare_panels(recall, *left.subplots(2, 1, sharex=True))
    _skew_panel(skew, middle.subplots())
    axes = right.subplots(1, 2)
    for ax, (name, runs) in zip(axes, matrices.items()):
        s, recalls = runs[0], [100 * r["recall"][0] for r in runs]
        plots.confusion(s["confusion_matrix"], ax=ax, class_names=["malignant", "benign"],
                        title=f"{name}\nmalignant recall {100 * s['recall'][0]:.0f} %\n"
                              f"(over {len(runs)} splits: {np.mean(recalls):.0f} ± "
                              f"{np.std(recalls, ddof=1):.0f} %)")
    right.suptitle("breast_cancer_rare (20 malignant of 377), one split")
    fig.suptitle("Class imbalance and node imbalance are different problems "
                 "(error bars: sd over seeds)", fontsize=14)
    return fig


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the table, write the figure; return the numbers."""
    recall = rare_classes(quick)
    skew, moved = skewed_workers(quick)
    matrices = confusions()
    plots.save(figure(recall, skew, matrices), out_dir / FIGURE)
    print(f"figure: {out_dir / FIGURE}")
    return {"recall": recall, "skew": skew, "moved": moved,
            "matrices": {k: [s["confusion_matrix"] for s in v] for k, v in matrices.items()},
            "malignant_recall": {k: [s["recall"][0] for s in v] for k, v in matrices.items()}}


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
# majority is almost always right -- and its recall collapses (to a few % at a 2 %
# minority), while its overall accuracy climbs to 98 %: accuracy hides the problem.
# Every remedy keeps the rare class's recall near 80 %, at the price of false alarms:
# overall accuracy stays near the 85 % of the balanced problem instead of climbing, so
# at 2 % it is some 13 points below the plain model's. Class weights and random
# oversampling draw nearly the same curves (within a point): for gradient descent,
# repeating a row and weighting it are the same loss in expectation.
# Middle: the more skewed the shards, the more local SGD's local models drift
# towards their own classes, and their average loses three to four points of
# balanced accuracy. FedProx's pull towards the global model does not help here -- it
# is below plain local SGD at every skew: it slows every local step, and for this
# convex model the drift is not what limits the average (its use is bounding the drift
# of harder, non-convex models). Rebalancing removes the skew altogether and gets local
# SGD back to the level of iid shards (within a point), at the rows and bytes printed
# in the table: at alpha = 0.05 it sends more bytes than the training itself. Sync
# does not care: its update is the full-batch gradient, however the rows are spread,
# so its balanced accuracy is the same at every skew.
# Right: the counts behind a recall (this split's test set holds 5 malignant
# tumours) -- balanced weights trade a few benign false alarms for the tumour the
# plain model missed; over five splits they catch more tumours on average.


# %%
if __name__ == "__main__":
    fig = figure(recall, skew, matrices)
    plots.save(fig, FIGURES / FIGURE)
    print(f"figure: {FIGURES / FIGURE}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. In the lower left panel, which remedy costs the most overall accuracy at a 2 % minority,
#    and why does undersampling throw away so much?
# 2. Apply SMOTE locally (`imbalance.where = "local"`) on label-skewed shards. Why
#    can a worker not balance a class it does not have?
# 3. Rebalancing sends rows over the network: at what network bandwidth would it take
#    longer than the whole training run?
