"""The messages strategies send: one named type per kind, with fields.

A process dispatches on the type (``match msg: case Gradient(worker, version, grad):``),
never on a position or a string tag. Each type says its size on the wire in ``nbytes``,
and a sender passes it on (``node.send(dst, msg, nbytes=msg.nbytes)``): the cluster then
need not walk the message to size it, and a kind whose name used to travel as a string
tag (``"level"``, ``"result"``) keeps those bytes as a header of that length.

The sizes are those of ``simdml.network.payload_nbytes``: arrays by ``.nbytes``, every
number 8 bytes, ``None`` nothing, containers the sum of their items. A message that is a
single array -- a ring all-reduce's chunk, ADMM's consensus ``z`` -- travels as the bare
array, which needs no name.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .network import payload_nbytes

__all__ = ["INT_NBYTES", "TAG_NBYTES", "TAGGED_MODEL_HEADER", "TAGGED_GRADIENT_HEADER",
           "SUPPORT_SET_HEADER",
           "Tag", "TaggedModel", "TaggedGradient", "Pull", "Model", "Gradient", "LocalModel",
           "LocalSolution", "SupportSet", "FittedModel", "CountClasses", "Level", "Vote",
           "SendChosen", "Part", "Block", "Result", "Hello", "Down", "Rows"]

INT_NBYTES = 8                                   # an index, count or version: 8 bytes
TAG_NBYTES = 2 * INT_NBYTES                      # a Tag: epoch and version
TAGGED_MODEL_HEADER = TAG_NBYTES                 # a TaggedModel besides its parameters
TAGGED_GRADIENT_HEADER = INT_NBYTES + TAG_NBYTES  # a TaggedGradient besides its gradient
SUPPORT_SET_HEADER = 2 * INT_NBYTES              # a SupportSet besides its support vectors


class Tag(NamedTuple):
    """Which model a message is about: the server's life (its restart count, so that a
    gradient of a previous life is never taken for a current one) and its version."""

    epoch: int
    version: int


# -- parameter servers ---------------------------------------------------------
# perf: the models and gradients below are the hot path (one per worker per round);
# their nbytes is a constant plus one array's, so sizing them walks nothing.

class TaggedModel(NamedTuple):
    """Server -> worker (``sync``): the model of round ``tag``."""

    tag: Tag
    params: np.ndarray

    @property
    def nbytes(self) -> int:
        return TAGGED_MODEL_HEADER + self.params.nbytes


class TaggedGradient(NamedTuple):
    """Worker -> server (``sync``): worker ``worker``'s gradient on the model ``tag``."""

    worker: int
    tag: Tag
    grad: np.ndarray

    @property
    def nbytes(self) -> int:
        return TAGGED_GRADIENT_HEADER + self.grad.nbytes


class Pull(NamedTuple):
    """Worker -> server (``async``, ``ssp``): send me the current model (at my start,
    and so again after a restart)."""

    worker: int

    @property
    def nbytes(self) -> int:
        return INT_NBYTES


class Model(NamedTuple):
    """Server -> worker (``async``, ``ssp``, ``local_sgd``): the model at ``version``."""

    version: int
    params: np.ndarray

    @property
    def nbytes(self) -> int:
        return INT_NBYTES + self.params.nbytes


class Gradient(NamedTuple):
    """Worker -> server (``async``, ``ssp``): a gradient computed on ``version``."""

    worker: int
    version: int
    grad: np.ndarray

    @property
    def nbytes(self) -> int:
        return 2 * INT_NBYTES + self.grad.nbytes


# -- model averaging and one-shot fusion ---------------------------------------

class LocalModel(NamedTuple):
    """Worker -> server (``local_sgd``): my model after the local steps from ``version``."""

    worker: int
    version: int
    params: np.ndarray

    @property
    def nbytes(self) -> int:
        return 2 * INT_NBYTES + self.params.nbytes


class LocalSolution(NamedTuple):
    """Worker -> server (``admm_svm``): my proximal solution ``x_i``."""

    worker: int
    x: np.ndarray

    @property
    def nbytes(self) -> int:
        return INT_NBYTES + self.x.nbytes


class SupportSet(NamedTuple):
    """Up or down the cascade (``cascade_svm``): the support vectors of pass
    ``pass_no`` from ``sender`` (a worker, or the top's feedback). ``svs`` is a
    ``SupportVectors``, which knows its own size."""

    pass_no: int
    sender: int
    svs: object

    @property
    def nbytes(self) -> int:
        return SUPPORT_SET_HEADER + self.svs.nbytes


class FittedModel(NamedTuple):
    """Worker -> server (``local_fusion``): my model, fitted on ``n_rows`` rows, and the
    rows I held out to validate on. ``member`` is a fitted learner (it knows its size)."""

    worker: int
    n_rows: int
    member: object
    X_val: np.ndarray
    y_val: np.ndarray

    @property
    def nbytes(self) -> int:
        return 2 * INT_NBYTES + payload_nbytes(self.member) + self.X_val.nbytes \
            + self.y_val.nbytes


# -- distributed trees -----------------------------------------------------------
# The kinds the server sends name themselves in a header: len(name) bytes.

class CountClasses(NamedTuple):
    """Server -> worker (``voting_tree``): here are the bins; send your class counts."""

    edges: list

    HEADER = len("counts")

    @property
    def nbytes(self) -> int:
        return self.HEADER + payload_nbytes(self.edges)


class Level(NamedTuple):
    """Server -> worker (``hist_tree``): the splits made (``(parent, feature, bin, left,
    right)`` each), and the nodes whose histograms to build; the bins with the first."""

    edges: list | None
    splits: list
    build: list

    HEADER = len("level")

    @property
    def nbytes(self) -> int:
        return self.HEADER + payload_nbytes(tuple(self))


class Vote(NamedTuple):
    """Server -> worker (``voting_tree``): the splits made; vote for your top features of
    each frontier node."""

    splits: list
    frontier: list
    class_weight: np.ndarray

    HEADER = len("vote")

    @property
    def nbytes(self) -> int:
        return self.HEADER + payload_nbytes(tuple(self))


class SendChosen(NamedTuple):
    """Server -> worker (``voting_tree``): send the histograms of the chosen features,
    ``chosen[j]`` for the j-th frontier node."""

    chosen: np.ndarray

    HEADER = len("send")

    @property
    def nbytes(self) -> int:
        return self.HEADER + self.chosen.nbytes


class Part(NamedTuple):
    """Worker -> server (trees): my part of a sum -- class counts, votes or histograms."""

    worker: int
    data: np.ndarray

    @property
    def nbytes(self) -> int:
        return INT_NBYTES + self.data.nbytes


# -- task scheduling ---------------------------------------------------------------

class Block(NamedTuple):
    """Server -> worker (``tasks``): compute block ``block`` of round ``tag``; the round's
    model comes with the first block a worker gets (else ``params`` is None)."""

    tag: Tag
    params: np.ndarray | None
    block: int

    @property
    def nbytes(self) -> int:
        params = 0 if self.params is None else self.params.nbytes
        return TAG_NBYTES + params + INT_NBYTES


class Result(NamedTuple):
    """Worker -> server (``tasks``): the gradient of ``block`` on the model ``tag``, and
    the seconds it took (for the policy)."""

    worker: int
    tag: Tag
    block: int
    grad: np.ndarray
    seconds: float

    HEADER = len("result")

    @property
    def nbytes(self) -> int:
        return self.HEADER + 3 * INT_NBYTES + TAG_NBYTES + self.grad.nbytes


class Hello(NamedTuple):
    """Worker -> server (``tasks``): I restarted (life ``epoch``): give me work."""

    worker: int
    epoch: int

    HEADER = len("hello")

    @property
    def nbytes(self) -> int:
        return self.HEADER + 2 * INT_NBYTES


class Down(NamedTuple):
    """The server's failure detector -> the server (``tasks``), locally, never on the
    wire: worker ``worker`` crashed, ending its life ``epoch``."""

    worker: int
    epoch: int


# -- data movement -----------------------------------------------------------------

class Rows(NamedTuple):
    """Worker -> worker (rebalancing): ``n_rows`` training rows of ``row_nbytes`` each.
    The message stands for the rows (the data layer moves them): its size is theirs."""

    n_rows: int
    row_nbytes: int

    @property
    def nbytes(self) -> int:
        return self.n_rows * self.row_nbytes
