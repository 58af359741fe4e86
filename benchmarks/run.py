"""simdml's benchmark suite: every figure with a ratio against a baseline timed in the same run.

    python benchmarks/run.py            # the full suite (~10 minutes, most of it 10,000 workers)
    python benchmarks/run.py --quick    # smaller sizes, for a smoke test

Prints a table and writes ``benchmarks/results.json``. numpy's BLAS is pinned to one
thread, and each figure is the median of several repetitions. The machines this runs on
are shared and noisy: absolute times drift, ratios measured side by side hold.

1. kernel: timeouts from P processes and worker-server message round trips, against a
   bare heapq loop (the limit) and, when installed (``pip install .[bench]``), SimPy;
   timeouts also against the least any kernel of event objects must do (the floor of
   the design, ``minimal_timeouts``).
2. overhead: sync and async parameter servers training logistic regression, against a
   plain numpy loop computing the same shard gradients (the limit).
3. scale: 10,000 workers: wall time, peak memory against the dataset, events per gradient;
   for sync also the plain numpy loop of the same gradients (how much is the math).
4. learners: the cascade SVM and the histogram tree on the largest bundled dataset (digits)
   with 4 workers, against the centralized fit of the same learner (the limit).
5. timing: timing-only runs (``math = false``) against the same run with math, and 1,024
   nodes of 3D parallelism on 96 layers of 12,288 (node-layer micro-batch steps per second).
6. federated: FedAvg over 10^4, 10^5 and 10^6 clients, 100 a round: wall time per round
   (it must not grow with the population), and 1,000 rounds of 10^6 clients: wall time
   and peak memory against the dataset.
7. math: each learner's ``grad`` on 100, 1,000 and 10,000 rows against plain numpy doing
   the same math (``learner_math.py``), and DP-SGD's clipped sum against the batch
   gradient.
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported: pin BLAS to one thread

import argparse  # noqa: E402
import gc  # noqa: E402
import heapq  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import deque  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import simdml  # noqa: E402
from simdml.engine import Simulator  # noqa: E402
from simdml.experiment import prepare_data  # noqa: E402
from simdml.models import DecisionTree, KernelSVM, LogisticRegression  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learner_math import bench_math, plain_softmax  # noqa: E402

try:
    import simpy
except ImportError:  # optional: pip install .[bench]
    simpy = None

HERE = Path(__file__).resolve().parent


def timed(fn, repeat: int) -> float:
    """Median wall time of ``repeat`` calls (s), garbage collected before each."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- 1. kernel ---------------------------------------------------------------------
def bare_timeouts(n_events: int, n_procs: int) -> None:
    """The limit: generators yielding delays, driven by a bare heapq loop."""
    def proc(n):
        for _ in range(n):
            yield 1.0
    heap, seq = [], itertools.count()
    for _ in range(n_procs):
        heap.append((0.0, next(seq), proc(n_events // n_procs)))
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        t, _, gen = pop(heap)
        try:
            delay = next(gen)
        except StopIteration:
            continue
        push(heap, (t + delay, next(seq), gen))


class _MinimalEvent:
    __slots__ = ("callbacks", "value")


def minimal_timeouts(n_events: int, n_procs: int) -> None:
    """The floor of any kernel whose processes yield event objects, as simdml's and
    SimPy's do: an event object per timeout, its callbacks, a heap entry, and nothing
    else (no priorities, failures, interrupts or deadlock checks)."""
    heap, seq = [], itertools.count()
    now = 0.0

    def timeout(delay):
        event = _MinimalEvent()
        event.callbacks, event.value = [], None
        heapq.heappush(heap, (now + delay, next(seq), event))
        return event

    def proc(n):
        for _ in range(n):
            yield timeout(1.0)

    def starter(generator):
        send = generator.send

        def resume(event):
            try:
                send(event.value).callbacks.append(resume)
            except StopIteration:
                pass
        return resume

    for _ in range(n_procs):
        start = _MinimalEvent()
        start.callbacks, start.value = [starter(proc(n_events // n_procs))], None
        heapq.heappush(heap, (0.0, next(seq), start))
    pop = heapq.heappop
    while heap:
        now, _, event = pop(heap)
        callbacks, event.callbacks = event.callbacks, None
        for callback in callbacks:
            callback(event)


def simdml_timeouts(n_events: int, n_procs: int) -> None:
    sim = Simulator()

    def proc(n):
        for _ in range(n):
            yield sim.timeout(1.0)
    for _ in range(n_procs):
        sim.process(proc(n_events // n_procs))
    sim.run()


def simpy_timeouts(n_events: int, n_procs: int) -> None:
    env = simpy.Environment()

    def proc(n):
        for _ in range(n):
            yield env.timeout(1.0)
    for _ in range(n_procs):
        env.process(proc(n_events // n_procs))
    env.run()


def bare_round_trips(n: int) -> None:
    """The limit: two generators exchanging messages through deques, a heapq loop between."""
    heap, seq = [], itertools.count()
    to_server, to_worker = deque(), deque()
    waiting = {}  # mailbox id -> generator blocked on it

    def worker():
        for i in range(n):
            yield ("put", to_server, i)
            reply = yield ("get", to_worker)
            assert reply == i

    def server():
        while True:
            msg = yield ("get", to_server)
            yield ("put", to_worker, msg)

    def step(gen, value):
        while True:
            try:
                op = gen.send(value)
            except StopIteration:
                return
            if op[0] == "put":
                box = op[1]
                box.append(op[2])
                blocked = waiting.pop(id(box), None)
                if blocked is not None:
                    heapq.heappush(heap, (0.0, next(seq), blocked, box))
                value = None
            elif op[1]:
                value = op[1].popleft()
            else:
                waiting[id(op[1])] = gen
                return

    for gen in (server(), worker()):
        step(gen, None)
    while heap:
        _, _, gen, box = heapq.heappop(heap)
        step(gen, box.popleft())


def simdml_round_trips(n: int) -> None:
    sim = Simulator()
    to_server, to_worker = sim.store("server"), sim.store("worker")

    def worker():
        for i in range(n):
            to_server.put(i)
            reply = yield to_worker.get()
            assert reply == i

    def server():
        while True:
            msg = yield to_server.get()
            to_worker.put(msg)
    sim.process(server())
    done = sim.process(worker())
    sim.run(until=done)


def simpy_round_trips(n: int) -> None:
    env = simpy.Environment()
    to_server, to_worker = simpy.Store(env), simpy.Store(env)

    def worker():
        for i in range(n):
            yield to_server.put(i)
            reply = yield to_worker.get()
            assert reply == i

    def server():
        while True:
            msg = yield to_server.get()
            yield to_worker.put(msg)
    env.process(server())
    env.run(until=env.process(worker()))


def bench_kernel(quick: bool, repeat: int) -> list[dict]:
    n_events = 100_000 if quick else 1_000_000
    n_trips = 10_000 if quick else 100_000
    rows = []
    for n_procs in (10, 1_000, 10_000):
        row = _kernel_row(f"timeouts, P={n_procs:,}", n_events, repeat,
                          bare_timeouts, simdml_timeouts, simpy_timeouts, n_events, n_procs)
        t_minimal = timed(lambda: minimal_timeouts(n_events, n_procs), repeat)
        row.update(minimal_s=t_minimal, minimal_vs_limit=t_minimal / row["limit_s"],
                   vs_minimal=row["simdml_s"] / t_minimal)
        rows.append(row)
    rows.append(_kernel_row("message round trips", 2 * n_trips, repeat, bare_round_trips,
                            simdml_round_trips, simpy_round_trips, n_trips))
    return rows


def _kernel_row(name, n_events, repeat, bare, ours, theirs, *args) -> dict:
    t_bare = timed(lambda: bare(*args), repeat)
    t_ours = timed(lambda: ours(*args), repeat)
    row = {"group": "kernel", "name": name, "simdml_s": t_ours, "limit_s": t_bare,
           "events_per_s": n_events / t_ours, "vs_limit": t_ours / t_bare}
    if simpy is not None:
        t_simpy = timed(lambda: theirs(*args), repeat)
        row.update(simpy_s=t_simpy, speedup_vs_simpy=t_simpy / t_ours)
    return row


# -- 2. overhead on real training ------------------------------------------------------
def training_scenario(kind: str, n_workers: int, n_samples: int, n_features: int,
                      rounds: int, trace_spans: bool = True) -> simdml.Scenario:
    """Logistic regression on synthetic rows, heterogeneous speeds, evaluated only at the end.
    ``trace_spans=False`` keeps per-node totals only (memory flat at scale)."""
    speeds = [1e9 * (1 + (i % 4)) for i in range(n_workers)]  # 1, 2, 3, 4 Gflop/s
    updates = rounds if kind == "sync" else rounds * n_workers  # async: one push per update
    return simdml.Scenario(name=f"bench_{kind}").replace(**{
        "strategy.kind": kind, "strategy.lr": 0.5, "cluster.workers": n_workers,
        "cluster.speed": speeds, "data.dataset": "synthetic", "data.n_samples": n_samples,
        "data.n_features": n_features, "data.n_classes": 2, "data.test_size": 0.01,
        "stop.rounds": updates, "eval_every": updates, "trace_spans": trace_spans})


def numpy_loop(scenario, rounds: int, stacked: bool = False):
    """The limit of the scale group: the same data preparation and the same rounds x K
    shard gradients (simdml's ``grad``, a worker's call), in a plain loop with no
    simulation. ``stacked``: each round's gradients as a sync run's cohort computes them
    (``stacked_grads`` over ``Cohort.plan``'s passes, the other shards alone): the math
    the run does."""
    from simdml.strategies.job import Cohort

    def loop():
        split = prepare_data(scenario)
        model = LogisticRegression()
        w = model.init_params(split.X_train.shape[1], 2)
        order = np.concatenate(split.parts)
        X, y = split.X_train[order], split.y_train[order]
        sizes = [len(p) for p in split.parts]
        bounds = np.cumsum([0] + sizes)
        shards = [(X[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        weights = np.array(sizes) / len(y)
        passes = Cohort.plan(sizes)
        alone = sorted(set(range(len(sizes))).difference(*(range(*p) for p in passes)))
        for _ in range(rounds):
            if stacked:                               # runs of one size (iid: two)
                G = np.empty((len(sizes), w.size))
                for a, b in passes:
                    G[a:b] = model.stacked_grads(w, X[bounds[a]:bounds[b]],
                                                 y[bounds[a]:bounds[b]], sizes[a])
                for i in alone:
                    G[i] = model.grad(w, *shards[i])
                g = weights @ G
            else:
                g = sum(wi * model.grad(w, Xs, ys) for wi, (Xs, ys) in zip(weights, shards))
            w = w - 0.5 * g
        return w
    return loop


def plain_rounds(scenario, simdml_math: bool = False):
    """The limit of the overhead group: ``rounds(n)`` runs n rounds of plain numpy
    (``learner_math.plain_softmax``, no simdml) over the scenario's shards and returns
    ``(W, b)``. Sync: a round sums the shards' gradients weighted by shard size and steps
    once, ``W -= lr * g``; async: a round is one push per shard, each applied at once as
    ``W -= lr * (n_i / n) g_i`` (the same math's count: a gradient and an update each).
    The data preparation is done once, before, so a call times the rounds alone. With
    ``simdml_math`` each gradient is simdml's ``grad`` instead (on the flat parameters):
    the same loop, no simulation, which isolates the simulation's own cost."""
    split = prepare_data(scenario)
    shards = [(np.ascontiguousarray(split.X_train[p]), split.y_train[p]) for p in split.parts]
    weights = [len(p) / len(split.y_train) for p in split.parts]
    lr, d = scenario.strategy.lr, split.X_train.shape[1]
    per_push = scenario.strategy.kind == "async"
    model = LogisticRegression()

    def rounds(n):
        W, b = np.zeros((d, 2)), np.zeros(2)
        for _ in range(n):
            gW, gb = np.zeros_like(W), np.zeros_like(b)
            for wi, (Xs, ys) in zip(weights, shards):
                dW, db = plain_softmax(W, b, Xs, ys)
                if per_push:
                    W -= (lr * wi) * dW
                    b -= (lr * wi) * db
                else:
                    gW += wi * dW
                    gb += wi * db
            if not per_push:
                W -= lr * gW
                b -= lr * gb
        return W, b

    def simdml_rounds(n):
        w = model.init_params(d, 2)
        for _ in range(n):
            g = np.zeros_like(w)
            for wi, (Xs, ys) in zip(weights, shards):
                if per_push:
                    w -= (lr * wi) * model.grad(w, Xs, ys)
                else:
                    g += wi * model.grad(w, Xs, ys)
            w -= lr * g
        return w
    return simdml_rounds if simdml_math else rounds


def bench_overhead(quick: bool, repeat: int) -> list[dict]:
    """The simulation's marginal cost of a round (a long run minus a short one, so the
    set-up cancels) against a round of plain numpy over the same K shard gradients (the
    limit), and against the same loop calling simdml's ``grad`` (no simulation: what is
    left is the simulation's own cost, per gradient). An async round is K pushes, each
    one gradient and one update, in the limit as in the run (``plain_rounds``)."""
    n_samples, n_features, short, long = (20_000, 50, 5, 25) if quick else (100_000, 50, 20,
                                                                            100)
    rows = []
    for n_workers in (16, 256):
        for kind in ("sync", "async"):
            s = {n: training_scenario(kind, n_workers, n_samples, n_features, n)
                 for n in (short, long)}
            plain, ours = plain_rounds(s[long]), plain_rounds(s[long], simdml_math=True)
            t_limit = timed(lambda: plain(long - short), repeat) / (long - short)
            t_math = timed(lambda: ours(long - short), repeat) / (long - short)
            t = {n: timed(lambda: simdml.run(s[n]), repeat) for n in (short, long)}
            t_ours = (t[long] - t[short]) / (long - short)
            rows.append({"group": "overhead", "name": f"{kind}, K={n_workers}, a round",
                         "simdml_ms": 1e3 * t_ours, "limit_ms": 1e3 * t_limit,
                         "vs_limit": t_ours / t_limit, "math_ms": 1e3 * t_math,
                         "vs_math": t_ours / t_math, "setup_s": t[short] - short * t_ours,
                         "us_per_gradient": 1e6 * (t_ours - t_math) / n_workers})
    return rows


# -- 3. scale --------------------------------------------------------------------------
def bench_scale(quick: bool, repeat: int) -> list[dict]:
    n_workers, n_samples, rounds = (1_000, 100_000, 10) if quick else (10_000, 1_000_000, 100)
    rows = []
    for kind in ("sync", "async"):
        s = training_scenario(kind, n_workers, n_samples, 20, rounds, trace_spans=False)
        counter = _count_events()
        t = time.perf_counter()
        result = simdml.run(s)
        wall = time.perf_counter() - t
        events = counter()
        split_bytes = n_samples * 20 * 8
        gradients = rounds * n_workers
        row = {"group": "scale", "name": f"{kind}, {n_workers:,} workers, {rounds} rounds",
               "simdml_s": wall, "events_per_gradient": events / gradients,
               "dataset_bytes": split_bytes, "sim_time_s": result.summary["sim_time"]}
        if kind == "sync":  # how much of it is the math: the same gradients, no simulation
            row["limit_s"] = timed(numpy_loop(s, rounds), 1)
            row["vs_limit"] = wall / row["limit_s"]
            row["stacked_s"] = timed(numpy_loop(s, rounds, stacked=True), 1)
        rows.append(row)
    return rows


# -- 5. timing only -----------------------------------------------------------------
def parallel3d_scenario(D, T, P, layers, width, m, rounds, math=False, n_samples=100_000):
    """D x T x P workers training an MLP of ``layers`` layers of ``width`` (float32, Adam)
    on 25 Gbit/s links: the shapes of a large language model's blocks, as dense layers."""
    return simdml.Scenario().replace(**{
        "math": math, "trace_spans": False, "cluster.workers": D * T * P,
        "cluster.speed": 1e14, "cluster.memory": 80e9, "network.latency": 2e-6,
        "network.bandwidth": 25e9, "data.dataset": "synthetic", "data.n_samples": n_samples,
        "data.n_features": width, "data.n_classes": 2, "model.kind": "mlp",
        "model.hidden": [width] * (layers - 1), "model.dtype": "float32",
        "optimizer.kind": "adam", "strategy.kind": "hybrid", "strategy.data_parallel": D,
        "strategy.tensor_parallel": T, "strategy.pipeline_parallel": P,
        "strategy.microbatches": m, "strategy.batch_size": 1024, "stop.rounds": rounds})


def bench_timing(quick: bool, repeat: int) -> list[dict]:
    """Timing-only runs (``math = false``): against the same run with math (the shapes
    give the same clock: what the math costs), and a datacenter-sized what-if, in
    node-layer micro-batch steps simulated per second (each of the D T P nodes runs its
    L / P layers' share on each of its m micro-batches per iteration)."""
    rows = []
    small = parallel3d_scenario(2, 2, 2, 8, 256 if quick else 1024, 4, 2 if quick else 5,
                                n_samples=4_000)
    with_math = timed(lambda: simdml.run(small.replace(math=True)), repeat)
    shapes = timed(lambda: simdml.run(small), repeat)
    rows.append({"group": "timing", "name": "2x2x2, 8 layers of 1024: shapes vs math"
                 if not quick else "2x2x2, 8 layers of 256: shapes vs math",
                 "simdml_s": shapes, "limit_s": with_math, "vs_limit": shapes / with_math})
    D, T, P, L, m = (4, 4, 4, 16, 4) if quick else (8, 8, 16, 96, 8)
    s = parallel3d_scenario(D, T, P, L, 12288, m, 1)
    counter = _count_events()
    t = time.perf_counter()
    result = simdml.run(s)
    wall = time.perf_counter() - t
    events = counter()
    steps = D * T * P * (L // P) * m
    rows.append({"group": "timing", "name": f"{D * T * P:,} nodes ({D}x{T}x{P}), {L} layers of "
                 f"12,288, m={m}, 1 iteration", "simdml_s": wall,
                 "steps_per_s": steps / wall, "events_per_step": events / steps,
                 "sim_time_s": result.summary["sim_time"],
                 "messages": result.summary["messages_sent"],
                 "peak_gb": result.memory["worker0"]["peak"] / 1e9})
    return rows


def bench_memory(quick: bool, repeat: int) -> list[dict]:
    n_workers, n_samples, rounds = (1_000, 100_000, 10) if quick else (10_000, 1_000_000, 100)
    return _peak_memory(n_workers, n_samples, rounds)


def _count_events():
    """Count the events the simulator processes from now on (by wrapping the kernel
    loop's heappop, in simdml.engine.simulator since the kernel became a package)."""
    from simdml.engine import simulator as engine
    count = [0]
    original = engine.heappop

    def counting(queue):
        count[0] += 1
        return original(queue)
    engine.heappop = counting

    def stop():
        engine.heappop = original
        return count[0]
    return stop


def _peak_memory(n_workers, n_samples, rounds) -> list[dict]:
    """Peak traced memory of a sync run in a fresh process against the dataset's size,
    and of its data preparation alone (generate, split, standardize)."""
    # tracemalloc sees numpy's buffers too; ru_maxrss would not do: a child inherits its
    # parent's high-water mark across fork and exec on Linux.
    code = (
        "import sys, tracemalloc; sys.path.insert(0, %r)\n"
        "from run import training_scenario\n"
        "import simdml\n"
        "from simdml.experiment import prepare_data\n"
        "s = training_scenario('sync', %d, %d, 20, %d, trace_spans=False)\n"
        "tracemalloc.start()\n"
        "split = prepare_data(s)\n"
        "print(tracemalloc.get_traced_memory()[1])\n"
        "del split\n"
        "tracemalloc.reset_peak()\n"
        "simdml.run(s)\n"
        "print(tracemalloc.get_traced_memory()[1])\n"
    ) % (str(HERE), n_workers, n_samples, rounds)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    prepare, whole = map(int, out.split()[-2:])
    dataset = n_samples * 20 * 8
    return [{"group": "memory", "name": f"data preparation, {n_samples:,} x 20",
             "peak_bytes": prepare, "dataset_bytes": dataset, "vs_dataset": prepare / dataset},
            {"group": "memory", "name": f"whole sync run, {n_workers:,} workers, {rounds} rounds",
             "peak_bytes": whole, "dataset_bytes": dataset, "vs_dataset": whole / dataset}]


# -- 6. federated populations ----------------------------------------------------------
def federated_scenario(population: int, rounds: int) -> simdml.Scenario:
    """FedAvg over ``population`` clients of 10 synthetic rows (5 features) each, 100 a
    round, one full-shard epoch each, evaluated only at the end."""
    return simdml.Scenario(name="bench_federated").replace(**{
        "strategy.kind": "fedavg", "strategy.lr": 0.5, "clients.population": population,
        "clients.per_round": 100, "data.dataset": "synthetic",
        "data.n_samples": 10 * population, "data.n_features": 5, "data.partition": "iid",
        "data.test_size": 0.01, "stop.rounds": rounds, "eval_every": rounds,
        "trace_spans": False})


def bench_federated(quick: bool, repeat: int) -> list[dict]:
    """Wall time per simulated round (a long run minus a short one, so set-up cancels)
    for growing populations: it should not grow with N; then the whole run of the
    largest, 1,000 rounds, and its peak memory against the dataset (a fresh process)."""
    # long - short = 500 rounds: the set-up's noise (about a second at 10^6) spread thin
    sizes, short, long = ((1_000, 10_000), 5, 25) if quick else ((10_000, 100_000, 1_000_000),
                                                                 10, 510)
    rows = []
    for n in sizes:
        t = {}
        for rounds in (short, long):
            began = time.perf_counter()
            simdml.run(federated_scenario(n, rounds))
            t[rounds] = time.perf_counter() - began
        rows.append({"group": "federated", "name": f"{n:,} clients, 100 a round",
                     "per_round_ms": 1e3 * (t[long] - t[short]) / (long - short),
                     "setup_s": t[short] - short * (t[long] - t[short]) / (long - short)})
    rounds = 50 if quick else 1_000
    code = (
        "import sys, time, tracemalloc; sys.path.insert(0, %r)\n"
        "from run import federated_scenario\n"
        "import simdml\n"
        "tracemalloc.start()\n"
        "t = time.perf_counter()\n"
        "simdml.run(federated_scenario(%d, %d))\n"
        "print(time.perf_counter() - t, tracemalloc.get_traced_memory()[1])\n"
    ) % (str(HERE), sizes[-1], rounds)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    wall, peak = out.split()[-2:]
    dataset = 10 * sizes[-1] * (5 + 1) * 8                  # features and labels
    rows.append({"group": "federated", "name": f"{sizes[-1]:,} clients, {rounds:,} rounds",
                 "simdml_s": float(wall), "peak_bytes": int(peak), "dataset_bytes": dataset,
                 "vs_dataset": int(peak) / dataset})
    return rows


# -- 4. distributed learners against their centralized fit ------------------------------
LEARNERS = {  # name: (scenario changes, the centralized fit of the same learner)
    "cascade_svm, 4 workers": ({"model.kind": "kernel_svm", "strategy.kind": "cascade_svm"},
                               lambda X, y: KernelSVM(gamma=1.0 / (X.shape[1] * X.var())).fit(X, y)),
    "hist_tree, 4 workers": ({"model.kind": "tree", "strategy.kind": "hist_tree"},
                             lambda X, y: DecisionTree().fit(X, y)),
}


def bench_learners(quick: bool, repeat: int) -> list[dict]:
    """Each run evaluates only at its end (``eval_every`` above its updates), like the
    limit: the same data preparation, the centralized fit, one test score. The cascade
    also gets a second baseline, its own fits replayed without the simulator: a cascade
    does more math than one fit, and this separates that from the simulation's cost."""
    rows = []
    for name, (changes, fit) in LEARNERS.items():
        s = simdml.Scenario(name="bench_learner").replace(**{
            "data.dataset": "digits", "cluster.workers": 4, "eval_every": 1000, **changes})

        def central():
            split = prepare_data(s)
            fit(split.X_train, split.y_train).score(split.X_test, split.y_test)
        t_limit = timed(central, repeat)
        t_ours = timed(lambda: simdml.run(s), repeat)
        row = {"group": "learners", "name": name, "simdml_s": t_ours, "limit_s": t_limit,
               "vs_limit": t_ours / t_limit}
        if changes["strategy.kind"] == "cascade_svm":
            fits = _recorded_fits(s)
            t_fits = timed(lambda: [KernelSVM(gamma=g).fit(X, y, alpha_init=a) for g, X, y, a in fits],
                           repeat)
            row.update(same_fits_s=t_fits, vs_same_fits=t_ours / t_fits,
                       smo_steps_vs_central=_smo_steps_ratio(s, fit))
        rows.append(row)
    return rows


def _recorded_fits(s) -> list:
    """The (gamma, X, y, alpha_init) of every SVM fit a run makes, in order."""
    fits, original = [], KernelSVM.fit

    def record(self, X, y, sample_weight=None, *, alpha_init=None):
        fits.append((self.gamma, X, y, alpha_init))
        return original(self, X, y, sample_weight, alpha_init=alpha_init)
    KernelSVM.fit = record
    try:
        simdml.run(s)
    finally:
        KernelSVM.fit = original
    return fits


def _smo_steps_ratio(s, fit) -> float:
    """SMO steps of all the cascade's fits over the centralized fit's."""
    split = prepare_data(s)
    central = fit(split.X_train, split.y_train).n_iter_.sum()
    steps = sum(KernelSVM(gamma=g).fit(X, y, alpha_init=a).n_iter_.sum()
                for g, X, y, a in _recorded_fits(s))
    return float(steps / central)


# -- report ----------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--repeat", type=int, default=None, help="repetitions per figure")
    p.add_argument("--out", default=str(HERE / "results.json"))
    p.add_argument("--only", choices=("kernel", "overhead", "scale", "memory", "learners",
                                      "timing", "federated", "math"),
                   action="append")
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    groups = {"kernel": bench_kernel, "overhead": bench_overhead, "scale": bench_scale,
              "memory": bench_memory, "learners": bench_learners, "timing": bench_timing,
              "federated": bench_federated, "math": bench_math}
    rows = []
    for name, bench in groups.items():
        if args.only and name not in args.only:
            continue
        new = bench(args.quick, repeat if name in ("kernel", "overhead", "learners", "timing")
                    else 1)
        for row in new:
            _print(row)
        rows += new
    results = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                           "simpy": getattr(simpy, "__version__", None),
                           "platform": platform.platform(), "cpus": os.cpu_count()},
               "quick": args.quick, "repeat": repeat, "rows": rows}
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


def _print(last: dict) -> None:
    cols = [("simdml_s", "{:.3f} s"), ("limit_s", "limit {:.3f} s"),
            ("simdml_ms", "{:.2f} ms"), ("limit_ms", "limit {:.2f} ms"),
            ("math_ms", "simdml's grad, no simulation {:.2f} ms"),
            ("stacked_s", "the cohorts' math {:.3f} s"),
            ("simdml_us", "{:.1f} us"), ("limit_us", "limit {:.1f} us"),
            ("vs_limit", "{:.2f}x limit"), ("vs_math", "{:.2f}x simdml's math"),
            ("first_step_vs_batch", "first step {:.2f}x"),
            ("spelled_out_vs_batch", "spelled out {:.2f}x"),
            ("plain_per_example_vs_batch", "plain numpy spelled out {:.2f}x"),
            ("speedup_vs_simpy", "{:.2f}x SimPy's speed"),
            ("minimal_vs_limit", "minimal event kernel {:.2f}x limit"),
            ("events_per_s", "{:,.0f} events/s"),
            ("events_per_gradient", "{:.1f} events/gradient"),
            ("vs_dataset", "{:.2f}x the dataset"), ("vs_same_fits", "{:.2f}x its fits replayed"),
            ("smo_steps_vs_central", "{:.1f}x the central SMO steps"),
            ("steps_per_s", "{:,.0f} node-layer micro-batch steps/s"),
            ("events_per_step", "{:.1f} events/step"),
            ("per_round_ms", "{:.1f} ms a round"), ("setup_s", "set-up {:.2f} s"),
            ("us_per_gradient", "simulation {:.1f} us/gradient"), ("peak_gb", "{:.2f} GB booked on worker0")]
    cells = [fmt.format(last[k]) for k, fmt in cols if last.get(k) is not None]
    print(f"{last['group']:9} {last['name']:52} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    sys.exit(main())
