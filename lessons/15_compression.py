# %% [markdown]
# # Lesson 15 — Gradient compression: how few bytes can a gradient be?
#
# ## Question
#
# Every round of a parameter server, each worker sends its whole gradient: 8 bytes an
# entry. Could it send 1 % of the entries (top-k, rand-k), a few bits per entry (QSGD),
# or one bit (signSGD) instead? Each compressor cuts the bytes by a known factor; what
# does each cost in loss, and what does **error feedback** -- keeping what was not sent
# and adding it to the next gradient -- buy back?
#
# ## Setup
#
# 8 workers on a 1 Gbit/s network (latency 100 µs), `strategy.kind = "sync"`, logistic
# regression on synthetic data (4,000 rows, 400 features, 2 classes: a gradient of 802
# entries, 6,416 bytes), 100 rounds, 3 seeds (data, shards and the compressors' draws anew each
# time). `[compression]`: none, top-k and rand-k at 5 % (k = 40 of 802 entries), QSGD with
# 4 levels, sign; each with and without `error_feedback`. The payload's bytes (n entries,
# k = round(ratio n)):
#
#     topk, randk   12 k           (int32 index + float64 value per entry sent)
#     qsgd          8 + n/8 + n    (the norm, packed signs, a 1-byte level per entry)
#     sign          n/8 + 8        (packed signs, one scale)
#
# The table prints each formula beside the bytes the simulation put on the wire (the
# run's bytes minus the dense run's, per gradient pushed, plus 8 n).


# %%
"""Lesson 15 — Gradient compression: how few bytes can a gradient be?"""
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots
from simdml.collectives import allgather_time, allreduce_time
from simdml.compression import wire_bytes

WORKERS, ROUNDS, SEEDS = 8, 100, (0, 1, 2)
BASE = {
    "cluster.workers": WORKERS, "network.latency": 1e-4, "network.bandwidth": 1.25e8,
    "data.dataset": "synthetic", "data.n_samples": 5333, "data.n_features": 400,
    "data.class_sep": 0.5, "strategy.lr": 0.5, "stop.rounds": ROUNDS,
}
COMPRESSORS = {"topk": {"compression.ratio": 0.05}, "randk": {"compression.ratio": 0.05},
               "qsgd": {"compression.levels": 4}, "sign": {}}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "15_compression.png"
COLORS = {"none": "#1d3557", "topk": "#e76f51", "randk": "#e9c46a", "qsgd": "#2a9d8f",
          "sign": "#8e44ad"}


# %%
def scenario(kind: str, feedback: bool, seed: int, rounds: int) -> Scenario:
    extra = COMPRESSORS.get(kind, {})
    return Scenario(name=kind, seed=seed).replace(**{
        **BASE, "stop.rounds": rounds, "compression.kind": kind,
        "compression.error_feedback": feedback, **extra})


def measure(quick: bool = False) -> dict:
    """Every compressor with and without error feedback, over the seeds: final loss,
    bytes a push (simulated and by formula), total bytes and simulated time (printed)."""
    rounds, seeds = (30, SEEDS[:2]) if quick else (ROUNDS, SEEDS)
    rows = {}
    for seed in seeds:
        dense = simdml.run(scenario("none", False, seed, rounds))
        n = dense.model.params_.size
        rows[("none", False, seed)] = {"result": dense, "push": 8 * n, "formula": 8 * n}
        for kind in COMPRESSORS:
            for feedback in (False, True):
                r = simdml.run(scenario(kind, feedback, seed, rounds))
                c = r.scenario.compression
                extra = (r.summary["bytes_sent"] - dense.summary["bytes_sent"]) / (
                    rounds * WORKERS)
                rows[(kind, feedback, seed)] = {
                    "result": r, "push": 8 * n + extra,
                    "formula": wire_bytes(kind, n, ratio=c.ratio, levels=c.levels)}
    table = {}
    print(f"{len(seeds)} seeds, {rounds} rounds, {WORKERS} workers: a gradient of {n} entries")
    print(f"{'compressor':>18} {'bytes/push':>10} {'formula':>8} {'x fewer':>7} "
          f"{'final loss (mean, min-max)':>27} {'time (ms)':>9}")
    for kind in ("none", *COMPRESSORS):
        for feedback in ((False,) if kind == "none" else (False, True)):
            runs = [rows[(kind, feedback, s)] for s in seeds]
            losses = [x["result"].summary["final_loss"] for x in runs]
            push, formula = runs[0]["push"], runs[0]["formula"]
            label = kind + (" + EF" if feedback else "")
            stopped = [x["result"].summary["updates"] for x in runs
                       if x["result"].summary["updates"] < rounds]
            if stopped:                # diverged: its bytes are those of fewer rounds
                table[label] = {"push": None, "formula": formula, "diverged": stopped,
                                "losses": losses, "loss": float(np.mean(losses))}
                print(f"{label:>18} {'-':>10} {formula:>8} {'-':>7} diverged in "
                      f"{len(stopped)} of {len(seeds)} seeds (at update "
                      f"{', '.join(map(str, stopped))})")
                continue
            table[label] = {"push": push, "formula": formula, "ratio": 8 * n / push,
                            "diverged": [],
                            "loss": float(np.mean(losses)), "losses": losses,
                            "time": float(np.mean([x["result"].summary["sim_time"]
                                                   for x in runs])),
                            "bytes": runs[0]["result"].summary["bytes_sent"]}
            t = table[label]
            print(f"{label:>18} {push:>10.0f} {formula:>8} {t['ratio']:>7.1f} "
                  f"{t['loss']:>9.4f} ({min(losses):.4f}-{max(losses):.4f}) "
                  f"{1e3 * t['time']:>9.2f}")
    return {"rows": rows, "table": table, "seeds": seeds}


# %%
def figure(m: dict) -> Figure:
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2)
    seed = m["seeds"][0]
    for (kind, feedback, s), x in m["rows"].items():
        label = kind + (" + EF" if feedback else "")
        if s != seed or m["table"][label]["diverged"]:
            continue
        h, r = x["result"].history, x["result"]
        per_round = r.summary["bytes_sent"] / max(1, r.summary["updates"])
        ax_a.plot([per_round * row["update"] / 1e6 for row in h], [row["loss"] for row in h],
                  color=COLORS[kind], ls="-" if feedback or kind == "none" else "--",
                  label=kind + (" + EF" if feedback else ""))
    ax_a.set_xscale("log")
    ax_a.set_yscale("log")
    ax_a.set_xlabel("bytes sent (MB, all messages)")
    ax_a.set_ylabel("training loss")
    ax_a.set_title(f"(a) loss vs bytes (seed {seed}; dashed: no error feedback)", fontsize=10)
    ax_a.legend(fontsize=8, ncol=2)
    for label, t in m["table"].items():
        kind = label.split(" ")[0]
        if t["diverged"]:
            continue
        marker = "o" if "EF" in label or kind == "none" else "x"
        ax_b.scatter([t["push"]] * len(t["losses"]), t["losses"], color=COLORS[kind],
                     marker=marker, label=label, alpha=0.8)
    ax_b.set_xscale("log")
    ax_b.set_yscale("log")
    ax_b.set_xlabel("bytes of one gradient on the wire")
    ax_b.set_ylabel(f"final training loss ({len(m['seeds'])} seeds)")
    ax_b.set_title("(b) what each byte budget reaches (o: error feedback, x: none)",
                   fontsize=10)
    ax_b.legend(fontsize=7, ncol=2)
    for ax in (ax_a, ax_b):
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("Gradient compression in a sync parameter server: fewer bytes, and what "
                 "error feedback buys back")
    return fig


STALL = {"data.dataset": "synthetic", "data.n_samples": 400, "data.n_features": 2,
         "data.class_sep": 0.5, "data.partition": "by_label", "data.classes_per_part": 1,
         "cluster.workers": 2, "stop.rounds": 300,
         "compression.kind": "topk", "compression.ratio": 2 / 6}


def stall() -> dict:
    """Two workers with one class each, top-2 of 6 entries: sync and allreduce, without
    and with error feedback, beside the dense run (printed)."""
    out = {}
    print(f"\n{'label-split shards, top-2 of 6':>32} {'final loss':>10} {'ln 2':>7}")
    for strategy in ("sync", "allreduce"):
        base = Scenario().replace(**{**STALL, "strategy.kind": strategy})
        for label, changes in (("dense", {"compression.kind": "none"}), ("top-k", {}),
                               ("top-k + EF", {"compression.error_feedback": True})):
            r = simdml.run(base.replace(**changes))
            out[(strategy, label)] = r.summary["final_loss"]
            print(f"{strategy + ', ' + label:>32} {r.summary['final_loss']:>10.4f} "
                  f"{np.log(2):>7.4f}")
    return out


def gathered(n: int, p: int = WORKERS) -> dict:
    """An all-reduce of a compressed gradient is an all-gather: with compute free, the
    simulated round of ``strategy.kind = "allreduce"`` beside its formula, and the bytes
    each worker sends a round, dense ring vs each compressor's all-gather (printed)."""
    alpha, bandwidth = BASE["network.latency"], BASE["network.bandwidth"]
    out = {}
    print(f"\nallreduce, {p} workers, {n} entries, compute free: a round")
    print(f"{'':>12} {'bytes sent':>10} {'x fewer':>7} {'simulated (µs)':>14} "
          f"{'formula (µs)':>12}")
    for kind in ("none", *COMPRESSORS):
        extra = COMPRESSORS.get(kind, {})
        s = scenario(kind, False, 0, 5).replace(**{"strategy.kind": "allreduce",
                                                   "cluster.speed": float("inf")})
        rounds = np.diff([h["time"] for h in simdml.run(s).history])
        if kind == "none":
            sent = 2 * (p - 1) / p * 8 * n
            formula = allreduce_time("ring", p, 8 * n, alpha, bandwidth)
        else:
            c = wire_bytes(kind, n, ratio=extra.get("compression.ratio", 0.01),
                           levels=extra.get("compression.levels", 16))
            sent, formula = (p - 1) * c, allgather_time(p, c, alpha, bandwidth)
        out[kind] = {"sent": sent, "round": float(rounds.mean()), "formula": formula}
        print(f"{'dense ring' if kind == 'none' else kind:>12} {sent:>10.0f} "
              f"{out['none']['sent'] / sent:>7.1f} {1e6 * rounds.mean():>14.2f} "
              f"{1e6 * formula:>12.2f}")
    return out


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the tables, write the figure; return the numbers."""
    m = measure(quick)
    path = plots.save(figure(m), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    n = m["rows"][("none", False, m["seeds"][0])]["result"].model.params_.size
    return {"table": m["table"], "stall": stall(), "gathered": gathered(n)}


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    numbers = main(quick=QUICK)


# %% [markdown]
# ## What the figure shows
#
# **The bytes.** Every simulated payload is its formula's size (the table's two byte
# columns): top-k and rand-k at 5 % send 13.4x fewer bytes than the dense gradient, QSGD
# with 4 levels 7x fewer, sign 59x fewer.
#
# **(a, b) The loss.** Top-k without error feedback ends about 9x above the dense run's
# loss: every round it drops the same small entries, which the model never learns from.
# With error feedback the dropped entries pile up in the residual until they are sent,
# and top-k ends within a hair of the dense loss at the same 480 bytes a push. The
# unbiased compressors -- rand-k scaled by n/k, QSGD -- need no feedback to converge, and
# **diverge with it**, within a few rounds in every seed: error feedback assumes a
# compressor that shrinks what it sends, ||C(x) - x||^2 <= (1 - delta) ||x||^2
# (Karimireddy et al. 2019), and scaling by n/k = 20 makes rand-k's error larger than x
# itself, so the residual grows every round. signSGD with majority vote reaches the dense
# run's loss here with 1 bit an entry (the scaled sign with error feedback too).
#
# **The time.** All the runs take within 3 % of the same simulated time: on this network
# a 6 kB gradient is 51 µs of transmission beside 100 µs of latency and the workers'
# compute, so compression saves little time. It pays where bandwidth is scarce: large
# models on slow links (exercise 2).


# %% [markdown]
# ## When top-k without feedback never moves, and compression in an all-reduce
#
# **A stall.** The second table gives each of 2 workers one class (`data.partition =
# "by_label"`) and sends the top 2 of the 6 entries of a two-class logistic gradient. At
# the start each worker's two largest entries are its intercepts' (all its rows are of
# one class), and they cancel the other worker's exactly: without error feedback the
# model stays at 0 and the loss at ln 2 = 0.6931 for all 300 rounds, in sync and in
# allreduce alike. With error feedback the weights' entries pile up until they are sent,
# and the loss ends within 1 % of the dense run's.
#
# **An all-reduce cannot add payloads on the way** (each worker's top-k has its own
# indices), so `strategy.kind = "allreduce"` all-gathers them on the ring: every worker
# sends p - 1 payloads of c bytes a round, against 2 (p - 1) / p n bytes for the dense
# ring, so compression pays only while c < 2 n / p. The third table, with compute free
# so that a round is its communication: at 8 workers the 5 % top-k all-gather sends
# 3.3x fewer bytes than the dense ring (not the 13.4x of a push to a server), QSGD 1.8x
# fewer, sign 14.7x. Each compressed round also takes about half the dense ring's time,
# but mostly not for its bytes: the all-gather has p - 1 = 7 steps, each paying the
# 100 µs latency, where the ring has 2 (p - 1) = 14. Every all-gathered round equals its
# formula, (p - 1)(alpha + c beta), to the printed digit; the dense ring's differs from
# 2 (p - 1)(alpha + n beta / p) by 0.04 µs because 802 entries do not split into 8
# equal chunks.


# %% [markdown]
# ## Exercises
#
# 1. Plug your own top-k from exercise 5.1 into the table: how does it compare with
#    `compression.kind = "topk"`? (They should agree to the byte.)
# 2. Make the network the bottleneck: `data.n_features = 4000`, `network.bandwidth =
#    1.25e7`. How much faster is each compressor now, and which reaches a loss of 0.01
#    first in simulated time?
# 3. Lower top-k's ratio to 1 %, then 0.1 %. Where does error feedback stop being enough
#    in 100 rounds?
# 4. Why does rand-k without the n/k scaling (a contractive compressor) work with error
#    feedback? Write its expected error ||C(x) - x||^2 for k of n entries.
