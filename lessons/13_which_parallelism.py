# %% [markdown]
# # Lesson 13 — which parallelism: data, tensor, pipeline, or all three?
#
# ## Question
#
# Eight workers, one model. Data parallelism (D) gives every worker the whole model and
# a share of the batch; tensor parallelism (T) splits every layer pair; pipeline
# parallelism (P) splits the layers into stages. Any product D x T x P = 8 trains the
# same model -- what differs is the time per step, the bytes on the network and the
# memory each worker needs. Which factorisation is fastest, and which is fastest among
# those that fit in a worker's memory?
#
# ## Setup
#
# An MLP with seven hidden layers of 256 units (8 layers, Psi = 413 962 parameters,
# 3.3 MB in float64) on the digits, Adam, mini-batches of 256 rows, on 8 workers at
# 10 Gflop/s with a 10 Gbit/s network (10 µs latency); `strategy.kind = "hybrid"` with
# every factorisation of 8; 4 micro-batches per replica; `cluster.jitter = 0`, so every
# iteration takes the same time. Each worker has `MEMORY` = 5 MB.
#
# What each dimension costs, per step (the strategies' docstrings derive them):
#
#     data parallel:    an all-reduce of a worker's gradient blocks over the D replicas,
#                       2 (D - 1) / D of their bytes; every replica holds all of its
#                       stage's blocks, with Adam's two moments: 32 bytes per parameter
#     tensor parallel:  an all-reduce of a layer pair's n x c partial sums forward, and
#                       one backward, for every micro-batch
#     pipeline:         activations to the next stage and their gradients back; a bubble
#                       of (P - 1) / (m + P - 1) of the time with m micro-batches
#
# Then a model too large to run for real: 48 layers of 12,288 units (Psi = 7.10 billion
# parameters, float32, Adam: 16 bytes a parameter, 114 GB of model states) on 16 workers
# of 100 Tflop/s with 40 GB each, 25 GB/s links (5 µs), batches of 8,192 rows in 4
# micro-batches per replica. `math = false` runs the same strategy on arrays that are only
# shapes (README, "Timing only"): the same clock, bytes and memory as with math, nothing
# computed. Every D x T x P = 16 with T <= 4.


# %%
"""Lesson 13 — which parallelism: data, tensor, pipeline, or all three?"""
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import Scenario, plots
from simdml.strategies.pipeline_parallel import bubble_fraction

N = 8                                   # workers
MEMORY = 5e6                            # bytes per worker
MICROBATCHES = 4                        # per replica
FACTORS = [(8, 1, 1), (4, 2, 1), (4, 1, 2), (2, 4, 1), (2, 2, 2), (2, 1, 4), (1, 8, 1),
           (1, 4, 2), (1, 2, 4), (1, 1, 8)]   # (D, T, P), D x T x P = 8
BASE = {
    "model.kind": "mlp", "model.hidden": [256] * 7, "data.dataset": "digits",
    "data.test_size": 0.2475, "cluster.workers": N, "cluster.speed": 1e10,
    "cluster.jitter": 0.0, "network.latency": 1e-5, "network.bandwidth": 1.25e9,
    "strategy.kind": "hybrid", "strategy.lr": 0.002, "strategy.batch_size": 256,
    "strategy.microbatches": MICROBATCHES, "optimizer.kind": "adam",
    "stop.rounds": 2, "eval_every": 1,
}
LARGE = {   # a model of 7.1 billion parameters, timing only
    "math": False, "trace_spans": False, "cluster.workers": 16, "cluster.speed": 1e14,
    "cluster.memory": 40e9, "network.latency": 5e-6, "network.bandwidth": 25e9,
    "data.dataset": "synthetic", "data.n_samples": 100_000, "data.n_features": 12288,
    "model.kind": "mlp", "model.hidden": [12288] * 47, "model.dtype": "float32",
    "optimizer.kind": "adam", "strategy.kind": "hybrid", "strategy.batch_size": 8192,
    "strategy.microbatches": 4, "stop.rounds": 1,
}
LARGE_FACTORS = [(16 // (T * P), T, P) for T in (1, 2, 4) for P in (1, 2, 4, 8, 16)
                 if T * P <= 16]
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # the same runs: they are short already
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "13_which_parallelism.png"


# %%
def name(D: int, T: int, P: int) -> str:
    return f"{D}x{T}x{P}"


def measure(D: int, T: int, P: int) -> dict:
    """One factorisation: the second iteration's time, the largest peak memory of a
    worker, the bytes a worker sends per step (on average), and the trained model."""
    s = Scenario(name=name(D, T, P)).replace(**{
        **BASE, "strategy.data_parallel": D, "strategy.tensor_parallel": T,
        "strategy.pipeline_parallel": P})
    result = simdml.run(s)
    times = [h["time"] for h in result.history]
    peaks = {k: m["peak"] for k, m in result.memory.items() if k != "server"}
    return {"D": D, "T": T, "P": P, "T_step": times[-1] - times[-2],
            "peak": max(peaks.values()),
            "bytes": result.summary["bytes_sent"] / s.stop.rounds / N,
            "bubble": bubble_fraction(P, MICROBATCHES) if P > 1 else 0.0,
            "fits": max(peaks.values()) <= MEMORY, "params": result.model.params_}


def every_factorisation(quick: bool = False) -> dict:
    """Every D x T x P = 8 (printed): time per step, memory, bytes, the best marked."""
    rows = {name(*f): measure(*f) for f in FACTORS}
    fastest = min(rows, key=lambda k: rows[k]["T_step"])
    fitting = [k for k in rows if rows[k]["fits"]]
    best = min(fitting, key=lambda k: rows[k]["T_step"]) if fitting else None
    print(f"{N} workers, {MEMORY / 1e6:g} MB each; times per step in ms, memory and bytes "
          f"in MB")
    print(f"{'D x T x P':>9} {'step':>7} {'peak mem':>9} {'fits':>5} {'sent/step':>10} "
          f"{'bubble (formula)':>17}")
    for k, r in rows.items():
        mark = " <- fastest" if k == fastest else ""
        mark += " <- fastest that fits" if k == best else ""
        print(f"{k:>9} {1e3 * r['T_step']:>7.2f} {r['peak'] / 1e6:>9.2f} "
              f"{'yes' if r['fits'] else 'no':>5} {r['bytes'] / 1e6:>10.2f} "
              f"{r['bubble']:>17.2f}{mark}")
    params = [r["params"] for r in rows.values()]
    gap = max(float(np.abs(p - params[0]).max()) for p in params)
    print(f"the same model in all {len(rows)}: max |w - w(8x1x1)| = {gap:.1e}")
    return {"rows": rows, "fastest": fastest, "best": best, "model_gap": gap}


def measure_large(D: int, T: int, P: int) -> dict:
    """One factorisation of the large model (timing only): its iteration's time, the
    fullest worker's peak and its model states (parameters, gradients, Adam's moments)
    against the formula 16 Psi_0 / T: 16 bytes for each of stage 0's parameters, split
    over the T ranks (each rank of a pair also keeps its second bias whole: kB more)."""
    s = Scenario(name=name(D, T, P)).replace(**{
        **LARGE, "strategy.data_parallel": D, "strategy.tensor_parallel": T,
        "strategy.pipeline_parallel": P})
    result = simdml.run(s)
    workers = {k: m for k, m in result.memory.items() if k != "server"}
    fullest = max(workers.values(), key=lambda m: m["peak"])
    sizes = (LARGE["data.n_features"], *LARGE["model.hidden"], 2)
    stage0 = sum((sizes[l] + 1) * sizes[l + 1] for l in range((len(sizes) - 1) // P))
    fits = "out of memory" not in result.summary["stop_reason"]
    return {"D": D, "T": T, "P": P, "fits": fits, "peak": fullest["peak"],
            "T_step": result.summary["sim_time"] if fits else None,
            "states": sum(fullest["most"][c] for c in ("params", "grads", "optimizer")),
            "states_formula": 16 * stage0 / T,
            "bubble": bubble_fraction(P, LARGE["strategy.microbatches"]) if P > 1 else 0.0}


def large_model() -> dict:
    """Every D x T x P = 16 (T <= 4) of the 7.1-billion-parameter model (printed)."""
    rows = {name(*f): measure_large(*f) for f in LARGE_FACTORS}
    fitting = [k for k in rows if rows[k]["fits"]]
    best = min(fitting, key=lambda k: rows[k]["T_step"]) if fitting else None
    sizes = (LARGE["data.n_features"], *LARGE["model.hidden"], 2)
    psi = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    print(f"\n{len(sizes) - 1} layers of 12,288 (Psi = {psi / 1e9:.2f} billion), timing "
          f"only: 16 workers, {LARGE['cluster.memory'] / 1e9:g} GB each; step in ms, "
          f"memory in GB (OOM: out of memory)")
    print(f"{'D x T x P':>9} {'step':>8} {'peak mem':>9} {'states':>7} "
          f"{'16 Psi_0 / T':>13} {'bubble':>7}")
    for k, r in rows.items():
        step = f"{1e3 * r['T_step']:8.1f}" if r["fits"] else f"{'OOM':>8}"
        states = f"{r['states'] / 1e9:7.2f}" if r["fits"] else f"{'-':>7}"
        mark = " <- fastest that fits" if k == best else ""
        peak = f"{r['peak'] / 1e9:9.2f}" if r["fits"] else f"{'> ' + format(LARGE['cluster.memory'] / 1e9, 'g'):>9}"
        print(f"{k:>9} {step} {peak} {states} "
              f"{r['states_formula'] / 1e9:>13.2f} {r['bubble']:>7.2f}{mark}")
    return {"rows": rows, "best": best, "psi": psi}


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the tables, write the figure; return the numbers."""
    out = every_factorisation(quick)
    out["large"] = large_model()
    path = plots.save(figure(out), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    return {"rows": {k: {n: v for n, v in r.items() if n != "params"}
                     for k, r in out["rows"].items()},
            "fastest": out["fastest"], "best": out["best"], "model_gap": out["model_gap"],
            "large": out["large"]}


COLORS = {"data": "#e9c46a", "tensor": "#2a9d8f", "pipeline": "#1d3557", "mixed": "#bc4749"}


def _family(r: dict) -> str:
    used = [d for d, n in (("data", r["D"]), ("tensor", r["T"]), ("pipeline", r["P"]))
            if n > 1]
    return used[0] if len(used) == 1 else "mixed"


def figure(out: dict) -> Figure:
    """Left: each factorisation's time per step against its workers' peak memory, the
    memory limit, the best that fits. Right: the bytes a worker sends per step."""
    rows = out["rows"]
    fig = Figure(figsize=(14, 11), layout="constrained")
    axes = fig.subplot_mosaic([["a", "b"], ["c", "c"]], width_ratios=[1.3, 1])
    left, right = axes["a"], axes["b"]
    for family, color in COLORS.items():
        pts = [r for r in rows.values() if _family(r) == family]
        left.scatter([r["peak"] / 1e6 for r in pts], [1e3 * r["T_step"] for r in pts],
                     s=70, color=color, label={"data": "data parallel only",
                                               "tensor": "tensor parallel only",
                                               "pipeline": "pipeline only",
                                               "mixed": "two or three at once"}[family],
                     zorder=3)
    for k, r in rows.items():   # 2x4x1 and 2x2x2 sit close: one label to the left
        left.annotate(k, (r["peak"] / 1e6, 1e3 * r["T_step"]), textcoords="offset points",
                      xytext=(-44, 4) if k == "2x4x1" else (6, 4), fontsize="small")
    left.axvline(MEMORY / 1e6, color="#e63946", ls="--",
                 label=f"memory of a worker, {MEMORY / 1e6:g} MB")
    left.axvspan(MEMORY / 1e6, 1.05 * max(r["peak"] for r in rows.values()) / 1e6,
                 color="#e63946", alpha=0.06, label="out of memory")
    if out["best"] is not None:
        b = rows[out["best"]]
        left.scatter([b["peak"] / 1e6], [1e3 * b["T_step"]], s=300, facecolors="none",
                     edgecolors="black", linewidths=2, label="the fastest that fits", zorder=4)
    left.set(xlabel="peak memory of the fullest worker (MB)",
             ylabel="simulated time per step (ms)",
             title=f"(a) Every D x T x P = {N}: time against memory")
    left.grid(alpha=0.3)
    left.legend(fontsize="small", loc="upper right")
    names = list(rows)
    right.bar(np.arange(len(names)), [rows[k]["bytes"] / 1e6 for k in names],
              color=[COLORS[_family(rows[k])] for k in names])
    right.set_xticks(np.arange(len(names)), names, rotation=45)
    right.set(xlabel="D x T x P", ylabel="bytes sent per worker and step (MB)",
              title="(b) What each factorisation puts on the network")
    right.grid(axis="y", alpha=0.3)
    if "large" in out:
        _large_panel(axes["c"], out["large"])
    fig.suptitle(f"Lesson 13: the same model on {N} workers, ten ways -- only time, bytes "
                 f"and memory differ; and a 7.1-billion-parameter model, timing only",
                 fontsize=13)
    return fig


def _large_panel(ax, large: dict) -> None:
    """(c) The large model: each factorisation's step time (bars; none where it runs out
    of memory) and its fullest worker's peak memory (dots) against the limit."""
    rows, names = large["rows"], list(large["rows"])
    x = np.arange(len(names))
    steps = [1e3 * rows[k]["T_step"] if rows[k]["fits"] else 0.0 for k in names]
    bars = ax.bar(x, steps, color=[COLORS[_family(rows[k])] for k in names], zorder=3)
    if large["best"] is not None:
        bars[names.index(large["best"])].set(edgecolor="black", linewidth=2.5)
    for i, k in enumerate(names):
        if not rows[k]["fits"]:
            ax.text(i, 40, "out of\nmemory", ha="center", va="bottom", fontsize="small",
                    color="#e63946")
    ax.set_xticks(x, names, rotation=45)
    ax.set(xlabel="D x T x P (T <= 4)", ylabel="simulated time per step (ms), bars",
           title="(c) 48 layers of 12,288 on 16 workers of 40 GB (math = false): the "
                 "fastest that fits is outlined")
    ax.grid(axis="y", alpha=0.3)
    mem = ax.twinx()
    ok = [i for i, k in enumerate(names) if rows[k]["fits"]]
    mem.plot(ok, [rows[names[i]]["peak"] / 1e9 for i in ok], "o", color="black",
             label="peak memory of the fullest worker (GB), dots")
    oom = [i for i, k in enumerate(names) if not rows[k]["fits"]]
    mem.plot(oom, [rows[names[i]]["states_formula"] / 1e9 for i in oom], "o", mfc="none",
             color="#e63946", label="out of memory: its model states alone, 16 Psi_0 / T")
    mem.axhline(LARGE["cluster.memory"] / 1e9, color="#e63946", ls="--",
                label=f"memory of a worker, {LARGE['cluster.memory'] / 1e9:g} GB")
    ax.set_ylim(0, 1.45 * max(steps))                     # room for the legend above
    tops = [r["peak"] if r["fits"] else r["states_formula"] for r in rows.values()]
    mem.set(ylabel="peak memory (GB), dots", ylim=(0, 1.45 * max(tops) / 1e9))
    handles = [plt_patch(COLORS[f], lab) for f, lab in (
        ("pipeline", "pipeline only"), ("mixed", "two or three at once"))]
    mem.legend(handles=handles + mem.get_legend_handles_labels()[0], fontsize="small",
               loc="upper right", ncols=2)


def plt_patch(color: str, label: str):
    from matplotlib.patches import Patch
    return Patch(color=color, label=label)


# %% [markdown]
# ## Run it
#
# The cell below runs every factorisation, as `python lessons/13_which_parallelism.py`
# does, then the large model's, timing only; `main()` runs both and draws the figure
# (the tests and `simdml lesson 13` call it). `SIMDML_QUICK=1` changes nothing here:
# every run is two iterations (one for the large model) already.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    out = every_factorisation(QUICK)
    out["large"] = large_model()


# %% [markdown]
# ## What the figure shows
#
# (a), left: each factorisation's time per step against the peak memory of its fullest
# worker. Pure data parallelism, 8x1x1, is on the far right: every worker holds the
# whole model, its gradient and Adam's two moments, 32 bytes per parameter (13.2 MB),
# and peaks at 14.36 MB -- almost three times the 5 MB a worker has. The fastest of all,
# 4x2x1 (11.55 ms a step), needs 7.75 MB: it does not fit either. Among the
# factorisations that fit, the fastest is **2x2x2, all three at once** (12.19 ms), just
# ahead of 2x4x1 (12.34 ms). The extremes fit easily and are slow: pure pipeline, 1x1x8,
# needs the least memory (2.83 MB) but takes 24.94 ms, idle in its bubble for
# (P - 1) / (m + P - 1) = 7 / 11 = 0.64 of the schedule with 4 micro-batches; pure tensor
# parallelism, 1x8x1, takes 16.32 ms.
#
# (b), right: the bytes a worker sends per step. Pure data parallelism sends the most,
# 5.80 MB: its all-reduce of the whole gradient, 2 (D - 1) / D x 3.3 MB. Pure tensor
# parallelism sends nearly as much, 5.54 MB, in many small all-reduces (two per layer
# pair and micro-batch, each paying the ring's latencies), though no worker ever sends
# its gradient. Pure pipeline sends the least, 0.92 MB: only activations and their
# gradients between neighbours. 2x2x2 sends 1.88 MB. Each dimension puts a different
# cost on the network, the clock or the memory; combining them pays a little of each,
# which is why large models use all three.
#
# All ten runs train the same model: the largest difference between any two is
# 1.8e-13, the rounding of sums taken in different orders (which Adam's division
# amplifies a little).
#
# (c), below: the large model, timing only (bars: time per step; dots: the fullest
# worker's peak memory). Data parallelism alone needs the model states of all 7.10
# billion parameters on every worker, 16 Psi = 113.56 GB: it runs out of the 40 GB, as
# do 8x1x2 and 8x2x1 (58.0 and 56.8 GB of states). Every factorisation that fits holds
# exactly the states the formula 16 Psi_0 / T says (stage 0's parameters, split over the
# tensor ranks: 28.99, 14.50 or 7.25 GB), plus a few GB of activations. Pure pipeline,
# 1x1x16, needs the least (12.55 GB) and is the slowest that fits, 1151.7 ms a step: with
# 4 micro-batches it idles (P - 1) / (m + P - 1) = 15 / 19 = 0.79 of the schedule. The
# fastest that fits uses **all three, 2x2x4** (714.7 ms at 20.50 GB), ahead of 2x1x8
# (772.3 ms) and 2x4x2 (780.0 ms): two replicas halve each pipeline's batch, two tensor
# ranks halve each stage's work, four stages cut the states to a quarter, and each
# dimension stays small enough that its own cost (the replicas' all-reduce, the tensor
# all-reduces of every layer pair, the bubble) stays small. This is why large models use
# all three. On these uniform links tensor parallelism pays the most for its many
# all-reduces; real clusters keep a tensor group inside one host, on its faster links.


# %%
if __name__ == "__main__":
    fig = figure(out)
    print(f"wrote {plots.save(fig, FIGURES / FIGURE)}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Halve the network's bandwidth. Which factorisations slow down most, and why those?
# 2. With 8 micro-batches instead of 4, how much faster is 1x1x8? Compare with the
#    bubble formula (P - 1) / (m + P - 1).
# 3. Give each worker 3 MB. Which factorisations still fit, and which is fastest now?
# 4. Why does 8x1x1 need the most memory, although each of its workers sees only an
#    eighth of the batch?
# 5. Compute on paper what the fullest worker of a factorisation holds, and so which
#    fit: exercise 10.1, `lessons/exercises/ex10_factorisation_memory.py`
#    (`python -m simdml.check ex10`).
# 6. In (c), give each worker 80 GB (`LARGE["cluster.memory"] = 80e9`). Which
#    factorisations fit now, and is the fastest that fits still 2x2x4?
# 7. In (c), try 8 micro-batches instead of 4. Which factorisations gain most, and does
#    the bubble formula say why?
