"""Issue 16: inputs that used to end in a traceback, a silently wrong run or an unbounded
one are refused at validation with a ScenarioError naming the key, the value and the rule
(items 9, 14, 16-19, 21). Each test says which failure it guards."""
import fractions
import math
import re
import warnings

import numpy as np
import pytest

import simdml
from simdml import Scenario, ScenarioError, run
from simdml.sections import ClusterConfig, StrategyConfig

BASE = Scenario(name="validation").replace(**{"stop.rounds": 3})
HUGE = int("9" * 400)  # an integer no float holds: float(HUGE) raises OverflowError


# -- 16: numbers too large for a float -------------------------------------------------
@pytest.mark.parametrize("key", ["network.latency", "network.bandwidth", "cluster.speed",
                                 "strategy.lr", "faults.mtbf", "data.class_sep"])
def test_a_number_too_large_for_a_float_is_refused_naming_the_key(key):
    """Guards item 16: a 400-digit integer raised OverflowError from float(); now it is a
    ScenarioError naming the key, with the value cut short."""
    with pytest.raises(ScenarioError, match=rf"^{key} must be a finite number.*got 9999.*"
                                            r"\(400 characters\), too large for a float$"):
        BASE.replace(**{key: HUGE})


@pytest.mark.parametrize("key, kind", [("strategy.round_timeout", "sync"),
                                       ("strategy.mu", "local_sgd")])
def test_a_huge_strategy_option_is_refused_naming_the_key(key, kind):
    """Guards item 16 for the strategies' own options (round_timeout, mu)."""
    d = BASE.to_dict()
    d["strategy"] = {"kind": kind, key.split(".")[1]: HUGE}
    with pytest.raises(ScenarioError, match=rf"^{key} must be a finite number.*got 9999"):
        Scenario.from_dict(d)


def test_l2_as_a_huge_integer_is_refused_and_as_a_fraction_is_a_number():
    """Guards item 16: l2 as a 400-digit int or a Fraction raised TypeError from
    np.isfinite; the first is refused naming model.l2, the second is the float it is."""
    with pytest.raises(ScenarioError, match=r"^model.l2: The 'l2' parameter .* must be finite"):
        BASE.replace(**{"model.l2": HUGE})
    s = BASE.replace(**{"model.l2": fractions.Fraction(1, 4)})
    assert s.model.options["l2"] == 0.25 and type(s.model.options["l2"]) is float
    assert "l2 = 0.25" in s.to_toml()


# -- 21: the Python API ----------------------------------------------------------------
def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    """Guards item 21: np.int64 workers and np.float32 lr were kept as numpy scalars (and
    to_toml refused them); now every section stores the Python number."""
    s = BASE.replace(**{"cluster.workers": np.int64(3), "strategy.lr": np.float32(0.25),
                        "model.l2": np.float64(0.5), "cluster.speed": [np.float32(1e9)] * 3,
                        "data.standardize": np.bool_(True)})
    assert type(s.cluster.workers) is int and type(s.strategy.lr) is float
    assert type(s.model.options["l2"]) is float and type(s.data.standardize) is bool
    assert Scenario.from_dict(s.to_dict()) == s and "workers = 3" in s.to_toml()


def test_an_unknown_keyword_of_a_section_is_the_command_lines_error():
    """Guards item 21: ClusterConfig(workers=4, foo=1) was a TypeError; it is the
    ScenarioError the TOML loader gives for an unknown key."""
    with pytest.raises(ScenarioError, match=r"^unknown key 'cluster.foo'; allowed in \[cluster\]"):
        ClusterConfig(workers=4, foo=1)
    with pytest.raises(ScenarioError, match=r"^\[strategy\] takes keyword arguments"):
        StrategyConfig("sync")


def test_a_long_value_is_cut_in_the_message():
    """Guards item 21: a 10 MB string echoed a 10 MB error line; the message is short."""
    with pytest.raises(ScenarioError) as info:
        BASE.replace(**{"data.dataset": "x" * 10_000_000})
    assert len(str(info.value)) < 500 and "(10,000,002 characters)" in str(info.value)


# -- 9: settings that made the numbers silently wrong ---------------------------------
def test_a_class_sep_whose_square_overflows_is_refused():
    """Guards item 9: class_sep = 1e160 made the standardization scale inf, every feature
    0 and accuracy 0.5 with exit 0; now data.class_sep is refused, and so is such data."""
    with pytest.raises(ScenarioError, match=r"^data.class_sep must be <= 1e\+100; got 1e\+160$"):
        BASE.replace(**{"data.dataset": "synthetic", "data.class_sep": 1e160})
    with pytest.raises(ValueError, match=r"column 0 has no finite standard deviation"):
        simdml.data.scaling(np.array([[1e160], [-1e160]]))


@pytest.mark.parametrize("weights, message", [
    ({"0": math.inf}, r"^model.class_weight: The 'class_weight' parameter .* finite weight >= 0"),
    ({"99": 5}, r"^model.class_weight names class 99, but the classes are 0..2; got \{'99': 5\}"),
    ({"0": 0, "1": 0, "2": 0}, r"^model.class_weight gives every class present weight 0"),
])
def test_a_class_weight_that_cannot_weigh_the_classes_is_refused(weights, message):
    """Guards items 9 and 19: an infinite weight was accepted, a weight for a class that
    does not exist was ignored, all weights 0 made the loss 0/0 (validate said ok)."""
    with pytest.raises(ScenarioError, match=message):
        BASE.replace(**{"model.class_weight": weights})


# -- 19: validate says what the run would ---------------------------------------------
@pytest.mark.parametrize("changes, message", [
    ({"data.rebalance": True, "cluster.workers": 50},
     r"^data.rebalance leaves 13 of cluster.workers=50 without rows"),
    ({"data.dataset": "synthetic", "data.n_samples": 4, "data.n_classes": 4},
     r"^data.test_size=0.25 leaves no test rows"),
    ({"data.dataset": "synthetic", "data.weights": [1e-9, 1], "imbalance.method": "undersample"},
     r"^imbalance.method='undersample' leaves 2 training rows for cluster.workers=4"),
])
def test_data_that_cannot_be_trained_on_is_refused_by_prepare_data(changes, message):
    """Guards item 19: rebalancing 50 workers on iris left 13 shards empty
    (ZeroDivisionError), 4 rows of 4 classes left an empty test set, undersampling to 2
    rows failed in the partitioner without a key; `validate` (prepare_data) said ok."""
    with pytest.raises(ScenarioError, match=message):
        simdml.prepare_data(BASE.replace(**changes))


def test_class_weights_that_overflow_their_sum_are_refused():
    """Guards item 19: weights = [1e308, 1e308] overflowed their sum (AssertionError)."""
    with pytest.raises(ScenarioError, match=r"^data.weights must have a finite sum; got \[1e\+308"):
        BASE.replace(**{"data.dataset": "synthetic", "data.weights": [1e308, 1e308]})


# -- 14: sizes that cannot fit are refused with the estimate ---------------------------
@pytest.fixture
def one_gigabyte(monkeypatch):
    """A budget of 1 GB whatever the machine, so that the refusals are deterministic."""
    monkeypatch.setattr(simdml._checks, "memory_budget", lambda: 1e9)


@pytest.mark.parametrize("changes, message", [
    ({"cluster.workers": 2**31 - 1},
     r"^cluster.workers=2147483647 needs about 34.4 TB \(2.1e\+09 nodes of 16 kB\)"),
    ({"data.dataset": "synthetic", "data.n_samples": 10**9},
     r"^data.n_samples=1000000000 with data.n_features=4 needs about 96 GB"),
    ({"data.dataset": "synthetic", "data.n_features": 2**31 - 1},
     r"^data.n_samples=300 with data.n_features=2147483647 needs about 15.5 TB"),
    ({"model.kind": "forest", "strategy.kind": "local_fusion", "model.n_estimators": 10**9},
     r"^model.n_estimators=1000000000 with data.dataset='iris' needs about 3.6 TB"),
    ({"data.dataset": "digits", "cluster.workers": 50_000},
     r"^cluster.workers=50000 with data.dataset='digits' needs about 1.04 GB"),
])
def test_a_scenario_that_cannot_fit_in_memory_is_refused_with_the_estimate(one_gigabyte,
                                                                             changes, message):
    """Guards item 14: these sizes were found by running out of memory (2**31 - 1 workers
    built a 16 GB tuple inside validation); now the estimate is refused at validation."""
    with pytest.raises(ScenarioError, match=message + r".*this machine allows 1 GB"):
        BASE.replace(**changes)


def test_the_memory_check_reads_an_explicit_budget():
    """fits_in_memory: an estimate within the budget passes, one beyond it (or NaN) fails."""
    simdml._checks.fits_in_memory("x", "a test", 10.0, budget=10.0)
    for nbytes in (11.0, math.nan):
        with pytest.raises(ValueError, match=r"^x needs about .* \(a test\); this machine "
                                             r"allows 10 bytes"):
            simdml._checks.fits_in_memory("x", "a test", nbytes, budget=10.0)


def test_an_iteration_count_beyond_the_largest_count_is_refused():
    """Guards item 14: model.n_iter = 1e20 (an integer) ran to the 900 s wall guard."""
    with pytest.raises(ScenarioError, match=r"^model.n_iter: .* must be at most 2,147,483,647"):
        BASE.replace(**{"model.n_iter": 10**20})


# -- 18: values that validate but break the run ---------------------------------------
@pytest.mark.parametrize("changes, message", [
    ({"network.latency": 1e308}, r"^network.latency=1e\+308 with network.bandwidth=.* message time"),
    ({"network.bandwidth": 5e-324}, r"^network.latency=0.0001 with network.bandwidth=5e-324"),
    ({"cluster.speed": 5e-324}, r"^cluster.speed\[0\]=5e-324 with cluster.slowdown\[0\]=1.0 "),
    ({"cluster.speed": 1e-300, "cluster.slowdown": 1e300}, r"^cluster.speed\[0\]=1e-300"),
    ({"cluster.compute_time": "lognormal", "cluster.jitter": 1e300},
     r"^cluster.jitter=1e\+300 with cluster.compute_time='lognormal'"),
    ({"cluster.compute_time": "pareto", "cluster.jitter": 1e-300},
     r"^cluster.jitter=1e-300 with cluster.compute_time='pareto'"),
])
def test_a_duration_that_is_not_finite_is_refused_with_its_keys(changes, message):
    """Guards item 18: these validated, then the run failed ("timeout delay must be finite
    ... got nan", ZeroDivisionError); now validation names the keys that make the time."""
    with pytest.raises(ScenarioError, match=message):
        BASE.replace(**changes)


def test_the_python_api_refuses_a_wrong_type_with_the_command_lines_message(one_gigabyte):
    """Guards item 21: run(5) and sweep(..., seeds=5) were TypeErrors, a duplicated grid
    value counted its point twice, seeds up to 1e11 built a list of 1e11 child seeds."""
    with pytest.raises(ScenarioError, match=r"^scenario must be a Scenario, a TOML path or a "
                                            r"bundled name; got 5$"):
        simdml.run(5)
    grid = {"cluster.workers": [2]}
    with pytest.raises(ScenarioError, match=r"^seeds must be a list of replicate indices >= 0; "
                                            r"got 5$"):
        simdml.sweep(BASE, grid, seeds=5)
    with pytest.raises(ScenarioError, match=r"^grid cluster.workers lists a value twice; "
                                            r"got \[2, 2\]$"):
        simdml.sweep(BASE, {"cluster.workers": [2, 2]})
    with pytest.raises(ScenarioError, match=r"^seeds \(replicate index 100000000000\) needs "
                                            r"about 100 TB"):
        simdml.sweep(BASE, grid, seeds=[10**11])
    with pytest.raises(ScenarioError, match=r"^executor must have submit\(fn, \*args\) \(a "
                                            r"concurrent.futures Executor\); got 5$"):
        simdml.sweep(BASE, grid, executor=5)
    with pytest.raises(ScenarioError, match=r"^a scenario is a TOML path or a bundled name; "
                                            r"got None$"):
        simdml.load_scenario(None)
    with pytest.raises(ScenarioError, match=r"^unknown key 'cluster.foo'"):
        simdml.ClusterConfig(workers=4, foo=1)  # the sections are public names too


def test_a_numpy_seed_is_stored_as_an_int():
    """Guards item 21: Scenario(seed=np.int64(3)) keeps the int 3, so it writes to TOML."""
    s = Scenario(seed=np.int64(3), eval_every=np.int32(2))
    assert type(s.seed) is int and type(s.eval_every) is int
    assert "seed = 3" in s.to_toml()


def test_a_polynomial_degree_beyond_the_largest_count_is_refused_without_warnings():
    """Guards item 21: degree = 10**20 spilled 18 RuntimeWarnings (overflow) in the run."""
    d = BASE.to_dict()
    d["model"], d["strategy"] = {"kind": "kernel_svm", "kernel": "poly", "degree": 10**20}, {
        "kind": "cascade_svm"}
    with pytest.raises(ScenarioError, match=r"^model.degree: .* must be at most 2,147,483,647"):
        Scenario.from_dict(d)


def test_an_effective_speed_that_overflows_is_refused_and_never_warns():
    """Guards item 18: speed 1e308 with slowdown 5e-324 made speed / slowdown overflow
    (a RuntimeWarning in every run); shards in proportion to it are refused, naming
    both keys, and other partitions never compute it."""
    import warnings
    fast = {"cluster.workers": 2, "cluster.speed": 1e308, "cluster.slowdown": 5e-324}
    with pytest.raises(ScenarioError, match=r"cluster.speed / cluster.slowdown, which must "
                                            r"be finite; got \[inf, inf\]"):
        Scenario().replace(**fast, **{"data.partition": "proportional"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simdml.prepare_data(Scenario().replace(**fast))


@pytest.mark.parametrize("strategy", ["cascade_svm", "local_fusion"])
def test_a_polynomial_kernel_that_overflows_stops_as_diverged_without_warnings(strategy):
    """Guards item 21: a valid degree whose kernel leaves float64 ((10 x.z)^400) spilled
    overflow and invalid-value warnings and ran the solver to max_iter on infinities; it
    stops at once as diverged, naming the kernel's settings."""
    d = BASE.to_dict()
    d["model"] = {"kind": "kernel_svm", "kernel": "poly", "degree": 400, "gamma": 10.0}
    d["strategy"] = {"kind": strategy}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = run(Scenario.from_dict(d))
    assert r.summary["stop_reason"].startswith(
        "diverged: the polynomial kernel (gamma x.z + coef0)^degree overflows float64 on "
        "these data with gamma=10, coef0=0, degree=400: lower model.degree or model.gamma")


def test_the_polynomial_kernel_refuses_values_beyond_float64_and_keeps_the_others():
    """The kernel is (gamma x.z + coef0)^degree exactly where it fits in float64."""
    from simdml.models._smo import _kernel
    A = np.array([[1.0, 2.0], [0.5, -1.0]])
    K = _kernel(A, A, kernel="poly", gamma=0.5, degree=3, coef0=1.0)
    assert K == pytest.approx((0.5 * A @ A.T + 1.0) ** 3, rel=1e-15)
    with pytest.raises(FloatingPointError, match="degree=400"):
        _kernel(A, A, kernel="poly", gamma=10.0, degree=400, coef0=0.0)


def test_local_fits_that_cannot_end_within_the_wall_time_are_refused_with_the_estimate():
    """Guards item 14's work estimate: local_fusion runs every local step for real, so
    4 workers × n_iter steps at no less than 1 µs each must fit in stop.wall_time; the
    largest count (2**31 - 1, the 900 s guard after the whole wait) is refused at once."""
    base = BASE.replace(**{"strategy.kind": "local_fusion", "model.kind": "logistic"})
    with pytest.raises(ScenarioError, match=re.escape(
            "model.n_iter=2147483647 with cluster.workers=4: local_fusion runs 8.59e+09 "
            "gradient steps for real, at least 8590 s at 1e-06 s per step, beyond "
            "stop.wall_time=900 s; lower model.n_iter or raise stop.wall_time")):
        base.replace(**{"model.n_iter": 2**31 - 1})
    base.replace(**{"model.n_iter": 225_000_000})                       # 900 s exactly: allowed
    with pytest.raises(ScenarioError, match="stop.wall_time=899 s"):
        base.replace(**{"model.n_iter": 225_000_000, "stop.wall_time": 899.0})
    base.replace(**{"model.kind": "tree", "stop.wall_time": 1e-3})     # no steps: no limit


def test_a_gradient_step_takes_at_least_the_time_the_work_estimate_assumes():
    """The estimate's 1 µs per step is a floor: a real step on 10 rows takes longer."""
    import time
    from simdml.models import LogisticRegression
    from simdml.strategies.local_fusion import STEP_SECONDS
    X, y = np.random.default_rng(0).normal(size=(10, 4)), np.arange(10) % 3
    began = time.process_time()
    LogisticRegression(n_iter=2000).fit(X, y)
    assert time.process_time() - began > 2000 * STEP_SECONDS


def test_a_run_that_stops_before_any_simulated_time_says_so_instead_of_a_rate():
    """A run stopped at t = 0 (here a kernel that overflows at once) printed "0 (nan per
    simulated s)"; the summary table says no simulated time passed."""
    from simdml.tables import format_summary
    d = BASE.to_dict()
    d["model"] = {"kind": "kernel_svm", "kernel": "poly", "degree": 400, "gamma": 10.0}
    d["strategy"] = {"kind": "cascade_svm"}
    table = format_summary(run(Scenario.from_dict(d)))
    assert "updates          0 (no simulated time passed)" in table
    assert "nan" not in table


def test_synthetic_classes_need_a_corner_each_and_the_check_is_instant():
    """make_classification puts each class at a corner of a cube: n_classes <= 2**n_features
    (4 classes on 2 features, not 5). The check compared with 2**n_features itself, 7 s per
    scenario at n_features = 2**31 - 1; it takes no time now."""
    import time
    base = BASE.replace(**{"data.dataset": "synthetic", "data.n_samples": 40,
                           "data.n_features": 2})
    base.replace(**{"data.n_classes": 4})
    with pytest.raises(ScenarioError, match=re.escape(
            "data.n_classes must be <= 2**data.n_features=4 (each class sits at its own corner "
            "of a cube); got 5")):
        base.replace(**{"data.n_classes": 5})
    began = time.process_time()
    with pytest.raises(ScenarioError, match="needs about"):
        base.replace(**{"data.n_features": 2**31 - 1})
    assert time.process_time() - began < 0.5
