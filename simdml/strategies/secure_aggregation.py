"""Secure aggregation in fedavg's rounds (``strategy.secure_aggregation = true``): the
protocol of Bonawitz et al. (2017), its four rounds of messages through the server, on the
simulated clock (the arithmetic: ``simdml.secagg``).

A round, after the server has sent its task to each sampled client:

0. **AdvertiseKeys**: each client makes its two key pairs and sends the public keys
   (``Keys``); the server sends every client the list (``KeyList``): ``U1``;
1. **ShareKeys**: each client draws its self-mask seed ``b_u``, Shamir-shares ``b_u`` and
   its ``s`` secret key among ``U1`` (threshold ``t = floor(|U1| / 2) + 1``), encrypts
   each pair of shares for its recipient and sends them (``Shares``); the server forwards
   each client the pairs addressed to it (``Forward``): ``U2``;
2. **MaskedInputCollection**: each client trains (and may drop out, ``clients.dropout``),
   then sends ``y_u``, its input ``(n_u w_u, n_u)`` in fixed point plus its masks
   (``Masked``); the server keeps the first ``K`` before the deadline: ``U3``;
3. **Unmasking**: the server tells ``U2`` who is in and who is not (``Unmask``); each of
   ``U3``
   sends its shares of ``b_v`` for ``v`` in ``U3`` and of ``s_sk_v`` for ``v`` in ``U2 \\ U3``
   (``Reveal``); from ``t`` of them the server rebuilds the secrets, removes the masks and
   has ``sum_u n_u w_u`` and ``sum_u n_u``: FedAvg's average, and nothing else.

Each message costs its bytes (keys and shares 16 bytes, ``simdml.secagg``), each step its
modelled compute. Clients drop out while they train (``clients.dropout``, after sharing
their keys: they are ``U2 \\ U3``, their pairwise masks are rebuilt from the shares of
``s_sk``) or after sending their masked input (``clients.unmask_dropout``: their input is
summed and the others' shares of ``b_u`` unmask it); the unmasking then waits a second
``clients.deadline`` and needs ``t`` revealers. Simplifications: the key rounds wait for
every sampled client; a client in ``U2 \\ U3`` whose input comes late is not summed.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import secagg
from ..messages import INT_NBYTES
from .sync import recv_before

__all__ = ["server_round", "client_round"]


class Keys(NamedTuple):
    worker: int
    version: int
    c_pk: int
    s_pk: int

    @property
    def nbytes(self) -> int:
        return 2 * INT_NBYTES + 2 * secagg.KEY_NBYTES


class KeyList(NamedTuple):
    version: int
    keys: dict                       # client -> (c_pk, s_pk)

    @property
    def nbytes(self) -> int:
        return INT_NBYTES + len(self.keys) * (INT_NBYTES + 2 * secagg.KEY_NBYTES)


class Shares(NamedTuple):
    worker: int
    version: int
    sealed: dict                     # recipient -> its encrypted pair of shares

    @property
    def nbytes(self) -> int:
        return 2 * INT_NBYTES + len(self.sealed) * secagg.SHARE_NBYTES


class Forward(NamedTuple):
    version: int
    sealed: dict                     # sender -> the pair of shares it sealed for me

    @property
    def nbytes(self) -> int:
        return INT_NBYTES + len(self.sealed) * secagg.SHARE_NBYTES


class Masked(NamedTuple):
    worker: int
    version: int
    words: np.ndarray                # y_u in Z_{2^64}

    @property
    def nbytes(self) -> int:
        return 2 * INT_NBYTES + self.words.nbytes


class Unmask(NamedTuple):
    version: int
    alive: tuple
    dropped: tuple

    @property
    def nbytes(self) -> int:
        return INT_NBYTES * (1 + len(self.alive) + len(self.dropped))


class Reveal(NamedTuple):
    worker: int
    version: int
    b: dict                          # v in U3 -> my share of b_v
    s: dict                          # v in U2 \\ U3 -> my share of s_sk_v

    @property
    def nbytes(self) -> int:
        return 2 * INT_NBYTES + (len(self.b) + len(self.s)) * (INT_NBYTES + secagg.KEY_NBYTES)


def _collect(node, kind, version: int, expected: set, deadline: float, late: list):
    """Process: messages of type ``kind`` for ``version`` from ``expected`` until all are
    in or the deadline; others are put aside in ``late`` (and counted by the caller)."""
    got = {}
    while len(got) < len(expected):
        msg = yield from recv_before(node, deadline)
        if msg is None:
            break
        if isinstance(msg, kind) and msg.version == version and msg.worker in expected:
            got[msg.worker] = msg
        else:
            late.append(msg)
    return got


def server_round(job, fed, version: int, chosen: list, k: int, deadline: float,
                 size: int):
    """Process: the server's side of one round; returns ``(kept clients, sum of n_u w_u,
    sum of n_u)``, or ``None`` when too few clients are left to unmask."""
    node, late = job.server, []
    everyone = set(chosen)
    keys = yield from _collect(node, Keys, version, everyone, deadline, late)     # round 0
    u1 = sorted(keys)
    table = {u: (keys[u].c_pk, keys[u].s_pk) for u in u1}
    for u in u1:
        node.post(fed.device_of[u], KeyList(version, table))
    shares = yield from _collect(node, Shares, version, set(u1), deadline, late)  # round 1
    u2 = sorted(shares)
    for v in u2:
        node.post(fed.device_of[v], Forward(version, {u: shares[u].sealed[v] for u in u2
                                                      if u != v and v in shares[u].sealed}))
    t = len(u1) // 2 + 1
    masked, d = {}, size + 1
    while len(masked) < k:                                                         # round 2
        msg = yield from recv_before(node, deadline)
        if msg is None:
            break
        if isinstance(msg, Masked) and msg.version == version and msg.worker in u2:
            masked[msg.worker] = msg.words
            node.memory.hold("params", msg.words.nbytes)
        else:
            late.append(msg)
    u3 = sorted(masked)
    job.stats.count("late_reports", sum(isinstance(m, Masked) for m in late))
    if len(u3) < t:
        job.stats.count("rounds_without_reports")
        return None
    dropped = tuple(v for v in u2 if v not in masked)   # left, or too late: no input summed
    for u in u2:                                                                   # round 3
        node.post(fed.device_of[u], Unmask(version, tuple(u3), dropped))
    # wait for every share, past the deadline that closed the inputs; when clients may
    # leave here (clients.unmask_dropout), until a second deadline as long as the first
    cfg = fed.config
    closes = node.sim.now + cfg.deadline if cfg.unmask_dropout else math.inf
    reveals = yield from _collect(node, Reveal, version, set(u3), closes, [])
    if len(reveals) < t:                               # too few shares to unmask
        job.stats.count("unmask_failures")
        return None
    fed.last_received = dict(masked)                   # what it holds (the tests look)
    total = np.zeros(d, dtype=np.uint64)
    for u in u3:
        total += masked[u]
    x_of = {u: i + 1 for i, u in enumerate(u1)}        # each client's Shamir point
    weights = secagg.lagrange_weights([x_of[r] for r in reveals])   # the same for all
    for v in u3:                                       # self masks
        b = secagg.reconstruct({x_of[r]: reveals[r].b[v] for r in reveals}, weights)
        total -= secagg.mask(b, d)
    for v in dropped:                                  # the dropouts' pairwise masks
        s_sk = secagg.reconstruct({x_of[r]: reveals[r].s[v] for r in reveals}, weights)
        for u in u3:
            pair = secagg.mask(secagg.agree(s_sk, table[u][1]), d)
            total = total - pair if u < v else total + pair   # what u added, taken off
    n_secrets = len(u3) + len(dropped)
    yield node.compute((len(reveals) ** 2 + n_secrets * len(reveals)) * secagg.FIELD_FLOPS
                       + len(dropped) * len(u3) * (secagg.MODEXP_FLOPS + d * secagg.PRG_FLOPS)
                       + len(u3) * d * secagg.PRG_FLOPS)
    values = secagg.decode(total)
    return u3, values[:-1], values[-1]


def client_round(job, node, fed, task, train):
    """Process: a client's side of one round around its ``train`` (a process returning
    its model, or None if it drops out). Returns a message that came meanwhile and is
    for a later round (to be handled next), or None."""
    c, version = task.client, task.version
    rng = fed.key_rng(c, version)                      # its keys and masks, this round
    c_sk, c_pk = secagg.keypair(rng)
    s_sk, s_pk = secagg.keypair(rng)
    yield node.compute(2 * secagg.MODEXP_FLOPS)
    node.post(job.server, Keys(c, version, c_pk, s_pk))                     # round 0
    table = (yield node.recv()).keys
    n, t = len(table), len(table) // 2 + 1
    x_of = {u: i + 1 for i, u in enumerate(sorted(table))}
    b = secagg.seed_of(rng)
    b_shares, s_shares = secagg.share(b, n, t, rng), secagg.share(s_sk, n, t, rng)
    sealed = {v: secagg.xor_share(secagg.agree(c_sk, table[v][0]),
                                  (b_shares[x_of[v] - 1], s_shares[x_of[v] - 1]))
              for v in table if v != c}
    yield node.compute((n - 1) * secagg.MODEXP_FLOPS + 2 * n * t * secagg.FIELD_FLOPS)
    node.post(job.server, Shares(c, version, sealed))                        # round 1
    inbox = (yield node.recv()).sealed
    mine = {u: secagg.xor_share(secagg.agree(c_sk, table[u][0]), pair)
            for u, pair in inbox.items()}
    mine[c] = (b_shares[x_of[c] - 1], s_shares[x_of[c] - 1])
    params = yield from train()                                              # round 2
    if params is None:
        return None                                    # dropped out
    weight = float(job.shards[c].n_rows)
    y = secagg.encode(np.append(weight * params, weight)) + secagg.mask(b, params.size + 1)
    peers = [v for v in inbox]                         # U2, as far as I know: who shared
    for v in peers:
        pair = secagg.mask(secagg.agree(s_sk, table[v][1]), params.size + 1)
        y = y + pair if c < v else y - pair
    yield node.compute(len(peers) * secagg.MODEXP_FLOPS
                       + (len(peers) + 1) * y.size * secagg.PRG_FLOPS)
    yield node.send(job.server, Masked(c, version, y))
    msg = yield node.recv()                                                  # round 3
    if not isinstance(msg, Unmask) or msg.version != version:
        return msg                                     # the next task already
    if c not in msg.alive:
        return None                                    # too late: my input is not summed
    if task.unmask_leave:                              # I leave: my input is summed, and
        job.stats.count("unmask_dropouts")             # the others' shares unmask it
        return None
    reveal = Reveal(c, version, {v: mine[v][0] for v in msg.alive if v in mine},
                    {v: mine[v][1] for v in msg.dropped if v in mine})
    yield node.send(job.server, reveal)
    return None
