"""The rules of a scenario that span sections, each a small named function.

A rule takes a :class:`~simdml.scenario.Scenario` whose sections are each valid on their
own, and raises ``ValueError`` naming the keys that do not go together; the scenario
turns it into a ``ScenarioError``. ``RULES`` runs in a fixed order, so that a scenario
breaking several rules always reports the same one first. A strategy's own rules live
next to its code (``StrategySpec.model_rules`` and ``StrategySpec.rules``); two steps of
``RULES`` run them.
"""
from __future__ import annotations

import inspect
import math

from . import _checks, aggregation, collectives
from . import data as _data
from .models import MODELS
from .models._validation import class_weights as _class_weights
from .optim import OPTIMIZERS
from .strategies import STRATEGIES

__all__ = ["RULES", "optimizer_horizon"]


def rebalance_needs_classes(s) -> None:
    if s.data.rebalance and s.data.is_regression:
        raise ValueError("data.rebalance balances the classes of the shards; "
                         f"data.dataset={s.data.dataset!r} has none")


def resampling_needs_classes(s) -> None:
    if s.imbalance.method is not None and s.data.is_regression:
        raise ValueError(f"imbalance.method={s.imbalance.method!r} balances classes; "
                         f"data.dataset={s.data.dataset!r} has none")


def described(s) -> dict:
    """A bundled dataset's or a data file's ``n_samples``, ``n_features``, ``class_counts``."""
    if _data.parse_source(s.data.dataset):  # read when the section was built: from the cache
        return _data.describe_file(s.data.dataset, s.data.label, prefix="data.")
    return _data.describe(s.data.dataset)


def n_classes(s) -> int:
    """The number of classes of a scenario's (classification) dataset."""
    if s.data.dataset == "synthetic":
        return s.data.n_classes
    return len(described(s)["class_counts"])


def class_weight_fits_the_classes(s) -> None:
    spec = s.model.options.get("class_weight")
    if not isinstance(spec, dict) or s.data.is_regression:
        return
    try:
        _class_weights(spec, [1] * n_classes(s))  # every class present, as in the data
    except ValueError as exc:
        raise ValueError(f"model.{exc} (data.dataset={s.data.dataset!r})") from None


def model_fits_the_data(s) -> None:
    is_classifier = MODELS[s.model.kind].is_classifier
    if is_classifier == s.data.is_regression:
        need = "a classification dataset" if is_classifier else \
            "data.dataset = 'synthetic_regression'"
        raise ValueError(f"model.kind={s.model.kind!r} is a "
                         f"{'classifier' if is_classifier else 'regressor'} and needs "
                         f"{need}; got data.dataset={s.data.dataset!r}")


def strategy_trains_the_model(s) -> None:
    trains = STRATEGIES[s.strategy.kind].models
    if s.model.kind not in trains:
        raise ValueError(f"strategy.kind={s.strategy.kind!r} trains model.kind in "
                         f"{', '.join(map(repr, trains))}; got model.kind={s.model.kind!r}")


def strategy_model_rules(s) -> None:
    for rule in STRATEGIES[s.strategy.kind].model_rules:
        rule(s)


def strategy_survives_the_faults(s) -> None:
    if STRATEGIES[s.strategy.kind].survives_faults:
        return
    faults = {"faults.crash": s.faults.crash != (), "faults.mtbf": s.faults.mtbf < math.inf,
              "faults.partition": s.faults.partition != (),
              "faults.server_mtbf": s.faults.server_mtbf < math.inf,
              "network.loss": s.network.loss > 0}
    for key, present in faults.items():
        if present:
            raise ValueError(f"strategy.kind={s.strategy.kind!r} has no recovery protocol: it "
                             f"cannot go on after a crash or a lost message; remove {key}")


def proportional_needs_finite_speed(s) -> None:
    if s.data.partition != "proportional":
        return
    if not all(map(math.isfinite, s.cluster.speed)):
        raise ValueError(f"data.partition={s.data.partition!r} needs finite cluster.speed "
                         f"(shards in proportion to speed); got {list(s.cluster.speed)}")
    effective = [v / d for v, d in zip(s.cluster.speed, s.cluster.slowdown)]
    if not all(map(math.isfinite, effective)):  # a tiny slowdown: speed / slowdown overflows
        raise ValueError(f"data.partition={s.data.partition!r} shares the rows by "
                         f"cluster.speed / cluster.slowdown, which must be finite; got "
                         f"{_checks.shown(effective)}")


def checkpoints_need_a_strategy_that_restarts(s) -> None:
    if s.faults.checkpoint_every and not STRATEGIES[s.strategy.kind].checkpoints:
        raise ValueError(f"faults.checkpoint_every: only the sync parameter server "
                         f"checkpoints (and restarts); got strategy.kind={s.strategy.kind!r}")


def scheduling_needs_plain_sync(s) -> None:
    if s.scheduling.policy is None:
        return
    if s.strategy.batch_size is not None:
        raise ValueError("strategy.batch_size: task-based rounds compute whole "
                         "blocks (scheduling.blocks sets their size); remove it")
    if s.strategy.kind != "sync" or s.strategy.options:  # tasks.py replaces sync's rounds
        raise ValueError(
            f"scheduling.policy={s.scheduling.policy!r} schedules the blocks of "
            f"synchronous rounds: it needs strategy.kind = 'sync' without "
            f"wait_for / round_timeout; got strategy.kind={s.strategy.kind!r}"
            + (f" with {', '.join(s.strategy.options)}" if s.strategy.options else ""))
    blocks = s.scheduling.blocks
    if blocks is not None and blocks < s.cluster.workers:
        raise ValueError(f"scheduling.blocks must be >= cluster.workers={s.cluster.workers} "
                         f"(a block per worker at least); got {blocks}")


def optimizer_steps_per_update(s) -> int | None:
    """How many times the strategy steps its optimizer per update (task rounds: once);
    None for a strategy that takes no gradient steps."""
    if s.scheduling.policy is not None:
        return 1
    steps = STRATEGIES[s.strategy.kind].optimizer_steps
    return None if steps is None else steps(s.strategy.build_options())


def optimizer_horizon(s) -> int:
    """The step at which a cosine schedule ends: ``optimizer.horizon``, else the steps
    of the whole run (``stop.rounds`` updates, each of its strategy's steps)."""
    if s.optimizer.horizon is not None:
        return s.optimizer.horizon
    return s.stop.rounds * (optimizer_steps_per_update(s) or 1)


def optimizer_needs_gradient_steps(s) -> None:
    if s.optimizer.is_plain or optimizer_steps_per_update(s) is not None:
        return
    steppers = ", ".join(repr(k) for k, spec in STRATEGIES.items() if spec.optimizer_steps)
    raise ValueError(f"[optimizer] steps the gradient strategies ({steppers}); "
                     f"strategy.kind={s.strategy.kind!r} takes no gradient steps: leave "
                     f"[optimizer] at its defaults (got optimizer.kind={s.optimizer.kind!r}, "
                     f"schedule={s.optimizer.schedule!r}, warmup={s.optimizer.warmup}, "
                     f"weight_decay={s.optimizer.decay!r})")


def cosine_fits_the_run(s) -> None:
    opt = s.optimizer
    if opt.schedule != "cosine":
        return
    if opt.horizon is None and optimizer_horizon(s) <= opt.warmup:
        steps = optimizer_steps_per_update(s) or 1
        run = f"stop.rounds={s.stop.rounds}" + (
            f" x {steps} local steps = {optimizer_horizon(s)}" if steps > 1 else "")
        raise ValueError(f"optimizer.warmup={opt.warmup} leaves no step to the cosine: it ends "
                         f"at {run} (optimizer.horizon is not set); "
                         f"set optimizer.horizon > optimizer.warmup, or a smaller warmup")
    if opt.min_lr is not None and opt.min_lr > s.strategy.lr:
        raise ValueError(f"optimizer.min_lr must be <= strategy.lr={s.strategy.lr!r} (the "
                         f"cosine decays from strategy.lr to it); got {opt.min_lr!r}")


def strategy_rules(s) -> None:
    for rule in STRATEGIES[s.strategy.kind].rules:
        rule(s)


def nodes_exist(s) -> None:
    refs = [(f"faults.crash[{i}].node", n) for i, c in enumerate(s.faults.crash)
            for n in (c.node if isinstance(c.node, tuple) else (c.node,))]
    refs += [(f"faults.partition[{i}].nodes", n) for i, c in enumerate(s.faults.partition)
             for n in c.nodes]
    refs += [(f"network.links[{i}].{end}", getattr(link, end))
             for i, link in enumerate(s.network.links) for end in ("a", "b")]
    for key, node in refs:
        if isinstance(node, str):  # "server", or a switch of topology = "links"
            continue
        if node >= s.cluster.workers:
            raise ValueError(f"{key} must be 'server' or a worker index below "
                             f"cluster.workers={s.cluster.workers}; got {node!r}")


def topology_fits_the_workers(s) -> None:
    """A torus's shape holds the workers; a graph of links joins every node."""
    net, n = s.network, s.cluster.workers
    if net.shape is not None and net.shape[0] * net.shape[1] != n:
        raise ValueError(f"network.shape={list(net.shape)} holds {net.shape[0] * net.shape[1]} "
                         f"workers; cluster.workers={n}: rows x cols must equal it")
    if net.topology == "links":
        lost = net.graph(n).unreachable()
        if lost:
            raise ValueError(f"network.links join no route from the server to "
                             f"{', '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}: "
                             f"every node must be reachable (add links)")


COMPRESSING = ("sync", "async", "ssp", "allreduce", "ddp", "local_sgd")  # whose workers compress
_GATHERED = ("allreduce", "ddp")   # their compressed payloads are all-gathered on a ring


def compression_problem(s, what: str) -> str | None:
    """Why the strategy of ``s`` cannot compress (``what``: the compressor's name for the
    message), or None: the parameter servers (sync, async, ssp: the workers encode, the
    server decodes), allreduce and ddp (the payloads all-gathered on a ring) and
    local_sgd (the model's change in a round), on values."""
    kind = s.strategy.kind
    if kind not in COMPRESSING or s.scheduling.policy is not None:
        return (f"{what} compresses what the workers send in strategy.kind = "
                f"{' | '.join(map(repr, COMPRESSING))} (without scheduling.policy); got "
                f"strategy.kind={kind!r}")
    options = s.strategy.options
    if kind in _GATHERED and collectives.ALIASES.get(options.get("collective", "ring"),
                                                     options.get("collective", "ring")) != "ring":
        return (f"{what} all-gathers the compressed payloads on a ring (they cannot be summed "
                f"on the way); strategy.collective={options['collective']!r}: set it to 'ring'")
    if kind == "ddp" and options.get("zero", 0):
        return (f"{what} does not shard: strategy.zero={options['zero']} reduce-scatters dense "
                f"buckets; set strategy.zero = 0 or compression.kind = 'none'")
    if not s.math:
        return (f"{what} picks entries by their values; a timing-only run (math = false) has "
                f"none: set compression.kind = 'none'")
    return None


def compression_fits_the_strategy(s) -> None:
    """A ``[compression]`` runs in a strategy that can compress (``compression_problem``)."""
    if s.compression.kind != "none":
        problem = compression_problem(s, f"compression.kind={s.compression.kind!r}")
        if problem:
            raise ValueError(problem)


def clients_need_fedavg(s) -> None:
    """``[clients]`` describes the clients of ``strategy.kind = "fedavg"``; with a
    population, the workers' data-side settings do not apply."""
    if s.strategy.kind != "fedavg":
        if not s.clients.is_default:
            raise ValueError(f"[clients] describes the clients of strategy.kind = 'fedavg'; "
                             f"got strategy.kind={s.strategy.kind!r}")
        return
    if s.clients.population and (s.data.rebalance or s.imbalance.method is not None):
        raise ValueError("data.rebalance and [imbalance] move rows between the cluster's "
                         "workers; with clients.population the clients hold the data")


ROBUST = ("sync", "fedavg")  # the strategies whose servers take [aggregation] and attackers


def aggregation_fits_the_strategy(s) -> None:
    """A robust ``[aggregation]`` and ``faults.byzantine`` run in the sync parameter server
    and fedavg's sync rounds (their servers aggregate what they receive); the attackers
    exist; the rule tolerates ``f`` of the vectors a round aggregates."""
    rule, byzantine = s.aggregation.rule, s.faults.byzantine
    if rule == "mean" and not byzantine:
        return
    key = f"aggregation.rule={rule!r}" if rule != "mean" else "faults.byzantine"
    kind, o = s.strategy.kind, s.strategy.options
    if (kind not in ROBUST or s.scheduling.policy is not None or s.compression.kind != "none"
            or o.get("mode", "sync") != "sync"):
        raise ValueError(f"{key} runs in strategy.kind = {' | '.join(map(repr, ROBUST))} "
                         f"(fedavg in sync rounds; no scheduling.policy, no compression); got "
                         f"strategy.kind={kind!r}")
    if kind == "fedavg":
        n = s.clients.population or s.cluster.workers
        per_round = s.clients.per_round or n
        what = "clients"
    else:
        n = s.cluster.workers
        per_round = o.get("wait_for") or n
        what = "cluster.workers"
    outside = [b for b in byzantine if b >= n]
    if outside:
        raise ValueError(f"faults.byzantine names {outside[0]}, but the {what} are 0..{n - 1}")
    problem = aggregation.rule_problem(rule, per_round, s.aggregation.f)
    if problem:
        raise ValueError(f"aggregation.rule={rule!r} with aggregation.f={s.aggregation.f} on "
                         f"the {per_round} vectors a round aggregates: {problem}")


def privacy_fits_the_strategy(s) -> None:
    """``[privacy]`` runs DP-SGD in the sync parameter server (every worker's clipped sum,
    the server's noise: no k-of-n, compression, robust rule or scheduling) on a learner
    with per-example gradients, and DP-FedAvg in fedavg's sync rounds."""
    if not s.privacy.is_active:
        return
    kind, o = s.strategy.kind, s.strategy.options
    if kind == "fedavg":
        if o.get("mode", "sync") != "sync" or s.aggregation.rule != "mean":
            raise ValueError("[privacy] in fedavg is DP-FedAvg in sync rounds with the mean: "
                             "set strategy.mode = 'sync' and aggregation.rule = 'mean'")
        if s.privacy.sample_rate != 1:
            raise ValueError(f"privacy.sample_rate={s.privacy.sample_rate} samples examples "
                             f"in sync's DP-SGD; fedavg samples clients (clients.per_round)")
        return
    if (kind != "sync" or o.get("wait_for") or s.compression.kind != "none"
            or s.aggregation.rule != "mean" or s.scheduling.policy is not None):
        raise ValueError(f"[privacy] runs DP-SGD in strategy.kind = 'sync' (every worker, no "
                         f"compression, the mean, no scheduling.policy) and DP-FedAvg in "
                         f"'fedavg'; got strategy.kind={kind!r}")
    if not hasattr(MODELS[s.model.kind], "per_example_factors"):
        have = [k for k, m in MODELS.items() if hasattr(m, "per_example_factors")]
        raise ValueError(f"[privacy] clips each example's gradient: model.kind in "
                         f"{', '.join(map(repr, have))}; got model.kind={s.model.kind!r}")


DURATIONS = 1e6  # a run adds up at most about stop.rounds x this many of its durations
                 # (workers, messages, retries per round): their sum must stay finite


def durations_are_finite(s) -> None:
    """Every duration a run can add up is finite: a flop on each worker, 8 bytes on each
    link, ``stop.rounds * DURATIONS`` times over; and the compute-time distribution's
    spread, which squares ``cluster.jitter``. (Else the clock hits inf or NaN mid-run.)"""
    n = s.stop.rounds * DURATIONS
    for i, (speed, slowdown) in enumerate(zip(s.cluster.speed, s.cluster.slowdown)):
        if not math.isfinite(n * slowdown / speed):
            raise ValueError(f"cluster.speed[{i}]={speed!r} with cluster.slowdown[{i}]="
                             f"{slowdown!r} makes a compute time that is not finite")
    links = [("network", s.network.latency, s.network.bandwidth)]
    links += [(f"network.links[{i}]", link.latency or 0.0, link.bandwidth or math.inf)
              for i, link in enumerate(s.network.links)]
    for key, latency, bandwidth in links:
        if not math.isfinite(n * (latency + 8.0 / bandwidth)):
            raise ValueError(f"{key}.latency={latency!r} with {key}.bandwidth={bandwidth!r} "
                             f"makes a message time that is not finite")
    jitter = s.cluster.jitter
    if s.cluster.compute_time in ("lognormal", "pareto") and jitter > 0 and not (
            0 < jitter * jitter < math.inf):  # both take log1p(jitter²) or 1 / jitter²
        raise ValueError(f"cluster.jitter={jitter!r} with cluster.compute_time="
                         f"{s.cluster.compute_time!r} makes compute times that are not finite "
                         f"(its square must be a finite number > 0)")


DATA_COPIES = 3  # the data as made, its rows in shard order (bundled data), a resampled copy
PARAM_COPIES = 4  # per node: the model, its gradient, an update in flight, a checkpoint,
                  # and then the optimizer's arrays (momentum 1, Adam 2)


def run_fits_in_memory(s) -> None:
    """The memory a run needs, estimated from the scenario, against the machine's budget
    (``simdml._checks.memory_budget``): its data, its nodes' models, a forest's trees.
    A timing-only run (``math = false``) holds none of them: its arrays are shapes."""
    if not s.math:
        return
    if s.data.dataset in _data.DATASETS or _data.parse_source(s.data.dataset):
        meta = described(s)
        rows, cols, keys = meta["n_samples"], meta["n_features"], f"data.dataset={s.data.dataset!r}"
    else:
        rows, cols = s.data.n_samples, s.data.n_features
        keys = f"data.n_samples={rows} with data.n_features={cols}"
    _checks.fits_in_memory(keys, f"{DATA_COPIES} copies of {rows:,} x {cols:,} float64",
                           DATA_COPIES * 8.0 * rows * cols)
    outputs = 1 if s.data.is_regression else n_classes(s)
    copies = PARAM_COPIES + len(OPTIMIZERS[s.optimizer.kind].state)
    hidden = tuple(s.model.options.get("hidden", _default_hidden(s.model.kind)))
    sizes = (cols, *hidden, outputs)  # a linear learner: one layer, (cols + 1) x outputs
    numbers = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    _checks.fits_in_memory(f"cluster.workers={s.cluster.workers} with {keys}"
                           + (f" and model.hidden={list(hidden)}" if hidden else ""),
                           f"{copies} models of {numbers:,} numbers per node",
                           (s.cluster.workers + 1) * copies * 8.0 * numbers)
    if hidden:  # a gradient on all the rows keeps each hidden layer's output and slope
        _checks.fits_in_memory(f"model.hidden={list(hidden)} with {keys}",
                               f"the activations of {rows:,} rows x {sum(hidden):,} hidden "
                               f"units, 16 bytes each", 16.0 * rows * sum(hidden))
    n_trees = s.model.options.get("n_estimators", 1)
    _checks.fits_in_memory(f"model.n_estimators={n_trees} with {keys}",
                           f"{n_trees:,} trees of up to {rows:,} rows, 24 bytes per row",
                           24.0 * n_trees * rows)


def _default_hidden(kind: str) -> tuple:
    """The hidden layers of a learner left at its default (none: not a neural network)."""
    parameter = inspect.signature(MODELS[kind].__init__).parameters.get("hidden")
    return () if parameter is None else parameter.default


#: model kinds a timing-only run can bind without values (their shapes are their sizes)
TIMING_MODELS = ("logistic", "linear", "mlp", "mlp_regression")
#: partitions whose shard sizes need neither the labels nor the data stream's draws
#: (which a timing-only run's synthetic data does not make): label_skew and by_label read
#: the labels, size_skew draws which worker gets which size after the data's draws
TIMING_PARTITIONS = ("iid", "proportional")


def timing_only_fits(s) -> None:
    """``math = false`` runs a strategy on shapes: one whose control flow never reads a
    value (``StrategySpec.timing_only``), a learner bound by its sizes, a stop that needs
    no score, and data whose shards are sized by counts alone."""
    if s.math:
        return
    spec = STRATEGIES[s.strategy.kind]
    if not spec.timing_only or s.scheduling.policy is not None:
        what = (f"scheduling.policy={s.scheduling.policy!r}" if spec.timing_only
                else f"strategy.kind={s.strategy.kind!r}")
        able = ", ".join(repr(k) for k, v in STRATEGIES.items() if v.timing_only)
        raise ValueError(f"math = false (timing only) runs the strategies whose steps never "
                         f"depend on the data's values ({able}, without scheduling.policy); "
                         f"{what} decides by them")
    if s.model.kind not in TIMING_MODELS:
        raise ValueError(f"math = false (timing only) needs a learner sized by its shape: "
                         f"model.kind in {', '.join(map(repr, TIMING_MODELS))}; got "
                         f"model.kind={s.model.kind!r}")
    if s.stop.target_accuracy is not None:
        raise ValueError(f"stop.target_accuracy={s.stop.target_accuracy!r} needs the score, "
                         f"which a timing-only run (math = false) does not compute; stop by "
                         f"stop.rounds or stop.time")
    if s.imbalance.method is not None or s.data.rebalance:
        key = ("imbalance.method" if s.imbalance.method is not None else "data.rebalance")
        raise ValueError(f"{key} moves rows by their labels; a timing-only run (math = false) "
                         f"does not support it")
    if s.data.dataset in ("synthetic", "synthetic_regression"):
        if s.data.partition not in TIMING_PARTITIONS:
            raise ValueError(f"data.partition={s.data.partition!r} sizes the shards by the "
                             f"labels or by random draws after the data's, which a timing-only "
                             f"run (math = false) on synthetic data does not make; use "
                             f"{' or '.join(map(repr, TIMING_PARTITIONS))} (or a bundled "
                             f"dataset, whose labels it reads)")
        if s.data.dataset == "synthetic" and s.data.label_noise:
            raise ValueError(f"data.label_noise={s.data.label_noise!r} changes the class "
                             f"counts, which decide the shards; a timing-only run "
                             f"(math = false) draws no labels: set it to 0")


RULES = (rebalance_needs_classes, resampling_needs_classes, model_fits_the_data,
         class_weight_fits_the_classes,
         strategy_trains_the_model, strategy_model_rules, strategy_survives_the_faults,
         proportional_needs_finite_speed, checkpoints_need_a_strategy_that_restarts,
         scheduling_needs_plain_sync, optimizer_needs_gradient_steps, cosine_fits_the_run,
         strategy_rules, nodes_exist, topology_fits_the_workers, compression_fits_the_strategy,
         clients_need_fedavg, aggregation_fits_the_strategy, privacy_fits_the_strategy,
         durations_are_finite,
         timing_only_fits, run_fits_in_memory)
