"""What every strategy is handed: the cluster, the shards, the learner, the monitor.

``Job`` is the one contract between the experiment and a strategy: a strategy's
``start(job)`` starts its processes, which read the wiring (``sim``, ``server``,
``workers``), the data (``shards``), the learner (``model``, ``params``), the
``optimizer`` that steps the model (its state is the strategy's to keep, where the
strategy says) and the strategy's ``options``, report the global model to the
``monitor``, count events in ``stats`` and, if the server can restart, keep
``checkpoints``.

Memory: each node's ledger is ``node.memory`` (``simdml.memory``). ``hold_shards`` books
every worker's shard; ``gradient`` books the activations and the gradient it makes, and
the strategy frees them (``memory.free``) when the compute is done and the gradient sent;
a strategy books its model (``"params"``) and its optimizer's state (``"optimizer"``)
where they change.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..cluster import Cluster, Node
from ..collectives import Group, ring_allgather_items
from ..data import Parts
from ..engine import Simulator
from ..optim import Optimizer
from .checkpoints import Checkpoints
from .monitor import Monitor
from .stats import Stats

__all__ = ["Job", "Shard", "Shards", "weighted_sum"]


def weighted_sum(weights, arrays) -> np.ndarray:
    """``sum_i weights[i] * arrays[i]`` in one vectorized pass over their stack: float32
    when every array is (a float32 model's gradients stay float32, and so does what the
    server holds and sends), else float64.

    The result depends only on the order given, not on the order the arrays arrived in:
    strategies pass them in worker or block order. (numpy adds the stack sequentially,
    or pairwise for arrays of one element: either way the same bits every time.)

    perf: a Python ``sum`` of ``w * a`` costs two array operations per worker.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(arrays),) or not arrays:
        raise ValueError(f"weighted_sum needs one weight per array and at least one array; "
                         f"got {weights.size} weights for {len(arrays)} arrays")
    is_float32 = all(a.dtype == np.float32 for a in arrays)
    stacked = np.stack(arrays).astype(np.float32 if is_float32 else np.float64, copy=False)
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

    @property
    def nbytes(self) -> int:
        """Bytes of its rows, features and labels: what its worker's memory holds."""
        return self.X.nbytes + self.y.nbytes


class Shards(Sequence):
    """Every worker's (or client's) shard: the training rows ``X, y`` cut into pieces of
    ``sizes`` rows, ``shards[i]`` a ``Shard`` of views made when asked for. A population
    of a million clients costs these arrays, not a million objects."""

    def __init__(self, X, y, sizes):
        self.X, self.y = X, y
        self.ranges = Parts(None, sizes)             # each shard's range of the rows
        self.sizes = self.ranges.sizes
        if self.ranges.bounds[-1] != y.shape[0]:
            raise ValueError(f"Shards: sizes sum to {self.ranges.bounds[-1]} for "
                             f"{y.shape[0]} rows")

    def __len__(self) -> int:
        return len(self.ranges)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        a, b = self.ranges.span(i)
        return Shard(self.X[a:b], self.y[a:b])


class Cohort:
    """Batched cohorts: the gradients of every worker at one model, computed in a few
    vectorized passes when the first worker asks for its own (``stacked_grads``, one
    stacked product a pass). Bit for bit each worker's ``grad``; the events, the flops
    and so the clock are untouched (a worker still computes for its simulated time). A
    strategy whose workers all compute at the very model it sent ``announce``s it (sync,
    k of n); a worker asking at any other model computes alone.

    ``passes``: consecutive shards of one size, at most ``ROWS`` rows a pass (whole
    shards, at least one), so the scratch arrays stay small next to the data however many
    workers there are; only shards of at most ``SHARD_ROWS`` rows, as the pass saves
    numpy's per-call cost, which a larger shard's own products dwarf (at 2,000 rows of
    20-50 features the stacked pass is 1.1-1.25x slower than the shards' own calls, at
    250 rows 1.3-2.7x faster; benchmarks/README.md). A shard alone in its size, or larger,
    is in no pass: its worker computes it alone."""

    ROWS = 1 << 15
    SHARD_ROWS = 512

    def __init__(self, job: Job):
        self.job, self.params, self.grads = job, None, None
        self.passes = self.plan(job.shard_sizes)
        self.in_run = np.zeros(job.shard_sizes.size, dtype=bool)
        for a, b in self.passes:
            self.in_run[a:b] = True

    @classmethod
    def plan(cls, sizes) -> list[tuple[int, int]]:
        """The passes over shards of ``sizes``: ``(first, stop)`` shard ranges, in order."""
        sizes = np.asarray(sizes)
        cut = np.flatnonzero(np.diff(sizes)) + 1    # where the shard size changes
        passes = []
        for a, b in zip(np.r_[0, cut].tolist(), np.r_[cut, sizes.size].tolist()):
            if b - a > 1 and sizes[a] <= cls.SHARD_ROWS:
                step = max(1, cls.ROWS // int(sizes[a]))
                passes += [(c, min(c + step, b)) for c in range(a, b, step)]
        return passes

    @staticmethod
    def applies(job: Job) -> bool:
        """Whole unweighted shards of one array, and a learner with ``stacked_grads``."""
        whole = job.batch_size is None or job.batch_size >= job.shard_sizes.max(initial=0)
        return (isinstance(job.shards, Shards) and whole
                and job.class_weight is None and hasattr(job.model, "stacked_grads")
                and job.privacy is None)

    def announce(self, params: np.ndarray) -> None:
        """The model the workers' next gradients are at (computed when first asked)."""
        if params is not self.params:
            self.params, self.grads = params, None

    def grad(self, i: int, params: np.ndarray) -> np.ndarray | None:
        """Worker ``i``'s gradient at ``params`` from the cohort's pass, or None (another
        model, or a shard in no run: the caller computes it alone)."""
        if params is not self.params or not self.in_run[i]:
            return None
        if self.grads is None:
            job = self.job
            shards, bounds = job.shards, job.shards.ranges.bounds
            self.grads = np.empty((job.shard_sizes.size, params.size))
            for a, b in self.passes:
                lo, hi = bounds[a], bounds[b]
                self.grads[a:b] = job.model.stacked_grads(params, shards.X[lo:hi],
                                                          shards.y[lo:hi], int(job.shard_sizes[a]))
        return self.grads[i].copy()    # the worker's own: a strategy may change it


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
    lr: float              # the base step size (> 0): strategy.lr, the optimizer's lr
    monitor: Monitor
    options: object        # the strategy's own options dataclass
    batch_size: int | None = None  # rows per gradient; None: the whole shard
    batch_rngs: list = field(default_factory=list)  # one per worker, for mini-batches
    classes: np.ndarray | None = None  # every class of the problem (classifiers)
    class_weight: np.ndarray | None = None  # per class: each row's weight in the loss
    policy_rng: np.random.Generator | None = None  # the scheduler's stream ("policy")
    stats: Stats = field(default_factory=Stats)
    checkpoints: Checkpoints | None = None  # None: a server that never checkpoints
    done: object = None    # an event a restartable server fires when training ends
    optimizer: Optimizer | None = None  # None: plain gradient descent with step size lr
    compression: object = None  # a simdml.compression.Compression; None: dense gradients
    own_data: bool = False  # the strategy books its nodes' data (hold_shards does not)
    federation: object = None  # fedavg: its clients (strategies.federated.Federation)
    adversary: object = None   # faults.byzantine: simdml.aggregation.Adversary; None: honest
    robust: object = None      # [aggregation] with a robust rule (its config); None: the mean
    privacy: object = None     # [privacy]: a simdml.privacy.Mechanism; None: no DP

    def __post_init__(self):
        if self.optimizer is None:
            self.optimizer = Optimizer(kind="sgd", lr=self.lr)
        if self.checkpoints is None:
            self.checkpoints = Checkpoints(every=0, seconds=0.0, initial=self.params,
                                           monitor=self.monitor, stats=self.stats)
        self.shard_sizes = (self.shards.sizes if isinstance(self.shards, Shards) else
                            np.array([s.n_rows for s in self.shards], dtype=np.int64))
        self.n_train = int(self.shard_sizes.sum())
        self._activations: dict[int, int] = {}  # n_rows -> bytes (activation_nbytes)
        self._row_sq: dict[int, np.ndarray] = {}  # worker -> its rows' squared norms (DP)
        self._group = None
        self.cohort = Cohort(self) if Cohort.applies(self) else None
        # each shard's share of the loss: n_i / n, or its share of the rows' weight
        if self.class_weight is None:           # n_i / n, as float(n_i) / float(n); Python
            # floats (numpy's float64 scalars would promote a float32 model's arrays)
            self.shard_weights = (self.shard_sizes / float(self.n_train)).tolist()
        else:
            total = sum(self.weight_of(s.y) for s in self.shards)
            self.shard_weights = [self.weight_of(s.y) / total for s in self.shards]

    @property
    def group(self) -> Group:
        """Every worker, in order: the group of a strategy's collectives (made once)."""
        if self._group is None:
            self._group = Group(self.workers)
        return self._group

    def start(self, server, worker, *server_args):
        """Start ``worker(job, i)`` on every worker, then ``server(job, *server_args)`` on
        the server; returns the server's process (whose end ends training)."""
        for i, node in enumerate(self.workers):
            node.start(worker, self, i)
        return self.server.start(server, self, *server_args)

    def weight_of(self, y: np.ndarray) -> float:
        """The weight of rows ``y`` in the loss: their number, or the sum of their class
        weights."""
        return float(y.size if self.class_weight is None else self.class_weight[y].sum())

    def loss_grad(self, params: np.ndarray, X: np.ndarray, y: np.ndarray):
        """The learner's loss and gradient on rows ``(X, y)``, with the class weights."""
        return self.model.loss_grad(params, X, y, self.row_weights(y))

    def grad(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``loss_grad``'s gradient alone (the same bits): a worker needs no loss."""
        model = self.model
        if hasattr(model, "grad"):
            return model.grad(params, X, y, self.row_weights(y))
        return model.loss_grad(params, X, y, self.row_weights(y))[1]

    def row_weights(self, y: np.ndarray) -> np.ndarray | None:
        """Each row's weight in the loss (its class weight), or None: all weigh 1."""
        return None if self.class_weight is None else self.class_weight[y]

    def hold_shards(self) -> None:
        """Book each worker's shard on its memory (its rows are there from the start);
        nothing for a strategy that books the data its nodes hold itself (``own_data``:
        the model-parallel ones, whose nodes do not hold a data-parallel shard)."""
        if self.own_data:
            return
        for node, shard in zip(self.workers, self.shards):
            node.memory.set("shard", shard.nbytes)

    def batch(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows of worker ``i``'s next gradient: its shard, or a mini-batch of it drawn
        from its own stream; counted in ``monitor.rows``."""
        shard = self.shards[i]
        X, y = shard.X, shard.y
        if self.batch_size is not None and self.batch_size < shard.n_rows:
            rows = self.batch_rngs[i].choice(shard.n_rows, self.batch_size, replace=False)
            X, y = X[rows], y[rows]
        self.monitor.rows += y.shape[0]
        return X, y

    def copied_nbytes(self, i: int, X: np.ndarray, y: np.ndarray) -> int:
        """The bytes of worker ``i``'s ``batch`` ``(X, y)`` beyond its shard: a
        mini-batch is a copy of its rows (fancy indexing), the whole shard a view (0)."""
        b = self.batch_size
        return X.nbytes + y.nbytes if b is not None and b < self.shard_sizes[i] else 0

    def epoch_after(self, iterations: int) -> float:
        """Passes over the training set in ``iterations`` gradients of every worker, each
        on a ``batch`` (for the history of strategies whose workers run ahead of the
        record: ddp and ZeRO record when an iteration is done, not when rows are drawn)."""
        b = self.batch_size
        rows = int(self.shard_sizes.sum() if b is None else
                   np.minimum(self.shard_sizes, b).sum())
        return iterations * rows / self.n_train

    def payload(self, i: int, grad: np.ndarray, part: int = 0, state_nbytes: int = 0):
        """What worker ``i`` sends for ``grad`` (``part`` of its vector: ddp's bucket): the
        gradient itself, or with ``[compression]`` its compressed payload (the
        error-feedback residual, kept on the worker, is booked as its ``optimizer``
        memory, beside the ``state_nbytes`` of an optimizer state it holds)."""
        if self.compression is None:
            return grad
        payload = self.compression.encode(i, grad, part)
        self.book_optimizer(i, state_nbytes)
        return payload

    def begin_worker(self, i: int) -> None:
        """Worker ``i``'s program begins (at the start, or again after a crash, which
        loses what it held): no compression residuals."""
        if self.compression is not None:
            self.compression.forget(i)

    def book_optimizer(self, i: int, state_nbytes: int) -> None:
        """Worker ``i``'s ``optimizer`` memory: its optimizer's state and its compression
        residuals."""
        extra = 0 if self.compression is None else self.compression.residual_nbytes(i)
        self.workers[i].memory.set("optimizer", state_nbytes + extra)

    def all_gather_sum(self, i: int, vector: np.ndarray, weights, part: int = 0,
                       state_nbytes: int = 0):
        """Process: worker ``i``'s compressed all-reduce of ``vector`` over the workers
        (``[compression]`` in allreduce and ddp). A compressed payload cannot be summed on
        the way (top-k's indices differ from worker to worker), so every payload travels
        the ring whole (``collectives.ring_allgather_items``) and every worker decodes
        them all and aggregates them in worker order, with ``weights``: the same sum, bit
        for bit, on every worker, and the sum a parameter server would make of them."""
        mine = self.payload(i, vector, part, state_nbytes)
        payloads = yield from ring_allgather_items(self.group, i, mine)
        return self.compression.aggregate(payloads, weights, weighted_sum)

    def gradient(self, i: int, params: np.ndarray) -> tuple[np.ndarray, float]:
        """Worker ``i``'s gradient at ``params`` on its ``batch``, and the flops it costs.

        Books on the worker's memory the ``activations`` the pass keeps for its backward
        (a mini-batch's copy of its rows included) and the ``grads``: the strategy frees
        them when the compute is done and the gradient sent.
        """
        X, y = self.batch(i)
        grad = None if self.cohort is None else self.cohort.grad(i, params)
        if grad is None:
            grad = self.grad(params, X, y)
        n_rows = y.shape[0]
        copied = self.copied_nbytes(i, X, y)
        memory = self.workers[i].memory
        memory.set("activations", copied + self.activation_nbytes(n_rows))
        memory.set("grads", grad.nbytes)
        return grad, self.model.grad_flops(n_rows)

    def private_gradient(self, i: int, params: np.ndarray) -> tuple[np.ndarray, float]:
        """DP-SGD's part on worker ``i``: its shard's rows drawn each with probability
        ``q`` (Poisson, from its stream), each row's gradient clipped, their **sum** (the
        server adds the noise and divides); and the flops (the gradient's, and the norms
        and scaling of the rows' gradients).

        The simulated device is one that spells out every row's gradient (as Opacus does
        by default): its flops and its booked activations count all n x p of them. The
        host computes the same sum from their factors without making them
        (``privacy.clipped_outer_sum``): the clock and the ledger model the device, not
        the simulator's shortcut."""
        shard, dp = self.shards[i], self.privacy
        X, y = shard.X, shard.y
        row_sq = self._row_sq.get(i)
        if row_sq is None:  # perf: the rows' norms do not change from step to step
            row_sq = self._row_sq[i] = np.einsum("ij,ij->i", X, X)
        if dp.q < 1:
            keep = self.batch_rngs[i].random(shard.n_rows) < dp.q
            X, y, row_sq = X[keep], y[keep], row_sq[keep]
        self.monitor.rows += y.shape[0]
        total = dp.clipped_sum(X, self.model.per_example_factors(params, X, y), row_sq)
        memory = self.workers[i].memory
        per_example = y.shape[0] * total.size  # the device's model holds them all (below)
        memory.set("activations", 8 * per_example)
        memory.set("grads", total.nbytes)
        return total, self.model.grad_flops(y.shape[0]) + 4 * per_example

    def activation_nbytes(self, n_rows: int) -> int:
        """The learner's ``activation_nbytes(n_rows)`` (0 for a learner without one),
        remembered per batch size (perf: an MLP sums its layers)."""
        cache = self._activations
        if n_rows not in cache:
            count = getattr(self.model, "activation_nbytes", None)
            cache[n_rows] = count(n_rows) if count is not None else 0
        return cache[n_rows]

    def workers_lost(self) -> bool:
        """True (and the stop reason set) when every worker is down for good: no crashed
        worker is due back. The simulator's view, so that a run always ends."""
        if any(w.is_up or w.recovery_due is not None for w in self.workers):
            return False
        since = max(w.last_crash_time for w in self.workers)
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

    def finish(self) -> None:
        """Training is over (a restartable server's end: see ``done``)."""
        if self.done is not None and not self.done.triggered:
            self.done.succeed()
