# %% [markdown]
# # Lesson 10 — deep data parallel: can the backward pass hide the all-reduce?
#
# ## Question
#
# Eight workers train the same MLP, each on its shard, and sum their gradients with a
# ring all-reduce every iteration. PyTorch's DistributedDataParallel (DDP) does not
# wait for the whole gradient: it cuts it into **buckets** of whole layers, in reverse
# layer order, and all-reduces a bucket as soon as backward has produced it, while
# backward goes on with the layers below. How much communication does that hide, and
# how large should a bucket be?
#
# ## Setup
#
# An MLP with five hidden layers of 64 units (21 450 parameters, 172 KB of float64
# gradient: five layers of 33 280 bytes, the last one 5 200) on the digits, 8 workers at
# 1 Gflop/s each, a 100 Mbit/s network with 100 µs latency -- a small model on a slow
# network, so that communication weighs as much as it does for a large model on a fast
# one. `strategy.kind = "ddp"`, full-batch gradient descent; `cluster.jitter = 0`
# (deterministic compute) and `data.test_size = 0.2475`, so the 1352 training rows make
# 8 equal shards of 169: every iteration takes exactly the same time.
#
# The time model (`simdml.strategies.ddp`, whose test checks it against the simulator):
# with `F` the forward pass, `B_l` layer l's backward, `S` the optimizer step, bucket k
# ready at `r_k = F + (backward from the last layer down to the bucket's lowest)`, and
# its ring all-reduce `A_k = 2 (n - 1) (alpha + b_k / (n beta))` (b_k its bytes),
# buckets go one after another on one stream, so
#
#     overlap:     T = max_k (r_k + A_k + A_(k+1) + ... + A_last) + S
#     no overlap:  T = F + B + A_0 + ... + A_last + S
#
# and the **exposed** communication, the part computation did not hide, is
# `T - (F + B + S)`.


# %%
"""Lesson 10 — deep data parallel: can the backward pass hide the all-reduce?"""
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import OptimizerConfig, Scenario, plots
from simdml.models import MLPClassifier
from simdml.strategies.ddp import DEFAULT_BUCKET_SIZE, buckets_of, iteration_time, ring_time

N = 8                                   # workers
HIDDEN = [64] * 5                       # hidden layers: 6 layers, 21 450 parameters
FIXED_BUCKET = 70_000                   # bytes: the bucket size of the overlap comparison
# one bucket per layer (1 byte: every layer is larger) ... one bucket (PyTorch's 25 MiB)
BUCKET_SIZES = (1, 40_000, 70_000, 100_000, 140_000, DEFAULT_BUCKET_SIZE)
TIMELINE_ITERATIONS = 2                 # iterations shown in the timeline
BASE = {
    "model.kind": "mlp", "model.hidden": HIDDEN, "data.dataset": "digits",
    "data.test_size": 0.2475,           # 1352 training rows: 8 equal shards of 169
    "cluster.workers": N, "cluster.speed": 1e9, "cluster.jitter": 0.0,
    "network.latency": 1e-4, "network.bandwidth": 1.25e7,   # 100 µs, 100 Mbit/s
    "strategy.kind": "ddp", "strategy.lr": 0.5,
}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "10_deep_data_parallel.png"


# %%
def scenario(bucket_size: int, overlap: bool = True, rounds: int = 10) -> Scenario:
    """The lesson's cluster and model with one bucket size and overlap setting."""
    return Scenario(name="ddp").replace(**{
        **BASE, "strategy.bucket_size": bucket_size, "strategy.overlap": overlap,
        "stop.rounds": rounds, "eval_every": rounds})


def formula(s: Scenario) -> dict:
    """The time model's terms for scenario ``s`` (s): F, B (a list, layer 0 first), the
    buckets, A (a list, one per bucket), S, and T from ``iteration_time``."""
    model = MLPClassifier(hidden=HIDDEN)
    model.init_params(64, 10)                          # digits: 64 pixels, 10 classes
    speed, rows = s.cluster.speed[0], 1352 // N
    flops = model.layer_flops(rows)
    buckets = buckets_of(model, s.strategy.build_options().bucket_size)
    A = [ring_time(N, 8 * (b.span.stop - b.span.start), s.network.latency,
                   s.network.bandwidth) for b in buckets]
    S = OptimizerConfig(**s.to_dict()["optimizer"]).build(
        lr=s.strategy.lr, horizon=1).flops(model.n_params) / speed
    F, B = sum(f for f, _ in flops) / speed, [b / speed for _, b in flops]
    T = iteration_time(F, B, buckets, A, S, s.strategy.build_options().overlap)
    return {"F": F, "B": B, "buckets": buckets, "A": A, "S": S, "T": T,
            "exposed": T - (F + sum(B) + S)}


def measure(bucket_size: int, overlap: bool, rounds: int) -> dict:
    """One run: its simulated iteration time, its summary's communication, the formula's
    values beside them, and the trained parameters."""
    s = scenario(bucket_size, overlap, rounds)
    result = simdml.run(s)
    f = formula(s)
    return {"bucket_size": bucket_size, "overlap": overlap,
            "n_buckets": result.summary["n_buckets"],
            "T": result.history[-1]["time"] / rounds, "T_formula": f["T"],
            "exposed": result.summary["exposed_comm_per_iteration"],
            "exposed_formula": f["exposed"], "comm": result.summary["comm_per_iteration"],
            "compute": f["F"] + sum(f["B"]) + f["S"], "backward": sum(f["B"]),
            "params": result.model.params_}


def overlap_or_not(quick: bool = False) -> dict:
    """(a) The same buckets (FIXED_BUCKET bytes) without and with overlap (printed)."""
    rounds = 3 if quick else 10
    rows = {o: measure(FIXED_BUCKET, o, rounds) for o in (False, True)}
    print(f"(a) bucket_size = {FIXED_BUCKET} bytes ({rows[True]['n_buckets']} buckets), "
          f"{rounds} iterations; times per iteration in ms")
    print(f"{'overlap':>8} {'iteration':>10} {'compute':>8} {'comm':>7} {'exposed':>8} "
          f"{'hidden':>7}")
    for o, r in rows.items():
        print(f"{str(o):>8} {1e3 * r['T']:>10.3f} {1e3 * r['compute']:>8.3f} "
              f"{1e3 * r['comm']:>7.3f} {1e3 * r['exposed']:>8.3f} "
              f"{1e3 * (r['comm'] - r['exposed']):>7.3f}")
    return rows


def bucket_sweep(quick: bool = False) -> dict:
    """(b, d) Overlap on, the bucket size swept: simulated against the formula (printed)."""
    rounds = 3 if quick else 10
    rows = {size: measure(size, True, rounds) for size in BUCKET_SIZES}
    print(f"(b, d) overlap on, {rounds} iterations; times per iteration in ms")
    print(f"{'bucket (B)':>10} {'buckets':>7} {'comm':>7} {'exposed':>8} {'formula':>8} "
          f"{'iteration':>10} {'formula':>8}")
    for size, r in rows.items():
        print(f"{size:>10} {r['n_buckets']:>7} {1e3 * r['comm']:>7.3f} "
              f"{1e3 * r['exposed']:>8.3f} {1e3 * r['exposed_formula']:>8.3f} "
              f"{1e3 * r['T']:>10.3f} {1e3 * r['T_formula']:>8.3f}")
    return rows


def same_model(*tables: dict) -> float:
    """The largest difference between any setting's trained parameters and the first's
    (printed): the buckets and the overlap change the time, not the model."""
    params = [r["params"] for table in tables for r in table.values()]
    gap = max(float(np.abs(p - params[0]).max()) for p in params)
    print(f"same model in all {len(params)} runs: max |w - w(first run)| = {gap:.1e}")
    return gap


def timeline_run(quick: bool = False):
    """(c) A short run at FIXED_BUCKET with overlap, for its timeline."""
    return simdml.run(scenario(FIXED_BUCKET, True, TIMELINE_ITERATIONS + 1))


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the tables, write the figure; return the numbers."""
    overlap = overlap_or_not(quick)
    sweep = bucket_sweep(quick)
    gap = same_model(overlap, sweep)
    result = timeline_run(quick)
    path = plots.save(figure(overlap, sweep, result), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    strip = lambda table: {k: {n: v for n, v in r.items() if n != "params"}
                           for k, r in table.items()}
    return {"overlap": strip(overlap), "sweep": strip(sweep), "model_gap": gap,
            "timeline": _under_backward(result)}


def _buckets(n: int) -> str:
    return f"{n} bucket" + ("s" if n > 1 else "")


def _under_backward(result) -> dict:
    """Worker 0 in the timeline run: seconds it sent while computing, and sent in all."""
    spans = [sp for sp in result.trace.spans if sp.node == "worker0"]
    compute = [sp for sp in spans if sp.kind == "compute"]
    sends = [sp for sp in spans if sp.kind == "send"]
    under = sum(max(0.0, min(c.end, m.end) - max(c.start, m.start))
                for m in sends for c in compute)
    return {"send_under_compute": under, "send": sum(m.end - m.start for m in sends),
            "first_send": min(m.start for m in sends)}


def figure(overlap, sweep, result) -> Figure:
    """Top left: an iteration's compute and exposed communication, without and with
    overlap. Top right: exposed communication against the bucket size, simulated and
    the formula. Bottom: the timeline of the first iterations with overlap."""
    fig = Figure(figsize=(14, 9), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.15])
    left, right = top.subplots(1, 2, width_ratios=[1, 1.6])
    compute, comm = plots.KIND_COLORS["compute"], plots.KIND_COLORS["send"]
    labels = ["no overlap", "overlap"]
    rows = [overlap[False], overlap[True]]
    y = np.arange(2)
    left.barh(y, [1e3 * r["compute"] for r in rows], color=compute,
              label="computation (forward, backward, step)")
    left.barh(y, [1e3 * r["exposed"] for r in rows], left=[1e3 * r["compute"] for r in rows],
              color=comm, label="exposed communication")
    for yi, r in zip(y, rows):
        left.text(1e3 * r["T"] + 0.5, yi, f"{1e3 * r['T']:.1f} ms", va="center")
    hidden = overlap[True]["comm"] - overlap[True]["exposed"]
    left.text(1e3 * overlap[True]["compute"], 0.5, f"{1e3 * hidden:.1f} ms of communication "
              f"hidden under backward", ha="center", va="center", fontsize="small")
    left.set_yticks(y, labels)
    left.set_xlim(0, 1.2e3 * max(r["T"] for r in rows))
    left.set_ylim(-0.5, 2.2)
    left.set(xlabel="simulated time per iteration (ms)",
             title=f"(a) One iteration, {overlap[True]['n_buckets']} buckets of "
                   f"<= {FIXED_BUCKET // 1000} KB")
    left.legend(loc="upper center", fontsize="small", ncol=2)
    left.grid(axis="x", alpha=0.3)

    sizes = list(sweep)
    x = np.arange(len(sizes))
    ddp = plots.STRATEGY_COLORS["ddp"]
    right.plot(x, [1e3 * sweep[s]["comm"] for s in sizes], "s--", color="gray",
               label="all communication (sum of the all-reduces)")
    right.plot(x, [1e3 * sweep[s]["exposed_formula"] for s in sizes], "-", color=ddp, lw=6,
               alpha=0.3, label="exposed: the formula")
    right.plot(x, [1e3 * sweep[s]["exposed"] for s in sizes], "o", color=ddp, markersize=8,
               label="exposed: simulated")
    right.axhline(1e3 * sweep[sizes[0]]["backward"], color=compute, ls=":",
                  label="the backward pass (what could hide it)")
    right.set_xticks(x, [("1 B" if s == 1 else "25 MiB" if s == DEFAULT_BUCKET_SIZE
                          else f"{s // 1000} KB") + f"\n{_buckets(sweep[s]['n_buckets'])}"
                         for s in sizes])
    right.set_ylim(0, 1.15e3 * max(sweep[s]["comm"] for s in sizes))
    right.set(xlabel="bucket_size (and the number of buckets it makes)",
              ylabel="communication per iteration (ms)",
              title="(b, d) Exposed communication against the bucket size (overlap on)")
    right.grid(alpha=0.3)
    right.legend(fontsize="small", loc="lower center", ncol=2)

    T = result.history[-1]["time"] / (TIMELINE_ITERATIONS + 1)
    ax = bottom.subplots()
    plots.timeline(result.trace, ax=ax, until=TIMELINE_ITERATIONS * T)
    ax.set_title(f"(c) The first {TIMELINE_ITERATIONS} iterations with overlap: the NICs "
                 f"(recv above, send below each CPU bar) busy under the backward pass")
    fig.suptitle(f"Lesson 10: DDP on {N} workers -- buckets all-reduced while backward runs "
                 f"hide part of the communication", fontsize=13)
    return fig


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/10_deep_data_parallel.py`
# does; `main()` runs them all at once (the tests and `simdml lesson 10` call it). With
# `SIMDML_QUICK=1` in the environment every run is short (3 iterations instead of 10:
# the per-iteration times move by a few µs, not in the digits the text quotes).


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    overlap = overlap_or_not(QUICK)
    sweep = bucket_sweep(QUICK)
    gap = same_model(overlap, sweep)
    result = timeline_run(QUICK)


# %% [markdown]
# ## What the figure shows
#
# (a), left: the same three buckets of at most 70 KB without and with overlap. The
# computation is the same, 20.5 ms, and so is the communication, 28.2 ms; without
# overlap all of it comes after backward (48.7 ms an iteration), with overlap 9.9 ms of
# it runs under backward and the iteration takes 38.9 ms, 20 % less. It cannot hide
# more than the backward pass (13.1 ms, the dotted line on the right), and here the
# communication is about twice as long: whatever the buckets, at least 25.4 - 13.1 =
# 12.3 ms stays exposed.
#
# (b, d), right: the exposed communication against the bucket size, simulated (dots)
# and the formula (the band); they agree within 3 µs (under 0.01 %: the formula takes
# ring chunks of b_k / n bytes, and the bucket with the last layer's 650 parameters does
# not split into 8 equal chunks). Two
# costs pull apart. Every bucket pays the ring's 2 (n - 1) latencies, 1.4 ms: all the
# communication (grey squares) grows from 25.4 ms for one bucket to 32.4 ms for one per
# layer. And a bucket can only start when backward has passed its lowest layer: one
# bucket (PyTorch's 25 MiB, larger than the whole model) hides nothing, its exposed time
# *is* all the communication, exactly as without overlap. The best is in between:
# three buckets of two layers (70 KB) expose 18.4 ms, against 20.4 ms for one bucket
# per layer and 25.4 ms for one bucket. The number of buckets alone does not decide:
# 140 KB makes two buckets, like 100 KB, but its first holds five of the six layers,
# is ready only near the end of backward, and exposes 25.4 ms, nearly as much as one
# bucket; 100 KB (three layers each) exposes 19.8 ms.
#
# (c), bottom: the first two iterations with 70 KB buckets. Each worker's network card
# starts when backward has passed the last two layers (at 10.6 ms) and keeps sending
# and receiving, chunk after chunk, under the rest of the backward pass: about a third
# of worker 0's sending happens while it computes. Then the CPUs idle (grey) until
# the last bucket is summed, and all take the same step. (ddp has no server: its row
# stays empty.)
#
# The buckets and the overlap change the clock, not the mathematics: all eight runs
# train the same model, to rounding (the printed check: within 1e-15).


# %%
if __name__ == "__main__":
    fig = figure(overlap, sweep, result)
    print(f"wrote {plots.save(fig, FIGURES / FIGURE)}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Make the network ten times faster (`network.bandwidth = 1.25e8`). Is the
#    communication now shorter than backward? Which bucket size is best, and how much
#    of the communication stays exposed? Predict with `formula` before you run it.
# 2. With `network.latency = 1e-3` (a slow, far-away network), where is the best bucket
#    size now, and why?
# 3. Write the time model yourself, from the per-layer backward times and the buckets'
#    all-reduce times: exercise 7.1, `lessons/exercises/ex07_bucket_time.py`
#    (`python -m simdml.check ex07`).
# 4. PyTorch makes its first bucket small (1 MiB) whatever `bucket_cap_mb` is. From
#    the formula, what does a small first bucket buy, and when is it worth a latency?
