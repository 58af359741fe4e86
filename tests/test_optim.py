"""Optimizers and schedules (``simdml.optim``) and the ``[optimizer]`` section: each update
rule against its paper's algorithm written out here, each schedule against its closed
form, the slice property a sharded optimizer relies on, and every gradient strategy
stepping the optimizer where the math says it must (sync = the centralized optimizer on
the full batch, allreduce = sync, checkpoints keep the state)."""
import math
import re

import numpy as np
import pytest

from simdml import Optimizer, OptimizerConfig, Scenario, ScenarioError, Schedule, State, run
from simdml.cli import main
from simdml.experiment import prepare_data
from simdml.models import LogisticRegression
from simdml.optim import OPTIMIZERS
from simdml.scenario import parse_scenario

KINDS = tuple(OPTIMIZERS)
LR = {"sgd": 0.3, "momentum": 0.1, "nesterov": 0.1, "adam": 0.02, "adamw": 0.02}


def _quadratic(seed=0, size=7):
    """A strictly convex quadratic 1/2 w'Aw - b'w: its gradient Aw - b depends on w, so a
    wrong step shows in every later step."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(size, size))
    return M @ M.T / size + np.eye(size), rng.normal(size=size), rng.normal(size=size)


def _run_optimizer(opt, n_steps=25, seed=0):
    """The parameters after each of ``n_steps`` steps of ``opt`` on the quadratic."""
    A, b, w = _quadratic(seed)
    state, out = opt.init_state(w), []
    for t in range(n_steps):
        w, state = opt.step(w, A @ w - b, state, t)
        out.append(w)
    return out


# -- the update rules, each against its reference written out -----------------------
def test_plain_sgd_is_params_minus_lr_grad_bit_for_bit():
    """sgd at the constant rate without weight decay is ``w - lr * g`` to the last bit
    (today's runs keep their numbers), and a scaled step is ``w - (lr * scale) * g``."""
    rng = np.random.default_rng(1)
    opt = Optimizer(kind="sgd", lr=0.37)
    for t in (0, 1, 17, 10**6):
        w, g = rng.normal(size=9), rng.normal(size=9)
        new, state = opt.step(w, g, opt.init_state(w), t)
        np.testing.assert_array_equal(new, w - 0.37 * g)
        np.testing.assert_array_equal(opt.step(w, g, state, t, scale=0.3)[0], w - (0.37 * 0.3) * g)
    assert state.arrays == {} and state.nbytes == 0 and opt.flops(9) == 18


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_adam_follows_kingma_and_ba_algorithm_1(weight_decay):
    """Adam's every step equals Kingma & Ba (2015), Algorithm 1, written out here (with
    PyTorch's coupled weight decay: g + lambda w before the moments)."""
    alpha, beta1, beta2, eps = 0.05, 0.8, 0.99, 1e-6
    got = _run_optimizer(Optimizer(kind="adam", lr=alpha, beta1=beta1, beta2=beta2, eps=eps,
                                   weight_decay=weight_decay))
    A, b, theta = _quadratic(0)
    m, v = np.zeros_like(theta), np.zeros_like(theta)          # m_0, v_0 <- 0
    for t in range(1, len(got) + 1):                           # t <- t + 1
        g = A @ theta - b + weight_decay * theta               # g_t <- grad f_t(theta_{t-1})
        m = beta1 * m + (1 - beta1) * g                        # biased first moment
        v = beta2 * v + (1 - beta2) * g ** 2                   # biased second raw moment
        m_hat = m / (1 - beta1 ** t)                           # bias-corrected
        v_hat = v / (1 - beta2 ** t)
        theta = theta - alpha * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(got[t - 1], theta, rtol=1e-12, atol=1e-14)


def test_adamw_follows_loshchilov_and_hutter_algorithm_2():
    """AdamW's every step equals Loshchilov & Hutter (2019), Algorithm 2 (the decoupled
    decay of line 12), with a schedule multiplier eta_t (warm-up, then cosine), their
    lambda being lr * weight_decay (PyTorch's convention)."""
    alpha, beta1, beta2, eps, wd = 0.05, 0.9, 0.999, 1e-8, 0.1
    schedule = Schedule(kind="cosine", warmup=4, horizon=20)
    got = _run_optimizer(Optimizer(kind="adamw", lr=alpha, weight_decay=wd, schedule=schedule))
    lam = alpha * wd
    A, b, theta = _quadratic(0)
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t in range(1, len(got) + 1):
        g = A @ theta - b                                      # line 6: no lambda theta here
        m = beta1 * m + (1 - beta1) * g                        # lines 7-8
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)  # lines 9-10
        s = t - 1 - 4                                          # line 11: the multiplier
        eta = t / 4 if t <= 4 else (1 + math.cos(math.pi * min(s, 16) / 16)) / 2
        theta = theta - eta * (alpha * m_hat / (np.sqrt(v_hat) + eps) + lam * theta)  # 12
        np.testing.assert_allclose(got[t - 1], theta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_momentum_and_nesterov_follow_pytorchs_sgd(nesterov, weight_decay):
    """momentum and nesterov equal the update rule of PyTorch's ``torch.optim.SGD``
    (dampening 0), written out here from its documentation."""
    gamma, mu = 0.1, 0.7
    got = _run_optimizer(Optimizer(kind="nesterov" if nesterov else "momentum", lr=gamma,
                                   momentum=mu, weight_decay=weight_decay))
    A, b, theta = _quadratic(0)
    buf = None
    for t in range(1, len(got) + 1):
        g = A @ theta - b
        if weight_decay != 0:
            g = g + weight_decay * theta
        buf = g if t == 1 else mu * buf + g                    # b_1 = g_1; b_t = mu b + g
        g = g + mu * buf if nesterov else buf
        theta = theta - gamma * g
        np.testing.assert_allclose(got[t - 1], theta, rtol=1e-12, atol=1e-14)


def test_a_step_changes_nothing_in_place():
    """A step returns new arrays: the parameters, gradient and state it was given are as
    they were (a checkpoint or a message holding them keeps them)."""
    for kind in KINDS:
        opt = Optimizer(kind=kind, weight_decay=0.1)
        w, g = np.arange(5.0), np.ones(5)
        state = opt.step(w, g, opt.init_state(w), 0)[1]
        before = [w.copy(), g.copy()] + [a.copy() for a in state.arrays.values()]
        opt.step(w, g, state, 1)
        after = [w, g] + list(state.arrays.values())
        assert all(np.array_equal(x, y) for x, y in zip(before, after)), kind


@pytest.mark.parametrize("kind", KINDS)
def test_a_slice_of_the_state_steps_exactly_the_slice(kind):
    """The property ZeRO relies on: the states of consecutive slices of the vector, each
    stepped on its slice, give the whole vector's step bit for bit, and joined they are
    the whole vector's state."""
    opt = Optimizer(kind=kind, lr=0.05, weight_decay=0.01,
                    schedule=Schedule(kind="cosine", warmup=2, horizon=30))
    A, b, w = _quadratic(2, size=11)
    state = opt.init_state(w)
    for t in range(3):  # a state that is not zero any more
        w, state = opt.step(w, A @ w - b, state, t)
    g = A @ w - b
    whole, whole_state = opt.step(w, g, state, 3)
    parts = [slice(0, 4), slice(4, 5), slice(5, 11)]
    stepped = [opt.step(w[p], g[p], state.part(p), 3) for p in parts]
    np.testing.assert_array_equal(np.concatenate([p for p, _ in stepped]), whole)
    joined = State.joined([s for _, s in stepped])
    assert joined.n_steps == whole_state.n_steps == 4
    for name, array in whole_state.arrays.items():
        np.testing.assert_array_equal(joined.arrays[name], array)


@pytest.mark.parametrize("dtype, itemsize", [(np.float64, 8), (np.float32, 4)])
def test_the_state_counts_its_bytes(dtype, itemsize):
    """sgd keeps nothing, momentum and nesterov a velocity, Adam two moments: one number
    per parameter each, in the parameters' dtype (8 bytes float64, 4 float32), known
    before the state is made (``state_nbytes``)."""
    w = np.zeros(1000, dtype=dtype)
    for kind, arrays in [("sgd", 0), ("momentum", 1), ("nesterov", 1), ("adam", 2), ("adamw", 2)]:
        opt = Optimizer(kind=kind)
        state = opt.init_state(w)
        assert state.nbytes == opt.state_nbytes(1000, itemsize) == arrays * 1000 * itemsize, kind
        assert all(a.dtype == dtype for a in state.arrays.values()), kind


# -- the schedules, against their closed forms -------------------------------------
@pytest.mark.parametrize("schedule, steps", [
    (Schedule(), {0: 1.0, 1: 1.0, 999: 1.0}),
    (Schedule(warmup=4), {0: 0.25, 1: 0.5, 3: 1.0, 4: 1.0, 50: 1.0}),
    (Schedule(kind="step", step_size=10, gamma=0.5), {0: 1.0, 9: 1.0, 10: 0.5, 29: 0.25, 30: 0.125}),
    (Schedule(kind="step", step_size=10, gamma=0.5, warmup=5),  # counted after the warm-up
     {0: 0.2, 4: 1.0, 5: 1.0, 14: 1.0, 15: 0.5, 25: 0.25}),
    (Schedule(kind="cosine", horizon=100), {0: 1.0, 25: (1 + math.cos(math.pi / 4)) / 2,
                                            50: 0.5, 100: 0.0, 150: 0.0}),
    (Schedule(kind="cosine", horizon=105, warmup=5, min_lr=0.1),
     {0: 0.2, 4: 1.0, 5: 1.0, 55: 0.1 + 0.9 * 0.5, 105: 0.1, 200: 0.1}),
])
def test_each_schedule_follows_its_closed_form(schedule, steps):
    """The rate at chosen steps, from the closed forms of ``Schedule`` (warm-up
    (t + 1) / W, the step decay gamma^(s // step_size), the cosine of SGDR's eq. (5)),
    at the warm-up's boundaries and past the horizon."""
    for t, factor in steps.items():
        assert schedule.lr(1.0, t) == pytest.approx(factor, rel=1e-12, abs=1e-15), t
        if schedule.min_lr == 0:  # (min_lr is a rate, not a factor)
            assert Optimizer(lr=0.4, schedule=schedule).lr_at(t) == pytest.approx(
                0.4 * factor, rel=1e-12, abs=1e-15)


# -- the strategies step it --------------------------------------------------------
ROUNDS = 8


def _scenario(kind, **changes):
    """Wine has unequal classes: no gradient is zero in exact arithmetic (iris's balanced
    classes make the intercepts' zero, and Adam would step on their rounding noise,
    amplified by lr / eps -- the same in any order of summation only by chance)."""
    base = {"stop.rounds": ROUNDS, "strategy.lr": LR[kind], "model.l2": 1e-3,
            "data.dataset": "wine",
            "optimizer.kind": kind, "cluster.workers": 3, "cluster.speed": [1e9, 3e9, 7e9],
            "data.partition": "proportional"}  # unequal shards
    if kind != "sgd":
        base.update({"optimizer.schedule": "cosine", "optimizer.warmup": 2,
                     "optimizer.weight_decay": 0.01})
    return Scenario().replace(**{**base, **changes})


def _centralized(s, n_steps):
    """The scenario's optimizer on the full batch, in a plain loop: the reference."""
    split = prepare_data(s)
    model = LogisticRegression(l2=1e-3)
    w = model.init_params(split.X_train.shape[1], 3)
    opt = OptimizerConfig(**s.to_dict()["optimizer"]).build(lr=s.strategy.lr, horizon=s.stop.rounds)
    state = opt.init_state(w)
    for t in range(n_steps):
        w, state = opt.step(w, model.loss_grad(w, split.X_train, split.y_train)[1], state, t)
    return w


@pytest.mark.parametrize("kind", KINDS)
def test_sync_equals_the_centralized_optimizer_on_the_full_batch(kind):
    """After a few rounds, sync's parameters equal the same optimizer (its weight decay,
    warm-up and cosine) on the full batch, to 1e-12: the server holds the one state."""
    s = _scenario(kind)
    np.testing.assert_allclose(run(s).model.params_, _centralized(s, ROUNDS), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_task_rounds_equal_the_centralized_optimizer(kind):
    """Scheduled task rounds (the server steps after every block is in) are the same
    centralized optimizer, whoever computed which block."""
    s = _scenario(kind, **{"scheduling.policy": "work_stealing", "scheduling.blocks": 9})
    np.testing.assert_allclose(run(s).model.params_, _centralized(s, ROUNDS), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_allreduce_equals_sync_with_the_same_optimizer(kind):
    """Every replica holds the whole state and steps it identically: allreduce trains the
    model sync does, to 1e-12."""
    sync = run(_scenario(kind))
    ring = run(_scenario(kind, **{"strategy.kind": "allreduce"}))
    np.testing.assert_allclose(ring.model.params_, sync.model.params_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov"])
def test_local_sgd_with_one_local_step_equals_sync_for_linear_optimizers(kind):
    """With H = 1 every worker steps its own velocity; the optimizers linear in the
    gradient average to the velocity of the average, so local_sgd equals sync."""
    sync = run(_scenario(kind))
    local = run(_scenario(kind, **{"strategy.kind": "local_sgd", "strategy.local_steps": 1}))
    np.testing.assert_allclose(local.model.params_, sync.model.params_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_a_local_sgd_worker_keeps_its_state_across_rounds(kind):
    """On one worker, local_sgd with H local steps per round is the centralized optimizer
    for rounds x H steps: the worker's state (and the schedule's step) carries over from
    round to round; the cosine's horizon is stop.rounds x H."""
    s = _scenario(kind, **{"strategy.kind": "local_sgd", "strategy.local_steps": 3,
                           "cluster.workers": 1, "cluster.speed": 1e9, "data.partition": "iid"})
    split = prepare_data(s)
    model = LogisticRegression(l2=1e-3)
    w = model.init_params(split.X_train.shape[1], 3)
    opt = OptimizerConfig(**s.to_dict()["optimizer"]).build(lr=s.strategy.lr, horizon=3 * ROUNDS)
    state = opt.init_state(w)
    for t in range(3 * ROUNDS):
        w, state = opt.step(w, model.loss_grad(w, split.X_train, split.y_train)[1], state, t)
    np.testing.assert_allclose(run(s).model.params_, w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("strategy", ["async", "ssp"])
@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_an_asynchronous_server_steps_its_optimizer_on_every_push(strategy, kind):
    """On one worker (n_1 / n = 1), every push is one whole step of the server's optimizer:
    async and ssp are the centralized optimizer."""
    s = _scenario(kind, **{"strategy.kind": strategy, "cluster.workers": 1,
                           "cluster.speed": 1e9, "data.partition": "iid"})
    np.testing.assert_allclose(run(s).model.params_, _centralized(s, ROUNDS), rtol=0, atol=1e-12)


@pytest.mark.parametrize("policy", [None, "pull"])
@pytest.mark.parametrize("kind", ["momentum", "adam"])
def test_a_restarted_server_resumes_its_optimizer_from_the_checkpoint(policy, kind):
    """The server crashes and restarts from its checkpoint, which holds the optimizer's
    state with the model: training ends with the model of the run without the crash,
    bit for bit (a fresh state after the restart would change it)."""
    changes = {"stop.rounds": 30, "data.dataset": "digits", "cluster.workers": 4,
               "cluster.speed": 1e9, "data.partition": "iid", "network.latency": 1e-4}
    if policy:
        changes.update({"scheduling.policy": policy})
    calm = run(_scenario(kind, **changes))
    crash = {"faults.crash": [{"node": "server", "at": 0.02, "recover_after": 0.01}],
             "faults.checkpoint_every": 4, "faults.checkpoint_time": 5e-4}
    r = run(_scenario(kind, **changes, **crash))
    updates = [h["update"] for h in r.history]
    restored = [u for u in set(updates) if updates.count(u) == 2]  # written, and restored
    assert r.summary["server_restarts"] == 1 and restored[0] > 0  # a state worth keeping
    np.testing.assert_array_equal(r.model.params_, calm.model.params_)


def test_the_checkpoint_test_sees_a_lost_state(monkeypatch):
    """The test above can fail: a restart that forgets the state changes the model."""
    from simdml.strategies.checkpoints import Checkpoints
    restore = Checkpoints.restore
    monkeypatch.setattr(Checkpoints, "restore", lambda self, node: restore(self, node)[:2] + (None,))
    changes = {"stop.rounds": 30, "data.dataset": "digits", "cluster.workers": 4,
               "cluster.speed": 1e9, "data.partition": "iid", "network.latency": 1e-4,
               "faults.crash": [{"node": "server", "at": 0.02, "recover_after": 0.01}],
               "faults.checkpoint_every": 4, "faults.checkpoint_time": 5e-4}
    calm = run(_scenario("momentum", **{k: v for k, v in changes.items() if "faults" not in k}))
    assert not np.array_equal(run(_scenario("momentum", **changes)).model.params_,
                              calm.model.params_)


# -- the section: its errors, in full, and its TOML ------------------------------
@pytest.mark.parametrize("changes, message", [
    ({"optimizer.kind": "adamm"}, "optimizer.kind must be one of 'sgd', 'momentum', "
     "'nesterov', 'adam', 'adamw'; got 'adamm' (did you mean 'adam'?)"),
    ({"optimizer.schedule": "cosin"}, "optimizer.schedule must be one of 'constant', 'step', "
     "'cosine'; got 'cosin' (did you mean 'cosine'?)"),
    ({"optimizer.beta1": 0.5}, "optimizer.beta1 is a setting of optimizer.kind = 'adam' or "
     "'adamw'; got optimizer.kind='sgd', whose keys are: kind, weight_decay, schedule, warmup"),
    ({"optimizer.kind": "momentum", "optimizer.gamma": 0.5}, "optimizer.gamma is a setting "
     "of optimizer.schedule = 'step'; got optimizer.schedule='constant', whose keys are: "
     "kind, weight_decay, schedule, warmup, momentum"),
    ({"optimizer.lr": 0.1}, "unknown key 'optimizer.lr'; allowed in [optimizer]: kind, "
     "weight_decay, momentum, beta1, beta2, eps, schedule, warmup, step_size, gamma, horizon, "
     "min_lr (the learning rate is strategy.lr, where the schedule starts from)"),
    ({"optimizer.kind": "adam", "optimizer.beta2": 1.0},
     "optimizer.beta2 must be < 1 (a decay rate, in [0, 1)); got 1.0"),
    ({"optimizer.kind": "momentum", "optimizer.momentum": -0.1},
     "optimizer.momentum must be >= 0; got -0.1"),
    ({"optimizer.kind": "adam", "optimizer.eps": 0}, "optimizer.eps must be > 0; got 0.0"),
    ({"optimizer.weight_decay": -1}, "optimizer.weight_decay must be >= 0; got -1.0"),
    ({"optimizer.warmup": 2.5}, "optimizer.warmup must be an integer >= 0; got 2.5"),
    ({"optimizer.schedule": "step", "optimizer.step_size": 0},
     "optimizer.step_size must be an integer >= 1; got 0"),
    ({"optimizer.schedule": "step", "optimizer.gamma": 1.5}, "optimizer.gamma must be <= 1; got 1.5"),
    ({"optimizer.schedule": "cosine", "optimizer.horizon": 5, "optimizer.warmup": 5},
     "optimizer.horizon must be > warmup=5 (the cosine runs after the warm-up); got 5"),
    ({"optimizer.schedule": "cosine", "optimizer.warmup": 100},
     "optimizer.warmup=100 leaves no step to the cosine: it ends at stop.rounds=100 "
     "(optimizer.horizon is not set); set optimizer.horizon > optimizer.warmup, or a smaller warmup"),
    ({"optimizer.schedule": "cosine", "optimizer.warmup": 30, "strategy.kind": "local_sgd",
      "stop.rounds": 10, "strategy.local_steps": 2},
     "optimizer.warmup=30 leaves no step to the cosine: it ends at stop.rounds=10 x 2 local "
     "steps = 20 (optimizer.horizon is not set); set optimizer.horizon > optimizer.warmup, "
     "or a smaller warmup"),
    ({"optimizer.schedule": "cosine", "optimizer.min_lr": 1.0}, "optimizer.min_lr must be <= "
     "strategy.lr=0.5 (the cosine decays from strategy.lr to it); got 1.0"),
    ({"optimizer.kind": "adam", "strategy.kind": "hist_tree", "model.kind": "tree"},
     "[optimizer] steps the gradient strategies ('sync', 'async', 'ssp', 'allreduce', 'ddp', "
     "'pipeline', 'tensor', 'hybrid', 'gossip', 'local_sgd', 'fedavg'); strategy.kind='hist_tree' takes no gradient steps: leave [optimizer] at "
     "its defaults (got optimizer.kind='adam', schedule='constant', warmup=0, weight_decay=0.0)"),
])
def test_a_bad_optimizer_section_names_the_key(changes, message):
    """Every error names the dotted key, what is allowed and the value received."""
    with pytest.raises(ScenarioError, match=f"^{re.escape(message)}$"):
        Scenario().replace(**changes)


@pytest.mark.parametrize("changes", [
    {},
    {"optimizer.kind": "adamw"},
    {"optimizer.kind": "adam", "optimizer.beta1": 0.8, "optimizer.eps": 1e-6,
     "optimizer.weight_decay": 0.1, "optimizer.schedule": "cosine", "optimizer.warmup": 5,
     "optimizer.horizon": 50, "optimizer.min_lr": 0.01},
    {"optimizer.kind": "nesterov", "optimizer.momentum": 0.95, "optimizer.schedule": "step",
     "optimizer.step_size": 10, "optimizer.gamma": 0.5},
])
def test_the_optimizer_section_round_trips_through_toml(tmp_path, capsys, changes):
    """``to_toml`` (what ``simdml show`` prints) reads back to an equal scenario, and to
    the same optimizer; unset keys stay unset (the kind's defaults)."""
    s = Scenario().replace(**changes)
    assert parse_scenario(s.to_toml()) == s
    path = s.save(tmp_path / "s.toml")
    assert main(["show", str(path)]) == 0
    shown = parse_scenario(capsys.readouterr().out)
    assert shown == s and shown.optimizer.build(lr=0.5, horizon=100) == s.optimizer.build(
        lr=0.5, horizon=100)


def test_adamw_decays_by_default_and_the_others_do_not():
    """weight_decay left unset is PyTorch's default: 0.01 for adamw, 0 for the others."""
    assert OptimizerConfig(kind="adamw").build(lr=1, horizon=1).weight_decay == 0.01
    assert OptimizerConfig(kind="adam").build(lr=1, horizon=1).weight_decay == 0.0
    assert OptimizerConfig().is_plain and not OptimizerConfig(kind="adamw").is_plain
