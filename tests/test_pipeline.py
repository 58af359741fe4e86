"""Pipeline parallelism (``strategy.kind = "pipeline"``): it trains the model of single-node
training on the same batches (gradient accumulation over micro-batches, 1e-12) for both
schedules, with or without recomputation, for every partition; its plans are GPipe's and
1F1B's; with deterministic compute and free communication every iteration ends exactly
when the recurrence of ``schedule_time`` says, which for equal stages is
``(m + p - 1)(t_f + t_b)``; the first stage's activations peak at m micro-batches under
GPipe and p under 1F1B. Interleaved 1F1B (``virtual_stages = v``) runs Megatron-LM's order,
trains the same model, ends each iteration when the recurrence over the virtual stages
says, and divides the bubble's time by v: ``(p - 1)/(v m + p - 1)`` with equal chunks.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simdml import OptimizerConfig, Scenario, ScenarioError, run
from simdml.models import MLPClassifier
from simdml.strategies.pipeline_parallel import (bubble_fraction, partition_layers, plan,
                                                 schedule_time)

# 320 training rows (m = 4, 8, 16 divide them), 8 features, layers 8->12->10->9->6->4
BASE = {"model.kind": "mlp", "model.hidden": [12, 10, 9, 6], "data.dataset": "synthetic",
        "data.n_samples": 400, "data.test_size": 0.2, "data.n_features": 8, "data.n_classes": 4,
        "cluster.workers": 4, "strategy.kind": "pipeline", "strategy.lr": 0.3,
        "strategy.microbatches": 8, "stop.rounds": 4, "eval_every": 1}
FREE = {"network.latency": 0.0, "network.bandwidth": math.inf, "cluster.jitter": 0.0,
        "cluster.speed": 1e8}


PIPELINE_KEYS = ("strategy.microbatches", "strategy.schedule", "strategy.partition",
                 "strategy.recompute")


def _reference(config: dict):
    """The same training on one node: sync with one worker (the whole set, its batches
    drawn from the same stream)."""
    single = {k: v for k, v in config.items() if k not in PIPELINE_KEYS}
    return run(Scenario().replace(**{**single, "strategy.kind": "sync", "cluster.workers": 1}))


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("changes", [
    {},
    {"strategy.recompute": True},
    {"strategy.partition": "balanced", "strategy.microbatches": 3},
    {"strategy.partition": [1, 1, 2, 1], "optimizer.kind": "adam", "strategy.lr": 0.01},
    {"strategy.batch_size": 50, "strategy.microbatches": 5},
    {"model.class_weight": "balanced", "model.activation": "tanh",
     "data.dataset": "breast_cancer_rare", "strategy.microbatches": 7},
    {"model.kind": "mlp_regression", "data.dataset": "synthetic_regression",
     "strategy.lr": 0.05},
    {"cluster.workers": 1, "strategy.microbatches": 1},
], ids=["plain", "recompute", "balanced-3", "list-adam", "mini-batch", "class-weight",
        "regression", "one-stage"])
def test_the_pipeline_trains_single_node_training_s_model(schedule, changes):
    """The stages' accumulated micro-batch gradients are the batch's: the model and the
    losses of one node trained on the same batches (1e-12)."""
    config = {**BASE, "strategy.schedule": schedule, **changes}
    piped, single = run(Scenario().replace(**config)), _reference(config)
    np.testing.assert_allclose(piped.model.params_, single.model.params_, rtol=0, atol=1e-12)
    np.testing.assert_allclose([h["loss"] for h in piped.history],
                               [h["loss"] for h in single.history], rtol=1e-12)
    assert [h["epoch"] for h in piped.history] == pytest.approx(
        [h["epoch"] for h in single.history], rel=1e-12)
    assert piped.summary["updates"] == 4


# -- the plans ------------------------------------------------------------------------

@given(p=st.integers(1, 8), m=st.integers(1, 20), schedule=st.sampled_from(["gpipe", "1f1b"]))
@settings(max_examples=80, deadline=None)
def test_every_plan_runs_each_micro_batch_forward_then_backward_once(p, m, schedule):
    """Each stage runs F_j and B_j once per micro-batch, F_j first; 1F1B holds at most
    min(p - s, m) micro-batches at once on stage s, GPipe m."""
    for s in range(p):
        ops = plan(schedule, s, p, m)
        assert sorted(ops) == sorted([("F", j, 0) for j in range(m)]
                                     + [("B", j, 0) for j in range(m)])
        assert all(ops.index(("F", j, 0)) < ops.index(("B", j, 0)) for j in range(m))
        live = most = 0
        for kind, *_ in ops:
            live += 1 if kind == "F" else -1
            most = max(most, live)
        assert most == (m if schedule == "gpipe" else min(p - s, m))


def test_1f1b_is_warm_up_then_one_forward_one_backward():
    assert [f"{o.kind}{o.j}" for o in plan("1f1b", 1, 4, 5)] == [
        "F0", "F1", "F2", "B0", "F3", "B1", "F4", "B2", "B3", "B4"]
    assert [f"{o.kind}{o.j}" for o in plan("gpipe", 1, 4, 3)] == ["F0", "F1", "F2", "B2", "B1", "B0"]


@given(p=st.integers(1, 7), m=st.integers(1, 16), schedule=st.sampled_from(["gpipe", "1f1b"]),
       tf=st.floats(0.1, 10), tb=st.floats(0.1, 10))
@settings(max_examples=100, deadline=None)
def test_equal_stages_take_m_plus_p_minus_1_slots_and_the_bubble_formula(p, m, schedule, tf, tb):
    """(m + p - 1)(t_f + t_b) for both schedules (Huang et al.; Narayanan et al.), so the
    idle share of a stage is (p - 1)/(m + p - 1)."""
    [T] = schedule_time(schedule, m, [tf] * p, [tb] * p)
    assert T == pytest.approx((m + p - 1) * (tf + tb), rel=1e-12)
    assert 1 - m * (tf + tb) / T == pytest.approx(bubble_fraction(p, m), rel=1e-9, abs=1e-12)


def test_a_balanced_partition_minimizes_the_most_expensive_stage():
    costs = [4, 1, 1, 1, 1, 4]
    assert partition_layers(costs, 3, "uniform") == [range(0, 2), range(2, 4), range(4, 6)]
    balanced = partition_layers(costs, 3, "balanced")
    assert balanced == [range(0, 1), range(1, 5), range(5, 6)]
    assert max(sum(costs[l] for l in r) for r in balanced) == 4
    assert partition_layers(costs, 2, [5, 1]) == [range(0, 5), range(5, 6)]


# -- the time model ---------------------------------------------------------------------

def _stage_times(s: Scenario):
    """Per stage: t_f, t_b for one micro-batch and the step (s), from the layer flops."""
    model = MLPClassifier(hidden=s.model.options["hidden"])
    model.init_params(s.data.n_features, s.data.n_classes)
    m, speed = s.strategy.options["microbatches"], s.cluster.speed[0]
    rows = round(s.data.n_samples * (1 - s.data.test_size)) // m
    flops = model.layer_flops(rows)
    stages = partition_layers([f + b for f, b in flops], s.cluster.workers,
                              s.strategy.options.get("partition", "uniform"))
    opt = OptimizerConfig(**s.to_dict()["optimizer"]).build(lr=s.strategy.lr, horizon=1)
    recompute = s.strategy.options.get("recompute", False)
    forward = [sum(flops[l][0] for l in r) / speed for r in stages]
    backward = [sum(flops[l][1] + recompute * flops[l][0] for l in r) / speed for r in stages]
    size = [model.layer_slices(r[-1])[1].stop - model.layer_slices(r[0])[0].start
            for r in stages]
    return forward, backward, [opt.flops(n) / speed for n in size]


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
@pytest.mark.parametrize("changes", [{}, {"strategy.recompute": True},
                                     {"strategy.microbatches": 16, "strategy.partition": "balanced"},
                                     {"strategy.microbatches": 2, "cluster.workers": 5}],
                         ids=["m8", "recompute", "m16-balanced", "m2-p5"])
def test_every_iteration_ends_when_the_recurrence_says(schedule, changes):
    s = Scenario().replace(**{**BASE, **FREE, "strategy.schedule": schedule, **changes})
    if s.cluster.workers == 5:
        s = s.replace(**{"model.hidden": [12, 10, 9, 6, 5]})
    result = run(s)
    forward, backward, step = _stage_times(s)
    expected = schedule_time(schedule, s.strategy.options["microbatches"], forward, backward,
                             step, iterations=4)
    times = [h["time"] for h in result.history[1:]]
    np.testing.assert_allclose(times, expected, rtol=1e-12)
    p, T = s.cluster.workers, expected[-1]
    m = s.strategy.options["microbatches"]
    busy = sum(m * (f + b) + st for f, b, st in zip(forward, backward, step)) * 4
    assert result.summary["bubble_fraction"] == pytest.approx(1 - busy / (p * T), rel=1e-9)


def test_the_bubble_shrinks_as_micro_batches_grow():
    bubbles = [run(Scenario().replace(**{**BASE, **FREE, "strategy.microbatches": m}))
               .summary["bubble_fraction"] for m in (1, 4, 16)]
    assert bubbles[0] > bubbles[1] > bubbles[2] > 0


# -- memory ---------------------------------------------------------------------------

@pytest.mark.parametrize("schedule, held", [("gpipe", "m"), ("1f1b", "p")])
def test_the_first_stage_holds_m_micro_batches_under_gpipe_and_p_under_1f1b(schedule, held):
    """Stage 0 keeps each micro-batch's activations from its forward to its backward
    (its input is a view of its rows: not counted); at most m at once under GPipe, p
    under 1F1B (m = 8 > p = 4)."""
    s = Scenario().replace(**{**BASE, **FREE, "strategy.schedule": schedule})
    result = run(s)
    m, p = 8, 4
    model = MLPClassifier(hidden=[12, 10, 9, 6])
    model.init_params(8, 4)
    one = sum(model.activation_bytes(40)[:2]) - 8 * 40 * 8   # layers 0, 1 less the rows' view
    assert result.memory["worker0"]["most"]["activations"] == (m if held == "m" else p) * one


def test_recompute_keeps_only_the_inputs():
    """With recompute, stage 1 holds m micro-batch inputs plus one micro-batch's caches
    (during its backward), not m micro-batches' caches."""
    s = Scenario().replace(**{**BASE, **FREE, "strategy.schedule": "gpipe"})
    model = MLPClassifier(hidden=[12, 10, 9, 6])
    model.init_params(8, 4)
    assert partition_layers([0] * 5, 4)[1] == range(2, 3)  # uniform: stage 1 is layer 2
    full = model.activation_bytes(40)[2]                   # its 10 inputs, its relu mask
    inputs = 8 * 40 * 10
    plain = run(s).memory["worker1"]["most"]["activations"]
    lean = run(s.replace(**{"strategy.recompute": True})).memory["worker1"]["most"]["activations"]
    assert plain == 8 * full
    assert lean == 8 * inputs + (full - inputs)
    assert lean < plain


# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    ({"cluster.workers": 6}, r"at least one layer on each of the cluster.workers=6 stages; "
                             r"the MLP has 5 layers"),
    ({"strategy.partition": [1, 2, 2]}, r"one layer count per stage .*got \[1, 2, 2\]"),
    ({"strategy.partition": [1, 1, 1, 1]}, r"adding up to the 5 layers"),
    ({"strategy.partition": "even"}, r"partition must be one of"),
    ({"strategy.partition": [1, 0, 2, 2]}, r"a list of layer counts \(each >= 1\)"),
    ({"strategy.schedule": "zb"}, r"schedule must be one of"),
    ({"strategy.microbatches": 0}, r"microbatches must be an integer >= 1"),
])
def test_a_bad_pipeline_scenario_names_the_key(changes, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario().replace(**{**BASE, **changes})


def test_the_pipeline_trains_only_the_mlps():
    with pytest.raises(ScenarioError, match=r"strategy.kind='pipeline' trains model.kind in "
                                            r"'mlp', 'mlp_regression'; got model.kind='logistic'"):
        Scenario().replace(**{"strategy.kind": "pipeline", "cluster.workers": 2})


def test_more_micro_batches_than_rows_is_an_error():
    """Against strategy.batch_size, when the scenario is read; against the training set's
    rows, when the run starts (the data decide them)."""
    with pytest.raises(ScenarioError, match=r"strategy.microbatches=60 is more than "
                                            r"strategy.batch_size=50"):
        Scenario().replace(**{**BASE, "strategy.batch_size": 50, "strategy.microbatches": 60})
    with pytest.raises(ValueError, match=r"strategy.microbatches=400 is more than the 320 rows"):
        run(Scenario().replace(**{**BASE, "strategy.microbatches": 400}))


# -- what the nodes report --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["pipeline", "hybrid"])
def test_a_stage_waits_only_when_it_idles_and_holds_only_its_data(kind):
    """A stage's wait never overlaps its compute (its listener's pending receive is not
    waiting), and with free communication compute + wait is the whole run; stage 0 holds
    the features, the last stage the labels, the others no rows at all."""
    extra = ({"strategy.pipeline_parallel": 4} if kind == "hybrid" else {})
    r = run(Scenario().replace(**{**BASE, **FREE, "strategy.kind": kind, **extra}))
    end = r.summary["sim_time"]
    for name, t in r.nodes.items():
        if name == "server":
            continue
        assert t["compute"] + t["wait"] <= end + 1e-12, name
        assert t["wait"] > 0, name                               # the bubbles
    shards = [r.memory[f"worker{s}"]["most"]["shard"] for s in range(4)]
    X, y = 320 * 8 * 8, 320 * 8                                  # float64 rows, int64 labels
    assert shards == [X, 0, 0, y]


def test_a_middle_stage_with_little_memory_runs():
    """A stage that holds no rows needs no memory for them (no data-parallel shard booked
    behind its back)."""
    s = Scenario().replace(**BASE)
    peak = run(s).memory["worker1"]["peak"]
    r = run(s.replace(**{"cluster.memory": [math.inf, peak, math.inf, math.inf]}))
    assert r.summary["stop_reason"] == "4 updates done (stop.rounds)"


def test_one_stage_has_no_bubble():
    r = run(Scenario().replace(**{**BASE, **FREE, "cluster.workers": 1,
                                  "strategy.microbatches": 3}))
    assert r.summary["bubble_fraction"] == 0.0


# -- the formulas beside the simulation (python -m tests.test_pipeline) -----------------

def table() -> list[tuple]:
    """Per schedule and m: the bubble formula for equal stages, the recurrence's iteration
    time and bubble (these stages are unequal), the simulated ones."""
    rows = []
    for schedule in ("gpipe", "1f1b"):
        for m in (1, 4, 16):
            s = Scenario().replace(**{**BASE, **FREE, "strategy.schedule": schedule,
                                      "strategy.microbatches": m})
            r = run(s)
            forward, backward, step = _stage_times(s)
            [T] = schedule_time(schedule, m, forward, backward, step)
            busy = sum(m * (f + b) + st for f, b, st in zip(forward, backward, step))
            rows.append((schedule, m, bubble_fraction(4, m), T,
                         float(np.diff([h["time"] for h in r.history])[0]),
                         1 - busy / (4 * T), r.summary["bubble_fraction"]))
    return rows


# -- interleaved 1F1B (virtual_stages = v) ------------------------------------------------

# 8 layers, so 2 stages x 4 chunks or 4 stages x 2 chunks of one layer each
INTERLEAVED = {**BASE, "model.hidden": [12, 10, 9, 8, 7, 6, 5], "strategy.schedule": "1f1b"}


def test_interleaved_plans_run_each_chunk_s_forward_then_backward_once():
    """Every (micro-batch, chunk) forward then backward once, in Megatron-LM's order: groups
    of p micro-batches chunk by chunk, 2 (p - s - 1) + (v - 1) p forwards of warm-up."""
    for p, m, v in [(2, 4, 2), (4, 8, 2), (3, 6, 3), (4, 4, 2), (2, 2, 4)]:
        for s in range(p):
            ops = plan("1f1b", s, p, m, v)
            pairs = [(j, c) for j in range(m) for c in range(v)]
            assert sorted(ops) == sorted([("F", j, c) for j, c in pairs]
                                         + [("B", j, c) for j, c in pairs])
            assert all(ops.index(("F", j, c)) < ops.index(("B", j, c)) for j, c in pairs)
            warmup = m * v if m == p else min(2 * (p - s - 1) + (v - 1) * p, m * v)
            first_backward = warmup + (warmup < m * v)     # the steady phase: F, then B
            assert [o.kind for o in ops].index("B") == first_backward
    assert [f"{o.kind}{o.j}.{o.c}" for o in plan("1f1b", 0, 2, 4, 2)][:6] == [
        "F0.0", "F1.0", "F0.1", "F1.1", "F2.0", "B0.1"]


@given(p=st.integers(2, 6), groups=st.integers(1, 4), v=st.integers(2, 4),
       tf=st.floats(0.1, 10), tb=st.floats(0.1, 10))
@settings(max_examples=80, deadline=None)
def test_interleaving_divides_the_bubble_by_v(p, groups, v, tf, tb):
    """Equal chunks of t_f / v and t_b / v: (v m + p - 1)(t_f + t_b) / v, a bubble of
    (p - 1)/(v m + p - 1) (Narayanan et al. 2021, Sec. 2.2.2): its time is (p - 1)(t_f + t_b)
    / v, the plain 1F1B bubble's over v."""
    m = groups * p
    [T] = schedule_time("1f1b", m, [tf / v] * (p * v), [tb / v] * (p * v), v=v)
    assert T == pytest.approx((v * m + p - 1) * (tf + tb) / v, rel=1e-12)
    [plain] = schedule_time("1f1b", m, [tf] * p, [tb] * p)
    assert T - m * (tf + tb) == pytest.approx((plain - m * (tf + tb)) / v, rel=1e-9)
    assert 1 - m * (tf + tb) / T == pytest.approx(bubble_fraction(p, m, v), rel=1e-9)


@pytest.mark.parametrize("changes", [
    {"cluster.workers": 2, "strategy.virtual_stages": 4, "strategy.microbatches": 4},
    {"cluster.workers": 4, "strategy.virtual_stages": 2, "strategy.microbatches": 8},
    {"cluster.workers": 4, "strategy.virtual_stages": 2, "strategy.microbatches": 4,
     "strategy.batch_size": 64, "optimizer.kind": "adam", "strategy.lr": 0.01},
    {"cluster.workers": 2, "strategy.virtual_stages": 2, "strategy.microbatches": 6,
     "strategy.partition": [1, 3, 2, 2], "strategy.recompute": True},
], ids=["2x4-m4", "4x2-m8", "4x2-adam-batches", "2x2-list-recompute"])
def test_interleaved_pipelines_train_single_node_training_s_model(changes):
    config = {**INTERLEAVED, **changes}
    piped, single = run(Scenario().replace(**config)), _reference(
        {k: v for k, v in config.items() if k != "strategy.virtual_stages"})
    np.testing.assert_allclose(piped.model.params_, single.model.params_, rtol=0, atol=1e-12)
    np.testing.assert_allclose([h["loss"] for h in piped.history],
                               [h["loss"] for h in single.history], rtol=1e-12)


@pytest.mark.parametrize("p, v, m", [(2, 4, 4), (4, 2, 8), (2, 2, 16)])  # m divides the 320 rows
def test_interleaved_iterations_end_when_the_recurrence_says(p, v, m):
    """With free communication every iteration ends when ``schedule_time(..., v=v)`` says,
    chunk times from the layer flops; the measured bubble is below plain 1F1B's."""
    s = Scenario().replace(**{**INTERLEAVED, **FREE, "cluster.workers": p,
                              "strategy.virtual_stages": v, "strategy.microbatches": m})
    result, expected = run(s), _interleaved_recurrence(s, p, v, m)
    np.testing.assert_allclose([h["time"] for h in result.history[1:]], expected, rtol=1e-12)
    plain = run(s.replace(**{"strategy.virtual_stages": 1}))
    assert result.summary["bubble_fraction"] < plain.summary["bubble_fraction"]


def _interleaved_recurrence(s, p, v, m):
    """``schedule_time(..., v=v)`` of scenario ``s``: chunk times from the layer flops."""
    model = MLPClassifier(hidden=s.model.options["hidden"])
    model.init_params(s.data.n_features, s.data.n_classes)
    speed = s.cluster.speed[0]
    flops = model.layer_flops(round(s.data.n_samples * (1 - s.data.test_size)) // m)
    chunks = partition_layers([f + b for f, b in flops], p * v)
    forward = [sum(flops[l][0] for l in r) / speed for r in chunks]
    backward = [sum(flops[l][1] for l in r) / speed for r in chunks]
    opt = OptimizerConfig().build(lr=s.strategy.lr, horizon=1)
    step = []
    for st_ in range(p):
        size = sum(model.layer_slices(chunks[c * p + st_][-1])[1].stop
                   - model.layer_slices(chunks[c * p + st_][0])[0].start for c in range(v))
        step.append(opt.flops(size) / speed)
    return schedule_time("1f1b", m, forward, backward, step, iterations=4, v=v)


def interleaved_table():
    """1F1B on 8 layers with v chunks per stage, free communication: the recurrence and the
    simulation, the measured bubble and the formula for equal chunks."""
    for p, v, m in [(2, 1, 8), (2, 2, 8), (2, 4, 8), (4, 1, 8), (4, 2, 8)]:
        s = Scenario().replace(**{**INTERLEAVED, **FREE, "cluster.workers": p,
                                  "strategy.virtual_stages": v, "strategy.microbatches": m})
        result = run(s)
        yield (p, v, m, _interleaved_recurrence(s, p, v, m)[0], result.history[1]["time"],
               result.summary["bubble_fraction"], bubble_fraction(p, m, v))


def test_the_interleaved_plan_and_recurrence_refuse_what_they_cannot_run():
    with pytest.raises(ValueError, match="interleaves the 1f1b"):
        plan("gpipe", 0, 2, 4, 2)
    with pytest.raises(ValueError, match="one time per virtual stage"):
        schedule_time("1f1b", 4, [1.0] * 5, [1.0] * 5, v=2)
    with pytest.raises(ValueError, match="multiple of the 2 stages"):
        plan("1f1b", 0, 2, 3, 2)


@pytest.mark.parametrize("changes, match", [
    ({"strategy.virtual_stages": 2, "strategy.schedule": "gpipe"}, "interleaves the 1f1b"),
    ({"strategy.virtual_stages": 2, "strategy.microbatches": 6}, "multiple of the 4 stages"),
    ({"strategy.virtual_stages": 3, "strategy.microbatches": 8}, "12 model chunks"),
    ({"strategy.virtual_stages": 2, "cluster.workers": 1, "strategy.microbatches": 2},
     "two or more stages"),
    ({"strategy.virtual_stages": 2, "strategy.microbatches": 8, "strategy.partition": [2] * 4},
     "one layer count per model chunk"),
    ({"strategy.virtual_stages": 0}, "virtual_stages"),
])
def test_interleaving_refuses_what_it_cannot_run(changes, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario().replace(**{**INTERLEAVED, **changes})


if __name__ == "__main__":
    print(f"{'schedule':>8} {'m':>3} {'equal stages':>12} {'T recurrence (s)':>17} "
          f"{'T simulated (s)':>16} {'bubble recurrence':>18} {'simulated':>10}")
    for schedule, m, formula, T, simulated, recurred, bubble in table():
        print(f"{schedule:>8} {m:>3} {formula:>12.4f} {T:>17.9g} {simulated:>16.9g} "
              f"{recurred:>18.4f} {bubble:>10.4f}")


    print(f"\ninterleaved 1F1B, 8 layers: {'p':>2} {'v':>2} {'m':>3} {'T recurrence (s)':>17} "
          f"{'T simulated (s)':>16} {'bubble simulated':>17} {'(p-1)/(vm+p-1), equal chunks':>30}")
    for p, v, m, T, simulated, bubble, formula in interleaved_table():
        print(f"{'':>28}{p:>2} {v:>2} {m:>3} {T:>17.9g} {simulated:>16.9g} {bubble:>17.4f} "
              f"{formula:>30.4f}")
