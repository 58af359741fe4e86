"""What every strategy is handed: the cluster, the shards, the learner, the monitor."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..cluster import Cluster, Node
from ..engine import Simulator

__all__ = ["Job", "Monitor", "Shard", "weighted_sum"]

MAX_FUTILE_RESTARTS = 20
EVAL_CHUNK = 65536  # rows per piece when the monitor evaluates a large training set


def weighted_sum(weights, arrays) -> np.ndarray:
    """``sum_i weights[i] * arrays[i]`` in one vectorized pass over their stack (float64).

    The result depends only on the order given, not on the order the arrays arrived in:
    strategies pass them in worker or block order. (numpy adds the stack sequentially,
    or pairwise for arrays of one element: either way the same bits every time.)

    perf: a Python ``sum`` of ``w * a`` costs two array operations per worker; the
    sync server of the 10,000-worker benchmark spent 1.5 us per gradient on it.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(arrays),) or not arrays:
        raise ValueError(f"weighted_sum needs one weight per array and at least one array; "
                         f"got {weights.size} weights for {len(arrays)} arrays")
    stacked = np.stack(arrays).astype(np.float64, copy=False)
    stacked *= weights.reshape(-1, *[1] * (stacked.ndim - 1))
    return np.add.reduce(stacked, axis=0)


@dataclass(frozen=True)
class Shard:
    """The rows a worker holds: views into the training arrays, never copies."""

    X: np.ndarray  # (n_rows, n_features)
    y: np.ndarray  # (n_rows,) class indices

    @property
    def n_rows(self) -> int:
        return self.y.shape[0]


class Monitor:
    """Evaluates the global model as training goes, and says when to stop.

    The global model is either a parameter vector of the learner (gradient strategies)
    or a fitted model with ``training_loss(X, y)`` and ``score(X, y)`` (a cascade's top
    SVM, a fused ensemble). Evaluation uses the whole training set (loss) and the test
    set (``score``: accuracy for classifiers, R² for regressors); it is observation,
    so it costs no simulated time.
    """

    def __init__(self, sim: Simulator, model, X_train, y_train, X_test, y_test, *,
                 eval_every: int = 1, max_updates: int = 100,
                 target_accuracy: float | None = None):
        self.sim = sim
        self.model = model
        self.X_train, self.y_train = X_train, y_train
        self.X_test, self.y_test = X_test, y_test
        self.eval_every = eval_every
        self.max_updates = max_updates
        self.target_accuracy = target_accuracy
        self.history: list[dict] = []
        self.rows = 0             # rows whose gradients were computed (wasted work included)
        self.params = None        # the latest global model: a parameter vector or a fitted model
        self.updates = 0
        self.stop_reason: str | None = None
        self.time_to_target: float | None = None
        self.train_weight = None  # row weights of the training loss (class weights), if any

    def _loss_and_score(self, params) -> tuple[float, float]:
        if isinstance(params, np.ndarray):
            return self._training_loss(params), self.model.score(self.X_test, self.y_test, params)
        return params.training_loss(self.X_train, self.y_train), params.score(self.X_test, self.y_test)

    def _training_loss(self, params) -> float:
        """The learner's loss on the whole training set; past EVAL_CHUNK rows in chunks
        (their losses weighted by their share), so that evaluating a million rows needs
        no million-row temporaries."""
        X, y, w = self.X_train, self.y_train, self.train_weight
        n = y.size
        if n <= EVAL_CHUNK:
            return self.model.loss_grad(params, X, y, w)[0]
        total = w.sum() if w is not None else n
        loss = 0.0
        for a in range(0, n, EVAL_CHUNK):
            b = min(n, a + EVAL_CHUNK)
            ww = None if w is None else w[a:b]
            share = (b - a) / total if w is None else ww.sum() / total
            part, _ = self.model.loss_grad(params, X[a:b], y[a:b], ww)
            loss += share * part  # the shares sum to 1, so the L2 term counts once
        return loss

    def evaluate(self, params, updates: int, **extra) -> dict:
        """Record ``time``, ``update``, ``epoch`` (gradient work done, in passes over the
        training set), ``loss`` and the test ``score`` for ``params`` now; the score also
        under its own name (``accuracy`` or ``r2``), and a strategy's ``extra`` columns."""
        with np.errstate(all="ignore"):  # a diverged model is reported below, not warned about
            loss, score = self._loss_and_score(params)
        score = float(score)
        row = {"time": self.sim.now, "update": updates, "epoch": self.rows / len(self.y_train),
               "loss": float(loss), "score": score, self.model.score_name: score, **extra}
        self.history.append(row)
        if (self.target_accuracy is not None and self.time_to_target is None
                and score >= self.target_accuracy):
            self.time_to_target = self.sim.now
        return row

    def update(self, params, updates: int, **extra) -> bool:
        """The global model is now ``params`` after ``updates`` updates; True means stop.
        ``extra`` (numbers) go into the history row, when one is recorded."""
        self.params, self.updates = params, updates
        is_last = updates >= self.max_updates
        if updates % self.eval_every == 0 or is_last:
            row = self.evaluate(params, updates, **extra)
            if not math.isfinite(row["loss"]):
                self.stop_reason = (f"diverged: loss became {row['loss']} at update {updates}, "
                                    f"simulated time {self.sim.now:.4g} s; try a smaller strategy.lr")
                return True
            if self.time_to_target is not None:
                self.stop_reason = (f"target {self.model.score_name} {self.target_accuracy} reached at "
                                    f"update {updates}")
                return True
        if is_last:
            self.stop_reason = f"{self.max_updates} updates done (stop.rounds)"
            return True
        return False

    def finish(self) -> None:
        """Make sure the last state is evaluated (e.g. when a time limit stopped the run)."""
        if self.params is not None and (not self.history or self.history[-1]["update"] != self.updates
                                        or self.history[-1]["time"] != self.sim.now):
            self.evaluate(self.params, self.updates)


@dataclass
class Job:
    """Everything a strategy needs to train on a cluster."""

    sim: Simulator
    cluster: Cluster
    server: Node
    workers: list[Node]
    shards: list[Shard]
    model: object          # the learner, unfitted: its settings (and strategy face)
    params: np.ndarray | None  # the initial global model (gradient learners); else None
    lr: float              # step size (> 0)
    monitor: Monitor
    options: object        # the strategy's own options dataclass
    batch_size: int | None = None  # rows per gradient; None: the whole shard
    batch_rngs: list = field(default_factory=list)  # one per worker, for mini-batches
    counters: dict = field(default_factory=dict)
    staleness: list[int] = field(default_factory=list)  # counts: staleness[s] gradients had s
    classes: np.ndarray | None = None  # every class of the problem (classifiers)
    policy_rng: np.random.Generator | None = None  # the scheduler's stream ("policy")
    blocks: list = field(default_factory=list)  # task-based rounds: (X, y) per data block
    checkpoint_every: int = 0      # the server checkpoints every this many updates; 0: never
    checkpoint_time: float = 0.0   # s to write one checkpoint
    checkpoint: dict | None = None  # the last one, on stable storage: params, version, time
    done: object = None            # an event a restartable server fires when training ends
    class_weight: np.ndarray | None = None  # per class: each row's weight in the loss

    def __post_init__(self):
        self._best_version, self._futile = 0, 0  # restarts that made no progress
        n = sum(s.n_rows for s in self.shards)
        self.n_train = n
        # each shard's share of the loss: n_i / n, or its share of the rows' weight
        total = sum(self.mass(s.y) for s in self.shards)
        self.weights = [self.mass(s.y) / total for s in self.shards]

    def mass(self, y: np.ndarray) -> float:
        """The weight of rows ``y`` in the loss: their number, or the sum of their class
        weights."""
        return float(y.size if self.class_weight is None else self.class_weight[y].sum())

    def loss_grad(self, params: np.ndarray, X: np.ndarray, y: np.ndarray):
        """The learner's loss and gradient on rows ``(X, y)``, with the class weights."""
        weight = None if self.class_weight is None else self.class_weight[y]
        return self.model.loss_grad(params, X, y, weight)

    def gradient(self, i: int, params: np.ndarray) -> tuple[np.ndarray, float]:
        """Worker ``i``'s gradient at ``params`` (its shard, or a mini-batch of it drawn
        from its own stream), and the flops it costs."""
        shard = self.shards[i]
        X, y = shard.X, shard.y
        if self.batch_size is not None and self.batch_size < shard.n_rows:
            rows = self.batch_rngs[i].choice(shard.n_rows, self.batch_size, replace=False)
            X, y = X[rows], y[rows]
        _, grad = self.loss_grad(params, X, y)
        self.monitor.rows += y.shape[0]
        return grad, self.model.grad_flops(y.shape[0])

    def workers_lost(self) -> bool:
        """True (and the stop reason set) when every worker is down for good: no crashed
        worker is due back. The simulator's view, so that a run always ends."""
        if any(w.is_up or w.recovery_due is not None for w in self.workers):
            return False
        since = max(w._crash_times[-1] for w in self.workers)
        self.monitor.stop_reason = f"no live workers from t={since:.4g} s"
        return True

    def cut_off(self) -> bool:
        """True (and the stop reason set) when a network partition that never heals
        separates the server from every live worker: no round can ever complete."""
        live = [w for w in self.workers if w.is_up or w.recovery_due is not None]
        network = self.cluster.network
        if not live or not all(network.cut(self.server.index, w.index, for_good=True)
                               for w in live):
            return False
        self.monitor.stop_reason = (f"the server is cut off from every live worker by a "
                                    f"network partition that never heals (at t="
                                    f"{self.sim.now:.4g} s)")
        return True

    def restore(self, node) -> tuple:
        """The model a server (re)starts from: the initial one at first; after a crash,
        its last checkpoint (or the initial model, if none was written) -- the updates
        since then are lost and counted (``updates_lost``, ``server_restarts``)."""
        if node.epoch == 0:
            return self.params, 0
        self.count("server_restarts")
        params, version = ((self.checkpoint["params"], self.checkpoint["version"])
                           if self.checkpoint else (self.params, 0))
        self.count("updates_lost", self.monitor.updates - version)
        # a server that keeps failing before it gets past its checkpoint would restart
        # for ever: give up after MAX_FUTILE_RESTARTS restarts without a new update
        best = max(self.monitor.updates, self._best_version)
        self._futile = self._futile + 1 if best <= self._best_version else 0
        self._best_version = best
        if self._futile >= MAX_FUTILE_RESTARTS:
            self.monitor.stop_reason = (
                f"the server fails faster than it makes progress: {self._futile} restarts "
                f"without getting past update {best}; checkpoint more often "
                f"(faults.checkpoint_every) or let it fail less (faults.server_mtbf)")
            return None, version
        return params, version

    def after_update(self, node, params, version: int):
        """Process step after each update: a checkpoint every ``checkpoint_every``
        updates, taking ``checkpoint_time`` s of the server's time."""
        if self.checkpoint_every and version % self.checkpoint_every == 0:
            yield node.checkpoint(self.checkpoint_time)
            self.checkpoint = {"params": params, "version": version, "time": node.sim.now}
            self.count("checkpoints")

    def finish(self) -> None:
        """Training is over (a restartable server's end: see ``done``)."""
        if self.done is not None and not self.done.triggered:
            self.done.succeed()

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + amount

    def record_staleness(self, s: int) -> None:
        """One gradient was applied ``s`` versions after the one it was computed on."""
        if s >= len(self.staleness):
            self.staleness.extend([0] * (s + 1 - len(self.staleness)))
        self.staleness[s] += 1
