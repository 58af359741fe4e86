"""The simulated memory of each node: the ledger (``simdml.memory``), what the cluster and
the strategies book in it, the peaks a run reports, and out of memory as a stop reason."""
import math
import re

import numpy as np
import pytest

import simdml
from simdml import ScenarioError
from simdml.cluster import Cluster
from simdml.engine import Simulator
from simdml.experiment import prepare_data
from simdml.memory import CATEGORIES, Memory, OutOfMemory
from simdml.messages import Model
from simdml.scenario import parse_scenario
from simdml.models import MODELS
from simdml.result import load_result

BASE = simdml.load_scenario("iris_sync").replace(**{"stop.rounds": 4})
N_WORKERS = BASE.cluster.workers


class _Clock:
    now = 0.0


# -- the ledger -----------------------------------------------------------------------
def test_the_ledger_keeps_the_total_and_the_peak_with_its_breakdown():
    """set replaces, hold / release add and take, free empties; the peak is the largest
    total, and its breakdown is what was held at that moment, with when."""
    clock = _Clock()
    m = Memory("worker0", sim=clock)
    m.set("shard", 1000)
    m.set("params", 80)
    clock.now = 1.5
    m.hold("grads", 80)
    m.set("activations", 300)            # the peak: 1460 at t=1.5
    clock.now = 2.0
    m.free("activations")
    m.release("grads", 80)
    m.hold("buffers", 200)               # 1280: below the peak, which stays
    assert m.total == 1280
    assert m.held == {"params": 80, "grads": 0, "optimizer": 0, "activations": 0,
                      "buffers": 200, "shard": 1000}
    assert (m.peak, m.peak_time) == (1460, 1.5)
    assert m.at_peak == {"params": 80, "grads": 80, "optimizer": 0, "activations": 300,
                         "buffers": 0, "shard": 1000}
    assert m.report() == {"peak": 1460, "peak_time": 1.5, "limit": math.inf,
                          "breakdown": m.at_peak,
                          "most": {"params": 80, "grads": 80, "optimizer": 0,
                                   "activations": 300, "buffers": 200, "shard": 1000}}
    m.set("shard", 100)                  # set goes down as well as up
    assert m.total == 380 and m.peak == 1460


def test_a_new_category_is_booked_after_the_known_ones():
    """A strategy may book a category of its own (a ZeRO all-gather's buffer, say)."""
    m = Memory("worker0")
    m.hold("gathered", 64)
    assert list(m.at_peak) == [*CATEGORIES, "gathered"] and m.peak == 64


def test_a_crash_empties_everything_but_the_shard():
    """A crashed node holds nothing but its shard (reloaded at its restart)."""
    m = Memory("worker0")
    for category, nbytes in zip(CATEGORIES, (1, 2, 3, 4, 5, 6)):
        m.set(category, nbytes)
    m.crash()
    assert m.total == 6 and m.held == dict.fromkeys(CATEGORIES, 0) | {"shard": 6}
    assert m.peak == 21


def test_the_limit_is_reached_at_equality_and_exceeded_beyond():
    """Holding exactly the limit is fine; one byte more raises OutOfMemory, with the need,
    the limit and the breakdown, biggest first, and the peak is what was needed."""
    m = Memory("worker3", limit=3e9)
    m.set("params", 500_000_000)
    m.set("activations", 2_100_000_000)
    m.set("shard", 400_000_000)          # exactly 3 GB
    with pytest.raises(OutOfMemory) as caught:
        m.hold("grads", 200_000_000)
    assert str(caught.value) == ("out of memory on worker3: needs 3.2 GB, has 3 GB "
                                 "(activations 2.1 GB, params 500 MB, shard 400 MB, "
                                 "grads 200 MB)")
    assert (caught.value.node, caught.value.needs, caught.value.has) == ("worker3", 3.2e9, 3e9)
    assert m.peak == 3_200_000_000


def test_a_need_just_over_the_limit_is_shown_with_the_digits_that_tell_them_apart():
    """3 significant digits would print 2.03 kB twice; the message adds digits until the
    need and the limit differ."""
    m = Memory("server", limit=2031)
    with pytest.raises(OutOfMemory, match=r"^out of memory on server: needs 2\.032 kB, has "
                                          r"2\.031 kB \(params 2\.03 kB\)$"):
        m.set("params", 2032)


@pytest.mark.parametrize("limit, rule", [(0, "must be > 0"), (-1, "must be > 0"),
                                         ("1 GB", "must be a number")])
def test_a_ledger_refuses_a_limit_that_is_no_positive_number(limit, rule):
    with pytest.raises(ValueError, match=rf"^memory of node w {rule} \(bytes\); got"):
        Memory("w", limit=limit)


# -- the message buffers, booked by the cluster ----------------------------------------
def _two_nodes(**memory):
    sim = Simulator()
    cluster = Cluster(sim)
    return sim, cluster.add_node("a"), cluster.add_node("b", **memory)


def test_a_message_is_buffered_from_its_arrival_until_a_process_takes_it():
    """Three models sent to a node that reads none are its buffers, all three bytes; recv
    takes the first out; skip_to_newest takes the newest and drops the rest."""
    sim, a, b = _two_nodes()
    msgs = [Model(v, np.zeros(10 * (v + 1))) for v in range(3)]

    def send():
        for msg in msgs:
            a.send(b, msg)
        yield sim.timeout(1.0)

    sim.process(send())
    sim.run()
    sizes = [msg.nbytes for msg in msgs]
    assert b.memory.held["buffers"] == sum(sizes) == b.memory.peak

    def read():
        first = yield b.recv()
        assert first is msgs[0] and b.memory.held["buffers"] == sizes[1] + sizes[2]
        assert b.skip_to_newest(first) is msgs[2]

    sim.process(read())
    sim.run()
    assert b.memory.held["buffers"] == 0 and b.memory.total == 0


def test_a_message_to_a_waiting_process_is_buffered_only_while_it_is_received():
    """The receiver waits: the message counts from the first bit's arrival to its last,
    then it is the process's; the peak is the message."""
    sim, a, b = _two_nodes()
    msg = Model(0, np.zeros(100))
    got = []

    def read():
        got.append((yield b.recv()))
        got.append(b.memory.held["buffers"])

    sim.process(read())
    a.send(b, msg)
    sim.run()
    assert got == [msg, 0] and b.memory.peak == msg.nbytes == b.memory.at_peak["buffers"]


def test_a_crash_loses_the_buffered_messages_and_their_bytes():
    sim, a, b = _two_nodes()
    a.send(b, Model(0, np.zeros(100)))
    sim.run()
    assert b.memory.held["buffers"] == 808
    b.crash()
    assert b.memory.total == 0
    b.recover()
    a.send(b, Model(1, np.zeros(10)))
    sim.run()
    assert b.memory.held["buffers"] == 88  # the earlier message left no trace


def test_a_message_too_big_for_the_receiver_is_out_of_memory_when_it_arrives():
    sim, a, b = _two_nodes(memory=800)
    a.send(b, Model(0, np.zeros(100)))  # 808 bytes
    with pytest.raises(OutOfMemory, match="^out of memory on b: needs 808 bytes, has 800 "
                                          r"bytes \(buffers 808 bytes\)$"):
        sim.run()


# -- what a run reports ----------------------------------------------------------------
def _by_hand(s=BASE, batch_size=None):
    """Per worker, the bytes of its shard, of the model and gradient, and of the
    activations of one gradient, from the arrays of the run's own data."""
    split = prepare_data(s)
    n_features = split.X_train.shape[1]
    n_classes = int(split.y_train.max()) + 1
    model = MODELS["logistic"]()
    params = model.init_params(n_features, n_classes)
    out = []
    bounds = np.cumsum([0] + [len(p) for p in split.parts])
    for a, b in zip(bounds[:-1], bounds[1:]):
        X, y = split.X_train[a:b], split.y_train[a:b]
        _, grad = model.loss_grad(params, X, y)
        rows = y.size if batch_size is None else batch_size
        G = np.empty((n_classes, rows))  # what the backward pass needs of the forward one
        out.append({"shard": X.nbytes + y.nbytes, "params": params.nbytes,
                    "grads": grad.nbytes, "activations": G.nbytes})
    return out


def test_a_sync_worker_peaks_computing_a_gradient_on_its_model_and_shard():
    """Logistic regression on iris: a worker's peak is its shard, the model, the gradient
    and the class-score derivative G of its rows, exactly."""
    r = simdml.run(BASE)
    for i, expected in enumerate(_by_hand()):
        report = r.memory[f"worker{i}"]
        assert report["breakdown"] == {**dict.fromkeys(CATEGORIES, 0), **expected}
        assert report["peak"] == sum(expected.values())
        assert report["limit"] == math.inf and 0 < report["peak_time"] <= r.summary["sim_time"]


def test_the_sync_server_peaks_stepping_with_every_gradient_and_their_average():
    """The server holds the model, the n gradients it gathered and their weighted average
    while it steps: (n + 2) vectors of the model's size."""
    r = simdml.run(BASE)
    params = _by_hand()[0]["params"]
    assert r.memory["server"]["breakdown"] == {**dict.fromkeys(CATEGORIES, 0),
                                               "params": params,
                                               "grads": (N_WORKERS + 1) * params}


def test_a_mini_batch_counts_its_copy_of_the_rows_among_the_activations():
    s = BASE.replace(**{"strategy.batch_size": 5})
    r = simdml.run(s)
    n_features = prepare_data(s).X_train.shape[1]
    copy = 5 * n_features * 8 + 5 * 8
    for i, expected in enumerate(_by_hand(s, batch_size=5)):
        assert r.memory[f"worker{i}"]["breakdown"]["activations"] == expected["activations"] + copy


def test_a_batch_as_large_as_the_shard_is_the_shard_itself_and_copies_nothing():
    """batch_size = the smallest shard's rows: that worker's batch is its whole shard (a
    view), so its activations are the full-shard run's; one row fewer is a copy."""
    rows = [p.size for p in prepare_data(BASE).parts]
    k = min(rows)
    i = rows.index(k)
    whole = simdml.run(BASE).memory[f"worker{i}"]["breakdown"]["activations"]
    same = simdml.run(BASE.replace(**{"strategy.batch_size": k}))
    assert same.memory[f"worker{i}"]["breakdown"]["activations"] == whole
    fewer = simdml.run(BASE.replace(**{"strategy.batch_size": k - 1}))
    assert fewer.memory[f"worker{i}"]["breakdown"]["activations"] > whole


@pytest.mark.parametrize("batch_size", [None, 5])
def test_an_mlp_worker_books_the_activations_its_layers_keep(batch_size):
    """An MLP's activations are the sum of ``activation_bytes`` of its batch, less layer
    0's input when that is the shard itself (booked as the shard), plus the batch's copy
    of its labels when it is a mini-batch (its features are layer 0's input)."""
    s = BASE.replace(model={"kind": "mlp", "hidden": [8, 6], "activation": "tanh"},
                     **{"strategy.batch_size": batch_size})
    r = simdml.run(s)
    split = prepare_data(s)
    model = MODELS["mlp"](hidden=[8, 6], activation="tanh")
    model.init_params(split.X_train.shape[1], 3)
    for i, part in enumerate(split.parts):
        rows = len(part) if batch_size is None else batch_size
        layers = sum(model.activation_bytes(rows))
        expected = (layers - 8 * rows * split.X_train.shape[1] if batch_size is None
                    else layers + 8 * rows)
        assert r.memory[f"worker{i}"]["breakdown"]["activations"] == expected


@pytest.mark.parametrize("over, optimizer_copies", [
    ({"strategy.kind": "allreduce", "optimizer.kind": "adam"}, 2),
    ({"strategy.kind": "async"}, 0),
    ({"strategy.kind": "ssp", "optimizer.kind": "momentum"}, 0),
    ({"strategy.kind": "local_sgd", "optimizer.kind": "momentum"}, 1),
])
def test_every_gradient_strategy_books_a_worker_s_shard_model_gradient_and_state(
        over, optimizer_copies):
    """Wherever the optimizer's state lives, a worker's peak has its shard, the gradient
    and the activations of one pass, and the model (local SGD: its own and the round's)."""
    r = simdml.run(BASE.replace(**over))
    expected = _by_hand()[0]
    copies = 2 if over["strategy.kind"] == "local_sgd" else 1
    assert r.memory["worker0"]["breakdown"] == {
        **expected, "params": copies * expected["params"],
        "optimizer": optimizer_copies * expected["params"], "buffers": 0}


def test_the_async_server_holds_the_model_and_its_state():
    """The async server with Adam: the model and two moments, and a gradient when it steps."""
    r = simdml.run(BASE.replace(**{"strategy.kind": "async", "optimizer.kind": "adam"}))
    params = _by_hand()[0]["params"]
    held = r.memory["server"]["breakdown"]
    assert (held["params"], held["optimizer"]) == (params, 2 * params)
    assert held["grads"] in (0, params)


def test_a_task_worker_books_the_block_it_computes_as_its_rows():
    """Task rounds read blocks from shared storage: a worker holds a block's rows only
    while it computes it; the server holds every block's gradient until it steps."""
    r = simdml.run(BASE.replace(**{"scheduling.policy": "round_robin", "scheduling.blocks": 8}))
    split = prepare_data(BASE)
    n_train, n_features = split.X_train.shape
    bounds = np.linspace(0, n_train, 9).round().astype(int)
    biggest = int(np.diff(bounds).max())
    assert r.memory["worker0"]["breakdown"]["shard"] <= biggest * 8 * (n_features + 1)
    params = _by_hand()[0]["params"]
    assert r.memory["server"]["breakdown"]["grads"] == 9 * params  # 8 blocks and their sum


# -- out of memory ---------------------------------------------------------------------
def test_a_limit_just_below_a_worker_s_peak_ends_the_run_naming_it_and_what_it_held():
    """One byte less than worker2's peak: the run stops at once, with the exact message
    (biggest category first); at its peak exactly, the run is the unlimited run."""
    unlimited = simdml.run(BASE)
    peak = unlimited.memory["worker2"]["peak"]
    limits = [1e9] * N_WORKERS
    limits[2] = peak - 1
    r = simdml.run(BASE.replace(**{"cluster.memory": limits}))
    held = _by_hand()[2]
    assert r.summary["stop_reason"] == (
        f"out of memory on worker2: needs {peak / 1e3:.4g} kB, has {(peak - 1) / 1e3:.4g} kB "
        f"(shard {held['shard'] / 1e3:.3g} kB, activations {held['activations']} bytes, "
        f"params {held['params']} bytes, grads {held['grads']} bytes)")
    assert r.memory["worker2"]["peak"] == peak and r.memory["worker2"]["limit"] == peak - 1
    limits[2] = peak
    at_peak = simdml.run(BASE.replace(**{"cluster.memory": limits}))
    assert at_peak.summary == unlimited.summary
    assert at_peak.history == unlimited.history


def test_a_server_limit_below_its_peak_ends_the_run_at_its_first_step():
    peak = simdml.run(BASE).memory["server"]["peak"]
    r = simdml.run(BASE.replace(**{"cluster.server_memory": peak - 1}))
    assert re.fullmatch(rf"out of memory on server: needs {peak} bytes, has {peak - 1} bytes "
                        rf"\(grads \d+ bytes, params \d+ bytes\)", r.summary["stop_reason"])
    assert r.summary["updates"] == 0


def test_a_shard_too_big_for_its_worker_stops_the_run_before_it_starts():
    r = simdml.run(BASE.replace(**{"cluster.memory": 1000}))
    assert r.summary["stop_reason"] == (
        "out of memory on worker0: needs 1.12 kB, has 1 kB (shard 1.12 kB); "
        "no model yet: nothing to evaluate")
    assert r.summary["sim_time"] == 0 and r.model is None


def test_the_memory_report_survives_the_result_file(tmp_path):
    r = simdml.run(BASE.replace(**{"cluster.memory": 1e6}))
    data = load_result(r.save(tmp_path / "r.json"))
    assert data["memory"]["worker0"]["peak"] == r.memory["worker0"]["peak"]
    assert data["memory"]["worker0"]["limit"] == 1e6


# -- the scenario's keys -----------------------------------------------------------------
@pytest.mark.parametrize("over, message", [
    ({"cluster.memory": 0}, "cluster.memory must be > 0 (bytes); got 0"),
    ({"cluster.memory": -2e9}, "cluster.memory must be > 0 (bytes); got -2000000000.0"),
    ({"cluster.memory": "2 GB"}, "cluster.memory must be a number (bytes); got '2 GB'"),
    ({"cluster.memory": [1e9, 1e9]}, "cluster.memory must be one number or a list of "
                                     "cluster.workers=4 numbers; got a list of 2"),
    ({"cluster.memory": [1e9, 1e9, 0, 1e9]}, "cluster.memory[2] must be > 0 (bytes); got 0"),
    ({"cluster.server_memory": -1}, "cluster.server_memory must be > 0 (bytes); got -1"),
    ({"cluster.server_memory": True}, "cluster.server_memory must be a number (bytes); "
                                      "got True"),
])
def test_a_memory_that_is_no_positive_number_of_bytes_is_refused_naming_its_key(over, message):
    with pytest.raises(ScenarioError, match=f"^{re.escape(message)}"):
        BASE.replace(**over)


def test_memory_is_unlimited_by_default_and_round_trips_through_toml():
    assert BASE.cluster.memory == (math.inf,) * N_WORKERS
    assert BASE.cluster.server_memory == math.inf
    s = BASE.replace(**{"cluster.memory": [1e9, 2e9, 3e9, 4e9], "cluster.server_memory": 8e9})
    again = parse_scenario(s.to_toml())
    assert again.cluster.memory == (1e9, 2e9, 3e9, 4e9)
    assert again.cluster.server_memory == 8e9


def test_a_ddp_worker_peaks_with_its_replica_state_activations_and_gradient():
    """ddp runs its layers itself: a worker books its replica and its optimizer's state
    (Adam: two vectors), the activations its MLP keeps for the backward pass (the layers'
    inputs but the first, which is the shard, and their slopes), and one gradient (its
    buckets, all-reduced in place), exactly; its shard as every worker does.
    Without overlap no chunk of the ring arrives while the activations are held."""
    from simdml.models import MODELS
    s = simdml.Scenario(name="ddp-memory").replace(**{
        "data.dataset": "digits", "model.kind": "mlp", "model.hidden": [16, 8],
        "strategy.kind": "ddp", "strategy.bucket_size": 1000, "strategy.overlap": False,
        "optimizer.kind": "adam",
        "cluster.workers": 2, "stop.rounds": 2})
    r = simdml.run(s)
    split = simdml.prepare_data(s)
    mlp = MODELS["mlp"](hidden=[16, 8])
    params = mlp.init_params(split.X_train.shape[1], int(split.y_train.max()) + 1)
    for i, part in enumerate(split.parts):
        n = len(part)
        X, y = split.X_train[:n], split.y_train[:n]
        expected = {"shard": X.nbytes + y.nbytes, "params": params.nbytes,
                    "optimizer": 2 * params.nbytes, "grads": params.nbytes,
                    "activations": sum(mlp.activation_bytes(n)) - X.nbytes}
        assert r.memory[f"worker{i}"]["breakdown"] == {**dict.fromkeys(CATEGORIES, 0), **expected}
