"""Optimizers and learning-rate schedules, in plain numpy, with their state explicit.

A strategy decides *where* an optimizer's state lives (on the server, on every worker,
sharded over the workers); this module only says what the state is and how one step
changes it. A step is a pure function::

    params, state = optimizer.step(params, grad, state, t)

of the parameters, the gradient, the state (``State``: named arrays of the parameters'
shape, and the number of steps it has taken) and the step's index ``t`` (0 for the first
step of training), which sets the learning rate through the schedule. Nothing is changed
in place: a checkpoint, or a message, that holds a state keeps it as it was. Every rule is
elementwise, so a state for a slice of the vector steps exactly the slice of the whole
vector's step (``state.part``, ``State.joined``): a sharded optimizer (ZeRO) gives the same
bits as an unsharded one.

``Optimizer(kind="sgd")`` with the constant schedule and no weight decay is plain
gradient descent, ``params - lr * grad``, bit for bit.

Precision: the state is in the parameters' dtype (float64, or float32 for a float32 MLP:
half the bytes), and a step keeps that dtype -- the learning rate is a Python float,
which numpy does not let promote a float32 array, and a result of another dtype (a
float64 gradient, a numpy float64 setting) is rounded back to the parameters'. float64
parameters step exactly as before.

>>> opt = Optimizer(kind="adam", lr=0.1)
>>> params, grad = np.zeros(3), np.array([1.0, -2.0, 0.5])
>>> state = opt.init_state(params)
>>> params, state = opt.step(params, grad, state, t=0)
>>> params.round(6).tolist(), state.n_steps, state.nbytes
([-0.1, 0.1, -0.1], 1, 48)

References
----------
Polyak (1964), "Some methods of speeding up the convergence of iteration methods";
Sutskever et al. (2013), "On the importance of initialization and momentum in deep
learning", ICML (the form of Nesterov's momentum PyTorch uses); Kingma & Ba (2015), "Adam:
A Method for Stochastic Optimization", ICLR, Algorithm 1; Loshchilov & Hutter (2019),
"Decoupled Weight Decay Regularization", ICLR, Algorithm 2 (AdamW); Loshchilov & Hutter
(2017), "SGDR", ICLR, eq. (5) (cosine annealing); Goyal et al. (2017), "Accurate, Large
Minibatch SGD", arXiv:1706.02677 (linear warm-up).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from . import _checks

__all__ = ["Optimizer", "Schedule", "State", "OPTIMIZERS", "SCHEDULES", "UpdateRule"]

SCHEDULES = ("constant", "step", "cosine")


def _below_one(name: str, value) -> float:
    """A decay rate in [0, 1): 1 would never forget, and divide by zero in Adam."""
    value = _checks.number(name, value, low=0)
    if value >= 1:
        raise ValueError(f"{name} must be < 1 (a decay rate, in [0, 1)); got {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """The learning rate at step ``t`` (0-based): ``warmup`` steps of linear warm-up,
    then the schedule, counted from the end of the warm-up (``s = t - warmup``)::

        warm-up  (t < warmup):  lr * (t + 1) / warmup
        constant:               lr
        step:                   lr * gamma ** (s // step_size)
        cosine:                 min_lr + (lr - min_lr) * (1 + cos(pi * min(s, T) / T)) / 2,
                                T = horizon - warmup  (then min_lr after the horizon)

    Examples
    --------
    >>> Schedule(kind="cosine", horizon=10, warmup=2).lr(1.0, 1)
    1.0
    >>> Schedule(kind="step", step_size=3, gamma=0.5).lr(1.0, 7)
    0.25
    """

    kind: str = "constant"      # constant | step | cosine
    warmup: int = 0             # steps of linear warm-up from lr / warmup to lr; 0: none
    step_size: int = 30         # step: steps between two decays (ResNet's recipe: 30 epochs)
    gamma: float = 0.1          # step: factor of each decay, in (0, 1]
    horizon: int | None = None  # cosine: the step at which it reaches min_lr (warm-up
                                # included); a run fills in its stop.rounds
    min_lr: float = 0.0         # cosine: the learning rate it decays to

    def __post_init__(self):
        _checks.choice("schedule", self.kind, SCHEDULES)
        _checks.integer("warmup", self.warmup, low=0)
        _checks.integer("step_size", self.step_size, low=1)
        _checks.number("gamma", self.gamma, low=0, strict_low=True, high=1)
        _checks.number("min_lr", self.min_lr, low=0)
        if self.kind == "cosine":
            if self.horizon is None:
                raise ValueError("horizon is needed by schedule='cosine' (the step at which "
                                 "it reaches min_lr)")
            _checks.integer("horizon", self.horizon, low=1)
            if self.horizon <= self.warmup:
                raise ValueError(f"horizon must be > warmup={self.warmup} (the cosine runs "
                                 f"after the warm-up); got {self.horizon}")

    def lr(self, base: float, t: int) -> float:
        """The learning rate of step ``t`` (0-based) for a base rate ``base``."""
        if t < self.warmup:
            return base * (t + 1) / self.warmup
        s = t - self.warmup
        if self.kind == "step":
            return base * self.gamma ** (s // self.step_size)
        if self.kind == "cosine":
            span = self.horizon - self.warmup
            cosine = (1 + math.cos(math.pi * min(s, span) / span)) / 2
            return self.min_lr + (base - self.min_lr) * cosine
        return base  # constant: the base itself, so that plain SGD keeps its bits


@dataclass(frozen=True, eq=False)
class State:
    """An optimizer's state: named arrays, each of the parameters' shape (none for SGD),
    and how many steps it has taken (Adam's bias correction counts them)."""

    arrays: dict = field(default_factory=dict)  # name -> ndarray, the parameters' dtype
    n_steps: int = 0

    @property
    def nbytes(self) -> int:
        """Bytes the state holds (what a node's memory counts for its optimizer)."""
        return sum(a.nbytes for a in self.arrays.values())

    def part(self, index: slice) -> State:
        """The state of ``params[index]`` (a copy): stepping it steps exactly that slice."""
        return State({k: a[index].copy() for k, a in self.arrays.items()}, self.n_steps)

    @staticmethod
    def joined(parts: list[State]) -> State:
        """The state of the concatenated vector from the states of its consecutive parts."""
        if len({p.n_steps for p in parts}) != 1:
            raise ValueError(f"parts of one state have taken the same number of steps; "
                             f"got {[p.n_steps for p in parts]}")
        names = parts[0].arrays
        return State({k: np.concatenate([p.arrays[k] for p in parts]) for k in names},
                     parts[0].n_steps)


# -- the update rules: each (optimizer, params, grad, arrays, n, lr) -> (params, arrays),
#    n the 1-based number of this step for the state; grad includes a coupled L2 term
def _sgd(opt, params, grad, arrays, n, lr):
    return params - lr * grad, {}


def _momentum(opt, params, grad, arrays, n, lr):
    # PyTorch's SGD: b = mu b + g (b = g at the first step: b starts at zero), w -= lr b
    velocity = opt.momentum * arrays["velocity"] + grad
    return params - lr * velocity, {"velocity": velocity}


def _nesterov(opt, params, grad, arrays, n, lr):
    # PyTorch's SGD with nesterov=True: the same b, and w -= lr (g + mu b)
    velocity = opt.momentum * arrays["velocity"] + grad
    return params - lr * (grad + opt.momentum * velocity), {"velocity": velocity}


def _moments(opt, grad, arrays, n):
    """Kingma & Ba's Algorithm 1: the moments and their bias-corrected estimates."""
    m = opt.beta1 * arrays["m"] + (1 - opt.beta1) * grad
    v = opt.beta2 * arrays["v"] + (1 - opt.beta2) * (grad * grad)
    m_hat = m / (1 - opt.beta1 ** n)
    v_hat = v / (1 - opt.beta2 ** n)
    return m_hat / (np.sqrt(v_hat) + opt.eps), {"m": m, "v": v}


def _adam(opt, params, grad, arrays, n, lr):
    direction, arrays = _moments(opt, grad, arrays, n)
    return params - lr * direction, arrays


def _adamw(opt, params, grad, arrays, n, lr):
    # Loshchilov & Hutter's Algorithm 2, line 12: w -= eta_t (alpha direction + lambda w),
    # with lr = alpha eta_t and lambda = alpha weight_decay (PyTorch's convention)
    direction, arrays = _moments(opt, grad, arrays, n)
    return params - lr * (direction + opt.weight_decay * params), arrays


class UpdateRule(NamedTuple):
    """A registered optimizer: the arrays its state keeps, its cost, its update."""

    state: tuple[str, ...]  # names of its state's arrays, each of the parameters' shape
    passes: int             # flops per parameter of one step (weight decay: 2 more)
    update: Callable        # (optimizer, params, grad, arrays, n, lr) -> (params, arrays)
    coupled_decay: bool = True  # weight decay as an L2 term of the gradient (else: its own)


OPTIMIZERS: dict[str, UpdateRule] = {
    "sgd": UpdateRule((), 2, _sgd),                     # w - lr g: a multiply, a subtract
    "momentum": UpdateRule(("velocity",), 4, _momentum),
    "nesterov": UpdateRule(("velocity",), 6, _nesterov),
    # m: 3, v: 4, the two corrections: 2, sqrt, + eps, divide: 3, the step: 2
    "adam": UpdateRule(("m", "v"), 14, _adam),
    "adamw": UpdateRule(("m", "v"), 14, _adamw, coupled_decay=False),
}


@dataclass(frozen=True, kw_only=True)
class Optimizer:
    """An optimizer's settings and its step; the state is the caller's (``init_state``).

    ``weight_decay`` is an L2 term added to the gradient (``g + weight_decay * w``, as
    PyTorch's SGD and Adam do) for every kind but ``adamw``, whose decay is decoupled from
    the gradient's moments (Loshchilov & Hutter 2019): ``w -= lr * (direction +
    weight_decay * w)``, their ``lambda`` being ``lr * weight_decay``.
    """

    kind: str = "sgd"           # sgd | momentum | nesterov | adam | adamw (OPTIMIZERS)
    lr: float = 0.1             # base learning rate (the schedule's lr)
    momentum: float = 0.9       # momentum, nesterov: the velocity's decay, in [0, 1)
    beta1: float = 0.9          # adam, adamw: decay of the first moment, in [0, 1)
    beta2: float = 0.999        # adam, adamw: decay of the second moment, in [0, 1)
    eps: float = 1e-8           # adam, adamw: added to sqrt(v_hat), > 0
    weight_decay: float = 0.0   # L2 strength (coupled; decoupled for adamw), >= 0
    schedule: Schedule = field(default_factory=Schedule)

    def __post_init__(self):
        _checks.choice("kind", self.kind, tuple(OPTIMIZERS))
        _checks.number("lr", self.lr, low=0, strict_low=True)
        for name in ("momentum", "beta1", "beta2"):
            _below_one(name, getattr(self, name))
        _checks.number("eps", self.eps, low=0, strict_low=True)
        _checks.number("weight_decay", self.weight_decay, low=0)
        if not isinstance(self.schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule; got {_checks.shown(self.schedule)}")
        # plain SGD at a constant rate (most runs, and async's step on every push): the
        # bare ``w - lr g``, without the general path's checks and lookups
        object.__setattr__(self, "_plain", self.kind == "sgd" and not self.weight_decay
                           and self.schedule.kind == "constant" and not self.schedule.warmup)

    def init_state(self, params: np.ndarray) -> State:
        """A fresh state for ``params`` (or for a slice of them): zeros of their dtype
        (float64 for parameters that are not float32 or float64), no step taken."""
        dtype = params.dtype if params.dtype in _FLOATS else np.float64
        return State({name: np.zeros_like(params, dtype=dtype)
                      for name in OPTIMIZERS[self.kind].state})

    def state_nbytes(self, size: int, itemsize: int = 8) -> int:
        """Bytes of the state of ``size`` parameters of ``itemsize`` bytes each (8 for
        float64, 4 for float32), without making it: ``init_state(params).nbytes``."""
        return len(OPTIMIZERS[self.kind].state) * size * itemsize

    def lr_at(self, t: int) -> float:
        """The learning rate of step ``t`` (0-based), from the schedule."""
        return self.schedule.lr(self.lr, t)

    def flops(self, size: int) -> int:
        """The work of one step on ``size`` parameters (``2 * size`` for plain SGD)."""
        return (OPTIMIZERS[self.kind].passes + 2 * (self.weight_decay > 0)) * size

    def step(self, params: np.ndarray, grad: np.ndarray, state: State, t: int, *,
             scale: float = 1.0) -> tuple[np.ndarray, State]:
        """One step: the new parameters and the new state (new arrays; nothing in place).

        Parameters
        ----------
        params, grad : ndarray of shape (n_params,)
            The parameters (or a slice of them) and the gradient there.
        state : State
            Its state (``init_state``, or what the previous step returned).
        t : int
            The step's index in training, 0-based: the schedule's step.
        scale : float, default 1.0
            A factor of this step's learning rate: an asynchronous push of a worker with
            ``n_i / n`` of the rows is that fraction of a step.

        Returns
        -------
        (ndarray, State)
        """
        if self._plain:
            new = _like(params - float(self.lr * scale) * grad, params)
            return new, State(state.arrays, state.n_steps + 1)
        if any(a.shape != params.shape for a in state.arrays.values()):
            raise ValueError(f"the state's arrays must have the parameters' shape "
                             f"{params.shape}; got {[a.shape for a in state.arrays.values()]}")
        rule = OPTIMIZERS[self.kind]
        lr = float(self.lr_at(t) * scale)  # a Python float keeps a float32 step float32
        if self.weight_decay and rule.coupled_decay:  # the gradient of wd/2 ||w||^2
            grad = grad + self.weight_decay * params
        n = state.n_steps + 1
        new, arrays = rule.update(self, params, grad, state.arrays, n, lr)
        return _like(new, params), State({k: _like(a, params) for k, a in arrays.items()}, n)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # the dtypes a state keeps as given


def _like(array: np.ndarray, params: np.ndarray) -> np.ndarray:
    """``array`` in the dtype of ``params`` when both are floats (no copy when it already
    is): a step never changes the parameters' precision."""
    if array.dtype == params.dtype or params.dtype not in _FLOATS:
        return array
    return array.astype(params.dtype)
