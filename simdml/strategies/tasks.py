"""Task-based synchronous rounds: the training rows are cut into blocks, and a scheduler
at the server hands the blocks of each round to the workers by a policy
(``simdml.scheduling``).

Round ``t``:
1. the policy fills the workers' queues (or leaves blocks in a shared pool);
2. the server sends each live worker up to ``prefetch`` blocks (the model goes with the
   first block of a round it gets); a worker computes the gradient of the loss on each
   block it receives and sends it back;
3. each result frees a slot: the worker gets its next block (its queue, the pool, or --
   work stealing -- another worker's queue);
4. when every block's gradient is in, the server sums them in block order, weighted by
   rows (``n_b / n``) -- the full-batch gradient, whoever computed what -- and steps
   (its optimizer, whose state it holds and checkpoints with the model, as sync's does).

The data are on shared storage: any worker can compute any block (reading costs no
simulated time; a simplification). A crashed worker's blocks -- queued and in flight --
go back to the pool when the failure detector reports it (``detect_after`` s after the
crash); the first result of a block counts, a late duplicate is dropped, so every block
is counted exactly once per round, whatever fails. A restarted worker says hello and
gets work again. ``block_timeout`` re-sends a block whose result has not come back in
time (a lost message), to whichever worker the policy picks.

Each history row records the round's ``makespan`` (s); the summary counts
``blocks_moved`` (stolen), ``blocks_requeued`` (from crashed workers),
``block_retries`` and ``duplicate_results`` (wasted work).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .. import _checks
from ..scheduling import POLICIES, RoundState
from ..messages import Block, Down, Hello, Result, Tag
from ._costs import aggregate_flops
from .job import Job, weighted_sum
from .sync import recv_before

__all__ = ["SchedulingOptions", "start"]


@dataclass(frozen=True, kw_only=True)
class SchedulingOptions:
    policy: str = "round_robin"     # a registered policy (simdml.scheduling.POLICIES)
    blocks: int | None = None       # blocks per round, >= workers; None: 4 per worker
    prefetch: int = 2               # blocks a worker holds at once (one computing, one queued)
    detect_after: float = 0.0       # s between a crash and the server's knowing of it
    block_timeout: float = math.inf  # s: re-send a block whose result is this late

    def __post_init__(self):
        _checks.choice("policy", self.policy, tuple(POLICIES))
        if self.blocks is not None:
            _checks.integer("blocks", self.blocks, low=1)
        _checks.integer("prefetch", self.prefetch, low=1)
        _checks.number("detect_after", self.detect_after, low=0, unit="s")
        _checks.number("block_timeout", self.block_timeout, low=0, strict_low=True, finite=False,
                       unit="s")


def start(job: Job):
    """The blocks, a failure detector per worker, the workers and the scheduler."""
    opts = job.options
    k = len(job.workers)
    n_blocks = opts.blocks or 4 * k
    X, y = job.monitor.X_train, job.monitor.y_train
    if n_blocks > y.size:
        raise ValueError(f"scheduling.blocks must be at most the {y.size} training rows; "
                         f"got {n_blocks}")
    bounds = np.linspace(0, y.size, n_blocks + 1).round().astype(int)
    blocks = [(X[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]  # (X, y) views
    for i, node in enumerate(job.workers):
        node.start(worker, job, i, blocks)
        # not a daemon: its notice is progress (it un-stalls a round that waits on a
        # crashed worker), so the simulation must not end while it is due
        job.sim.process(_detector(job, i), name=f"detector@{node.name}")
    process = job.server.start(server, job, blocks)
    return job.done if job.checkpoints.every else process  # see sync.start


def _detector(job: Job, i: int):
    """The server's failure detector for worker i: a notice ``detect_after`` s after each
    crash (delivered locally, as a heartbeat timeout would fire)."""
    node = job.workers[i]
    while True:  # watch for the next crash at once: one notice per crash, however close
        yield node.when_down()
        job.sim.process(_notify(job, i, node.epoch), name=f"notice@{node.name}")


def _notify(job: Job, i: int, epoch: int):
    if job.options.detect_after > 0:
        yield job.sim.timeout(job.options.detect_after)
    if job.server.is_up:
        job.server.mailbox.put(Down(i, epoch))


def server(job: Job, blocks: list):
    node, opts = job.server, job.options
    k, n_blocks = len(job.workers), len(blocks)
    sizes = np.array([b[1].size for b in blocks])
    masses = np.array([job.weight_of(b[1]) for b in blocks])
    weights = masses / masses.sum()  # n_b / n, or the block's share of the class weights
    policy = POLICIES[opts.policy]()
    # the nominal speeds the scenario states; a slowdown is for the policy to discover
    state = RoundState(sizes, np.array([w.speed for w in job.workers]), {}, job.policy_rng)
    params, version, saved = job.checkpoints.restore(node)  # the initial model, or the
    if params is None:                   # last checkpoint (None: restarting is futile)
        return job.finish()
    opt = job.optimizer                  # its state lives here, with the model
    opt_state = opt.init_state(params) if saved is None else saved
    memory = node.memory
    memory.set("params", params.nbytes)
    memory.set("optimizer", opt_state.nbytes)
    live = {i for i in range(k) if job.workers[i].is_up}
    known = {i: job.workers[i].epoch for i in range(k)}  # crashes the server has heard of
    if job.monitor.update(params, version):
        return job.finish()
    while True:
        began = node.sim.now
        tag = Tag(node.epoch, version)  # a result of the server's previous life never counts
        r = _Round(job, policy, live, tag, params)
        # nobody live (all crashed, or not heard from since a restart): all in the pool
        reachable = sorted(w for w in live if not r.cut_off(w))
        r.queues = policy.assign(list(range(n_blocks)), reachable, state) if reachable else {}
        queued = {b for q in r.queues.values() for b in q}
        r.pool = deque(b for b in range(n_blocks) if b not in queued)
        for w in sorted(live):
            r.fill(w)
        while len(r.results) < n_blocks:
            match (yield from r.next_message()):
                case None:                                   # a block was overdue: re-sent
                    if job.cut_off():                        # ... to nobody reachable, ever
                        return job.finish()
                case Result(w, v, b, _, _) if v != tag or b in r.results:
                    job.stats.count("duplicate_results")           # late or re-sent: wasted work
                    if v == tag:
                        r.done(w, b)                         # ... but w is free again
                case Result(w, _, b, grad, seconds):
                    r.results[b] = grad
                    memory.hold("grads", grad.nbytes)        # kept until the step
                    r.done(w, b)
                    state.seconds_per_row[w] = _smooth(state.seconds_per_row.get(w),
                                                       seconds / sizes[b])
                case Down(w, epoch):                         # the detector: w crashed
                    _crash_news(r, known, w, epoch)
                case Hello(w, epoch):                        # w restarted (a crash, if news)
                    _crash_news(r, known, w, epoch)
                    if epoch >= known[w]:                    # not a hello of a past life
                        live.add(w)
                        r.fill(w)
        g = weighted_sum(weights, [r.results[b] for b in range(n_blocks)])  # block order
        memory.hold("grads", g.nbytes)
        yield node.compute(aggregate_flops(n_blocks, params.size, step=opt.flops(params.size)))
        params, opt_state = opt.step(params, g, opt_state, version)
        memory.free("grads")
        memory.set("optimizer", opt_state.nbytes)
        version += 1
        if job.monitor.update(params, version, makespan=node.sim.now - began):
            return job.finish()
        yield from job.checkpoints.after_update(node, params, version, opt_state)


def _crash_news(r: _Round, known: dict, w: int, epoch: int) -> None:
    """Worker w's life ``epoch`` ended: its blocks go back, unless that crash is old news."""
    if epoch > known[w]:
        known[w] = epoch
        r.lost(w)


def _smooth(old, new, keep: float = 0.5):
    return new if old is None else keep * old + (1 - keep) * new


class _Round:
    """One round's bookkeeping at the server: queues, pool, what each worker holds."""

    def __init__(self, job: Job, policy, live: set, tag: Tag, params):
        self.job, self.policy, self.live = job, policy, live
        self.tag, self.params = tag, params
        self.results: dict = {}
        self.holding = {w: deque() for w in range(len(job.workers))}  # sent, not returned
        self.sent_at: dict = {}      # block -> when it was (last) sent
        self.retries: dict = {}      # block -> times re-sent (each waits twice as long)
        self.has_model: set = set()  # workers that got this round's model
        self.queues, self.pool = {}, deque()

    def fill(self, w: int) -> None:
        """Top worker w up to ``prefetch`` blocks (none for a worker a partition cuts off
        for good: its blocks come back on their timeout and go to the others)."""
        job = self.job
        if self.cut_off(w):  # its queued blocks go to the pool, for the reachable workers
            queued = self.queues.get(w)
            if queued:
                self.pool.extend(b for b in queued if b not in self.pool)
                queued.clear()
                for v in sorted(self.live):
                    if not self.cut_off(v):
                        self.fill(v)
            return
        while w in self.live and len(self.holding[w]) < job.options.prefetch:
            got = self.policy.next_block(w, self.queues, self.pool)
            if got is None:
                return
            b, moved = got
            if b in self.results:  # a copy of a block that is done already
                continue
            if moved:
                job.stats.count("blocks_moved")
            self.send(w, b)

    def cut_off(self, w: int) -> bool:
        """Whether a partition that never heals separates worker w from the server."""
        network = self.job.cluster.network
        return bool(network.partitions) and network.cut(
            self.job.server.index, self.job.workers[w].index, for_good=True)

    def send(self, w: int, b: int) -> None:
        model = None if w in self.has_model else self.params
        self.has_model.add(w)
        self.holding[w].append(b)
        self.sent_at[b] = self.job.sim.now
        block = Block(self.tag, model, b)
        self.job.server.post(self.job.workers[w], block)

    def done(self, w: int, b: int) -> None:
        """Block b is in (from w): every worker holding a copy of it is free of it."""
        for v, held in self.holding.items():
            if b in held:
                held.remove(b)
                self.fill(v)
        self.fill(w)

    def lost(self, w: int) -> None:
        """Worker w crashed: its queued and unfinished blocks go back to the pool."""
        self.live.discard(w)
        self.has_model.discard(w)
        back = [b for b in list(self.holding[w]) + list(self.queues.get(w, ()))
                if b not in self.results]
        self.holding[w].clear()
        if w in self.queues:
            self.queues[w].clear()
        self.pool.extend(b for b in back if b not in self.pool)
        self.job.stats.count("blocks_requeued", len(back))
        for v in sorted(self.live):
            self.fill(v)

    def next_message(self):
        """The next message, or None after re-sending a block that timed out."""
        node, timeout = self.job.server, self.job.options.block_timeout
        if timeout == math.inf:
            return (yield node.recv())
        pending = [(t + timeout * 2.0 ** min(self.retries.get(b, 0), 30), b)
                   for b, t in self.sent_at.items() if b not in self.results]
        if not pending:
            return (yield node.recv())
        due, b = min(pending)
        remaining = due - node.sim.now
        if remaining > 0:
            get = node.recv()
            first, = yield node.sim.any_of([get, node.sim.timeout(remaining)])
            if first is get:
                return get.value
        # late: lost, or slow. The holder's slot is freed (its copy may be lost) and the
        # block goes out again (a slow first copy may still come back: whichever result
        # is first counts); the next wait for b is twice as long, so retries thin out
        self.job.stats.count("block_retries")
        self.retries[b] = self.retries.get(b, 0) + 1
        for v, held in self.holding.items():
            if b in held:
                held.remove(b)
                self.has_model.discard(v)  # the model may have been lost with it
        del self.sent_at[b]
        if b not in self.pool:
            self.pool.appendleft(b)
        for v in sorted(self.live):
            self.fill(v)
        return None


def worker(job: Job, i: int, blocks: list):
    """Compute the gradient of every block I am sent, on the model of its round."""
    node = job.workers[i]
    first = None
    if node.epoch > 0:                       # restarted after a crash: ask for work, again
        retry = job.options.block_timeout    # and again if the hello may have been lost
        while first is None:
            hello = Hello(i, node.epoch)
            node.post(job.server, hello)
            first = yield from recv_before(node, node.sim.now + retry)
    params, tag = None, None
    while True:
        msg = first if first is not None else (yield node.recv())
        first = None
        if msg.params is not None:           # the first block of a round brings its model
            params, tag = msg.params, msg.tag
            node.memory.set("params", params.nbytes)
        if msg.tag != tag:                   # a block of a round whose model I lack
            continue
        X, y = blocks[msg.block]             # read from shared storage, for this block
        grad = job.grad(params, X, y)
        job.monitor.rows += y.size
        _hold_block(job, node, X, y, grad)
        began = node.sim.now
        yield node.compute(job.model.grad_flops(y.size))
        node.memory.free("activations")
        result = Result(i, tag, msg.block, grad, node.sim.now - began)
        yield node.send(job.server, result)
        node.memory.free("grads")
        node.memory.free("shard")


def _hold_block(job: Job, node, X, y, grad) -> None:
    """Book the block a worker computes: its rows (as its shard, while it has them), the
    activations of the pass and the gradient."""
    memory = node.memory
    memory.set("shard", X.nbytes + y.nbytes)
    memory.set("activations", job.activation_nbytes(y.size))
    memory.set("grads", grad.nbytes)
