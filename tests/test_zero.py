"""ZeRO (``strategy.kind = "ddp"``, ``zero = 1 | 2 | 3``): every stage trains plain DDP's
model bit for bit; a worker's parameters, gradients and optimizer state follow
Rajbhandari et al.'s accounting; the bytes sent per step are 2 (n-1)/n Psi for stages
0-2 and 3 (n-1)/n Psi for stage 3; with deterministic compute an iteration lasts
exactly ``simdml.strategies.zero.iteration_time``; a model out of memory under DDP trains
under stage 3.

``python -m tests.test_zero`` prints the memory, the bytes and the times beside their
formulas.
"""
import math

import numpy as np
import pytest

from simdml import OptimizerConfig, Scenario, ScenarioError, run
from simdml.models import MLPClassifier
from simdml.collectives import allreduce_time
from simdml.strategies.ddp import buckets_of
from simdml.strategies.zero import STAGES, Shard, chunk_slices, iteration_time, memory_per_worker

# layers of 8*31 = 248, 32*32 = 1024 and 33*4 = 132 parameters, each a multiple of n = 4
# (equal chunks); Psi = 1404 parameters, 11,232 bytes
N = 4
BASE = {"model.kind": "mlp", "model.hidden": [31, 32], "model.l2": 0.0,
        "data.dataset": "synthetic", "data.n_samples": 320, "data.n_features": 7,
        "data.n_classes": 4, "cluster.workers": N, "strategy.kind": "ddp",
        "strategy.lr": 0.01, "optimizer.kind": "adam", "stop.rounds": 4, "eval_every": 1,
        "strategy.bucket_size": 1}
PSI = 8 * 31 + 32 * 32 + 33 * 4
COMPUTE_BOUND = {"cluster.speed": 1e8, "network.latency": 1e-5, "network.bandwidth": 1e10}
COMM_BOUND = {"cluster.speed": 1e10, "network.latency": 1e-4, "network.bandwidth": 1e8}


def _run(stage: int, **changes):
    return run(Scenario().replace(**{**BASE, "strategy.zero": stage, **changes}))


# -- the model it trains --------------------------------------------------------------

@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize("changes", [
    {},
    {"strategy.overlap": False},
    {"strategy.bucket_size": 9000, "optimizer.kind": "momentum", "strategy.lr": 0.1},
    {"strategy.bucket_size": 10**9, "optimizer.kind": "adamw", "optimizer.weight_decay": 0.01},
    {"cluster.workers": 3, "data.partition": "label_skew", "strategy.batch_size": 30},
    {"cluster.workers": 1},
], ids=["adam", "no-overlap", "momentum-2-buckets", "adamw-1-bucket", "3-uneven-minibatch",
        "one-worker"])
def test_every_stage_trains_plain_ddps_model_bit_for_bit(stage, changes):
    """Each worker steps its shard by the elementwise rule of the whole step, on the
    chunk the reduce-scatter summed in the all-reduce's order: the same bits, also when
    n does not divide the buckets and on mini-batches."""
    plain, sharded = _run(0, **changes), _run(stage, **changes)
    np.testing.assert_array_equal(sharded.model.params_, plain.model.params_)
    for column in ("loss", "update", "epoch"):
        assert [h[column] for h in sharded.history] == [h[column] for h in plain.history]
    assert sharded.summary["updates"] == plain.summary["updates"] == 4


def test_each_worker_owns_the_chunk_the_ring_leaves_summed_on_it():
    """Worker i owns chunk (i + 1) mod n of every bucket; the shards partition the model."""
    model = MLPClassifier(hidden=[5, 3])
    model.init_params(4, 3)
    buckets = buckets_of(model, 1)
    shards = [Shard(buckets, i, 3) for i in range(3)]
    assert shards[0].mine[0] == chunk_slices(buckets[0].span, 3)[1]
    assert sorted(np.concatenate([s.index for s in shards]).tolist()) == list(range(model.n_params))
    assert [s.size for s in shards] == [len(s.index) for s in shards]


# -- memory ---------------------------------------------------------------------------

def _persistent(result, worker: str) -> dict:
    at_peak = result.memory[worker]["breakdown"]
    return {c: at_peak[c] for c in ("params", "grads", "optimizer")}


@pytest.mark.parametrize("stage", STAGES)
def test_a_workers_memory_follows_the_papers_accounting(stage):
    """With Adam in float64: 32 Psi (stage 0), 16 Psi + 16 Psi/n, 8 Psi + 24 Psi/n,
    32 Psi/n bytes of parameters, gradients and optimizer state at the peak, on every
    worker; the rest is the activations, the shard, the message buffers and the
    unsharded buckets in use."""
    result = _run(stage)
    formula = memory_per_worker(stage, PSI, N)
    per_psi = {0: (32, 0), 1: (16, 16), 2: (8, 24), 3: (0, 32)}[stage]
    assert sum(formula.values()) == per_psi[0] * PSI + per_psi[1] * PSI / N
    for w in range(N):
        assert _persistent(result, f"worker{w}") == formula, f"worker{w}"
    at_peak = result.memory["worker0"]["breakdown"]
    assert result.memory["worker0"]["peak"] == sum(at_peak.values())
    assert at_peak["activations"] > 0
    assert (at_peak.get("unsharded", 0) > 0) == (stage >= 2)


def test_uneven_chunks_book_each_workers_own_chunks():
    """n = 3 does not divide the buckets: a worker's shard is the sum of its chunks."""
    result = _run(3, **{"cluster.workers": 3})
    model = MLPClassifier(hidden=[31, 32])
    model.init_params(7, 4)
    buckets = buckets_of(model, 1)
    for i in range(3):
        size = Shard(buckets, i, 3).size
        assert _persistent(result, f"worker{i}") == {"params": 8 * size, "grads": 8 * size,
                                                     "optimizer": 16 * size}
    sizes = {Shard(buckets, i, 3).size for i in range(3)}
    assert len(sizes) > 1  # the case this test is for


def test_without_overlap_stage_2_holds_every_bucket_unsharded():
    """The reduce-scatters wait for the end of backward: every bucket's gradient is held
    whole at once (PSI * 8 bytes), so stage 2 saves gradient memory only with overlap."""
    late = _run(2, **{"strategy.overlap": False, **COMPUTE_BOUND})
    early = _run(2, **COMPUTE_BOUND)
    assert late.memory["worker0"]["breakdown"]["unsharded"] == 8 * PSI
    assert early.memory["worker0"]["breakdown"]["unsharded"] < 8 * PSI


def test_a_model_out_of_memory_under_ddp_trains_under_stage_3():
    """A limit between stage 3's peak and plain DDP's: DDP stops, stage 3 trains on."""
    peaks = {stage: _run(stage).memory["worker0"]["peak"] for stage in (0, 3)}
    limit = (peaks[0] + peaks[3]) / 2
    plain = _run(0, **{"cluster.memory": limit})
    assert plain.summary["stop_reason"].startswith("out of memory on worker")
    assert "optimizer" in plain.summary["stop_reason"]
    sharded = _run(3, **{"cluster.memory": limit})
    assert sharded.summary["stop_reason"] == "4 updates done (stop.rounds)"


def test_the_bundled_scenario_fits_only_under_stage_3():
    """zero3_mlp (TOML): 2 MB per worker; stage 3 trains, plain ddp stops at once."""
    from simdml import load_scenario
    s = load_scenario("zero3_mlp").replace(**{"stop.rounds": 2})
    assert s.strategy.build_options().zero == 3
    fits = run(s)
    assert fits.summary["stop_reason"] == "2 updates done (stop.rounds)"
    assert max(m["peak"] for m in fits.memory.values()) <= 2e6
    plain = run(s.replace(**{"strategy.zero": 0}))
    assert plain.summary["updates"] == 0
    assert plain.summary["stop_reason"].startswith("out of memory on worker")


def test_a_chunk_of_the_wrong_shape_is_an_error_not_a_broadcast(monkeypatch):
    """Were the ring's order ever broken, adding a 1-element chunk to a longer one would
    broadcast silently; the reduce-scatter refuses it instead."""
    from simdml.cluster import Node
    post, sent = Node.post, []

    def shortened(self, dst, payload, nbytes=None):
        sent.append(payload)
        if len(sent) == 1:
            payload = payload[:1]
        return post(self, dst, payload, nbytes)
    monkeypatch.setattr(Node, "post", shortened)
    with pytest.raises(RuntimeError, match="received a chunk of shape \\(1,\\)"):
        _run(2)


@pytest.mark.parametrize("stage", [1, 2, 3])
@pytest.mark.parametrize("name", ["rabenseifner", "halving_doubling"])
def test_along_rabenseifner_s_halves_every_stage_trains_its_ddp_model_bit_for_bit(stage, name):
    """Recursive halving leaves chunk i on worker i; each stage steps it and gathers by
    doubling: DDP's model with the same all-reduce, bit for bit (its order of adding)."""
    changes = {"strategy.collective": name}
    plain, sharded = _run(0, **changes), _run(stage, **changes)
    np.testing.assert_array_equal(sharded.model.params_, plain.model.params_)
    ring = _run(stage)
    np.testing.assert_allclose(sharded.model.params_, ring.model.params_, rtol=0, atol=1e-12)
    assert _bytes_per_step(stage, **changes) == _bytes_per_step(stage)  # (n-1)/n Psi a half


@pytest.mark.parametrize("changes, message", [
    ({"strategy.collective": "tree"}, "collective='tree' has none"),
    ({"strategy.collective": "rabenseifner", "cluster.workers": 3}, "power-of-two"),
])
def test_zero_along_a_collective_without_halves_is_refused(changes, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario().replace(**{**BASE, "strategy.zero": 1, **changes})


# -- communication ----------------------------------------------------------------------

def _bytes_per_step(stage: int, **changes) -> float:
    """Bytes all workers send in one step: a run one step longer, minus the run (what
    the next iteration's first messages add cancels)."""
    short = _run(stage, **changes)
    longer = _run(stage, **{"stop.rounds": 5, **changes})
    return longer.summary["bytes_sent"] - short.summary["bytes_sent"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("n", [2, 4])
def test_bytes_per_step_are_two_or_three_times_psi_in_the_rings_form(stage, n):
    """Per worker and step: 2 (n-1)/n Psi for stages 0-2, 3 (n-1)/n Psi for stage 3."""
    factor = 3 if stage == 3 else 2
    expected = n * factor * (n - 1) / n * 8 * PSI
    assert _bytes_per_step(stage, **{"cluster.workers": n}) == expected


# -- the time model ---------------------------------------------------------------------

def _parts(s: Scenario):
    """The time model's terms: forward and backward per layer, buckets, the ring half of
    each bucket, and the step of one shard (seconds)."""
    model = MLPClassifier(hidden=s.model.options["hidden"])
    model.init_params(s.data.n_features, s.data.n_classes)
    rows = round(s.data.n_samples * (1 - s.data.test_size)) // N
    speed = s.cluster.speed[0]
    flops = model.layer_flops(rows)
    buckets = buckets_of(model, s.strategy.build_options().bucket_size)
    collective = s.strategy.options.get("collective", "ring")
    half = [allreduce_time(collective, N, 8 * (b.span.stop - b.span.start), s.network.latency,
                           s.network.bandwidth) / 2 for b in buckets]
    opt = OptimizerConfig(**s.to_dict()["optimizer"]).build(lr=s.strategy.lr, horizon=1)
    return ([f / speed for f, _ in flops], [b / speed for _, b in flops], buckets, half,
            opt.flops(model.n_params // N) / speed)


def _simulated(s: Scenario) -> tuple[float, dict]:
    result = run(s)
    times = np.diff([h["time"] for h in result.history])
    np.testing.assert_allclose(times, times[0], rtol=1e-12)
    return float(times[0]), result.summary


CASES = [(stage, overlap, bound, size) for stage in (1, 2, 3) for overlap in (True, False)
         for bound in ("compute", "comm") for size in (1, 9000)]


@pytest.mark.parametrize("stage, overlap, bound, size", CASES)
def test_an_iteration_lasts_the_time_model(stage, overlap, bound, size):
    _lasts_the_time_model(stage, overlap, bound, size, "ring")


@pytest.mark.parametrize("stage, overlap, bound, size", [
    c for c in CASES if c[3] == 9000])
def test_along_rabenseifner_s_halves_an_iteration_lasts_the_time_model(stage, overlap, bound,
                                                                      size):
    """The same forms, each half ``log2 n alpha + (n - 1) / n b beta``."""
    _lasts_the_time_model(stage, overlap, bound, size, "rabenseifner")


def _lasts_the_time_model(stage, overlap, bound, size, collective):
    s = Scenario().replace(**{**BASE, **(COMPUTE_BOUND if bound == "compute" else COMM_BOUND),
                              "strategy.zero": stage, "strategy.overlap": overlap,
                              "strategy.bucket_size": size, "strategy.collective": collective})
    forward, backward, buckets, half, step = _parts(s)
    simulated, summary = _simulated(s)
    formula = iteration_time(stage, forward, backward, buckets, half, step, overlap)
    assert math.isclose(simulated, formula, rel_tol=1e-9), (simulated, formula)
    busy = sum(forward) + sum(backward) + step
    assert math.isclose(summary["exposed_comm_per_iteration"], formula - busy, rel_tol=1e-9,
                        abs_tol=1e-15)
    assert math.isclose(summary["comm_per_iteration"], (3 if stage == 3 else 2) * sum(half),
                        rel_tol=1e-9)


def test_the_no_overlap_forms_add_every_collective():
    """Stage 1, 2: F + B + sum RS + S + sum AG; stage 3: F + B + 2 sum AG + sum RS + S."""
    forward, backward, buckets = [1.0, 2.0], [3.0, 4.0], [None, None]
    half = [10.0, 20.0]
    assert iteration_time(1, forward, backward, buckets, half, 0.5, False) == 10 + 60 + 0.5
    assert iteration_time(3, forward, backward, buckets, half, 0.5, False) == 10 + 90 + 0.5


def test_stage_3_prefetch_hides_gathers_when_compute_dominates():
    """With overlap, only the first gather and the last reduce-scatter are exposed when
    every unit computes longer than the next gather takes."""
    s = Scenario().replace(**{**BASE, **COMPUTE_BOUND, "strategy.zero": 3})
    forward, backward, buckets, half, step = _parts(s)
    formula = iteration_time(3, forward, backward, buckets, half, step)
    first, last = half[-1], half[-1]  # bucket K-1 is gathered first and reduced last
    assert math.isclose(formula, sum(forward) + sum(backward) + step + first + last,
                        rel_tol=1e-9)
    assert formula < iteration_time(3, forward, backward, buckets, half, step, False)


# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("value, message", [
    (4, r"zero must be one of 0, 1, 2, 3 .*got 4"),
    (-1, r"zero must be one of 0, 1, 2, 3 .*got -1"),
    (1.5, r"zero must be one of .*got 1.5"),
    (True, r"zero must be one of .*got True"),
    ("3", r"zero must be one of .*got '3'"),
    (1.0, r"zero must be one of .*got 1.0"),
])
def test_a_bad_stage_names_the_key_and_the_stages(value, message):
    with pytest.raises(ScenarioError, match=message):
        Scenario().replace(**{**BASE, "strategy.zero": value})


def test_zero_is_a_key_of_ddp_only():
    plain = {k: v for k, v in BASE.items() if k != "strategy.bucket_size"}
    with pytest.raises(ScenarioError, match="unknown key strategy.zero for strategy.kind="
                                            "'allreduce'"):
        Scenario().replace(**{**plain, "strategy.kind": "allreduce", "strategy.zero": 1})


# -- the formulas beside the simulation ---------------------------------------------------

def table() -> list[tuple]:
    """Per stage: the paper's bytes per worker, the simulated ones, bytes per step
    (formula, counted), and the time per iteration (formula, simulated)."""
    rows = []
    for stage in STAGES:
        result = _run(stage, **COMM_BOUND)
        formula = sum(memory_per_worker(stage, PSI, N).values())
        factor = 3 if stage == 3 else 2
        s = Scenario().replace(**{**BASE, **COMM_BOUND, "strategy.zero": stage})
        simulated, _ = _simulated(s)
        timed = (iteration_time(stage, *_parts(s)) if stage else None)
        rows.append((stage, formula, sum(_persistent(result, "worker0").values()),
                     factor * (N - 1) * 8 * PSI, _bytes_per_step(stage, **COMM_BOUND),
                     timed, simulated))
    return rows


if __name__ == "__main__":
    print(f"{'stage':>5} {'memory formula':>14} {'simulated':>10} {'bytes/step formula':>18} "
          f"{'counted':>9} {'T formula (s)':>14} {'T simulated (s)':>15}")
    for stage, mf, ms, bf, bs, tf, ts in table():
        print(f"{stage:>5} {mf:>14.0f} {ms:>10} {bf:>18.0f} {bs:>9.0f} "
              f"{(f'{tf:.9g}' if tf is not None else '(ddp)'):>14} {ts:>15.9g}")
