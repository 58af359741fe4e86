"""Timing-only runs (``math = false``): payloads are phantoms (``simdml.phantom``), and
every simulated time, byte, message, memory figure and trace span equals the run with
math, for every strategy that supports the mode; the others refuse it by name; a model
of billions of parameters allocates nothing.
"""
import tracemalloc

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.phantom import Phantom, PhantomError
from simdml.result import TIMING_ONLY
from simdml.strategies import STRATEGIES

# -- the phantom: numpy's shapes and dtypes, no values ---------------------------------

A = np.arange(12.0).reshape(3, 4)
B = np.arange(8.0).reshape(4, 2)
V = np.arange(4.0)
LABELS = np.array([2, 0, 1])
EXPRESSIONS = {
    "matmul": lambda a, b, v: a @ b,
    "matrix @ vector": lambda a, b, v: a @ v,
    "vector @ matrix": lambda a, b, v: v @ b,
    "broadcast add": lambda a, b, v: a + v,
    "row vector": lambda a, b, v: a - a.max(axis=1)[:, None],
    "keepdims": lambda a, b, v: a.sum(axis=1, keepdims=True),
    "reduce all": lambda a, b, v: np.add.reduce(a, axis=None),
    "float32 * python float": lambda a, b, v: a.astype(np.float32) * 0.5,
    "float32 * float64 array": lambda a, b, v: a.astype(np.float32) * v,
    "compare": lambda a, b, v: a > 0.0,
    "relu": lambda a, b, v: np.maximum(a, 0.0),
    "tanh slope": lambda a, b, v: 1.0 - np.tanh(a) ** 2,
    "transpose": lambda a, b, v: a.T @ a,
    "rows": lambda a, b, v: a[1:3],
    "columns": lambda a, b, v: a[:, 1:3],
    "fancy rows": lambda a, b, v: a[np.array([0, 2, 2, 1])],
    "pairs": lambda a, b, v: a[np.arange(3), LABELS],
    "row": lambda a, b, v: a[1],
    "new axis": lambda a, b, v: a[None, :, 1],
    "ellipsis": lambda a, b, v: a[..., 0],
    "advanced apart": lambda a, b, v: np.stack([a, a])[np.array([0, 1]), :, np.array([1, 2])],
    "reshape": lambda a, b, v: a.reshape(-1, 2),
    "ravel": lambda a, b, v: a.ravel(),
    "concatenate": lambda a, b, v: np.concatenate([a.ravel(), v]),
    "concatenate axis 1": lambda a, b, v: np.concatenate([a, a], axis=1),
    "stack": lambda a, b, v: np.stack([v, v], axis=1),
    "zeros_like": lambda a, b, v: np.zeros_like(a, dtype=np.float32),
    "empty_like shape": lambda a, b, v: np.empty_like(v, shape=(5, 2)),
    "array_split": lambda a, b, v: np.array_split(np.arange(10.0) * v[0], 3)[0],
    "vdot": lambda a, b, v: np.vdot(v, v),
    "mean": lambda a, b, v: a.mean(axis=0),
    "in place": lambda a, b, v: _in_place(a, v),
    "an integer apart from an array": lambda a, b, v: np.stack([a, a])[1, :, [0, 1]],
    "new axis, array, ellipsis, integer": lambda a, b, v: np.stack([a, a])[None, [0, 1], ..., 1],
    "a true scalar": lambda a, b, v: a[True],
    "a false scalar": lambda a, b, v: a[False],
    "a real mask": lambda a, b, v: a[np.array([True, False, True])],
    "split at a negative point": lambda a, b, v: np.array_split(v, [-1, 9])[1],
    "split in equal parts": lambda a, b, v: np.split(v, 2)[1],
    "split at points": lambda a, b, v: np.split(a, [1], axis=1)[1],
}


def _in_place(a, v):
    a = a.copy()
    a += 2.0 * v
    a[0] -= 1.0
    return a


def _phantoms(*arrays):
    return [Phantom.like(a) for a in arrays]


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_a_phantom_has_numpys_shape_and_dtype(name):
    """Each expression on phantoms has the shape and dtype of the same expression on
    real arrays."""
    real = np.asarray(EXPRESSIONS[name](A, B, V))
    ghost = EXPRESSIONS[name](*_phantoms(A, B, V))
    assert isinstance(ghost, Phantom)
    assert (ghost.shape, ghost.dtype, ghost.nbytes) == (real.shape, real.dtype, real.nbytes)


def test_a_phantom_splits_as_numpy_does():
    for n, k in [(10, 3), (7, 7), (3, 5), (0, 2)]:
        real = np.array_split(np.zeros(n), k)
        ghost = np.array_split(Phantom(n), k)
        assert [g.shape for g in ghost] == [r.shape for r in real]
    assert [g.shape for g in np.array_split(Phantom(10), [3, 8])] == [(3,), (5,), (2,)]


def test_a_phantom_refuses_what_needs_values():
    p = Phantom((3, 4))
    with pytest.raises(PhantomError, match="whether an array"):
        bool(p.sum() > 0)
    with pytest.raises(PhantomError, match="values of an array of shape"):
        np.asarray(p)
    with pytest.raises(PhantomError, match="values of an array"):
        np.zeros((3, 4))[:] = p                 # written into a real array
    with pytest.raises(PhantomError, match="integer"):
        int(p[0, 0])
    with pytest.raises(PhantomError, match="no shape rule for np.sort"):
        np.sort(p)
    with pytest.raises(PhantomError, match="no shape rule for np.add.at"):
        np.add.at(p, [0], 1.0)
    with pytest.raises(PhantomError, match="into a real array"):
        np.add(p, 1.0, out=np.zeros((3, 4)))
    with pytest.raises(PhantomError, match="boolean mask"):
        p[p > 0]
    assert np.isnan(float(p.sum()))             # a reported number: unknown, not a number


def test_a_phantom_checks_shapes_as_numpy_does():
    with pytest.raises(ValueError, match="core dimension"):
        Phantom((3, 4)) @ Phantom((3, 2))
    with pytest.raises(ValueError):
        Phantom((3, 4)) + Phantom((3,))
    with pytest.raises(IndexError, match="too many indices"):
        Phantom(3)[0, 1]
    with pytest.raises(IndexError, match="out of bounds"):
        Phantom(3)[3]
    with pytest.raises(ValueError, match="cannot reshape"):
        Phantom(6).reshape(4, 2)
    with pytest.raises(ValueError):
        Phantom(4)[:2] = Phantom(3)             # a value that does not fit its place
    with pytest.raises(ValueError, match="tuple of ints >= 0"):
        Phantom((3, -1))
    with pytest.raises(ValueError, match="must match exactly"):
        np.concatenate([Phantom((2, 3)), Phantom((2, 4))])
    with pytest.raises(ValueError, match="equal division"):
        np.split(Phantom(5), 2)
    with pytest.raises(ValueError, match="same shape"):
        np.stack([Phantom(3), Phantom(4)])
    with pytest.raises(PhantomError, match="has no .item") as caught:
        Phantom(3).item()
    assert isinstance(caught.value, AttributeError) and not hasattr(Phantom(3), "argmax")


# -- the contract: the same clock, bytes and memory ------------------------------------

MLP = {"model.kind": "mlp", "model.hidden": [16, 12, 10], "data.dataset": "synthetic",
       "data.n_samples": 400, "data.n_features": 8, "data.n_classes": 3,
       "network.latency": 1e-4, "network.bandwidth": 1e9, "strategy.lr": 0.1,
       "strategy.batch_size": 64, "stop.rounds": 5, "seed": 3}
LOGISTIC = {**MLP, "model.kind": "logistic"}
del LOGISTIC["model.hidden"]
REGRESSION = {**MLP, "model.kind": "mlp_regression", "data.dataset": "synthetic_regression"}
del REGRESSION["data.n_classes"]

CASES = {
    "sync": {**LOGISTIC, "strategy.kind": "sync"},
    "sync k-of-n, lognormal compute": {**MLP, "strategy.kind": "sync", "strategy.wait_for": 3,
                                       "cluster.compute_time": "lognormal",
                                       "cluster.jitter": 0.5},
    "sync, a crash and checkpoints": {**MLP, "strategy.kind": "sync",
                                      "faults.checkpoint_every": 2,
                                      "faults.crash": [{"node": "server", "at": 5e-4,
                                                        "recover_after": 1e-3}]},
    "async": {**MLP, "strategy.kind": "async", "cluster.speed": [1e9, 2e9, 1e9, 3e9]},
    "ssp, lost messages": {**MLP, "strategy.kind": "ssp", "network.loss": 0.1,
                           "eval_every": 3},
    "allreduce": {**LOGISTIC, "strategy.kind": "allreduce", "data.partition": "proportional",
                  "cluster.speed": [1e9, 2e9, 1e9, 3e9]},
    "allreduce by rabenseifner, off a power of two": {
        **LOGISTIC, "strategy.kind": "allreduce", "strategy.collective": "rabenseifner",
        "cluster.workers": 6},
    "allreduce by the tree": {**LOGISTIC, "strategy.kind": "allreduce",
                              "strategy.collective": "tree"},
    "local_sgd": {**MLP, "strategy.kind": "local_sgd"},
    "ddp, adam": {**MLP, "strategy.kind": "ddp", "optimizer.kind": "adam"},
    "ddp, hierarchical in pairs": {**MLP, "strategy.kind": "ddp", "strategy.collective":
                                   "hierarchical", "strategy.group_size": 2},
    "ddp, recursive doubling": {**MLP, "strategy.kind": "ddp",
                                "strategy.collective": "recursive_doubling"},
    "ddp zero 1": {**MLP, "strategy.kind": "ddp", "strategy.zero": 1},
    "ddp zero 2": {**MLP, "strategy.kind": "ddp", "strategy.zero": 2},
    "ddp zero 3, float32": {**MLP, "strategy.kind": "ddp", "strategy.zero": 3,
                            "model.dtype": "float32"},
    "pipeline 1f1b": {**MLP, "strategy.kind": "pipeline", "strategy.microbatches": 4},
    "pipeline gpipe, recompute": {**MLP, "strategy.kind": "pipeline",
                                  "strategy.microbatches": 4, "strategy.schedule": "gpipe",
                                  "strategy.recompute": True},
    "pipeline interleaved, v = 2": {**MLP, "strategy.kind": "pipeline",
                                    "model.hidden": [16, 12, 10, 10, 8, 8, 6],
                                    "strategy.microbatches": 4, "strategy.virtual_stages": 2},
    "tensor by rabenseifner": {
        **MLP, "strategy.kind": "tensor", "strategy.collective": "rabenseifner"},
    "tensor, regression": {**REGRESSION, "strategy.kind": "tensor", "model.hidden": [16, 12]},
    "hybrid 1 x 2 x 2, exponential compute": {
        **MLP, "strategy.kind": "hybrid", "strategy.tensor_parallel": 2,
        "strategy.pipeline_parallel": 2, "strategy.microbatches": 2,
        "cluster.compute_time": "exponential"},
    "hybrid 2 x 1 x 2, out of memory": {
        **MLP, "strategy.kind": "hybrid", "strategy.data_parallel": 2,
        "strategy.pipeline_parallel": 2, "strategy.microbatches": 2, "cluster.memory": 30000},
    "sync on oversubscribed racks": {**LOGISTIC, "strategy.kind": "sync",
                                     "network.topology": "racks",
                                     "network.hosts_per_rack": 2,
                                     "network.oversubscription": 4.0},
    "ddp on a torus": {**MLP, "strategy.kind": "ddp", "network.topology": "torus"},
    "async on iris, label skew": {**LOGISTIC, "strategy.kind": "async", "data.dataset": "iris",
                                  "data.partition": "label_skew"},
}


def _both(config):
    s = Scenario().replace(**config)
    return run(s), run(s.replace(math=False))


def _clock(result):
    """Everything of a run that the clock, the network and the memory model make."""
    keys = ("sim_time", "updates", "bytes_sent", "messages_sent", "messages_lost")
    return ({k: result.summary[k] for k in keys}, result.memory, result.links,
            [(h["time"], h["update"], h["epoch"]) for h in result.history],
            result.trace.spans, result.summary["stop_reason"].removesuffix("; " + TIMING_ONLY))


@pytest.mark.parametrize("name", CASES)
def test_timing_only_keeps_every_time_byte_and_memory_figure(name):
    with_math, timing = _both(CASES[name])
    assert _clock(timing) == _clock(with_math)
    assert with_math.summary["sim_time"] > 0 and with_math.summary["bytes_sent"] > 0
    if "out of memory" in name:
        assert "out of memory" in timing.summary["stop_reason"]
    else:
        assert with_math.summary["updates"] > 0


def test_every_strategy_that_supports_the_mode_is_held_to_it():
    tested = {c["strategy.kind"] for c in CASES.values()}
    assert tested == {k for k, spec in STRATEGIES.items() if spec.timing_only}


def test_a_restart_s_lost_model_is_named_without_a_score():
    config = {**MLP, "strategy.kind": "sync", "faults.checkpoint_every": 3, "stop.time": 1.2e-3,
              "faults.crash": [{"node": "server", "at": 1e-3, "recover_after": 1e-4}]}
    with_math, timing = _both(config)
    assert "lost its model of update" in with_math.summary["stop_reason"]
    reason = timing.summary["stop_reason"]
    assert reason.endswith("; " + TIMING_ONLY) and "lost its model of update" in reason
    assert "nan" not in reason and "accuracy" not in reason


def test_a_plot_of_a_timing_only_result_says_what_it_lacks(tmp_path):
    from simdml import plots
    from simdml.cli import main
    _, timing = _both(CASES["pipeline 1f1b"])
    fig = plots.run_overview(timing)
    texts = [t.get_text() for ax in fig.get_axes() for t in ax.texts]
    assert any("timing only (math = false): no loss" in t for t in texts)
    assert "<" in timing._repr_html_()
    path = tmp_path / "s.toml"
    path.write_text(Scenario().replace(**{**CASES["pipeline 1f1b"], "math": False}).to_toml())
    assert main(["run", str(path), "--plot", str(tmp_path / "f.png"),
                 "--out", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "f.png").stat().st_size > 10_000 and (tmp_path / "r.json").exists()


def test_a_timing_only_result_says_it_has_no_values():
    _, timing = _both(CASES["pipeline 1f1b"])
    assert timing.model is None and timing.summary["timing_only"] is True
    assert "timing only (math = false)" in timing.summary["stop_reason"]
    assert all(np.isnan(h["loss"]) and np.isnan(h["score"]) for h in timing.history)
    with pytest.raises(ValueError, match="timing-only run"):
        timing.predict(np.zeros((1, 8)))
    assert "timing only" in repr(timing.scenario)
    with_math = run(Scenario().replace(**CASES["pipeline 1f1b"]))
    assert "timing_only" not in with_math.summary


def test_a_model_of_billions_of_parameters_allocates_nothing():
    """7 layers of 12,288 (0.91e9 parameters, 3.6 GB in float32 per copy) on 8 workers:
    the run books gigabytes and allocates a few megabytes."""
    config = {"math": False, "trace_spans": False, "data.dataset": "synthetic",
              "data.n_samples": 10_000, "data.n_features": 12288, "model.kind": "mlp",
              "model.hidden": [12288] * 6, "model.dtype": "float32", "cluster.workers": 8,
              "cluster.memory": 80e9, "cluster.speed": 1e14, "network.bandwidth": 25e9,
              "strategy.kind": "hybrid", "strategy.data_parallel": 2,
              "strategy.tensor_parallel": 2, "strategy.pipeline_parallel": 2,
              "strategy.microbatches": 4, "strategy.batch_size": 512, "stop.rounds": 2}
    tracemalloc.start()
    try:
        result = run(Scenario().replace(**config))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    params = sum((a + 1) * b for a, b in zip([12288] * 7, [12288] * 6 + [2]))
    booked = result.memory["worker0"]["breakdown"]
    assert booked["params"] + result.memory["worker2"]["breakdown"]["params"] > params
    assert result.memory["worker0"]["peak"] > 1e9 and peak < 50e6
    assert result.summary["updates"] == 2


# -- what refuses the mode, and why ----------------------------------------------------

@pytest.mark.parametrize("changes, match", [
    ({"strategy.kind": "cascade_svm", "model.kind": "kernel_svm"},
     "strategy.kind='cascade_svm' decides by them"),
    ({"strategy.kind": "hist_tree", "model.kind": "tree"}, "strategy.kind='hist_tree'"),
    ({"strategy.kind": "admm_svm", "model.kind": "svm"}, "strategy.kind='admm_svm'"),
    ({"strategy.kind": "local_fusion", "model.kind": "logistic"}, "'local_fusion'"),
    ({"strategy.kind": "sync", "scheduling.policy": "round_robin"},
     "scheduling.policy='round_robin'"),
    ({"strategy.kind": "sync", "model.kind": "svm"}, "model.kind='svm'"),
    ({"strategy.kind": "sync", "model.kind": "logistic", "stop.target_accuracy": 0.9},
     "stop.target_accuracy=0.9 needs the score"),
    ({"strategy.kind": "sync", "model.kind": "logistic", "data.dataset": "synthetic",
      "data.partition": "label_skew"}, "data.partition='label_skew'"),
    ({"strategy.kind": "sync", "model.kind": "logistic", "data.dataset": "synthetic",
      "data.partition": "size_skew"}, "data.partition='size_skew'"),
    ({"strategy.kind": "sync", "model.kind": "logistic", "data.dataset": "synthetic",
      "data.label_noise": 0.1}, "data.label_noise=0.1"),
    ({"strategy.kind": "sync", "model.kind": "logistic", "data.rebalance": True},
     "data.rebalance"),
    ({"strategy.kind": "sync", "model.kind": "logistic", "imbalance.method": "oversample"},
     "imbalance.method"),
])
def test_what_depends_on_the_data_refuses_the_mode(changes, match):
    with pytest.raises(ScenarioError, match=match):
        Scenario().replace(**{"math": False, **changes})
    Scenario().replace(**changes)                # each is fine with math


def test_math_round_trips_through_toml_and_is_a_flag():
    s = Scenario().replace(**{"math": False, "strategy.kind": "sync", "model.kind": "logistic"})
    assert Scenario.from_dict(s.to_dict()).math is False and "math = false" in s.to_toml()
    with pytest.raises(ScenarioError, match="math"):
        Scenario().replace(math="no")
