"""Contracts of the distributed SVMs: the cascade and ADMM reach the centralized optimum,
local fusion fuses by its rule, and the simulated time and bytes are the ones the
messages and the operation counts say."""
import math

import numpy as np
import pytest

from simdml import Scenario, ScenarioError, run
from simdml.experiment import prepare_data
from simdml.fusion import Constant, fuse
from simdml.messages import SUPPORT_SET_HEADER
from simdml.models import KernelSVM, LinearSVM, LogisticRegression
from simdml.strategies.local_fusion import local_fit


def _scenario(kind, model, **changes) -> Scenario:
    base = {"strategy.kind": kind, "model.kind": model, "cluster.workers": 4,
            "data.dataset": "wine", "stop.rounds": 30}
    return Scenario().replace(**{**base, **changes})


def _central_svm(s: Scenario, **options) -> tuple[KernelSVM, object]:
    """The centralized kernel SVM on the run's own training set, with the cascade's
    gamma (``"scale"`` resolved on the whole training set)."""
    split = prepare_data(s)
    X = split.X_train
    model = KernelSVM(gamma=1.0 / (X.shape[1] * X.var()), **options).fit(X, split.y_train)
    return model, split


# ------------------------------------------------------------------------ cascade


@pytest.mark.parametrize("dataset", ["iris", "wine", "breast_cancer"])
@pytest.mark.parametrize("workers, partition", [(1, "iid"), (2, "iid"), (4, "iid"),
                                                (5, "iid"), (4, "label_skew")])
def test_cascade_reaches_the_centralized_optimum(dataset, workers, partition):
    """The fed-back cascade converges (its support vectors stop changing) to the
    centralized SVM: its primal objective on the whole training set is within 1e-3
    (relative, the SMO tolerance) of the centralized dual optimum, and its test
    predictions are the centralized ones."""
    s = _scenario("cascade_svm", "kernel_svm", **{"data.dataset": dataset,
                                                  "cluster.workers": workers,
                                                  "data.partition": partition})
    r = run(s)
    central, split = _central_svm(s)
    assert r.summary["stop_reason"].startswith("converged: the support vectors did not change")
    optimum = central.dual_objective_.sum()
    assert r.summary["final_loss"] == pytest.approx(optimum, rel=1e-3)
    assert r.summary["final_loss"] >= optimum * (1 - 1e-6)  # a primal value is above the dual
    agree = np.mean(r.model.predict(split.X_test) == central.predict(split.X_test))
    assert agree >= 0.98


def test_cascade_time_and_bytes_follow_the_messages():
    """Two workers, one pass: worker 1 fits and sends its n_SV support vectors (ids,
    features, labels: n_SV (8 d + 16) bytes; the alphas sparse, 16 bytes per non-zero
    and 24 per problem; a 16-byte header, pass and sender); worker 0 merges, warm-started
    from both; the simulated time is max(fit_0, fit_1 + latency + bytes / bandwidth)
    + fit_merge, exactly."""
    s = _scenario("cascade_svm", "kernel_svm", **{"cluster.workers": 2, "strategy.feedback": False,
                                                  "cluster.speed": [1e9, 2e9]})
    r = run(s)
    split = prepare_data(s)
    X, y = split.X_train, split.y_train
    gamma = 1.0 / (X.shape[1] * X.var())
    fits = [KernelSVM(gamma=gamma).fit(X[p], y[p]) for p in split.parts]
    svs = [p[f.support_] for p, f in zip(split.parts, fits)]
    merged = np.union1d(*svs)
    start = {}
    for f, sv in zip(fits, svs):
        for key, alpha in f.support_alpha().items():
            start.setdefault(key, np.zeros(merged.size))[np.searchsorted(merged, sv)] += alpha
    merge = KernelSVM(gamma=gamma).fit(X[merged], y[merged], alpha_init=start)
    n_alpha = sum(np.count_nonzero(a) for a in fits[1].support_alpha().values())
    nbytes = svs[1].size * (8 * X.shape[1] + 16) + 16 * n_alpha + 24 * 3 + SUPPORT_SET_HEADER
    assert r.summary["bytes_sent"] == nbytes and r.summary["messages_sent"] == 1
    net = s.network
    expected = (max(fits[0].flops_ / 1e9, fits[1].flops_ / 2e9 + net.latency + nbytes / net.bandwidth)
                + merge.flops_ / 1e9)
    assert r.summary["sim_time"] == pytest.approx(expected, rel=1e-12)
    assert r.summary["stop_reason"] == "one pass (feedback = false)"
    np.testing.assert_array_equal(r.model.support_vectors_, merge.support_vectors_)


def test_cascade_on_seven_workers_merges_everything_once():
    """A cascade over a number of workers that is not a power of two still merges every
    worker's support vectors (a binomial tree), and is reproducible."""
    s = _scenario("cascade_svm", "kernel_svm", **{"cluster.workers": 7, "data.dataset": "iris"})
    a, b = run(s), run(s)
    assert a.summary["stop_reason"].startswith("converged")
    assert a.history == b.history and a.summary["bytes_sent"] == b.summary["bytes_sent"]


def test_a_merges_warm_start_is_both_sides_alphas_or_the_better_sides():
    """Disjoint sets: each row keeps its own alpha (their sum), per problem, and rows,
    labels and alphas stay aligned in id order; overlapping sets (a support vector on
    both sides): the alphas of the side with the higher dual objective, 0 on the other
    side's rows, with that objective."""
    from simdml.strategies.cascade import SupportVectors, _union

    def sv(ids, alpha, objective):
        ids = np.array(ids)
        return SupportVectors(ids, ids[:, None] * 1.0, ids % 2, alpha, objective)

    a = sv([1, 4], {"p": np.array([0.5, 0.25]), "q": np.array([1.0, 0.0])}, {"p": 3.0, "q": 1.0})
    b = sv([2, 7], {"p": np.array([0.125, 2.0])}, {"p": 5.0})
    u = _union(a, b)
    np.testing.assert_array_equal(u.ids, [1, 2, 4, 7])
    np.testing.assert_array_equal(u.X[:, 0], [1, 2, 4, 7])
    np.testing.assert_array_equal(u.y, [1, 0, 0, 1])
    np.testing.assert_array_equal(u.alpha["p"], [0.5, 0.125, 0.25, 2.0])
    np.testing.assert_array_equal(u.alpha["q"], [1.0, 0.0, 0.0, 0.0])
    assert u.objective == {"p": 5.0, "q": 1.0}
    c = sv([4, 9], {"p": np.array([0.75, 0.75])}, {"p": 4.0})   # row 4 on both sides
    for first, second in ((a, c), (c, a)):
        u = _union(first, second)
        np.testing.assert_array_equal(u.ids, [1, 4, 9])
        np.testing.assert_array_equal(u.alpha["p"], [0.0, 0.75, 0.75])   # c's: 4.0 > 3.0
        np.testing.assert_array_equal(u.alpha["q"], [1.0, 0.0, 0.0])     # only a has q
        assert u.objective == {"p": 4.0, "q": 1.0}


def test_cascade_needs_a_kernel_svm():
    """The cascade trains kernel SVMs only; the error names both keys."""
    with pytest.raises(ScenarioError, match=r"strategy.kind='cascade_svm' trains model.kind in "
                                            r"'kernel_svm'; got model.kind='logistic'"):
        _scenario("cascade_svm", "logistic")
    with pytest.raises(ScenarioError, match=r"strategy.kind='sync' trains model.kind in "
                                            r"'logistic', 'linear', 'svm', 'mlp', 'mlp_regression'; "
                                            r"got model.kind='kernel_svm'"):
        _scenario("sync", "kernel_svm")


# --------------------------------------------------------------------------- ADMM


def _linear_svm_optimum(s: Scenario) -> float:
    """min of LinearSVM's objective (l2 = model.l2, rows weighted 1/n), exactly, by SMO:
    sum_c [l2/2 ||w_c||^2 + mean_i hinge_ic] = l2 * sum_c W_c(C = 1 / (l2 n))."""
    split = prepare_data(s)
    l2, n = LinearSVM().l2, split.y_train.size
    ref = KernelSVM(kernel="linear", C=1.0 / (l2 * n), multiclass="ovr", tol=1e-6,
                    max_iter=10**6).fit(split.X_train, split.y_train)
    return l2 * ref.dual_objective_.sum()


@pytest.mark.parametrize("partition", ["iid", "label_skew"])
def test_admm_converges_to_the_centralized_linear_svm(partition):
    """Consensus ADMM reaches the centralized linear SVM's minimum objective within
    1e-3 (relative) for iid and label-skewed shards, and stops on its residuals."""
    s = _scenario("admm_svm", "svm", **{"data.partition": partition, "stop.rounds": 500,
                                        "strategy.eps_abs": 1e-5, "strategy.eps_rel": 1e-4,
                                        "strategy.local_tol": 1e-4})
    r = run(s)
    assert r.summary["stop_reason"].startswith("converged: residuals")
    assert r.summary["final_loss"] == pytest.approx(_linear_svm_optimum(s), rel=1e-3)


def test_admm_records_residuals_that_shrink():
    """Every history row after the start carries the primal and dual residuals; both end
    far below where they started."""
    r = run(_scenario("admm_svm", "svm", **{"stop.rounds": 60}))
    rows = r.history[1:]
    assert all("primal_residual" in h and "dual_residual" in h for h in rows)
    assert rows[-1]["primal_residual"] < 0.1 * max(h["primal_residual"] for h in rows)
    assert rows[-1]["dual_residual"] < 0.1 * max(h["dual_residual"] for h in rows)


def test_admm_sends_one_model_each_way_per_iteration():
    """Per iteration each worker pushes x_i and the server broadcasts z: 2 K messages
    of (d + 1) k floats (+ the worker's index), plus the first broadcast."""
    s = _scenario("admm_svm", "svm", **{"stop.rounds": 5, "strategy.eps_abs": 1e-12,
                                        "strategy.eps_rel": 1e-12})
    r = run(s)
    k, size = 4, (13 + 1) * 3 * 8
    assert r.summary["messages_sent"] == k + 5 * 2 * k
    assert r.summary["bytes_sent"] == (k + 5 * k) * size + 5 * k * (size + 8)


def test_prox_hinge_closes_its_duality_gap():
    """The worker's proximal step is solved exactly: primal and dual values of the
    proximal problem agree to 1e-6."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 3, size=40)
    model = LinearSVM()
    model.init_params(3, 3)
    V = rng.normal(size=12)
    rho, weight = 0.5, 1 / 40
    P, alpha, flops = model.prox_hinge(V, X, y, rho=rho, row_weight=weight, tol=1e-10,
                                       max_epochs=10_000)
    A, T = np.hstack([X, np.ones((40, 1))]), -np.ones((40, 3))
    T[np.arange(40), y] = 1
    primal = weight * np.maximum(0, 1 - T * (A @ P.reshape(4, 3))).sum() + rho / 2 * np.sum((P - V) ** 2)
    S = A.T @ (alpha * T)
    dual = np.sum(alpha * (1 - T * (A @ V.reshape(4, 3)))) - np.sum(S * S) / (2 * rho)
    assert primal == pytest.approx(dual, abs=1e-6) and flops > 0
    assert alpha.min() >= 0 and alpha.max() <= weight


@pytest.mark.parametrize("key, value, message", [
    ("strategy.rho", 0, r"strategy.rho must be a finite number > 0; got 0"),
    ("strategy.local_epochs", 0, r"strategy.local_epochs must be an integer >= 1; got 0"),
    ("strategy.eps_rel", -1.0, r"strategy.eps_rel must be a finite number > 0; got -1.0"),
])
def test_admm_options_are_checked(key, value, message):
    with pytest.raises(ScenarioError, match=message):
        _scenario("admm_svm", "svm", **{key: value})


# ------------------------------------------------------------------- local fusion


def test_parameter_averaging_of_equal_shards_is_the_plain_mean():
    """'average' with equal weights returns the mean of the workers' parameter vectors,
    each fitted on its shard alone with every class."""
    s = _scenario("local_fusion", "logistic", **{"strategy.rule": "average",
                                                 "strategy.weighting": "equal"})
    r = run(s)
    split = prepare_data(s)
    local = [LogisticRegression().fit(split.X_train[p], split.y_train[p], classes=[0, 1, 2])
             for p in split.parts]
    expected = np.mean([m.params_ for m in local], axis=0)
    np.testing.assert_allclose(r.model.members_[0].params_, expected, rtol=0, atol=1e-15)


def test_sample_weighted_averaging_weights_by_shard_size():
    """'average' weighted by samples: sum_i (n_i / n) params_i, for unequal shards."""
    s = _scenario("local_fusion", "svm", **{"strategy.rule": "average",
                                            "data.partition": "label_skew"})
    r = run(s)
    split = prepare_data(s)
    n = np.array([len(p) for p in split.parts])
    assert len(set(n)) > 1
    local = [local_fit(LinearSVM(), split.X_train[p], split.y_train[p], np.arange(3))
             for p in split.parts]
    expected = sum((n_i / n.sum()) * m.params_ for n_i, m in zip(n, local))
    np.testing.assert_allclose(r.model.members_[0].params_, expected, rtol=0, atol=1e-14)


def test_one_worker_vote_is_the_centralized_model():
    """With one worker every rule but 'best' is the learner fitted on all training rows."""
    s = _scenario("local_fusion", "kernel_svm", **{"cluster.workers": 1})
    r = run(s)
    split = prepare_data(s)
    central = KernelSVM().fit(split.X_train, split.y_train)
    np.testing.assert_array_equal(r.model.predict(split.X_test), central.predict(split.X_test))
    assert r.summary["final_accuracy"] == central.score(split.X_test, split.y_test)


def test_best_rule_chooses_the_best_member_on_the_pooled_validation_split():
    """'best' holds out 20 % of each shard, pools it at the server (its bytes counted)
    and keeps the member with the highest accuracy there."""
    s = _scenario("local_fusion", "kernel_svm", **{"strategy.rule": "best",
                                                   "data.partition": "label_skew"})
    r = run(s)
    fused = r.model
    split = prepare_data(s)
    member_bytes = sum(m.nbytes for m in fused.members_)
    n_val = sum(max(1, round(0.2 * len(p))) for p in split.parts)
    d = split.X_train.shape[1]
    assert r.summary["bytes_sent"] == member_bytes + n_val * (8 * d + 8) + 4 * 2 * 8
    assert fused.chosen_ is not None
    test_scores = [m.score(split.X_test, split.y_test) if isinstance(m, KernelSVM) else None
                   for m in fused.members_]
    assert r.summary["final_accuracy"] == test_scores[fused.chosen_]


def test_fusion_rules_on_hand_made_members():
    """vote counts labels (ties to the lower class), soft averages probabilities with
    0 for classes a member never saw, best needs a validation split."""
    X = np.zeros((2, 1))
    members = [Constant(0), Constant(2), Constant(2), Constant(0)]
    classes = np.array([0, 1, 2])
    equal = np.full(4, 0.25)
    np.testing.assert_array_equal(fuse("vote", members, equal, classes).predict(X), [0, 0])
    np.testing.assert_array_equal(fuse("vote", members, [0.2, 0.3, 0.3, 0.2], classes).predict(X), [2, 2])
    soft = fuse("soft", members, equal, classes)
    np.testing.assert_allclose(soft.scores(X), [[0.5, 0, 0.5]] * 2)
    with pytest.raises(ValueError, match=r"fusion rule 'best' needs a non-empty validation split"):
        fuse("best", members, equal, classes)
    with pytest.raises(ValueError, match=r"unknown fusion rule 'mean'; known: best, vote, soft, average, stack"):
        fuse("mean", members, equal, classes)


def test_a_one_class_shard_gives_a_constant_member():
    """An SVM cannot be fitted on one class: that worker's member predicts its class."""
    member = local_fit(KernelSVM(), np.zeros((3, 2)), np.array([1, 1, 1]), np.arange(3))
    assert isinstance(member, Constant) and member.predict(np.zeros((2, 2))).tolist() == [1, 1]


@pytest.mark.parametrize("changes, message", [
    ({"strategy.rule": "mean"}, r"strategy.rule must be one of 'best', 'vote', 'soft', 'average', 'stack'; "
                                r"got 'mean'"),
    ({"strategy.validation": 1.0}, r"strategy.validation must be a fraction in \(0, 1\); got 1.0"),
    ({"strategy.validation": 0.0}, r"strategy.validation must be a fraction in \(0, 1\); got 0.0"),
    ({"strategy.weighting": "size"}, r"strategy.weighting must be 'samples' or 'equal'; got 'size'"),
    ({"strategy.rule": "average"}, r"strategy.rule='average' averages parameter vectors: it needs "
                                   r"model.kind 'logistic' or 'svm'; got model.kind='kernel_svm'"),
])
def test_local_fusion_options_are_checked(changes, message):
    with pytest.raises(ScenarioError, match=message):
        _scenario("local_fusion", "kernel_svm", **changes)


@pytest.mark.parametrize("kind, model", [("cascade_svm", "kernel_svm"), ("admm_svm", "svm"),
                                         ("local_fusion", "kernel_svm")])
def test_same_seed_same_run_and_toml_round_trip(kind, model):
    """Each SVM strategy runs from TOML and gives identical results for the same seed."""
    s = _scenario(kind, model, **{"stop.rounds": 5, "data.partition": "label_skew"})
    again = Scenario.from_dict(__import__("tomllib").loads(s.to_toml()))
    assert again == s
    a, b = run(s), run(again)
    assert a.history == b.history and a.summary == b.summary
    assert math.isfinite(a.summary["final_loss"])


def test_best_rule_with_one_row_shards_and_large_validation():
    """Shards of one row hold nothing out (they fit on their row), others hold out at
    least one row and keep one to fit on; 'best' runs on what was held out."""
    skewed = Scenario().replace(**{"strategy.kind": "local_fusion", "model.kind": "svm",
                                   "strategy.rule": "best", "cluster.workers": 9,
                                   "data.partition": "label_skew", "data.alpha": 0.5})
    assert min(len(p) for p in prepare_data(skewed).parts) == 1
    assert run(skewed).summary["stop_reason"] == "fused 9 local models by 'best'"
    tiny = skewed.replace(**{"cluster.workers": 37, "data.partition": "iid",
                             "strategy.validation": 0.9, "model.kind": "kernel_svm"})
    assert run(tiny).model.chosen_ is not None
    every_row = skewed.replace(**{"cluster.workers": 111, "data.partition": "iid"})
    with pytest.raises(ScenarioError, match=r"strategy.rule='best' needs a validation split, "
                                            r"but every shard holds a single row"):
        run(every_row)


@pytest.mark.parametrize("workers, validation, held_out", [(60, 0.2, 1), (40, 0.9, 2)])
def test_tiny_shards_hold_out_at_least_one_row_and_keep_one(workers, validation, held_out):
    """120 training rows in shards of 2 (20 %: round(0.4) = 0 -> at least 1 held out) or
    3 (90 %: round(2.7) = 3 -> at most 2, one left to fit): every shard holds out exactly
    ``held_out`` rows -- the fitted rows and the bytes of the validation split say so --
    and a run of two-row shards is no scenario error."""
    s = Scenario().replace(**{"strategy.kind": "local_fusion", "model.kind": "svm",
                              "strategy.rule": "best", "data.test_size": 0.2,
                              "cluster.workers": workers, "strategy.validation": validation})
    split = prepare_data(s)
    n, d = split.X_train.shape
    assert n == 120 and {len(p) for p in split.parts} == {n // workers}
    r = run(s)
    assert r.summary["stop_reason"] == f"fused {workers} local models by 'best'"
    assert r.history[-1]["epoch"] * n == pytest.approx(n - workers * held_out)  # rows fitted
    member_bytes = sum(m.nbytes for m in r.model.members_)
    assert r.summary["bytes_sent"] == member_bytes + workers * held_out * (8 * d + 8) + workers * 16


def test_a_two_class_shard_gives_a_fitted_member():
    """Only a one-class shard becomes a constant: two classes fit the learner itself."""
    X = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [1.1, 1.0]])
    y = np.array([0, 0, 1, 1])
    member = local_fit(KernelSVM(), X, y, np.arange(2))
    assert isinstance(member, KernelSVM)
    np.testing.assert_array_equal(member.predict(X), KernelSVM().fit(X, y).predict(X))


def test_kernel_cache_too_small_for_the_training_set_is_a_scenario_error():
    """cache_bytes is checked against one kernel row of the whole training set (the
    largest subset a cascade may fit), before the run, naming the key."""
    s = _scenario("cascade_svm", "kernel_svm", **{"model.cache_bytes": 400})
    with pytest.raises(ScenarioError, match=r"model.cache_bytes: The 'cache_bytes' parameter of "
                                            r"KernelSVM must be an int >= 1064"):
        run(s)


def test_a_run_stopped_before_its_first_model_says_so():
    """A time limit before the first pass: no model, a stop reason that says it, n/a."""
    from simdml.cli import format_summary
    r = run(_scenario("cascade_svm", "kernel_svm", **{"stop.time": 1e-5}))
    assert r.model is None and r.history == []
    assert r.summary["stop_reason"].endswith("no model yet: nothing to evaluate")
    assert "final accuracy   n/a" in format_summary(r)


def test_stacking_learns_which_member_to_trust():
    """On label-skewed digits each local model knows a few classes well; a meta-learner
    fitted on the pooled validation split weighs them per class and beats the plain
    vote; its fit is charged to the server."""
    base = {"strategy.kind": "local_fusion", "model.kind": "logistic", "cluster.workers": 4,
            "data.dataset": "digits", "data.partition": "label_skew", "data.alpha": 0.2}
    vote = run(Scenario().replace(**{**base, "strategy.rule": "vote"}))
    stack = run(Scenario().replace(**{**base, "strategy.rule": "stack"}))
    assert stack.summary["final_accuracy"] > vote.summary["final_accuracy"]
    assert stack.model.meta_ is not None and stack.model.fit_flops_ > 0
    assert stack.nodes["server"]["compute"] > vote.nodes["server"]["compute"]


@pytest.mark.parametrize("model", ["tree", "forest"])
def test_average_of_learners_without_parameters_is_a_scenario_error(model):
    """Trees and forests have no parameter vector to average: refused before the run,
    naming the key (it used to fail inside the run)."""
    with pytest.raises(ScenarioError, match=rf"strategy.rule='average' averages parameter "
                                            rf"vectors: it needs model.kind 'logistic' or 'svm'; "
                                            rf"got model.kind='{model}'"):
        _scenario("local_fusion", model, **{"strategy.rule": "average"})


def test_admm_is_the_consensus_protocol_step_by_step():
    """admm_svm is scaled-form consensus ADMM (Boyd et al. 2011, eqs. 7.6 and 3.12): each
    worker's proximal solve of z - u_i, z the shrunk mean of x_i + u_i, u_i += x_i - z,
    stopping at the first k where r <= eps_pri and s <= eps_dual. The same loop in plain
    numpy, on the same solver, gives the same parameters (to 1e-12) at the same k."""
    from simdml.scenario import build_model
    s = _scenario("admm_svm", "svm", **{"stop.rounds": 300, "data.dataset": "iris"})
    opts, split = s.strategy.build_options(), prepare_data(s)
    model = build_model(s.model)
    z = model.init_params(split.X_train.shape[1], int(split.y_train.max()) + 1)
    m, d1, n = len(split.parts), split.X_train.shape[1] + 1, split.y_train.size
    shrink = m * opts.rho / (model.l2 + m * opts.rho)
    u, alphas = np.zeros((m, z.size)), [None] * m
    for k in range(1, s.stop.rounds + 1):
        x = np.zeros_like(u)
        for i, part in enumerate(split.parts):
            x[i], alphas[i], _ = model.prox_hinge(
                z - u[i], split.X_train[part], split.y_train[part], rho=opts.rho,
                row_weight=1.0 / n, alpha=alphas[i], tol=opts.local_tol,
                max_epochs=opts.local_epochs)
        z_prev, v = z, (x + u).mean(axis=0).reshape(d1, -1)
        v[:-1] *= shrink
        z = v.reshape(-1)
        u += x - z
        r = np.sqrt(((x - z) ** 2).sum())
        dual = opts.rho * math.sqrt(m) * np.linalg.norm(z - z_prev)
        eps_pri = math.sqrt(x.size) * opts.eps_abs + opts.eps_rel * max(
            np.linalg.norm(x), math.sqrt(m) * np.linalg.norm(z))
        eps_dual = math.sqrt(x.size) * opts.eps_abs + opts.eps_rel * opts.rho * np.linalg.norm(u)
        if r <= eps_pri and dual <= eps_dual:
            break
    result = run(s)
    assert k < s.stop.rounds and result.summary["updates"] == k
    assert result.summary["stop_reason"].startswith("converged: residuals")
    np.testing.assert_allclose(result.model.params_, z, rtol=0, atol=1e-12)


def test_the_cascade_resolves_gamma_scale_on_the_whole_training_set():
    """gamma = "scale" is 1 / (n_features * X.var()) of the whole training set, once, for
    every subset of the cascade (on raw features, where the variance is not 1)."""
    s = _scenario("cascade_svm", "kernel_svm", **{"data.standardize": False,
                                                  "data.dataset": "iris"})
    X = prepare_data(s).X_train
    assert X.var() > 2  # raw iris: the check would not see d * var against d / var at 1
    assert run(s).model.gamma == 1.0 / (X.shape[1] * X.var())
