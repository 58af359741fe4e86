"""Local SGD / federated averaging: H local steps, then a weighted model average.

Round ``t``: the server broadcasts ``w_t``; each worker takes ``local_steps = H``
gradient steps on its own shard (or mini-batches of it) starting from ``w_t`` and sends
back its model ``w_t^i``; the server averages them weighted by shard size,
``w_{t+1} = sum_i (n_i / n) w_t^i``. With ``H = 1`` and full-shard gradients this is
exactly synchronous gradient descent (``w_t - lr sum_i (n_i/n) g_i``); a larger H
trades fewer messages for models that drift apart on non-iid shards.

``mu > 0`` is FedProx: each local step also pulls towards the round's global model,
``g + mu (w - w_t)`` (the gradient of ``F_i(w) + mu/2 ||w - w_t||^2``), which bounds the
drift. ``weighting = "equal"`` averages the local models with weights 1/n instead of
``n_i / n`` (what a server that does not know the shard sizes would do).

With ``[compression]`` a worker sends its round's change ``w_t^i - w_t``, compressed
(with error feedback: plus what it has not sent yet), and the server steps by the
aggregate of the changes, ``w_{t+1} = w_t + C-aggregate_i (n_i / n)(w_t^i - w_t)``: the
same average as above up to rounding where nothing is dropped (top-k at ratio 1).

The ``[optimizer]`` takes the local steps: each worker holds its own state (its
velocity, or Adam's moments, of its own shard's gradients) and keeps it from one round
to the next, as DiLoCo's inner optimizer does; only the models are averaged, never the
states. The schedule counts local steps (step ``t = round * H + h``; a cosine's horizon
is ``stop.rounds * H``). A worker that crashes loses its state and starts a fresh one
(its own step count restarts Adam's bias correction; the schedule keeps the round's).
With H = 1 and full shards, sgd, momentum and nesterov (linear in the gradient) still
equal ``sync``: the average of the workers' velocities is the velocity of the average.

References
----------
McMahan et al. (2017), "Communication-Efficient Learning of Deep Networks from
Decentralized Data" (FedAvg), AISTATS; Stich (2019), "Local SGD Converges Fast and
Communicates Little", ICLR; Li et al. (2020), "Federated Optimization in Heterogeneous
Networks" (FedProx), MLSys, eq. (2); Douillard et al. (2023), "DiLoCo: Distributed
Low-Communication Training of Language Models", arXiv:2311.08455 (inner optimizer state
kept per worker).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import _checks
from ..messages import LocalModel, Model
from ._costs import aggregate_flops
from .job import Job, weighted_sum

__all__ = ["LocalSGDOptions", "start", "server", "worker"]


@dataclass(frozen=True, kw_only=True)
class LocalSGDOptions:
    local_steps: int = 4  # H: gradient steps each worker takes between averages
    mu: float = 0.0       # FedProx proximal strength; 0 is plain local SGD / FedAvg
    weighting: str = "samples"  # average weighted by shard size ("samples") or "equal"

    def __post_init__(self):
        _checks.integer("local_steps", self.local_steps, low=1)
        _checks.finite_number("mu", self.mu, low=0)
        if self.weighting not in ("samples", "equal"):  # two choices read best as "a or b"
            raise ValueError(f"weighting must be 'samples' or 'equal'; got {self.weighting!r}")


def local_steps(options: LocalSGDOptions) -> int:
    """The optimizer steps once per local step: H times per round."""
    return options.local_steps


def divergence_hint(s) -> str:
    """A diverged run: the FedProx pull overshoots when lr * mu > 2 (its step alone), else
    the step size is too large."""
    mu = s.strategy.options.get("mu", 0.0)
    if s.strategy.lr * mu > 2:
        return (f"the FedProx pull overshoots: strategy.lr × strategy.mu = "
                f"{s.strategy.lr * mu:.4g} > 2; try a smaller strategy.mu")
    return "try a smaller strategy.lr"


def start(job: Job):
    """Start the server and the workers; returns the server process (ends training)."""
    return job.start(server, worker)


def server(job: Job):
    node, n = job.server, len(job.workers)
    params, version = job.params, 0
    node.memory.set("params", params.nbytes)
    if job.monitor.update(params, version):
        return
    while True:
        node.broadcast(job.workers, Model(version, params))  # 1. broadcast the model
        models = {}                                         # 2. gather the local models
        while len(models) < n:
            msg = yield node.recv()
            if msg.version == version:
                models[msg.worker] = msg.params
                node.memory.hold("params", msg.params.nbytes)  # kept until averaged
        yield node.compute(aggregate_flops(n, params.size, average=True))  # 3. average them,
        is_weighted = job.options.weighting == "samples"  #    weighted by samples, or
        weights = job.shard_weights if is_weighted else [1 / n] * n  # equally
        order = sorted(models)
        ws = [weights[i] for i in order]
        if job.compression is None:
            params = weighted_sum(ws, [models[i] for i in order])
        else:                                               #    compressed: the changes
            params = params + job.compression.aggregate([models[i] for i in order], ws,
                                                        weighted_sum)
        node.memory.set("params", params.nbytes)
        version += 1
        if job.monitor.update(params, version):             # 4. record; stop?
            return


def worker(job: Job, i: int):
    node, opt = job.workers[i], job.optimizer
    memory = node.memory
    job.begin_worker(i)
    state = None                                            # my optimizer's state, kept
    while True:                                             # across rounds (lost in a crash)
        model = yield node.recv()                           # 1. start from the global model
        params = anchor = model.params
        state = opt.init_state(params) if state is None else state
        memory.set("params", params.nbytes)
        job.book_optimizer(i, state.nbytes)
        mu, steps = job.options.mu, job.options.local_steps
        for h in range(steps):                              # 2. H steps on my own shard
            grad, flops = job.gradient(i, params)
            if mu:
                grad = grad + mu * (params - anchor)        #    FedProx: stay near the anchor
            yield node.compute(flops + opt.flops(params.size))
            memory.free("activations")
            params, state = opt.step(params, grad, state, model.version * steps + h)
            memory.free("grads")                            #    my model and the anchor, now
            memory.set("params", params.nbytes + anchor.nbytes)
            job.book_optimizer(i, state.nbytes)
        if job.compression is None:
            mine = LocalModel(i, model.version, params)
        else:                                               #    compressed: my change
            mine = LocalModel(i, model.version, job.payload(i, params - anchor,
                                                            state_nbytes=state.nbytes))
        yield node.send(job.server, mine)  # 3. send my model back
