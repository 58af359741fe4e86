"""What a run produced (``Result``), how its record is assembled, and its JSON form."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import display
from .metrics import classification_report, summarize
from .scenario import Scenario, ScenarioError, read_bounded
from .trace import Trace

__all__ = ["Result", "jsonable", "load_result", "report"]

RESULT_MAX_BYTES = 256 * 2**20  # 256 MiB: a result of a million evaluations is ~150 MiB


@dataclass
class Result:
    """What a run produced.

    Attributes
    ----------
    scenario : Scenario
    history : list of dict
        One row per evaluation: simulated ``time`` (s), ``update`` count, training
        ``loss``, test ``score`` (also as ``accuracy`` for classifiers, ``r2`` for
        regressors), ``epoch`` (gradient work in passes over the training set).
    trace : Trace
        Spans, instants and counters of every node.
    summary : dict
        ``sim_time``, ``updates``, ``final_loss``, ``final_accuracy``, ``time_to_target``,
        ``bytes_sent``, ``messages_sent``, ``stop_reason``, ...
    model : learner
        The trained learner (``predict``, ``score``; ``params`` for gradient strategies).
        It works on the run's features, standardized with the training statistics:
        use ``result.predict`` / ``result.score`` for raw features.
    scaling : (mean, scale) or None
        The standardization the run applied (``data.standardize``).
    memory : dict
        Per node, its peak memory: ``peak`` (bytes), ``peak_time`` (s), ``limit`` (bytes,
        ``cluster.memory``) and ``breakdown`` (bytes per category at the peak: params,
        grads, optimizer, activations, buffers, shard). See ``simdml.memory``.
    links : dict
        On a ``network.topology`` other than the switch, per link that carried a message
        (``"worker0->rack0"``): ``bytes``, ``messages``, ``busy`` (s of transmission) and
        ``utilization`` (busy / simulated time). Empty on the switch.
    """

    scenario: Scenario
    history: list[dict]
    trace: Trace
    summary: dict
    model: object
    scaling: tuple | None = None
    memory: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)

    # a few lines, not the dataclass's every field (its trace alone is thousands of spans)
    __repr__ = display.result_text
    _repr_html_ = display.result_html  # a notebook: summary, nodes, the figure

    def _features(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.scaling is None:
            return X
        mean, scale = self.scaling
        return (X - mean) / scale

    def _trained(self):
        if self.model is None:
            why = ("a timing-only run (math = false) trains no values"
                   if not self.scenario.math else "the run stopped before its first model")
            raise ValueError(f"this result has no model: {why}")
        return self.model

    def predict(self, X) -> np.ndarray:
        """The trained model's predictions for raw features ``X`` (standardized first,
        with the training statistics, as in the run)."""
        return self._trained().predict(self._features(X))

    def score(self, X, y) -> float:
        """The trained model's score (accuracy or R²) on raw features ``X``."""
        return self._trained().score(self._features(X), y)

    @property
    def nodes(self) -> dict[str, dict[str, float]]:
        """Per node, seconds of compute / send / recv / wait / down / idle, and utilization."""
        return self.trace.totals()

    def to_dict(self) -> dict:
        """The summary's fields at top level, plus ``scenario``, ``history``, ``nodes``,
        ``memory`` and, on a topology, ``links``."""
        out = {**self.summary, "scenario": self.scenario.name, "seed": self.scenario.seed,
               "history": self.history, "nodes": self.nodes, "memory": self.memory}
        if self.links:  # a topology's links (none on the switch)
            out["links"] = self.links
        return out

    def to_json(self) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=1)

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON, atomically (a temporary file, then a rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
        return path


def jsonable(x):
    """A copy of ``x`` that ``json.dumps`` writes as valid JSON: numpy scalars as Python
    numbers, tuples as lists, and inf / nan (which JSON lacks) as the strings
    ``"inf"`` / ``"nan"`` instead of invalid tokens."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return jsonable(x.item())
    return x


def load_result(path: str | Path) -> dict:
    """A result file (``Result.save``, ``simdml run --out``) as a dict, checked.

    The strings ``"inf"``, ``"-inf"`` and ``"nan"`` that ``jsonable`` wrote for numbers
    JSON lacks are numbers again. The fields a figure reads are checked: ``history`` a
    list of tables with numeric ``time``, ``loss`` and ``score``; ``nodes`` a table of
    node -> table of seconds; ``sim_time`` a number.

    Raises
    ------
    ScenarioError
        Not a regular file, over RESULT_MAX_BYTES, not JSON, or a field of the wrong
        shape (the field is named).
    """
    where = str(path)
    raw = read_bounded(path, "result file", RESULT_MAX_BYTES)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
        raise ScenarioError(f"cannot read a result from {where!r}: {exc}") from None
    if not isinstance(data, dict) or "history" not in data or "nodes" not in data:
        raise ScenarioError(f"{where!r} is not a result file (simdml run --out writes one)")
    history, nodes = data["history"], data["nodes"]
    if not isinstance(history, list):
        raise ScenarioError(f"{where}: history must be a list of evaluations; got {history!r:.60}")
    for i, row in enumerate(history):
        _numbers(where, f"history[{i}]", row, ("time", "loss", "score"))
    if not isinstance(nodes, dict):
        raise ScenarioError(f"{where}: nodes must be a table of node -> seconds; got {nodes!r:.60}")
    for name, times in nodes.items():
        _numbers(where, f"nodes.{name}", times, list(times) if isinstance(times, dict) else ())
    data["sim_time"] = _number(where, "sim_time", data.get("sim_time"))
    return data


def _numbers(where: str, key: str, table, fields) -> None:
    """Check that ``table`` is a dict and turn its ``fields`` into floats, in place."""
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: {key} must be a table; got {table!r:.60}")
    for field in fields:
        table[field] = _number(where, f"{key}.{field}", table.get(field))


def _number(where: str, key: str, value) -> float:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)  # as jsonable wrote it
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScenarioError(f"{where}: {key} must be a number; got {value!r:.60}")
    return float(value)


#: what a timing-only run's stop reason says of its model
TIMING_ONLY = "timing only (math = false): times, bytes and memory; no loss or score"


def report(s: Scenario, job, split, stop_reason: str | None) -> Result:
    """The Result of a finished run: the global model, the trace up to now, the test
    set's classification report and the summary. ``stop_reason`` is the simulation's
    (a time limit, a stall...); the monitor's own reason, if it stopped training, wins."""
    monitor, cluster = job.monitor, job.cluster
    monitor.finish()
    model = job.model
    if not s.math:                     # timing only: the model is a shape, nothing to score
        model = None
    elif isinstance(monitor.params, np.ndarray):
        model.params_ = monitor.params
    elif monitor.params is not None:
        model = monitor.params  # the global model is a fitted learner (or an ensemble)
    else:  # stopped before the first model was built
        model = None
        stop_reason = f"{monitor.stop_reason or stop_reason}; no model yet: nothing to evaluate"
        monitor.stop_reason = None
    trace = Trace.from_cluster(cluster, job.sim.now, counters={
        "loss": [(h["time"], h["loss"]) for h in monitor.history],
        monitor.model.score_name: [(h["time"], h["score"]) for h in monitor.history]})
    counters = job.stats.counters
    if model is not None and model.is_classifier:  # the test set, class by class
        n_outputs = len(job.classes)
        with np.errstate(all="ignore"):  # a diverged model predicts too; its stop reason says so
            test = classification_report(split.y_test, model.predict(split.X_test), n_outputs)
        counters = {**counters, **{k: test[k] for k in (
            "balanced_accuracy", "macro_f1", "recall", "precision", "f1", "confusion_matrix")}}
    counters = {**counters, **(split.resampling or {})}
    if not s.math:
        counters = {**counters, "timing_only": True}
    if cluster.trace_cut_at is not None:  # the trace hit its memory budget (the totals did not)
        counters = {**counters, "trace_cut_at": cluster.trace_cut_at}
    stop_reason = monitor.stop_reason or stop_reason
    lost = job.checkpoints.lost_note(monitor.updates, monitor.model.score_name)
    if lost is not None:  # a restart threw away a better model than the final one
        stop_reason = f"{stop_reason}; {lost}"
        counters = {**counters, "lost_model_update": job.checkpoints.lost_model["update"],
                    "lost_model_score": job.checkpoints.lost_model["score"]}
    if not s.math:                     # last: what the whole reason is about
        stop_reason = f"{stop_reason}; {TIMING_ONLY}"
    summary = summarize(monitor.history, trace, updates=monitor.updates,
                        score_name=monitor.model.score_name, stop_reason=stop_reason,
                        target_accuracy=s.stop.target_accuracy, bytes_sent=cluster.bytes_sent,
                        messages_sent=cluster.messages_sent, messages_lost=cluster.messages_lost,
                        messages_skipped=cluster.messages_skipped,
                        counters=counters, staleness=job.stats.staleness)
    memory = {node.name: node.memory.report() for node in cluster.nodes}
    return Result(scenario=s, history=monitor.history, trace=trace, summary=summary, model=model,
                  scaling=split.scaling, memory=memory, links=cluster.link_report())
