"""Local models and fusion: every worker fits a model on its own shard only, once; the
server fuses them by a rule of ``simdml.fusion`` (best on validation, majority or soft
vote, parameter averaging, stacking).

One round, no iteration: 1. each worker fits the learner on its shard (its flops in
simulated time), holding out a ``validation`` fraction of it when the rule needs a
validation split; 2. it sends the fitted model (its ``nbytes``: support vectors, or a
parameter vector) and the held-out rows to the server; 3. the server fuses the models,
weighted by their training rows (``weighting = "samples"``) or equally.

Cheap in messages -- one model per worker -- and exact for nothing: how close the
fused model comes to the centralized one depends on how alike the shards are (iid or
not). A shard of a single class fits no SVM; its member predicts that class.
The history's ``loss`` is the fused model's training error rate (0-1 loss).

References
----------
J. Zhang, J. C. Duchi and M. J. Wainwright, "Communication-Efficient Algorithms for
Statistical Optimization", *JMLR* 14, 2013 (one-shot averaging of local estimators);
see ``simdml.fusion`` for the rules.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..fusion import FUSION_RULES, NEEDS_VALIDATION, Constant, fuse, non_finite
from ..models import GRADIENT_MODELS, MODELS as _LEARNERS
from ..models._base import clone
from ..messages import FittedModel
from .job import Job

__all__ = ["LocalFusionOptions", "MODELS", "start"]

MODELS = ("logistic", "svm", "kernel_svm", "tree", "forest")  # the learners it can fuse


@dataclass(frozen=True, kw_only=True)
class LocalFusionOptions:
    rule: str = "vote"          # a fusion rule: best, vote, soft, average, stack
    validation: float = 0.2     # fraction of each shard held out, for rules that need it
                                # (at least one row, and at least one row left to fit)
    weighting: str = "samples"  # "samples": weights n_i / n; "equal": 1 / n_workers

    def __post_init__(self):
        _checks.choice("rule", self.rule, FUSION_RULES)
        if self.weighting not in ("samples", "equal"):  # two choices read best as "a or b"
            raise ValueError(f"weighting must be 'samples' or 'equal'; got {self.weighting!r}")
        if not (_checks.is_real(self.validation) and 0 < self.validation < 1):
            raise ValueError(f"validation must be a fraction in (0, 1); got {self.validation!r}")


def average_needs_parameter_vectors(s) -> None:
    """A scenario rule: ``rule = 'average'`` averages parameter vectors, so the local
    models must have one (a gradient model)."""
    if s.strategy.options.get("rule") == "average" and s.model.kind not in GRADIENT_MODELS:
        linear = [k for k in MODELS if k in GRADIENT_MODELS]
        raise ValueError(f"strategy.rule='average' averages parameter vectors: it needs "
                         f"model.kind {' or '.join(map(repr, linear))}; got "
                         f"model.kind={s.model.kind!r}")


STEP_SECONDS = 1e-6  # real seconds a gradient step takes at the least (a few numpy calls)


def local_fits_end_within_the_wall_time(s) -> None:
    """A scenario rule: each worker fits its local model in ``model.n_iter`` gradient
    steps, all of them run for real, none cut short by a stop condition; at no less than
    STEP_SECONDS per step they must fit in ``stop.wall_time`` (a cheap work estimate that
    refuses at validation what the wall-clock guard would cut after the whole wait)."""
    if s.model.kind not in GRADIENT_MODELS:
        return
    n_iter = s.model.options.get("n_iter", _default(_LEARNERS[s.model.kind], "n_iter"))
    steps = n_iter * s.cluster.workers
    if steps * STEP_SECONDS > s.stop.wall_time:
        raise ValueError(f"model.n_iter={n_iter} with cluster.workers={s.cluster.workers}: "
                         f"local_fusion runs {steps:.4g} gradient steps for real, at least "
                         f"{steps * STEP_SECONDS:.4g} s at {STEP_SECONDS:g} s per step, beyond "
                         f"stop.wall_time={s.stop.wall_time:g} s; lower model.n_iter or raise "
                         f"stop.wall_time")


def _default(cls, name: str):
    import inspect
    return inspect.signature(cls).parameters[name].default


def divergence_hint(s) -> str | None:
    """A diverged local fit of a gradient model: its own step size (model.lr)."""
    if s.model.kind in GRADIENT_MODELS:
        return "try a smaller model.lr (the step size of the local fits)"
    return None


def start(job: Job):
    if job.options.rule in NEEDS_VALIDATION and all(s.n_rows < 2 for s in job.shards):
        raise ValueError(f"strategy.rule={job.options.rule!r} needs a validation split, but "
                         f"every shard holds a single row (cluster.workers="
                         f"{len(job.workers)}): there is nothing to hold out")
    return job.start(server, worker)


def worker(job: Job, i: int):
    node, shard = job.workers[i], job.shards[i]
    X, y = shard.X, shard.y
    X_val, y_val = X[:0], y[:0]
    if job.options.rule in NEEDS_VALIDATION and shard.n_rows > 1:
        order = job.batch_rngs[i].permutation(shard.n_rows)   # my own stream: reproducible
        # at least one row to validate on, at least one to fit on
        n_val = min(shard.n_rows - 1, max(1, round(job.options.validation * shard.n_rows)))
        val, fit = order[:n_val], np.sort(order[n_val:])
        X_val, y_val, X, y = X[val], y[val], X[fit], y[fit]
    member = local_fit(job.model, X, y, job.classes)            # 1. fit on my shard
    job.monitor.rows += y.shape[0]
    yield node.compute(member.flops_)
    mine = FittedModel(i, y.shape[0], member, X_val, y_val)
    yield node.send(job.server, mine)      # 2. model + held-out rows


def local_fit(model, X, y, classes):
    """``model`` fitted on ``(X, y)`` alone: gradient learners get every class (one
    parameter layout for all), an SVM needs two classes (else: ``Constant``)."""
    if hasattr(model, "loss_grad"):
        return clone(model).fit(X, y, classes=classes)
    if np.unique(y).size < 2:
        return Constant(y[0])
    return clone(model).fit(X, y)


def server(job: Job):
    node, rule = job.server, job.options.rule
    msgs = {}
    while len(msgs) < len(job.workers):                         # 3. gather every model
        msg = yield node.recv()
        msgs[msg.worker] = msg
    fitted = [msgs[i] for i in sorted(msgs)]
    members = [m.member for m in fitted]
    diverged = non_finite(members)
    if diverged:  # fusing them would hide it (a vote outvotes, an average is nan)
        workers = ", ".join(str(fitted[i].worker) for i in diverged)
        return job.monitor.diverge(f"the local models of workers {workers} have "
                                   f"non-finite parameters")
    n = np.array([m.n_rows for m in fitted], dtype=np.float64)
    weights = n / n.sum() if job.options.weighting == "samples" else np.full(n.size, 1 / n.size)
    X_val = np.concatenate([m.X_val for m in fitted])
    y_val = np.concatenate([m.y_val for m in fitted])
    fused = fuse(rule, members, weights, job.classes, X_val, y_val)  # 4. fuse
    if rule in NEEDS_VALIDATION:  # score the members on the split (and fit the meta-learner)
        yield node.compute(sum(m.predict_flops(y_val.size) for m in members) + fused.fit_flops_)
    job.monitor.update(fused, 1)
    job.monitor.stop_reason = f"fused {len(members)} local models by {rule!r}"
