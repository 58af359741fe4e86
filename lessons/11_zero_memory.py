# %% [markdown]
# # Lesson 11 — ZeRO: what does a worker have to hold, and what does sharding cost?
#
# ## Question
#
# In data parallelism every worker holds the whole model, its whole gradient and its
# optimizer's whole state. With Adam in float64 that is 8 + 8 + 16 = 32 bytes per
# parameter, on every worker, however many workers there are. ZeRO (Rajbhandari et al.
# 2020) shards it over the n workers: stage 1 the optimizer state, stage 2 also the
# gradients, stage 3 also the parameters. How much memory does each stage save, does a
# model that does not fit under DDP train under stage 3, and what does it cost in time?
#
# ## Setup
#
# An MLP with eight hidden layers of 128 units (Psi = 125 194 parameters, 1.0 MB of
# float64) on the digits, trained with Adam on mini-batches of 64 rows, on 8 workers at
# 10 Gflop/s each; one gradient bucket per layer (`bucket_size = 1`: each bucket is a
# unit that stage 3 gathers). Two networks: a fast one (10 Gbit/s, 10 µs) and a slow one
# (1 Gbit/s). `strategy.kind = "ddp"` with `strategy.zero = 0, 1, 2, 3`;
# `cluster.jitter = 0`, so that every iteration takes exactly the same time.
#
# The paper's accounting (Sec. 5, here with 8-byte numbers and Adam's two moments) of
# what a worker holds besides its activations, with N workers:
#
#     stage 0 (DDP):  32 Psi              stage 2:  8 Psi + 24 Psi / N
#     stage 1:        16 Psi + 16 Psi / N stage 3:  32 Psi / N
#
# and the bytes a worker sends per step (Sec. 7, in the ring's form): a reduce-scatter
# and an all-gather, `2 (N - 1) / N * 8 Psi`, for stages 0 to 2, and one all-gather more
# (the parameters, before forward and again before backward), `3 (N - 1) / N * 8 Psi`,
# for stage 3. The simulator counts the real arrays each worker books and the real
# messages it sends; the formulas are printed beside them.


# %%
"""Lesson 11 — ZeRO: what does a worker have to hold, and what does sharding cost?"""
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import simdml
from simdml import OptimizerConfig, Scenario, plots
from simdml.models import MLPClassifier
from simdml.strategies import ddp, zero

N = 8                                   # workers
HIDDEN = [128] * 8                      # 9 layers, 125 194 parameters
STAGES = zero.STAGES                    # 0 (plain ddp), 1, 2, 3
NETWORKS = {"fast": {"network.bandwidth": 1.25e9},     # 10 Gbit/s
            "slow": {"network.bandwidth": 1.25e8}}     # 1 Gbit/s
LIMIT = 2_000_000                       # bytes per worker in (c): between stage 3 and 2
ROUNDS = 4                              # iterations of (a), (b): each one is the same
TRAIN_ROUNDS, EVAL_EVERY = 30, 3        # (c): iterations, and one evaluation every 3
BASE = {
    "model.kind": "mlp", "model.hidden": HIDDEN, "data.dataset": "digits",
    "data.test_size": 0.2475,           # 1352 training rows: 8 equal shards of 169
    "cluster.workers": N, "cluster.speed": 1e10, "cluster.jitter": 0.0,
    "network.latency": 1e-5, "strategy.kind": "ddp", "strategy.lr": 0.002,
    "strategy.batch_size": 64, "strategy.bucket_size": 1, "optimizer.kind": "adam",
}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "11_zero_memory.png"
STAGE_COLORS = {0: plots.STRATEGY_COLORS["ddp"], 1: "#e9c46a", 2: "#2a9d8f", 3: "#1d3557"}
STAGE_NAMES = {0: "DDP", 1: "ZeRO-1", 2: "ZeRO-2", 3: "ZeRO-3"}


# %%
def scenario(stage: int, network: str = "fast", rounds: int = ROUNDS, **changes) -> Scenario:
    """The lesson's cluster and model with one ZeRO stage, on one of the networks."""
    return Scenario(name=STAGE_NAMES[stage]).replace(**{
        **BASE, **NETWORKS[network], "strategy.zero": stage, "stop.rounds": rounds,
        "eval_every": 1, **changes})


def psi() -> int:
    """The model's number of parameters."""
    model = MLPClassifier(hidden=HIDDEN)
    model.init_params(64, 10)                          # digits: 64 pixels, 10 classes
    return model.n_params


def bytes_per_step(s: Scenario, result) -> float:
    """Bytes a worker sends in one step, on average over the workers: what one more step
    adds to the bytes sent by all (a run one step longer, minus ``result``), over N."""
    longer = simdml.run(s.replace(**{"stop.rounds": s.stop.rounds + 1}))
    return (longer.summary["bytes_sent"] - result.summary["bytes_sent"]) / N


def iteration_formula(s: Scenario) -> float:
    """The time model's T for scenario ``s`` (s): ``ddp.iteration_time`` for stage 0,
    ``zero.iteration_time`` for the others."""
    model = MLPClassifier(hidden=HIDDEN)
    model.init_params(64, 10)
    speed, options = s.cluster.speed[0], s.strategy.build_options()
    flops = model.layer_flops(s.strategy.batch_size)
    forward, backward = [f / speed for f, _ in flops], [b / speed for _, b in flops]
    buckets = ddp.buckets_of(model, options.bucket_size)
    ring = [ddp.ring_time(N, 8 * (b.span.stop - b.span.start), s.network.latency,
                          s.network.bandwidth) for b in buckets]
    opt = OptimizerConfig(**s.to_dict()["optimizer"]).build(lr=s.strategy.lr, horizon=1)
    if options.zero == 0:
        return ddp.iteration_time(sum(forward), backward, buckets, ring,
                                  opt.flops(model.n_params) / speed, options.overlap)
    return zero.iteration_time(options.zero, forward, backward, buckets,
                               [a / 2 for a in ring], opt.flops(model.n_params // N) / speed,
                               options.overlap)


def measure(stage: int, network: str) -> dict:
    """One run: worker 0's memory at its peak by category, its bytes per step and the
    time per iteration, each beside its formula."""
    s = scenario(stage, network)
    result = simdml.run(s)
    times = np.diff([h["time"] for h in result.history])
    formula = zero.memory_per_worker(stage, psi(), N)
    factor = 3 if stage == 3 else 2
    return {"stage": stage, "network": network,
            "breakdown": result.memory["worker0"]["breakdown"],
            "peak": result.memory["worker0"]["peak"],
            "formula": sum(formula.values()),
            "bytes": bytes_per_step(s, result),
            "bytes_formula": factor * (N - 1) / N * 8 * psi(),
            "T": float(times[-1]), "T_formula": iteration_formula(s),
            "exposed": result.summary["exposed_comm_per_iteration"],
            "history": result.history, "params": result.model.params_}


def memory_and_bytes() -> dict:
    """(a) Every stage on the slow network (that of (c)): memory per worker and bytes per
    step, each beside its formula (printed, in kB)."""
    rows = {stage: measure(stage, "slow") for stage in STAGES}
    print(f"(a) memory of worker 0 at its peak (kB), slow network; Psi = {psi()} parameters, "
          f"N = {N}")
    print(f"{'stage':>6} {'params':>7} {'grads':>7} {'optim':>7} {'sum':>7} {'formula':>8} "
          f"{'activ':>7} {'unshard':>8} {'other':>6} {'peak':>7} {'sent/step':>10} "
          f"{'formula':>8}")
    for stage, r in rows.items():
        b = r["breakdown"]
        other = b["buffers"] + b["shard"]
        print(f"{stage:>6} {b['params'] / 1e3:>7.1f} {b['grads'] / 1e3:>7.1f} "
              f"{b['optimizer'] / 1e3:>7.1f} "
              f"{(b['params'] + b['grads'] + b['optimizer']) / 1e3:>7.1f} "
              f"{r['formula'] / 1e3:>8.1f} {b['activations'] / 1e3:>7.1f} "
              f"{b.get('unsharded', 0) / 1e3:>8.1f} {other / 1e3:>6.1f} "
              f"{r['peak'] / 1e3:>7.1f} {r['bytes'] / 1e3:>10.1f} "
              f"{r['bytes_formula'] / 1e3:>8.1f}")
    return rows


def time_per_step(slow: dict) -> dict:
    """(b) Every stage on both networks: time per iteration beside the time model
    (printed, ms)."""
    rows = {("fast", stage): measure(stage, "fast") for stage in STAGES}
    rows.update({("slow", stage): r for stage, r in slow.items()})
    print("(b) time per iteration (ms), simulated and the time model")
    print(f"{'network':>8} {'stage':>6} {'iteration':>10} {'formula':>8} {'exposed comm':>13}")
    for (network, stage), r in rows.items():
        print(f"{network:>8} {stage:>6} {1e3 * r['T']:>10.3f} {1e3 * r['T_formula']:>8.3f} "
              f"{1e3 * r['exposed']:>13.3f}")
    return rows


def under_a_limit(quick: bool = False) -> dict:
    """(c) Every stage with LIMIT bytes per worker, on the slow network: how each run
    ends (printed)."""
    rounds = 2 * EVAL_EVERY if quick else TRAIN_ROUNDS
    rows, every = {}, {"eval_every": EVAL_EVERY}
    print(f"(c) cluster.memory = {LIMIT / 1e6:.1f} MB per worker, slow network, {rounds} "
          f"iterations")
    for stage in STAGES:
        result = simdml.run(scenario(stage, "slow", rounds, **every,
                                     **{"cluster.memory": LIMIT}))
        rows[stage] = {"stop_reason": result.summary["stop_reason"],
                       "updates": result.summary["updates"], "history": result.history}
        print(f"  {STAGE_NAMES[stage]:<7} {result.summary['updates']:>3} updates: "
              f"{result.summary['stop_reason']}")
    unlimited = simdml.run(scenario(0, "slow", rounds, **every))
    rows["unlimited ddp"] = {"history": unlimited.history}
    last = rows[3]["history"][-1]
    print(f"  ZeRO-3 reaches accuracy {last['accuracy']:.3f} at {1e3 * last['time']:.1f} ms; "
          f"DDP with unlimited memory {unlimited.history[-1]['accuracy']:.3f} at "
          f"{1e3 * unlimited.history[-1]['time']:.1f} ms")
    return rows


def same_model(table: dict) -> float:
    """The largest difference between any stage's trained parameters and DDP's (printed)."""
    params = [r["params"] for r in table.values()]
    gap = max(float(np.abs(p - params[0]).max()) for p in params)
    print(f"same model at every stage and on both networks ({len(params)} runs): "
          f"max |w - w(DDP)| = {gap:.1e}")
    return gap


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the tables, write the figure; return the numbers."""
    slow = memory_and_bytes()
    both = time_per_step(slow)
    gap = same_model(both)
    limited = under_a_limit(quick)
    path = plots.save(figure(slow, both, limited), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    keep = ("breakdown", "peak", "formula", "bytes", "bytes_formula", "T", "T_formula",
            "exposed")
    return {"memory": {k: {n: r[n] for n in keep} for k, r in slow.items()},
            "time": {k: {n: r[n] for n in keep} for k, r in both.items()},
            "model_gap": gap,
            "limited": {k: {n: v for n, v in r.items() if n != "history"}
                        for k, r in limited.items()},
            "curves": {k: [(h["time"], h["accuracy"]) for h in r["history"]]
                       for k, r in limited.items() if k in (3, "unlimited ddp")}}


def figure(memory: dict, both: dict, limited: dict) -> Figure:
    """Left: memory per worker by stage, stacked by category, with the paper's formula
    and the limit of (c). Middle: time per iteration by stage on both networks. Right:
    accuracy against simulated time, DDP with unlimited memory and ZeRO-3 under the
    limit."""
    fig = Figure(figsize=(16, 5.6), layout="constrained")
    left, middle, right = fig.subplots(1, 3, width_ratios=[1.25, 1, 1])
    x = np.arange(len(STAGES))
    bottom = np.zeros(len(STAGES))
    for category in ("params", "grads", "optimizer", "activations", "unsharded", "buffers",
                     "shard"):
        values = np.array([memory[s]["breakdown"].get(category, 0) / 1e6 for s in STAGES])
        left.bar(x, values, 0.6, bottom=bottom, color=plots.MEMORY_COLORS[category],
                 label=category)
        bottom += values
    left.plot(x, [memory[s]["formula"] / 1e6 for s in STAGES], "_", color="black",
              markersize=40, markeredgewidth=2.5,
              label="the paper's params + grads + optimizer")
    left.axhline(LIMIT / 1e6, color="#e63946", ls="--", label=f"(c) limit, {LIMIT / 1e6:g} MB")
    for xi, s in zip(x, STAGES):
        left.text(xi, memory[s]["peak"] / 1e6 + 0.08, f"{memory[s]['peak'] / 1e6:.2f} MB",
                  ha="center", fontsize="small")
    left.set_xticks(x, [STAGE_NAMES[s] for s in STAGES])
    left.set_ylim(0, 1.55 * max(memory[s]["peak"] for s in STAGES) / 1e6)
    left.set(ylabel="memory of worker 0 at its peak (MB)",
             title=f"(a) What a worker holds\n{N} workers, Adam, float64, 1 Gbit/s")
    left.legend(fontsize="small", ncol=2, loc="upper right", markerscale=0.4)
    left.grid(axis="y", alpha=0.3)

    width = 0.38
    for offset, network in ((-width / 2, "fast"), (width / 2, "slow")):
        T = [1e3 * both[(network, s)]["T"] for s in STAGES]
        exposed = [1e3 * both[(network, s)]["exposed"] for s in STAGES]
        middle.bar(x + offset, [t - e for t, e in zip(T, exposed)], width,
                   color=plots.KIND_COLORS["compute"],
                   label="computing" if network == "fast" else None,
                   edgecolor="white", hatch="" if network == "fast" else "//")
        middle.bar(x + offset, exposed, width, bottom=[t - e for t, e in zip(T, exposed)],
                   color=plots.KIND_COLORS["send"],
                   label="exposed communication" if network == "fast" else None,
                   edgecolor="white", hatch="" if network == "fast" else "//")
        middle.plot(x + offset, [1e3 * both[(network, s)]["T_formula"] for s in STAGES],
                    "_", color="black", markersize=18, markeredgewidth=2,
                    label="time model" if network == "fast" else None)
        for xi, t in zip(x + offset, T):
            middle.text(xi, t + 0.3, f"{t:.1f}", ha="center", fontsize="x-small")
    middle.set_xticks(x, [f"{STAGE_NAMES[s]}\nfast | slow" for s in STAGES])
    middle.set_ylim(0, 1.25e3 * max(r["T"] for r in both.values()))
    middle.set(ylabel="simulated time per iteration (ms)",
               title="(b) Time per step\n10 Gbit/s (plain) and 1 Gbit/s (hatched)")
    middle.legend(fontsize="small", loc="upper left")
    middle.grid(axis="y", alpha=0.3)

    for key, label, color in (("unlimited ddp", "DDP (needs more memory than 2 MB)",
                               STAGE_COLORS[0]),
                              (3, f"ZeRO-3 under the {LIMIT / 1e6:g} MB limit", STAGE_COLORS[3])):
        history = limited[key]["history"]
        right.plot([1e3 * h["time"] for h in history], [h["accuracy"] for h in history],
                   "o-", color=color, markersize=3, label=label)
    ended = [s for s in STAGES if limited[s]["stop_reason"].startswith("out of memory")]
    right.set(xlabel="simulated time (ms)", ylabel="test accuracy",
              title=f"(c) {LIMIT / 1e6:g} MB per worker, 1 Gbit/s\n"
                    + ", ".join(STAGE_NAMES[s] for s in ended) + " run out of memory at once")
    right.legend(fontsize="small", loc="lower right")
    right.grid(alpha=0.3)
    fig.suptitle(f"Lesson 11: ZeRO on {N} workers -- sharding trades bytes on the network "
                 f"for bytes in memory", fontsize=13)
    return fig


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/11_zero_memory.py`
# does; `main()` runs them all at once (the tests and `simdml lesson 11` call it). With
# `SIMDML_QUICK=1` in the environment the training of (c) is short (6 iterations instead
# of 30): the memory, the bytes and the times per iteration are the same, the accuracies
# are not.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    slow = memory_and_bytes()
    both = time_per_step(slow)
    gap = same_model(both)
    limited = under_a_limit(QUICK)


# %% [markdown]
# ## What the figure shows
#
# (a), left: what worker 0 holds at its peak on the slow network (the one of (c)),
# stacked by category, the paper's formula as a black bar. DDP holds 1.0 MB of
# parameters, 1.0 MB of gradient and 2.0 MB of Adam's moments: 4.006 MB, exactly
# 32 Psi. Each stage removes one of them down to its eighth: 2.25 MB (16 Psi + 16 Psi / 8)
# at stage 1, 1.38 MB at stage 2, 0.50 MB at stage 3 (32 Psi / 8). The simulated sums
# equal the formulas at stage 0 and exceed them by 12, 18 and 24 bytes at stages 1, 2
# and 3 (too little for the table's 0.1 kB): 8 does not divide every bucket, and worker
# 0's shard has 15 650 parameters where Psi / 8 is 15 649.25. What ZeRO does not shard
# stays: the activations of the mini-batch (0.62 MB at every stage; the paper's ZeRO-R
# is another story) and the shard of data with the message buffers (0.10 MB).
#
# Stages 2 and 3 pay with a working set of **unsharded** buckets. At stage 2 it is the
# whole gradient of every bucket whose reduce-scatter has not ended: on this slow
# network the buckets come out of backward faster than the stream reduces them, and six
# of the nine wait at once (0.73 MB), so stage 2's peak (2.83 MB) is barely below stage
# 1's (2.98 MB). At stage 3 it is four buckets of 132 kB (0.53 MB): the parameters of
# the bucket computing and of the next one, fetched ahead, and two gradients waiting for
# their reduce-scatter. Even so, stage 3 peaks at 1.76 MB, and its sharded states are
# less than a third of that.
#
# The bytes a worker sends per step (what one more step adds to all the bytes sent,
# over 8) are the formula's: 1752.7 kB (2 x 7/8 x 8 Psi) at stages 0, 1 and 2 -- a
# reduce-scatter and an all-gather are an all-reduce -- and 2629.1 kB (3 x 7/8 x 8 Psi)
# at stage 3.
#
# (b), middle: the time per step, simulated (bars) and the time model (black bars,
# equal to the printed digits; not closer, since the model takes chunks of b_k / 8
# bytes and 8 does not divide every bucket). On the fast network (plain bars) DDP takes 5.36 ms, of
# which 0.45 ms of communication is exposed: the backward pass hides the rest. Stages 1
# and 2 take 6.26 ms: their all-gather of the new model can only start after the step,
# and nothing hides it (1.50 ms exposed). Stage 3 takes 5.29 ms, as fast as DDP: it
# fetches each bucket while the bucket before it computes, which hides most of its
# all-gathers (0.53 ms exposed), and its step is an eighth of DDP's. On the slow network
# (hatched) communication dominates: DDP and stages 1, 2 take 17.2 ms, stage 3 23.0 ms,
# 33 % more -- its third pass over the parameters is 876 kB more per step (7/8 x 8 Psi),
# and 4.8 ms of computing cannot hide it.
#
# (c), right: every worker has 2 MB (the dashed line in (a)). DDP stops before its first
# step: its parameters and Adam's state (3.0 MB) with its shard of data need 3.09 MB.
# ZeRO-1 (2.96 MB) and ZeRO-2 (2.09 MB) run out as their first backward pass begins. ZeRO-3 trains: after 30 iterations its test accuracy is
# 0.930 at 690.5 ms of simulated time; DDP on workers with unlimited memory reaches the
# same accuracy, with the same model, at 517.4 ms. Every stage trains the same model,
# bit for bit (the printed check: 0.0); sharding changes where the bytes live and how
# long a step takes, never the mathematics.


# %%
if __name__ == "__main__":
    fig = figure(slow, both, limited)
    print(f"wrote {plots.save(fig, FIGURES / FIGURE)}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Compute the memory of stage 2 on paper for 4 workers and momentum instead of Adam
#    (one state array): exercise 8.1, `lessons/exercises/ex08_zero_memory.py`
#    (`python -m simdml.check ex08`).
# 2. With 64 workers instead of 8, which of the four stages' memory still shrinks, and
#    what is left that ZeRO does not shard? Read it off the table before you run it.
# 3. `strategy.overlap = false` makes every reduce-scatter wait for the end of backward.
#    Run stage 2 that way: what happens to its gradient memory (the `unsharded` bar), and
#    why does stage 2 save gradient memory only with overlap?
# 4. On the slow network ZeRO-3 is slower than DDP. From the time model, which term grows,
#    and how much faster would the network have to be for stage 3 to cost nothing?
