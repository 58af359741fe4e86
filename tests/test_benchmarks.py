"""The benchmark script keeps working (smoke test: no timings are asserted here)."""
import importlib.util
import json
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_kernel_benchmarks_run_and_write_results(tmp_path):
    """`benchmarks/run.py --quick --only kernel` writes a results file with ratios."""
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "results.json"
    assert module.main(["--quick", "--only", "kernel", "--repeat", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows][-1] == "message round trips"
    assert all(r["vs_limit"] > 0 and r["events_per_s"] > 0 for r in rows)
    assert all(r["minimal_s"] > 0 and r["vs_minimal"] > 0 for r in rows[:3])  # the timeouts


def test_the_scale_benchmark_counts_the_kernels_events():
    """`--only scale` counts events by wrapping the kernel loop's heappop (it looked for it
    in simdml.engine after the kernel became a package, and failed): five timeouts in one
    process are at least five events, and nothing is counted once it stops."""
    from simdml.engine import Simulator
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sim = Simulator()

    def ticks():
        for _ in range(5):
            yield sim.timeout(1.0)
    stop = module._count_events()
    sim.process(ticks())
    sim.run()
    counted = stop()
    assert 5 <= counted <= 8 and sim.now == 5.0
    sim.process(ticks())
    sim.run()
    assert stop() == counted


def test_the_timing_only_benchmark_runs():
    """`--only timing --quick`: the shapes-vs-math ratio and a 64-node what-if."""
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.bench_timing(quick=True, repeat=1)
    assert rows[0]["vs_limit"] > 0 and rows[1]["steps_per_s"] > 0
    assert rows[1]["peak_gb"] > 1 and rows[1]["events_per_step"] > 1


def test_the_federated_benchmark_runs_its_populations(tmp_path):
    """`--quick --only federated` times two populations' rounds and the largest's whole
    run with its peak memory against the dataset."""
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "results.json"
    assert module.main(["--quick", "--only", "federated", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["name"] for r in rows] == ["1,000 clients, 100 a round",
                                         "10,000 clients, 100 a round",
                                         "10,000 clients, 50 rounds"]
    assert all(r["per_round_ms"] > 0 for r in rows[:2])
    assert rows[2]["peak_bytes"] > 0 and rows[2]["vs_dataset"] > 0


def test_the_learner_math_limits_compute_what_simdml_computes():
    """Each plain-numpy limit of `--only math` returns simdml's ``grad`` (1e-12; the
    binary sigmoid the gradient of the class difference) and the plain DP-SGD sum is
    ``clipped_outer_sum``: the ratios compare the same math. Then a one-size run."""
    import numpy as np
    from simdml.models import MODELS
    from simdml.privacy import clipped_outer_sum
    sys.path.insert(0, str(RUN.parent))
    import learner_math as lm
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40, lm.N_FEATURES))
    y, yf = rng.integers(0, 2, 40), rng.standard_normal(40)
    for kind, classes in (("logistic", 2), ("svm", 2), ("linear", 1), ("mlp", 2)):
        model = MODELS[kind](l2=lm.L2)
        params = 0.3 * rng.standard_normal(model.init_params(lm.N_FEATURES, classes).size)
        target = yf if kind == "linear" else y
        ours = model.grad(params, X, target)
        for label, plain in lm.limits(kind, model, params, X, target).items():
            got, want = plain(), ours
            if kind == "mlp":
                got = np.concatenate([np.append(gW.ravel(), gb) for gW, gb in got[::-1]])
            elif "sigmoid" in label:   # the data term of class 1's column: p_1 - y, one column
                table, W = ours.reshape(-1, 2), params.reshape(-1, 2)
                w = W[:-1, 1] - W[:-1, 0]
                got = np.append(got[0] - lm.L2 * w, got[1])
                want = np.append(table[:-1, 1] - lm.L2 * W[:-1, 1], table[-1, 1])
            elif kind == "linear":
                got = np.append(got[0], got[1])
            else:
                got = np.vstack([got[0], got[1]]).ravel()
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14, err_msg=label)
    model = MODELS["logistic"](l2=lm.L2)
    params = 0.3 * rng.standard_normal(model.init_params(lm.N_FEATURES, 2).size)
    W = params.reshape(lm.N_FEATURES + 1, 2)
    np.testing.assert_allclose(lm.plain_per_example_logistic(W[:-1], W[-1], X, y),
                               clipped_outer_sum(X, model.per_example_factors(params, X, y), 1.0),
                               rtol=1e-12, atol=1e-14)
    rows = lm.bench_math(quick=True, repeat=1, rows=(50,))
    assert len(rows) == 7 and all(r["vs_limit"] > 0 for r in rows)


def test_the_overhead_limit_is_the_run_s_own_math():
    """`--only overhead` compares a simulated round with a round of plain numpy
    (``plain_rounds``): its rounds reach the sync run's model (1e-12), so the ratio
    compares the same gradients and steps; its async rounds step at every push, with
    simdml's ``grad`` as with plain numpy; the scale group's limits (a worker's ``grad``,
    the cohorts' stacked passes) reach the run's model too. Then the quick table runs."""
    import numpy as np
    import simdml
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    s = module.training_scenario("sync", 8, 2_000, 6, 7)
    W, b = module.plain_rounds(s)(7)
    params = simdml.run(s).model.params_
    assert np.abs(params.reshape(7, 2) - np.vstack([W, b])).max() < 1e-12
    assert np.abs(params - module.plain_rounds(s, simdml_math=True)(7)).max() < 1e-12
    a = module.training_scenario("async", 8, 2_000, 6, 7)  # a push at a time: both limits
    W, b = module.plain_rounds(a)(3)                       # step as each gradient comes
    assert np.abs(np.vstack([W, b]).ravel()
                  - module.plain_rounds(a, simdml_math=True)(3)).max() < 1e-12
    assert np.abs(np.vstack([W, b]) - np.vstack(module.plain_rounds(s)(3))).max() > 1e-6
    for n in (2_003, 7_000):                               # the scale group's two limits:
        s = module.training_scenario("sync", 7, n, 6, 5)   # shards of two sizes; too large
        params = simdml.run(s).model.params_               # to stack (990 > SHARD_ROWS)
        for stacked in (False, True):
            assert np.abs(params - module.numpy_loop(s, 5, stacked=stacked)()).max() < 1e-12
    rows = module.bench_overhead(quick=True, repeat=1)
    assert [r["name"] for r in rows] == [f"{kind}, K={k}, a round" for k in (16, 256)
                                         for kind in ("sync", "async")]
    assert all(r["limit_ms"] > 0 and r["vs_limit"] > 0 and r["vs_math"] > 0 for r in rows)
