"""Every message kind's size on the wire equals that of the positional tuple it replaced
(as ``payload_nbytes`` sized it), so that typing the messages changed no byte count."""
from __future__ import annotations

import numpy as np
import pytest

from simdml.network import payload_nbytes
from simdml.fusion import Constant
from simdml.messages import (INT_NBYTES, TAG_NBYTES, TAGGED_GRADIENT_HEADER,
                             TAGGED_MODEL_HEADER, Block, CountClasses, FittedModel, Gradient,
                             Hello, Level, LocalModel, LocalSolution, Model, Part, Pull,
                             Result, Rows, SendChosen, SupportSet, Tag, TaggedGradient,
                             TaggedModel, Vote)
from simdml.strategies.cascade import SupportVectors

W = np.arange(7, dtype=np.float64)
TAG = Tag(2, 5)
EDGES = [np.array([0.5, 1.5]), np.array([0.0])]
SPLITS = [(0, 1, 2, 1, 2), (1, np.int64(0), np.int64(3), 3, 4)]
SVS = SupportVectors(np.arange(3), np.ones((3, 2)), np.array([0, 1, 1]),
                     {(0, 1): np.array([0.0, 0.5, 0.5])}, {(0, 1): 1.0})

# (the typed message, the tuple it replaced)
CASES = {
    "TaggedModel": (TaggedModel(TAG, W), ((2, 5), W)),
    "TaggedGradient": (TaggedGradient(3, TAG, W), (3, (2, 5), W)),
    "Pull": (Pull(3), (3, None, None)),
    "Model": (Model(5, W), (5, W)),
    "Gradient": (Gradient(3, 5, W), (3, 5, W)),
    "LocalModel": (LocalModel(3, 5, W), (3, 5, W)),
    "LocalSolution": (LocalSolution(3, W), (3, W)),
    "SupportSet": (SupportSet(4, 1, SVS), ((4, 1), SVS)),
    "FittedModel": (FittedModel(3, 40, Constant(1), W.reshape(-1, 1), W),
                    (3, 40, Constant(1), W.reshape(-1, 1), W)),
    "CountClasses": (CountClasses(EDGES), ("counts", EDGES)),
    "Level": (Level(EDGES, SPLITS, [3, 4]), ("level", EDGES, SPLITS, [3, 4])),
    "Level, no bins": (Level(None, SPLITS, [3]), ("level", None, SPLITS, [3])),
    "Vote": (Vote(SPLITS, [3, 4], np.ones(3)), ("vote", SPLITS, [3, 4], np.ones(3))),
    "SendChosen": (SendChosen(np.ones((2, 4), dtype=np.int64)),
                   ("send", np.ones((2, 4), dtype=np.int64))),
    "Part": (Part(3, np.ones(5, dtype=np.int32)), (3, np.ones(5, dtype=np.int32))),
    "Block with the model": (Block(TAG, W, 6), ((2, 5), W, 6)),
    "Block": (Block(TAG, None, 6), ((2, 5), None, 6)),
    "Result": (Result(3, TAG, 6, W, 0.25), ("result", 3, (2, 5), 6, W, 0.25)),
    "Hello": (Hello(3, 1), ("hello", 3, 1)),
}


@pytest.mark.parametrize("name", CASES)
def test_a_message_is_as_big_on_the_wire_as_the_tuple_it_replaced(name):
    """Each kind's nbytes is payload_nbytes of its old positional tuple, and the cluster
    sizes the message by it (so a strategy sends a message without naming its size)."""
    message, old = CASES[name]
    assert payload_nbytes(message) == message.nbytes == payload_nbytes(old)


def test_the_headers_are_the_tags_and_indices_they_stand_for():
    """A Tag is two 8-byte integers; a sync model adds its tag to the parameters, a sync
    gradient also the worker's index."""
    assert payload_nbytes(TAG) == TAG_NBYTES == 16
    assert TAGGED_MODEL_HEADER == 16 and TAGGED_GRADIENT_HEADER == 24 == INT_NBYTES + TAG_NBYTES
    assert TaggedModel(TAG, W).nbytes == TAGGED_MODEL_HEADER + W.nbytes


def test_rows_are_as_big_as_the_rows_they_stand_for():
    """A rebalancing message weighs its rows (features and label, float64 each)."""
    assert Rows(5, 8 * 4).nbytes == 5 * 32


def test_workers_dispatch_on_the_kind():
    """A class pattern tells the kinds apart and binds the fields by position."""
    def kind(msg):
        match msg:
            case Pull(worker):
                return "pull", worker
            case Gradient(worker, version, _):
                return "gradient", worker, version
    assert kind(Pull(2)) == ("pull", 2)
    assert kind(Gradient(1, 7, W)) == ("gradient", 1, 7)
