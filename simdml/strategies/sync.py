"""Synchronous parameter server: every round waits for the workers' gradients.

Round ``t``: the server broadcasts the model ``w_t``; each worker computes the gradient
of the loss on its shard; the server averages the gradients weighted by shard size and
steps, ``w_{t+1} = w_t - lr * sum_i (n_i / n) g_i``. Because the loss is a mean over
rows, that weighted average *is* the full-batch gradient, so this strategy computes
exactly full-batch gradient descent -- only the clock tells it ran on a cluster. With an
``[optimizer]`` (momentum, Adam, a schedule) the server steps it on that gradient and
holds its state: the run is the centralized optimizer on the full batch.

``wait_for = k`` closes a round as soon as the first k gradients are in (backup
workers): the round time becomes the k-th order statistic of the workers' times
instead of the maximum. Workers still computing drop their stale work when the next
model reaches them (counted as ``dropped_gradients``); their late pushes are dropped
by the server (``stale_gradients_dropped``). ``round_timeout`` (s) closes a round with
whatever arrived, so that a crashed worker does not hang training; with ``retries = r``
the server first re-sends the model to the workers still missing, up to r times (a lost
message is asked for again: ``retries``; a gradient that then arrives twice is wasted
work: ``duplicate_gradients``). With ``faults.checkpoint_every = N`` the
server writes its model to stable storage every N updates (``checkpoint_time`` s); after
a crash it restarts from the last checkpoint when it recovers, and the updates since
then are lost (``updates_lost``) -- the checkpoint holds the optimizer's state too, so
the optimizer resumes where it was; the model it broadcasts is tagged with its restart
count, so that a gradient of its previous life is never taken for a current one.

References
----------
Dean et al. (2012), "Large Scale Distributed Deep Networks", NeurIPS; Li et al. (2014),
"Scaling Distributed Machine Learning with the Parameter Server", OSDI; Chen et al.
(2016), "Revisiting Distributed Synchronous SGD", arXiv:1604.00981 (backup workers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .. import _checks
from ..aggregation import aggregate
from ..messages import Tag, TaggedGradient, TaggedModel
from ._costs import aggregate_flops
from .job import Job, weighted_sum

__all__ = ["SyncOptions", "start", "server", "gather", "worker", "recv_before"]


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    wait_for: int | None = None      # k of n: close a round after k gradients; None: all n
    round_timeout: float = math.inf  # s; inf waits for the k gradients however long
    retries: int = 0                 # on a timeout, re-send the model to the missing workers
                                     # this many times before closing the round without them

    def __post_init__(self):
        if self.wait_for is not None:
            _checks.integer("wait_for", self.wait_for, low=1)
        _checks.number("round_timeout", self.round_timeout, low=0, strict_low=True, finite=False,
                       unit="s")
        _checks.integer("retries", self.retries, low=0)


def wait_for_at_most_workers(s) -> None:
    """A scenario rule: k of n needs k <= n."""
    wait_for = s.strategy.options.get("wait_for")
    if isinstance(wait_for, int) and wait_for > s.cluster.workers:
        raise ValueError(f"strategy.wait_for must be at most cluster.workers="
                         f"{s.cluster.workers}; got {wait_for}")


def start(job: Job):
    """Start the server and the workers; returns the server process (ends training)."""
    k = job.options.wait_for or len(job.workers)  # k <= n: a scenario rule (above)
    # a round that can close without a worker makes that worker's work stale
    preemptible = k < len(job.workers) or job.options.round_timeout < math.inf
    for i, node in enumerate(job.workers):
        node.start(worker, job, i, preemptible)
    process = job.server.start(server, job)
    # a server that checkpoints restarts after a crash (a new process): training ends
    # when some incarnation of it says so
    return job.done if job.checkpoints.every else process


def server(job: Job):
    node = job.server
    params, version, state = job.checkpoints.restore(node)  # 0. the initial model, or the
    if params is None:                                  #    last checkpoint after a crash
        return job.finish()                             #    (None: it gave up)
    opt = job.optimizer                                 #    the optimizer's state lives here
    state = opt.init_state(params) if state is None else state
    memory = node.memory
    memory.set("params", params.nbytes)
    memory.set("optimizer", state.nbytes)
    if job.monitor.update(params, version, **({} if job.privacy is None
                                               else job.privacy.history())):
        return job.finish()
    while True:
        model = TaggedModel(Tag(node.epoch, version), params)
        if job.cohort is not None:                          #    every worker's gradient
            job.cohort.announce(params)                     #    at it, in stacked passes
        sent = node.broadcast(job.workers, model)           # 1. broadcast the model
        grads = yield from gather(job, model)               # 2. gather this round's gradients
        if not grads:                                       #    nobody answered:
            if job.workers_lost() or job.cut_off():
                return job.finish()                         #    ... and nobody ever will
            if not sent.processed:                          #    ... try again, once the model
                yield sent                                  #    has left the NIC (no pile-up)
            continue
        order = sorted(grads)                               # 3. average, weighted by samples,
        share = sum(job.shard_weights[i] for i in order)    #    in worker order (so arrival
        weights = [job.shard_weights[i] / share for i in order]  # order cannot change it)
        if job.privacy is not None:                        #    DP-SGD: noise on the sum
            total = job.privacy.noised(weighted_sum([1.0] * len(order),
                                                    [grads[i] for i in order]))
            g = total / (job.privacy.q * job.n_train) + job.model.reg_grad(params)
        elif job.robust is not None:                       #    robust: every worker alike
            r = job.robust
            g = aggregate(r.rule, [grads[i] for i in order], r.f, r.selected)
        elif job.compression is None:
            g = weighted_sum(weights, [grads[i] for i in order])
        else:                                               #    compressed: decompressed
            g = job.compression.aggregate([grads[i] for i in order], weights, weighted_sum)
        memory.hold("grads", g.nbytes)
        yield node.compute(aggregate_flops(len(grads), params.size,  # 4. step, on the server
                                           step=opt.flops(params.size)))
        params, state = opt.step(params, g, state, version)  #   (sgd: w - lr g)
        memory.free("grads")
        memory.set("optimizer", state.nbytes)
        version += 1
        extra = {} if job.privacy is None else job.privacy.history()
        if job.monitor.update(params, version, **extra):    # 5. record; stop?
            return job.finish()
        yield from job.checkpoints.after_update(node, params, version, state)  # 6. checkpoint


def gather(job: Job, model: TaggedModel):
    """Process: collect the gradients of the round of ``model``; returns ``{worker: grad}``.

    The round closes when ``wait_for`` (k) gradients are in, or when ``round_timeout``
    passes without them: then, ``retries`` times, the model goes again to the workers
    still missing (a lost message is asked for again) before the round closes with what
    it has. A gradient of another round (``model.tag``) is stale; a second one from the
    same worker (a retry's twin) is wasted work: both are counted and dropped.
    """
    node, k = job.server, job.options.wait_for or len(job.workers)
    grads = {}
    deadline = node.sim.now + job.options.round_timeout
    retries = job.options.retries
    while len(grads) < k:
        msg = yield from recv_before(node, deadline)
        if msg is None and retries:                         # late: a lost message? ask again
            retries -= 1
            job.stats.count("retries")
            missing = [w for i, w in enumerate(job.workers) if i not in grads]
            node.broadcast(missing, model)
            deadline = node.sim.now + job.options.round_timeout
        elif msg is None:                                   # late, no retry left: close it
            job.stats.count("incomplete_rounds")
            break
        elif msg.tag != model.tag:
            job.stats.count("stale_gradients_dropped")
        elif msg.worker in grads:
            job.stats.count("duplicate_gradients")
        else:
            grads[msg.worker] = msg.grad
            node.memory.hold("grads", msg.grad.nbytes)  # kept until the step
    return grads


def worker(job: Job, i: int, preemptible: bool = False):
    """A parameter-server worker: wait for the model, compute, push. With ``preemptible``,
    a newer model arriving while it computes makes the current work stale: it is dropped."""
    node, server_node = job.workers[i], job.server
    memory = node.memory
    job.begin_worker(i)
    model = node.skip_to_newest((yield node.recv()))    # 1. get the current model
    while True:
        memory.set("params", model.params.nbytes)
        grad, flops = (job.gradient(i, model.params) if job.privacy is None  # 2. real
                       else job.private_gradient(i, model.params))   # gradient, my shard
        work = node.compute(flops)                          #    ... which takes simulated time
        if preemptible:
            newer = yield from _finish_or_newer(node, work, model.tag)
            if newer is not None:                           #    the round closed without me
                node.abandon(work)
                memory.free("activations")
                memory.free("grads")
                job.stats.count("dropped_gradients")
                model = node.skip_to_newest(newer)
                continue
        else:
            yield work
        memory.free("activations")                          #    the backward pass is done
        if job.adversary is not None:                       #    an attacker's in its place
            grad = job.adversary.craft(i, grad)
        yield node.send(server_node, TaggedGradient(i, model.tag, job.payload(i, grad)))  # 3. push
        memory.free("grads")
        model = node.skip_to_newest((yield node.recv()))


def _finish_or_newer(node, work, tag: Tag):
    """Wait for ``work``; return None when it is done, or the newer model that made it
    stale first (the same model sent again, after an empty round, does not)."""
    while True:
        newer = node.recv()
        newer.since = work.ends_at  # listening while computing is not waiting
        first, = yield node.sim.any_of([work, newer])
        if first is work:
            return None
        if newer.value.tag != tag:
            return newer.value


def recv_before(node, deadline: float):
    """Wait for the next message until ``deadline``; returns it, or None on timeout."""
    if deadline == math.inf:
        return (yield node.recv())
    remaining = deadline - node.sim.now
    if remaining <= 0:
        return None
    get = node.recv()
    first, = yield node.sim.any_of([get, node.sim.timeout(remaining)])
    return get.value if first is get else None
