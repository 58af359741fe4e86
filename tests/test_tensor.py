"""Tensor parallelism (``strategy.kind = "tensor"``): Megatron's split of every layer pair
trains the unsplit network (1e-12); its bytes per step are its all-reduces times their
size; each worker holds 1/t of the paired weights; with deterministic compute an
iteration lasts the sum of its split computations, its ring all-reduces and its step.
"""
import math

import numpy as np
import pytest

from simdml import OptimizerConfig, Scenario, ScenarioError, run
from simdml.models import MLPClassifier
from simdml.strategies.ddp import ring_time
from simdml.strategies.tensor_parallel import bytes_per_step

# 320 training rows (divisible by t = 2, 4, 5), 8 features, 4 classes
BASE = {"model.kind": "mlp", "model.hidden": [12, 10, 20], "data.dataset": "synthetic",
        "data.n_samples": 400, "data.test_size": 0.2, "data.n_features": 8,
        "data.n_classes": 4, "cluster.workers": 4, "strategy.kind": "tensor",
        "strategy.lr": 0.3, "stop.rounds": 4, "eval_every": 1}


def _single(config: dict):
    return run(Scenario().replace(**{**config, "strategy.kind": "sync", "cluster.workers": 1}))


@pytest.mark.parametrize("changes", [
    {},
    {"cluster.workers": 3},                                  # uneven blocks of units
    {"cluster.workers": 1},
    {"model.hidden": [12, 10, 20, 6], "cluster.workers": 2},  # an unpaired last layer
    {"model.hidden": [], "cluster.workers": 2},              # one layer: nothing to split
    {"strategy.batch_size": 50, "optimizer.kind": "adam", "strategy.lr": 0.01},
    {"model.activation": "gelu", "model.l2": 0.01},
    {"model.class_weight": "balanced", "data.dataset": "breast_cancer_rare",
     "model.activation": "tanh"},
    {"model.kind": "mlp_regression", "data.dataset": "synthetic_regression",
     "strategy.lr": 0.05},
], ids=["t4", "t3-uneven", "t1", "odd-layers", "linear", "minibatch-adam", "gelu-l2",
        "class-weight", "regression"])
def test_the_split_network_trains_the_unsplit_one(changes):
    """Real column and row blocks, real partial sums: the unsplit network's model and
    losses (1e-12)."""
    config = {**BASE, **changes}
    split, whole = run(Scenario().replace(**config)), _single(config)
    np.testing.assert_allclose(split.model.params_, whole.model.params_, rtol=0, atol=1e-12)
    np.testing.assert_allclose([h["loss"] for h in split.history],
                               [h["loss"] for h in whole.history], rtol=1e-12)
    assert [h["epoch"] for h in split.history] == pytest.approx(
        [h["epoch"] for h in whole.history], rel=1e-12)


def _model(hidden):
    model = MLPClassifier(hidden=hidden)
    model.init_params(8, 4)
    return model


@pytest.mark.parametrize("t", [2, 3, 4])
@pytest.mark.parametrize("hidden", [[12, 10, 20], [12, 10, 20, 6]])
def test_the_bytes_per_step_are_the_all_reduces_times_their_size(t, hidden):
    """Per step: one all-reduce of the pair's outputs forward, one of its inputs backward
    (not for the first pair), each 2 (t - 1) / t of its bytes per worker on the ring."""
    r = run(Scenario().replace(**{**BASE, "cluster.workers": t, "model.hidden": hidden}))
    model = _model(hidden)
    n = 320
    # forward: the outputs of layers 1 and 3; backward: the 10 inputs of layer 2
    expected = 2 * (t - 1) / t * 8 * n * (10 + 4 + 10 if len(hidden) == 3 else 10 + 6 + 10)
    assert bytes_per_step(model, n, t) == pytest.approx(expected, rel=1e-12)
    assert r.summary["bytes_sent"] == pytest.approx(4 * t * expected, rel=1e-12)


@pytest.mark.parametrize("t", [2, 4])
def test_each_worker_holds_a_t_th_of_the_paired_weights(t):
    """hidden = [12, 10, 20]: pairs (8->12->10) and (10->20->4); a worker holds 1/t of W_a,
    b_a and W_b, and b_b whole."""
    r = run(Scenario().replace(**{**BASE, "cluster.workers": t, "model.hidden": [12, 10, 20]}))
    split = (8 * 12 + 12 + 12 * 10) + (10 * 20 + 20 + 20 * 4)
    whole = 10 + 4
    for w in range(t):
        at_peak = r.memory[f"worker{w}"]["breakdown"]
        assert at_peak["params"] == 8 * (split / t + whole)
        assert at_peak["grads"] == at_peak["params"]


@pytest.mark.parametrize("t", [2, 4])
@pytest.mark.parametrize("net", [{"network.latency": 1e-4, "network.bandwidth": 1e8},
                                 {"network.latency": 0.0, "network.bandwidth": math.inf}],
                         ids=["ring", "free"])
def test_an_iteration_is_its_split_compute_its_all_reduces_and_its_step(t, net):
    s = Scenario().replace(**{**BASE, **net, "cluster.workers": t, "cluster.jitter": 0.0,
                              "cluster.speed": 1e9})
    r = run(s)
    model = _model([12, 10, 20])
    flops, n, speed = model.layer_flops(320), 320, 1e9
    ring = lambda c: ring_time(t, 8 * n * c, s.network.latency, s.network.bandwidth)  # noqa: E731
    compute = sum(f + b for f, b in flops) / t / speed
    comm = ring(10) + ring(4) + ring(10)        # forward: 10 and 4 outputs; backward: 10 inputs
    own = (8 * 12 + 12 + 12 * 10 + 10 * 20 + 20 + 20 * 4) / t + 14
    opt = OptimizerConfig().build(lr=0.3, horizon=1)
    T = compute + comm + opt.flops(own) / speed
    times = np.diff([h["time"] for h in r.history])
    np.testing.assert_allclose(times, T, rtol=1e-9)


def test_narrow_pairs_are_refused():
    with pytest.raises(ScenarioError, match=r"model.hidden=\[3, 10, 20\] has paired widths "
                                            r"\[3, 20\], \[3\] narrower than 4"):
        Scenario().replace(**{**BASE, "model.hidden": [3, 10, 20]})


def test_tensor_trains_only_the_mlps():
    with pytest.raises(ScenarioError, match=r"strategy.kind='tensor' trains model.kind in"):
        Scenario().replace(**{"strategy.kind": "tensor", "cluster.workers": 2})


def test_a_drawn_batch_is_booked_once():
    """The caches scale with the rows; a drawn batch's rows are a copy, booked once (the
    whole training set is the shard, not booked as activations)."""
    full = run(Scenario().replace(**BASE)).memory["worker0"]["most"]["activations"]
    drawn = run(Scenario().replace(**{**BASE, "strategy.batch_size": 40})).memory[
        "worker0"]["most"]["activations"]
    assert drawn == full * 40 // 320 + 40 * 8 * 8


# -- the formulas beside the simulation (python -m tests.test_tensor) -------------------

def table() -> list[tuple]:
    """Per t: bytes per step (formula, counted) and the time per iteration (formula,
    simulated), on the ring network (t divides the widths: equal blocks)."""
    rows = []
    net = {"network.latency": 1e-4, "network.bandwidth": 1e8}
    for t in (2, 4):
        s = Scenario().replace(**{**BASE, **net, "cluster.workers": t, "cluster.jitter": 0.0,
                                  "cluster.speed": 1e9})
        r = run(s)
        model = _model([12, 10, 20])
        flops = model.layer_flops(320)
        ring = lambda c: ring_time(t, 8 * 320 * c, 1e-4, 1e8)  # noqa: E731
        own = (8 * 12 + 12 + 12 * 10 + 10 * 20 + 20 + 20 * 4) / t + 14
        T = (sum(f + b for f, b in flops) / t / 1e9 + ring(10) + ring(4) + ring(10)
             + OptimizerConfig().build(lr=0.3, horizon=1).flops(own) / 1e9)
        rows.append((t, bytes_per_step(model, 320, t), r.summary["bytes_sent"] / 4 / t, T,
                     float(np.diff([h["time"] for h in r.history])[-1])))
    return rows


if __name__ == "__main__":
    print(f"{'t':>2} {'bytes/step formula':>18} {'counted':>10} {'T formula (s)':>14} "
          f"{'T simulated (s)':>15}")
    for t, bf, bc, tf, ts in table():
        print(f"{t:>2} {bf:>18.1f} {bc:>10.1f} {tf:>14.9g} {ts:>15.9g}")
