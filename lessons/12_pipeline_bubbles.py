# %% [markdown]
# # Lesson 12 — GPipe vs 1F1B: where does a pipeline idle, and what does it hold?
#
# ## Question
#
# A model can be cut into **stages**, blocks of consecutive layers, one per worker:
# activations flow forward from stage to stage, gradients flow back. With a whole batch
# at a time only one stage would work at a time; a pipeline cuts the batch into m
# **micro-batches**, so that the stages work on different ones at once. But every
# iteration it has to fill and drain: how much of its time does a stage idle (the
# **bubble**), and how does that shrink with m? Is the 1F1B schedule faster than GPipe's?
# What does each have to keep in memory for its backward passes, and what does
# recomputing the activations instead cost?
#
# ## Setup
#
# An MLP with seven hidden layers, six of 64 units and a last one of 111, on the digits
# (1360 training rows: `data.test_size = 0.244`), cut into p = 4 stages of two layers
# each (`strategy.partition = "uniform"`), stage s on worker s, 1 Gflop/s each. Why 111:
# the output layer has only 10 units, so with 64 the last stage would do 42 % less work
# than the middle ones; with 111 it does as much (0.2 % more). `strategy.kind =
# "pipeline"`, full-batch gradient descent: every iteration cuts the same 1360 rows into
# m = 1, 2, 4, 8 or 16 micro-batches of 1360 / m rows (`strategy.microbatches`), under
# `strategy.schedule = "gpipe"` or `"1f1b"`. Communication is free (`network.latency =
# 0`, `network.bandwidth = inf`) and compute deterministic (`cluster.jitter = 0`), so
# that the time model below has nothing else to account for.
#
# The schedules (`simdml.strategies.pipeline_parallel`): **GPipe** (Huang et al. 2019)
# runs a stage's m forwards F_0 .. F_(m-1), then its m backwards; **1F1B**
# (PipeDream-Flush, Narayanan et al. 2021) starts the backwards as early as it can: stage
# s runs p - s forwards, then one backward and one forward in turn, then its last
# backwards. Both **flush**: a stage steps its block after its last backward, and the
# next iteration starts from the new model. With p equal stages, each taking t_f for a
# micro-batch's forward and t_b for its backward, both take
#
#     T = (m + p - 1)(t_f + t_b)   before the step,  bubble = (p - 1) / (m + p - 1)
#
# (each stage works m (t_f + t_b) and idles (p - 1)(t_f + t_b) while the pipeline fills
# and drains; the bubble is the share of p x T the stages idle).
# `schedule_time(schedule, m, forward, backward, step)` runs the exact recurrence for any
# stage times (each operation starts when its stage is free and its input is there);
# the simulator follows it to 1e-12 (`tests/test_pipeline.py`). Memory: a stage keeps
# what its layers need for a micro-batch's backward from its forward to its backward;
# with `strategy.recompute = true` (Chen et al. 2016) it keeps only the micro-batch's
# input and runs the forward again at the start of the backward.


# %%
"""Lesson 12 — GPipe vs 1F1B: where does a pipeline idle, and what does it hold?"""
import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

import simdml
from simdml import OptimizerConfig, Scenario, plots
from simdml.models import MLPClassifier
from simdml.strategies.pipeline_parallel import (bubble_fraction, partition_layers, plan,
                                                 schedule_time)
from simdml.trace import Trace

P = 4                                   # stages (cluster.workers)
HIDDEN = [64] * 6 + [111]               # 8 layers, 2 a stage; 111: see the Setup
ROWS = 1360                             # training rows: every m below divides them
MICROBATCHES = (1, 2, 4, 8, 16)         # m
TIMELINE_M = 8                          # the micro-batches of the timelines (a)
TIMELINE_ITERATIONS = 2                 # iterations shown in each timeline
SCHEDULES = ("gpipe", "1f1b")
BASE = {
    "model.kind": "mlp", "model.hidden": HIDDEN, "data.dataset": "digits",
    "data.test_size": 0.244,            # 1360 training rows (= 16 x 85)
    "cluster.workers": P, "cluster.speed": 1e9, "cluster.jitter": 0.0,
    "network.latency": 0.0, "network.bandwidth": math.inf,   # free communication
    "strategy.kind": "pipeline", "strategy.lr": 0.1,
}
QUICK = os.environ.get("SIMDML_QUICK") == "1"   # short runs: the tests, a first look
FIGURES = (Path(__file__).resolve().parents[1] / "figures" if "__file__" in globals()
           else Path("figures"))    # a notebook has no __file__: figures/ beside it
FIGURE = "12_pipeline_bubbles.png"
SCHEDULE_COLORS = {"gpipe": "#457b9d", "1f1b": "#e76f51"}
SCHEDULE_NAMES = {"gpipe": "GPipe", "1f1b": "1F1B"}
BACKWARD_COLOR = "#1b5e57"              # a darker compute colour: the backward passes


# %%
def scenario(schedule: str, m: int, recompute: bool = False, rounds: int = 2) -> Scenario:
    """The lesson's pipeline with one schedule, m micro-batches, with or without
    recomputation; full-batch gradient descent, evaluated once at the end."""
    return Scenario(name=f"{schedule} m={m}").replace(**{
        **BASE, "strategy.schedule": schedule, "strategy.microbatches": m,
        "strategy.recompute": recompute, "stop.rounds": rounds, "eval_every": rounds})


def stage_times(m: int, recompute: bool = False) -> tuple[list, list, list]:
    """Each stage's forward and backward time for one micro-batch of ROWS / m rows, and
    its optimizer step (s), from the layer flops: the inputs of the recurrence."""
    model = MLPClassifier(hidden=HIDDEN)
    model.init_params(64, 10)                          # digits: 64 pixels, 10 classes
    speed, flops = BASE["cluster.speed"], model.layer_flops(ROWS // m)
    stages = partition_layers([f + b for f, b in flops], P)     # uniform: 2 layers each
    forward = [sum(flops[l][0] for l in r) / speed for r in stages]
    # recomputation runs the stage's forward again at the start of each backward
    backward = [sum(flops[l][1] + recompute * flops[l][0] for l in r) / speed for r in stages]
    size = [model.layer_slices(r[-1])[1].stop - model.layer_slices(r[0])[0].start
            for r in stages]
    opt = OptimizerConfig().build(lr=BASE["strategy.lr"], horizon=1)
    return forward, backward, [opt.flops(n) / speed for n in size]


def one_microbatch(m: int) -> int:
    """Bytes stage 0 keeps for one micro-batch's backward (its layers' caches less its
    input, a view of the data): what its ``activations`` count in."""
    model = MLPClassifier(hidden=HIDDEN)
    model.init_params(64, 10)
    rows = ROWS // m
    return sum(model.activation_bytes(rows)[:2]) - 8 * rows * 64


def measure(schedule: str, m: int, recompute: bool, rounds: int) -> dict:
    """One run: time per iteration and bubble, simulated and by the recurrence, beside the
    formula; stage 0's peak activations; the trained parameters."""
    result = simdml.run(scenario(schedule, m, recompute, rounds))
    forward, backward, step = stage_times(m, recompute)
    ends = schedule_time(schedule, m, forward, backward, step, iterations=rounds)
    busy = rounds * sum(m * (f + b) + s for f, b, s in zip(forward, backward, step))
    most = result.memory["worker0"]["most"]["activations"]
    equal = schedule_time(schedule, m, [forward[1]] * P, [backward[1]] * P, [step[1]] * P,
                          iterations=rounds)
    return {"schedule": schedule, "m": m, "recompute": recompute,
            "T": result.history[-1]["time"] / rounds, "T_recurrence": ends[-1] / rounds,
            "bubble": result.summary["bubble_fraction"],
            "bubble_recurrence": 1 - busy / (P * ends[-1]),
            "bubble_formula": bubble_fraction(P, m),
            "bubble_equal": 1 - rounds * P * (m * (forward[1] + backward[1]) + step[1]) / (
                P * equal[-1]),
            "T_equal": equal[-1] / rounds,
            "stage1": result.memory["worker1"]["most"]["activations"],
            "activations": most, "held": most / one_microbatch(m),
            "params": result.model.params_}


def bubbles(quick: bool = False) -> dict:
    """(b) Both schedules at every m: the bubble by the formula, by the recurrence with
    equal stages and with the real ones, and simulated; the time per iteration (printed)."""
    rounds = 2 if quick else 4
    rows = {(s, m): measure(s, m, False, rounds) for s in SCHEDULES for m in MICROBATCHES}
    print(f"(b) bubble fraction, p = {P} stages, {rounds} iterations a run")
    print(f"{'':>25} | {'GPipe':^27} | {'1F1B':^27}")
    print(f"{'m':>3} {'formula':>8} {'equal stages':>12} | {'recurrence':>10} {'simulated':>9} "
          f"{'T (ms)':>6} | {'recurrence':>10} {'simulated':>9} {'T (ms)':>6}")
    for m in MICROBATCHES:
        g, o = rows[("gpipe", m)], rows[("1f1b", m)]
        print(f"{m:>3} {g['bubble_formula']:>8.4f} {g['bubble_equal']:>12.4f} | "
              f"{g['bubble_recurrence']:>10.4f} {g['bubble']:>9.4f} {1e3 * g['T']:>6.2f} | "
              f"{o['bubble_recurrence']:>10.4f} {o['bubble']:>9.4f} {1e3 * o['T']:>6.2f}")
    return rows


def memory(plain: dict, quick: bool = False) -> dict:
    """(c, d) Stage 0's peak activations at every m, both schedules, without and with
    recomputation, and what recomputation costs in time (printed)."""
    rounds = 2 if quick else 4
    rows = {(s, m, False): r for (s, m), r in plain.items()}
    rows.update({(s, m, True): measure(s, m, True, rounds)
                 for s in SCHEDULES for m in MICROBATCHES})
    print(f"(c) stage 0's peak activations, kB (in micro-batches of {ROWS} / m rows); "
          f"(d) time per iteration, ms")
    print(f"{'m':>3} | {'GPipe':<11} {'1F1B':<11} {'GPipe+rc':<11} {'1F1B+rc':<11} | "
          f"{'GPipe':>7} {'1F1B':>7} {'GPipe+rc':>8} {'1F1B+rc':>8} {'cost':>5}")
    for m in MICROBATCHES:
        r = [rows[(s, m, rc)] for rc in (False, True) for s in SCHEDULES]
        held = " ".join(f"{x['activations'] / 1e3:>6.1f} ({x['held']:g})".ljust(11) for x in r)
        times = " ".join(f"{1e3 * x['T']:>{w}.2f}" for x, w in zip(r, (7, 7, 8, 8)))
        print(f"{m:>3} | {held} | {times} {100 * (r[2]['T'] / r[0]['T'] - 1):>+4.0f}%")
    g, rc = rows[("gpipe", TIMELINE_M, False)], rows[("gpipe", TIMELINE_M, True)]
    print(f"stage 1 (its inputs come over the network), GPipe at m = {TIMELINE_M}: "
          f"{g['stage1'] / 1e3:.1f} kB, with recompute {rc['stage1'] / 1e3:.1f} kB")
    return rows


def same_model(table: dict) -> float:
    """The largest difference between any run's trained parameters and the first's
    (printed): the schedule, m and recomputation change the clock, not the model."""
    params = [r["params"] for r in table.values()]
    gap = max(float(np.abs(p - params[0]).max()) for p in params)
    print(f"same model in all {len(params)} runs: max |w - w(first run)| = {gap:.1e}")
    return gap


def stages(m: int = TIMELINE_M) -> dict:
    """Each stage's times for one micro-batch at ``m`` (printed, ms): the recurrence's
    inputs, and what the formula's equal stages leave out."""
    forward, backward, step = stage_times(m)
    print(f"the {P} stages at m = {m} ({ROWS // m} rows a micro-batch), in ms")
    for name, values in (("t_f", forward), ("t_b", backward), ("t_f + t_b",
                         [f + b for f, b in zip(forward, backward)]), ("step", step)):
        print(f"  {name:>9} " + " ".join(f"{1e3 * v:>7.3f}" for v in values))
    return {"forward": forward, "backward": backward, "step": step}


def timeline_runs() -> dict:
    """(a) Both schedules at TIMELINE_M micro-batches, for their timelines; how long each
    stage computed in them (printed)."""
    runs = {s: simdml.run(scenario(s, TIMELINE_M, rounds=TIMELINE_ITERATIONS))
            for s in SCHEDULES}
    print(f"(a) m = {TIMELINE_M}, {TIMELINE_ITERATIONS} iterations: ms computing per stage")
    for s, r in runs.items():
        busy = _idle(r)
        print(f"  {SCHEDULE_NAMES[s]:<5} " + " ".join(
            f"{1e3 * b:>7.1f}" for b in busy["busy"].values()) + f" of {1e3 * busy['end']:.1f}")
    return runs


def main(quick: bool = False, out_dir: Path = FIGURES) -> dict:
    """The whole lesson: run, print the tables, write the figure; return the numbers."""
    times = stages()
    plain = bubbles(quick)
    table = memory(plain, quick)
    gap = same_model(table)
    runs = timeline_runs()
    path = plots.save(figure(table, runs), Path(out_dir) / FIGURE)
    print(f"wrote {path}")
    return {"runs": {k: {n: v for n, v in r.items() if n != "params"}
                     for k, r in table.items()},
            "model_gap": gap, "stages": times,
            "timeline": {s: _idle(r) for s, r in runs.items()}}


def _idle(result) -> dict:
    """Per stage, the seconds it computed in the timeline run, and the run's end."""
    busy = {n: sum(sp.end - sp.start for sp in result.trace.spans
                   if sp.node == n and sp.kind == "compute") for n in _workers(result)}
    return {"busy": busy, "end": result.history[-1]["time"]}


def _workers(result) -> list[str]:
    return [n for n in result.trace.nodes if n != "server"]


def _ops(result, schedule: str) -> list[tuple[str, int, int, float, float]]:
    """(kind, stage, micro-batch, start, end) of every forward and backward in a
    timeline run (no recomputation): each stage's compute spans, in order, are its
    plan's operations, two layers each, then its step."""
    ops = []
    for s, node in enumerate(_workers(result)):
        spans = [sp for sp in result.trace.spans if sp.node == node and sp.kind == "compute"]
        per_iteration = plan(schedule, s, P, TIMELINE_M)
        k = 0
        for _ in range(TIMELINE_ITERATIONS):
            for op in per_iteration:
                ops.append((op.kind, s, op.j, spans[k].start, spans[k + 1].end))
                k += 2
            k += 1                                     # the step
    return ops


def _timeline(ax, result, schedule: str, until: float) -> None:
    """The run's timeline (the stages only), its backward passes darker, each operation
    labelled with its micro-batch."""
    workers = _workers(result)
    trace = Trace(workers, [sp for sp in result.trace.spans if sp.node in workers],
                  end=result.trace.end)
    plots.timeline(trace, ax=ax, until=until)
    for kind, s, j, start, end in _ops(result, schedule):
        if kind == "B":
            ax.broken_barh([(start, end - start)], (s - 0.2, 0.4), facecolors=BACKWARD_COLOR)
        ax.text((start + end) / 2, s, str(j), ha="center", va="center", color="white",
                fontsize=7)
    ax.set_yticks(range(P), [f"stage {s}\n({n})" for s, n in enumerate(workers)])
    ax.set_title("")
    ax.legend(handles=[Patch(color=plots.KIND_COLORS["compute"], label="forward F_j"),
                       Patch(color=BACKWARD_COLOR, label="backward B_j"),
                       Patch(color=plots.KIND_COLORS["wait"], label="idle: the bubble")],
              loc="lower right", bbox_to_anchor=(1, 1), fontsize="small", ncol=3,
              frameon=False)


def _against_m(ax, table: dict, key: str, scale: float) -> None:
    """``key`` (times ``scale``) against m, both schedules, without and with
    recomputation: GPipe a wide pale line, 1F1B a thin one over it (they may coincide)."""
    ms = np.array(MICROBATCHES)
    for s in SCHEDULES:
        color, wide = SCHEDULE_COLORS[s], s == "gpipe"
        for rc in (False, True):
            ax.plot(ms, [scale * table[(s, m, rc)][key] for m in MICROBATCHES],
                    "o" + ("--" if rc else "-"), color=color, lw=6 if wide else 1.5,
                    alpha=0.45 if wide else 1, markersize=11 if wide else 5,
                    mfc="white" if rc and not wide else color,
                    label=SCHEDULE_NAMES[s] + (" + recompute" if rc else ""))


def figure(table: dict, runs: dict) -> Figure:
    """Top: the timelines of GPipe and 1F1B at TIMELINE_M micro-batches. Bottom, against
    m: (b) the bubble fraction, formula, recurrence and simulated; (c) stage 0's peak
    activations; (d) the time per iteration, without and with recomputation."""
    fig = Figure(figsize=(15, 11.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.25, 1])
    until = max(r.history[-1]["time"] for r in runs.values())
    axes = top.subplots(2, 1, sharex=True)
    for ax, s in zip(axes, SCHEDULES):
        _timeline(ax, runs[s], s, until)
        T = runs[s].history[-1]["time"] / TIMELINE_ITERATIONS
        ax.set_title(f"(a) {SCHEDULE_NAMES[s]}, m = {TIMELINE_M}: {TIMELINE_ITERATIONS} "
                     f"iterations of {1e3 * T:.1f} ms (micro-batch j in each box)",
                     color=SCHEDULE_COLORS[s], loc="left", fontweight="bold")
    axes[0].set_xlabel("")
    b, c, d = bottom.subplots(1, 3)
    ms = np.array(MICROBATCHES)
    fine = np.geomspace(1, ms[-1], 100)
    b.plot(fine, [bubble_fraction(P, m) for m in fine], "-", color="black", lw=1,
           label="formula (p - 1) / (m + p - 1)")
    for s in SCHEDULES:
        wide = s == "gpipe"
        b.plot(ms, [table[(s, m, False)]["bubble_recurrence"] for m in MICROBATCHES], "-",
               color=SCHEDULE_COLORS[s], lw=6 if wide else 1.5, alpha=0.45 if wide else 1,
               label=f"{SCHEDULE_NAMES[s]}: recurrence")
        b.plot(ms, [table[(s, m, False)]["bubble"] for m in MICROBATCHES], "o",
               color=SCHEDULE_COLORS[s], markersize=11 if wide else 5,
               alpha=0.45 if wide else 1, label=f"{SCHEDULE_NAMES[s]}: simulated")
    forward, backward, _ = stage_times(TIMELINE_M)
    lighter = 1 - (forward[0] + backward[0]) / (forward[1] + backward[1])
    b.annotate(f"the gap: stage 0 works {100 * lighter:.0f} % less\n(its first layer sends "
               f"no gradient back)", xy=(16, 0.17), xytext=(2.2, 0.2), fontsize="small",
               arrowprops={"arrowstyle": "->", "color": "gray"})
    b.set(ylabel="bubble fraction (idle share of p x T)",
          title=f"(b) The bubble shrinks as m grows (p = {P})")
    _against_m(c, table, "activations", 1e-3)
    c.set(ylabel="stage 0's peak activations (kB)", ylim=(0, 1000),
          title="(c) What stage 0 holds for its backward passes")
    c.text(1.1, 920, f"GPipe: m micro-batches of {ROWS}/m rows (the batch);\n1F1B: min(m, p);"
           " recompute: 1", fontsize="small", va="bottom")
    _against_m(d, table, "T", 1e3)
    d.set(ylabel="simulated time per iteration (ms)", ylim=(0, None),
          title="(d) What recomputation costs")
    for ax in (b, c, d):
        ax.set_xscale("log")
        ax.set_xticks(ms, [str(m) for m in ms])
        ax.minorticks_off()
        ax.set_xlabel("micro-batches m (of one batch of 1360 rows)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="lower left" if ax is c else "upper right")
    fig.suptitle(f"Lesson 12: a pipeline of {P} stages -- GPipe and 1F1B idle alike, "
                 f"1F1B holds less", fontsize=13)
    return fig


# %% [markdown]
# ## Run it
#
# The cells below run the steps one at a time, as `python lessons/12_pipeline_bubbles.py`
# does; `main()` runs them all at once (the tests and `simdml lesson 12` call it). With
# `SIMDML_QUICK=1` in the environment every run has 2 iterations instead of 4: a flush
# starts every iteration from an idle pipeline, so each iteration takes the same time,
# and every number the text quotes is the same.


# %%
if __name__ == "__main__":  # a notebook, or `python` on this file; an import runs nothing
    times = stages()
    plain = bubbles(QUICK)
    table = memory(plain, QUICK)
    gap = same_model(table)
    runs = timeline_runs()


# %% [markdown]
# ## What the figure shows
#
# The stages are nearly equal (the first printed table, at m = 8): every forward takes
# 2.872 ms (stage 3: 2.880) and every backward 5.652 ms (stage 3: 5.662), but stage 0's
# backward takes 4.260 ms. Its first layer has no input gradient to compute (the data
# needs none), so stage 0 works 7.132 ms per micro-batch where stages 1 and 2 work
# 8.525 ms, 16 % less. The step is 0.017 ms.
#
# (a), top: two iterations at m = 8 (the number in each box is the micro-batch j;
# backward passes darker). Under GPipe each stage runs its 8 forwards back to back,
# then its 8 backwards, the last micro-batch first: stage s starts s forwards late, ends
# s backwards early, and between its forwards and its backwards waits p - 1 - s of each
# for the gradients to come back. Every stage idles (p - 1)(t_f + t_b): stage 3 at both
# ends, stage 0 in the middle. Stage 0 also waits between its backwards: each is
# shorter than stage 1's, so it is ready before the next gradient is. Under 1F1B stage
# s runs p - s forwards (4, 3, 2, 1) before its first backward, then alternates. The
# grey moves, but there is as much of it: both take 92.5 ms an iteration, and in the two
# iterations each stage computes the same under both, 114.1 ms on stage 0, 136.4 ms on
# stages 1 and 2, 136.7 ms on stage 3, of 185.1 ms. The second iteration starts when
# stage 0 has run its last backward and stepped (the flush): every iteration fills and
# drains again.
#
# (b), bottom left, and the second table: the bubble fraction against m, simulated
# (dots: `summary["bubble_fraction"]`, 1 - (what the stages computed, steps
# included) / (p T)) and by the recurrence with each stage's own times (bands, the same
# to the last digit), beside the formula (black). GPipe and 1F1B are equal at every m.
# The bubble falls from 0.75 at m = 1 (one micro-batch goes down and back, one stage at
# a time) to 0.19 at m = 16, and the time per iteration from 261.3 to 80.6 ms. The
# table's "equal stages" column is the recurrence with every stage given stage 1's
# times: it is within 0.0001 of the formula (the step is all that differs). The real
# stages idle more than the formula says, by 0.0034 at m = 2, 0.0105 at m = 4, 0.0199
# at m = 8 and 0.0283 at m = 16: that is stage 0's 16 % of lighter work, idle once per
# micro-batch, so the gap grows with m. At m = 1 there is none (0.7500): each stage
# works once, one after another, whatever the stage times.
#
# (c), bottom middle, and the third table: what stage 0 holds at its peak for its
# backward passes (640 bytes a row: its two layers' relu masks and layer 1's input;
# layer 0's input is the data itself, not a copy). GPipe runs all m forwards first, so
# it holds m micro-batches (the number in brackets): the whole batch, 870.4 kB at every
# m. 1F1B holds at most p = 4: the same up to m = 4, then 435.2 kB at m = 8 and 217.6 kB
# at m = 16, p / m of the batch. With recomputation stage 0 keeps only its inputs,
# which are the data, so it holds one micro-batch, the one in its backward: 108.8 kB at
# m = 8, under both schedules. On stage 1, whose input arrives over the network,
# recomputation still keeps every micro-batch's input: under GPipe at m = 8, 805.1 kB
# (8 inputs of 87.0 kB and one micro-batch's 108.8 kB) instead of 1566.7 kB.
#
# (d), bottom right: what recomputation costs. Each backward runs its stage's forward
# again, so an iteration takes 124.19 ms instead of 92.53 ms at m = 8, 34 % more (35 % at
# m = 1): t_f is about a third of t_f + t_b (2.872 of 8.525 ms on stage 1). GPipe and
# 1F1B take the same time, with or without it.
#
# The schedule, the micro-batches and the recomputation change the clock and the memory,
# never the mathematics: all 20 runs train the same model, to rounding (the printed
# check: within 1e-15).


# %%
if __name__ == "__main__":
    fig = figure(table, runs)
    print(f"wrote {plots.save(fig, FIGURES / FIGURE)}")
    plots.show_inline(fig)


# %% [markdown]
# ## Exercises
#
# 1. Write the time of an iteration of p equal stages on paper: exercise 9.1,
#    `lessons/exercises/ex09_pipeline_bubble.py` (`python -m simdml.check ex09`).
# 2. Keep the micro-batch at 85 rows and let the batch grow with m instead
#    (`strategy.batch_size = 85 * m`). Which curves of (c) change? Which schedule's
#    memory now grows with m, and what does a smaller bubble cost it?
# 3. With `model.hidden = [64] * 7` the last stage does 42 % less work. Show that
#    GPipe's time is then sum_s (t_f,s + t_b,s) + (m - 1)(max_s t_f,s + max_s t_b,s) +
#    the step, with `stage_times` and `schedule_time`. Is 1F1B now faster than GPipe?
#    Why can a schedule that reorders the work change the time only when the stages
#    differ?
# 4. On a real network (`network.latency = 1e-4`, `network.bandwidth = 1.25e8`) every
#    micro-batch pays a latency at every hop, twice. Is m = 16 still the best?
# 5. Megatron's interleaved 1F1B gives each worker v chunks of layers instead of one:
#    its bubble is `bubble_fraction(p, m, v)` = (p - 1) / (v m + p - 1). What would
#    v = 2 buy at m = 8, and what does it cost on the network? (simdml does not run it.)
