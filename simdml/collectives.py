"""Collective communication on a group of nodes: generator processes that every node of
the group runs at once, with real chunks, real sums and real messages.

``allreduce(name, group, i, vector)`` sums ``vector`` over the group (``i``: this node's
rank) with the algorithm ``name`` (``ALLREDUCE``); the ring's two halves,
``ring_reduce_scatter`` and ``ring_allgather``, and Rabenseifner's,
``halving_reduce_scatter`` and ``doubling_allgather`` (power-of-two groups), are also
collectives of their own (``HALVES``: ZeRO uses them apart). Every node of the group ends with the same bits (each block of the sum
is added up once and copied, or the same two operands are added on both sides).

Algorithms (Thakur, Rabenseifner & Gropp 2005; ``p`` nodes, ``n`` bytes, one message
costs ``alpha + n beta`` -- the network's latency and 1 / bandwidth -- and a node sends
one and receives one at a time; free compute):

* ``ring`` (Patarasuk & Yuan 2009): ``p - 1`` reduce-scatter steps and ``p - 1``
  all-gather steps of ``1/p`` of the vector: ``2 (p - 1) alpha + 2 (p - 1) / p n beta``.
* ``tree``: a binomial tree, ``reduce`` to rank 0, then ``broadcast`` back (each a
  collective of its own, ``ceil(log2 p) (alpha + n beta)``): ``2 ceil(log2 p) (alpha +
  n beta)``.
* ``recursive_doubling``: ``log2 p`` steps; at step ``k`` each node swaps its whole
  partial sum with rank ``i xor 2^k`` and adds: ``log2 p (alpha + n beta)``.
* ``rabenseifner`` (alias ``halving_doubling``): a reduce-scatter by recursive halving
  (the partner at distance ``p/2, p/4, ...`` gets the half of my blocks I do not keep),
  then an all-gather by recursive doubling: ``2 log2 p alpha + 2 (p - 1) / p n beta``.
* ``hierarchical`` (groups of ``size``, e.g. a rack's hosts): the ring's reduce-scatter
  inside each group, a ring all-reduce of each chunk across the groups, the ring's
  all-gather inside: ``2 (g - 1)(alpha_i + n / g beta_i) + 2 (G - 1)(alpha_o + n / p
  beta_o)`` (``hierarchical_time``, with the links inside and between the groups): only
  ``1 / g`` of the vector crosses between groups.

Non-powers of two (``recursive_doubling``, ``rabenseifner``), as MPICH does: with ``p'``
the largest power of two below ``p`` and ``r = p - p'``, each even rank ``2k < 2r`` hands
its vector to rank ``2k + 1``, which adds it; the ``p'`` remaining ranks run the
algorithm; each odd rank ``2k + 1 < 2r`` sends the result back. That costs two messages
of the whole vector more: ``+ 2 (alpha + n beta)``, with ``p'`` in place of ``p`` above.
The ring and the tree need no special case (the tree's last level is partly empty).
``allreduce_time`` is the formula of each. It is the simulated time exactly for the ring
at any ``p`` and for every algorithm at a power of two (``tests/test_collectives.py``).
Off powers of two the formulas count whole synchronous steps, while here a node with
nothing to wait for sends at once: latencies overlap (or, where NIC queues meet, one
collides), so the simulated latency count is the messages' own; the bandwidth term, the
bytes on each critical path, is still the formula's exactly. A tree's root has the sum
when its reduce ends (its broadcast is queued on its NIC): it returns after half the
cost, the others after all of it.

Messages. The ring's chunk is the next message from the left neighbour: it is the only
sender, and a link keeps its order. The others hear from a different partner at every
step, so a message is a ``Piece`` naming the call and the step, and a piece that arrives
early (a partner already a step or a call ahead) waits in its group's buffer until the
node asks for it. A piece costs its array's bytes (the two numbers of its name are not
counted: a real library puts them in the header of its own transport).

Groups. A ``Group`` (nodes in rank order) untagged uses each node's mailbox, which must
then carry only the group's traffic; tagged, a message travels as ``(tag, array)`` and is
taken from ``inboxes[k]``, a queue the node's demultiplexer fills (hybrid's rings); a
stepped algorithm's piece then travels as ``(tag, piece)``.

References
----------
R. Thakur, R. Rabenseifner and W. Gropp, "Optimization of Collective Communication
Operations in MPICH", IJHPCA 19(1), 2005, Sec. 4 (the costs above); P. Patarasuk and
X. Yuan, "Bandwidth optimal all-reduce algorithms for clusters of workstations", JPDC
69(2), 2009; R. Rabenseifner, "Optimization of Collective Reduction Operations", ICCS
2004.
"""
from __future__ import annotations

import itertools
import weakref
from typing import NamedTuple

import numpy as np

from . import _checks
from .collective_times import (ALIASES, NAMES, allgather_time, allreduce_time,
                               hierarchical_time, tree_time)

__all__ = ["Group", "Piece", "ALLREDUCE", "ALIASES", "allreduce", "allreduce_time",
           "ring_allreduce", "ring_reduce_scatter", "ring_allgather", "owned_chunk",
           "ring_allgather_items", "allgather_time", "halving_reduce_scatter",
           "doubling_allgather", "halving_owned_chunk", "HALVES", "reduce", "broadcast", "tree_time", "hierarchical", "hierarchical_time",
           "check_collective"]


_UIDS = itertools.count()
#: node -> {(group, call, step): array}: the pieces that came before the node asked for
#: them, whichever of its groups they are for (a node's mailbox serves all its groups)
_EARLY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Group:
    """Nodes that run collectives together, in rank order (see the module docstring:
    untagged, their mailboxes; tagged, ``(tag, array)`` into ``inboxes[k]``)."""

    __slots__ = ("nodes", "tag", "inboxes", "uid", "_calls", "_parts")

    def __init__(self, nodes, tag: str | None = None, inboxes: list | None = None):
        self.nodes, self.tag, self.inboxes = list(nodes), tag, inboxes
        self.uid = next(_UIDS)
        self._calls = [0] * len(self.nodes)            # collectives each rank has begun
        self._parts: dict[int, tuple] = {}              # size -> (inner groups, outer groups)

    def __len__(self) -> int:
        return len(self.nodes)

    def parts(self, size: int) -> tuple[list, list]:
        """Its ``hierarchical`` subgroups of ``size``: the inner ones (ranks ``j size ..
        j size + size - 1``, e.g. a rack's hosts) and the outer ones (the ranks of the
        same place ``k`` in every inner group), made once."""
        if size not in self._parts:
            p = len(self.nodes)
            if size < 1 or p % size:
                raise ValueError(f"a hierarchical all-reduce needs groups of a size that "
                                 f"divides the {p} nodes; got {size}")
            box = self.inboxes or [None] * p        # tagged: the members' queues go along
            inner = [Group(self.nodes[j:j + size], self.tag, box[j:j + size] if self.tag
                           else None) for j in range(0, p, size)]
            outer = [Group(self.nodes[k::size], self.tag, box[k::size] if self.tag else None)
                     for k in range(size)]
            self._parts[size] = (inner, outer)
        return self._parts[size]


class Piece(NamedTuple):
    """A message of a stepped collective: ``array`` for step ``step`` of call ``call``
    of group ``group`` (its ``uid``)."""

    group: int
    call: int
    step: int
    array: np.ndarray


# -- the ring ---------------------------------------------------------------------------

def ring_allreduce(group: Group, i: int, vector: np.ndarray):
    """Process: sum ``vector`` over the ring (node ``k`` sends to ``k + 1``); returns the
    sum. The reduce-scatter, then the all-gather: each half is a process of its own."""
    n = len(group)
    if n == 1:
        return vector
    chunks = [c.copy() for c in np.array_split(vector, n)]
    yield from ring_reduce_scatter(group, i, chunks)
    yield from ring_allgather(group, i, chunks)
    return np.concatenate(chunks)


def owned_chunk(i: int, n: int) -> int:
    """The chunk node ``i`` of ``n`` holds summed after the ring's reduce-scatter (and
    sends first in its all-gather): ``(i + 1) mod n``."""
    return (i + 1) % n


def _ring_link(group: Group, i: int):
    """``(n, send(array), recv())`` for node ``i`` of the ring."""
    n, node = len(group), group.nodes[i]
    right = group.nodes[(i + 1) % n]
    if group.tag is None:
        return n, lambda array: node.post(right, array), node.recv
    tag, inbox = group.tag, group.inboxes[i]
    return n, lambda array: node.post(right, (tag, array), array.nbytes), inbox.get


def ring_reduce_scatter(group: Group, i: int, chunks: list[np.ndarray]):
    """Process: ``n - 1`` steps that leave, in place, ``chunks[owned_chunk(i, n)]`` summed
    over the ring (the other chunks hold partial sums). ``chunks`` are node ``i``'s own
    ``n`` arrays (its copies: they are added to)."""
    n, send, recv = _ring_link(group, i)
    for step in range(n - 1):
        out, into = (i - step) % n, (i - step - 1) % n
        send(chunks[out])
        partial = yield recv()
        if partial.shape != chunks[into].shape:   # a broken order would broadcast silently
            raise RuntimeError(f"worker {i}'s ring received a chunk of shape {partial.shape} "
                               f"for its chunk {into} of shape {chunks[into].shape}")
        chunks[into] += partial


def ring_allgather(group: Group, i: int, chunks: list[np.ndarray]):
    """Process: ``n - 1`` steps from ``chunks[owned_chunk(i, n)]`` (each node's own) to
    every node holding every node's chunk, in place of the others in ``chunks``."""
    n, send, recv = _ring_link(group, i)
    for step in range(n - 1):
        out, into = (i + 1 - step) % n, (i - step) % n
        send(chunks[out])
        chunks[into] = yield recv()


def ring_allgather_items(group: Group, i: int, item):
    """Process: every node's ``item`` (an array, or any payload that states its
    ``nbytes``: a compressed gradient) to every node, round the ring; returns them in
    rank order. ``p - 1`` steps, each passing on the item received last:
    ``allgather_time``."""
    n = len(group)
    items = [None] * n
    items[owned_chunk(i, n)] = item
    if n > 1:
        yield from ring_allgather(group, i, items)
    return items[1:] + items[:1]                        # item of rank r sat at (r + 1) mod n


# -- stepped collectives: a partner per step --------------------------------------------

class _Steps:
    """Node ``i``'s side of one stepped collective: ``send(j, step, array)`` and
    ``recv(step)`` (a process: the piece of this call and step, early ones buffered)."""

    def __init__(self, group: Group, i: int):
        self.group, self.i, self.node = group, i, group.nodes[i]
        self.call = group._calls[i]
        group._calls[i] += 1
        # untagged: the node's mailbox; tagged: (tag, piece) messages, from inboxes[i]
        self._get = self.node.recv if group.tag is None else group.inboxes[i].get

    def send(self, j: int, step: int, array: np.ndarray) -> None:
        piece = Piece(self.group.uid, self.call, step, array)
        self.node.post(self.group.nodes[j],
                       piece if self.group.tag is None else (self.group.tag, piece),
                       array.nbytes)

    def recv(self, step: int):
        early = _EARLY.setdefault(self.node, {})
        key = (self.group.uid, self.call, step)
        while key not in early:
            piece = yield self._get()
            early[piece[:3]] = piece.array
        return early.pop(key)


def _fold(steps: _Steps, vector: np.ndarray, p: int):
    """Process: the non-power-of-two prologue. Returns ``(rank among the p' that go on,
    or None for a rank that handed its vector over; p'; the vector)``."""
    q = 1 << (p.bit_length() - 1)            # p': the largest power of two <= p
    r, i = p - q, steps.i
    if i < 2 * r:
        if i % 2 == 0:
            steps.send(i + 1, -1, vector)
            return None, q, vector
        vector = vector + (yield from steps.recv(-1))
        return i // 2, q, vector
    return i - r, q, vector


def _real(rank: int, p: int, q: int) -> int:
    """The node of rank ``rank`` among the ``q`` that go on."""
    r = p - q
    return 2 * rank + 1 if rank < r else rank + r


def _unfold(steps: _Steps, me, p: int, q: int, vector):
    """Process: the epilogue: the odd ranks below ``2 r`` send the sum back."""
    i, r = steps.i, p - q
    if me is None:
        return (yield from steps.recv(-2))
    if i < 2 * r:
        steps.send(i - 1, -2, vector)
    return vector


def recursive_doubling(group: Group, i: int, vector: np.ndarray):
    """Process: ``log2 p'`` steps; at step ``k`` swap the partial sum with the partner at
    distance ``2^k`` and add (both sides add the same two arrays: the same bits)."""
    p = len(group)
    if p == 1:
        return vector
    steps = _Steps(group, i)
    me, q, x = yield from _fold(steps, vector, p)
    if me is not None:
        for k in range(q.bit_length() - 1):
            partner = _real(me ^ (1 << k), p, q)
            steps.send(partner, k, x)
            x = x + (yield from steps.recv(k))
    return (yield from _unfold(steps, me, p, q, x))


def _halve(steps: _Steps, blocks: list, me: int, peer, step: int = 0):
    """Process: a reduce-scatter by recursive halving over the ``q = len(blocks)`` blocks
    (``q`` a power of two) of rank ``me`` of ``q`` (``peer(rank)``: its node), in place:
    the partner at distance ``q/2, q/4, ...`` gets the half of my blocks I do not keep
    and adds it. Ends with ``blocks[me]`` summed; returns the next step's number."""
    lo, hi, d = 0, len(blocks), len(blocks) // 2
    while d >= 1:                                  # halving: keep one half of my blocks
        mid = (lo + hi) // 2
        keep, give = ((lo, mid), (mid, hi)) if me & d == 0 else ((mid, hi), (lo, mid))
        steps.send(peer(me ^ d), step, np.concatenate(blocks[give[0]:give[1]]))
        theirs = yield from steps.recv(step)
        sizes = [len(b) for b in blocks[keep[0]:keep[1]]]   # rows: a 2-D block splits by rows
        for k, part in zip(range(*keep), np.split(theirs, np.cumsum(sizes)[:-1])):
            blocks[k] += part
        lo, hi, step, d = keep[0], keep[1], step + 1, d // 2
    return step


def _double(steps: _Steps, blocks: list, me: int, peer, step: int = 0):
    """Process: an all-gather by recursive doubling from ``blocks[me]`` (each rank's own)
    to every rank holding every block, in place of the others: at distance ``1, 2, ...``
    swap all the blocks held."""
    lo, hi, d, q = me, me + 1, 1, len(blocks)
    while d < q:                                   # doubling: swap what each holds
        steps.send(peer(me ^ d), step, np.concatenate(blocks[lo:hi]))
        theirs = yield from steps.recv(step)
        other = (hi, hi + (hi - lo)) if me & d == 0 else (lo - (hi - lo), lo)
        sizes = [len(b) for b in blocks[other[0]:other[1]]]
        for k, part in zip(range(*other), np.split(theirs, np.cumsum(sizes)[:-1])):
            blocks[k] = part
        lo, hi = min(lo, other[0]), max(hi, other[1])
        step, d = step + 1, d * 2


def rabenseifner(group: Group, i: int, vector: np.ndarray):
    """Process: a reduce-scatter by recursive halving over ``p'`` blocks, then an
    all-gather by recursive doubling (Rabenseifner 2004)."""
    p = len(group)
    if p == 1:
        return vector
    steps = _Steps(group, i)
    me, q, x = yield from _fold(steps, vector, p)
    if me is not None:
        blocks = [b.copy() for b in np.array_split(x, q)]
        peer = lambda rank: _real(rank, p, q)  # noqa: E731
        step = yield from _halve(steps, blocks, me, peer)
        yield from _double(steps, blocks, me, peer, step)
        x = np.concatenate(blocks)
    return (yield from _unfold(steps, me, p, q, x))


def _power_of_two(group: Group, what: str) -> int:
    p = len(group)
    if p & (p - 1):
        raise ValueError(f"{what} runs on a power-of-two group; got {p} nodes")
    return p


def halving_reduce_scatter(group: Group, i: int, chunks: list[np.ndarray]):
    """Process: Rabenseifner's first half alone, on a power-of-two group: leaves, in
    place, ``chunks[i]`` (``halving_owned_chunk``) summed over the group; ``log2 p
    alpha + (p - 1) / p n beta``. ``chunks``: node ``i``'s ``p`` arrays (added to)."""
    if _power_of_two(group, "a reduce-scatter by recursive halving") > 1:
        yield from _halve(_Steps(group, i), chunks, i, lambda rank: rank)


def doubling_allgather(group: Group, i: int, chunks: list[np.ndarray]):
    """Process: Rabenseifner's second half alone, on a power-of-two group: from
    ``chunks[i]`` (each node's own) to every node holding every node's chunk, in place
    of the others; ``log2 p alpha + (p - 1) / p n beta``."""
    if _power_of_two(group, "an all-gather by recursive doubling") > 1:
        yield from _double(_Steps(group, i), chunks, i, lambda rank: rank)


def halving_owned_chunk(i: int, n: int) -> int:
    """The chunk node ``i`` holds summed after ``halving_reduce_scatter``: its own, ``i``."""
    return i


#: the all-reduces made of a reduce-scatter and an all-gather, by name: the halves and
#: the chunk each node owns in between (ZeRO shards along them)
HALVES = {"ring": (ring_reduce_scatter, ring_allgather, owned_chunk),
          "rabenseifner": (halving_reduce_scatter, doubling_allgather, halving_owned_chunk)}


def reduce(group: Group, i: int, vector: np.ndarray):
    """Process: a binomial-tree reduce to rank 0 (at step ``k`` the ranks ``i = 2^k mod
    2^(k+1)`` send their partial sum to ``i - 2^k`` and are done); returns the sum on rank
    0, None elsewhere. ``ceil(log2 p) (alpha + n beta)`` at a power of two."""
    p = len(group)
    if p == 1:
        return vector
    steps = _Steps(group, i)
    x = vector
    for k in range((p - 1).bit_length()):
        span = 1 << k
        if i % (2 * span) == span:
            steps.send(i - span, k, x)
            return None
        if i + span < p:
            x = x + (yield from steps.recv(k))
    return x


def broadcast(group: Group, i: int, vector: np.ndarray | None):
    """Process: rank 0's ``vector`` to every rank down the binomial tree (the reduce's,
    reversed: at step ``k``, from the highest, ranks ``i = 0 mod 2^(k+1)`` send to ``i +
    2^k``); returns it on every rank (the others pass None). ``ceil(log2 p) (alpha + n
    beta)`` at a power of two; rank 0 returns once its copies are queued on its NIC."""
    p = len(group)
    if p == 1:
        return vector
    steps = _Steps(group, i)
    x = vector
    for k in reversed(range((p - 1).bit_length())):
        span = 1 << k
        if i % (2 * span) == span:
            x = yield from steps.recv(k)
        elif i % (2 * span) == 0 and i + span < p:
            steps.send(i + span, k, x)
    return x


def tree(group: Group, i: int, vector: np.ndarray):
    """Process: ``reduce`` to rank 0, then ``broadcast`` back down the same tree."""
    total = yield from reduce(group, i, vector)
    return (yield from broadcast(group, i, total))


def _stepped_ring(steps: _Steps, chunks: list[np.ndarray], gather: bool):
    """Process: the ring's reduce-scatter (or, ``gather``, its all-gather) on ``chunks``,
    in place, as ``ring_reduce_scatter`` / ``ring_allgather`` do, in named pieces (for a
    node in several rings at once)."""
    n, i = len(steps.group), steps.i
    for step in range(n - 1):
        if gather:
            out, into = (i + 1 - step) % n, (i - step) % n
        else:
            out, into = (i - step) % n, (i - step - 1) % n
        steps.send((i + 1) % n, step, chunks[out])
        piece = yield from steps.recv(step)
        if gather:
            chunks[into] = piece
        else:
            chunks[into] += piece


def hierarchical(group: Group, i: int, vector: np.ndarray, size: int):
    """Process: a two-level all-reduce over groups of ``size`` (a rack's hosts): the ring's
    reduce-scatter inside my group, the ring all-reduce of the chunk I then hold with the
    nodes of the same place in the other groups, the ring's all-gather inside my group.
    With ``g = size`` nodes a group and ``G = p / g`` groups, and the links inside and
    between groups (``alpha_i, beta_i``, ``alpha_o, beta_o``):
    ``2 (g - 1)(alpha_i + n / g beta_i) + 2 (G - 1)(alpha_o + n / p beta_o)``: only
    ``1 / g`` of the vector crosses between groups, in ``2 (G - 1)`` steps."""
    if len(group) == 1:
        return vector
    inner, outer = group.parts(size)
    j, k = divmod(i, size)
    mine = _Steps(inner[j], k) if size > 1 else None
    chunks = [c.copy() for c in np.array_split(vector, size)]
    if mine is not None:
        yield from _stepped_ring(mine, chunks, gather=False)
    c = owned_chunk(k, size) if size > 1 else 0
    if len(outer[k]) > 1:                       # across the groups, my chunk only
        across = _Steps(outer[k], j)
        pieces = [x.copy() for x in np.array_split(chunks[c], len(outer[k]))]
        yield from _stepped_ring(across, pieces, gather=False)
        yield from _stepped_ring(across, pieces, gather=True)
        chunks[c] = np.concatenate(pieces)
    if mine is not None:
        gather = _Steps(inner[j], k)
        yield from _stepped_ring(gather, chunks, gather=True)
    return np.concatenate(chunks)


#: the all-reduce algorithms by name (``collective = NAME``)
ALLREDUCE = {"ring": ring_allreduce, "tree": tree, "recursive_doubling": recursive_doubling,
             "rabenseifner": rabenseifner, "hierarchical": hierarchical}
assert tuple(ALLREDUCE) == NAMES


def check_collective(name: str, size) -> None:
    """An option rule of every strategy that takes ``collective``: a known algorithm, and
    ``group_size`` an integer >= 1 that only ``hierarchical`` sets."""
    _checks.choice("collective", name, [*ALLREDUCE, *ALIASES])
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"group_size must be an integer >= 1 (the hierarchical all-reduce's "
                         f"nodes per inner group); got {size!r}")
    if size != 1 and ALIASES.get(name, name) != "hierarchical":
        raise ValueError(f"group_size={size} sizes the groups of collective='hierarchical'; "
                         f"collective={name!r} has none (leave group_size at 1)")


def allreduce(name: str, group: Group, i: int, vector: np.ndarray, size: int = 1):
    """Process: node ``i``'s part of summing ``vector`` over ``group`` with the algorithm
    ``name`` (``hierarchical``: in groups of ``size``); returns the sum (the same bits on
    every node)."""
    name = ALIASES.get(name, name)
    if name == "hierarchical":
        return (yield from hierarchical(group, i, vector, size))
    return (yield from ALLREDUCE[name](group, i, vector))
