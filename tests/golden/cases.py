"""The golden runs: one small run per strategy, policy, partitioner, learner, fault and
resampling mode, and the digest of everything each one produced.

A refactoring must not change a single number. ``digest(result)`` hashes a run's whole
record -- history, summary, per-node totals, every span and instant, the final model's
parameters -- with floats written exactly (``float.hex``), so any change of a bit shows.
``tests/test_golden.py`` compares every case against ``golden.json``; when an issue does
change numbers on purpose, regenerate the file and name each change in the note::

    python -m tests.golden.cases --write      # from the repository root
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np

import simdml
from simdml.experiment import prepare_data

GOLDEN = Path(__file__).with_name("golden.json")

_BASE = {"stop.rounds": 12}

#: label -> (bundled scenario, dotted overrides)
CASES: dict[str, tuple[str, dict]] = {
    # the bundled scenarios as they ship (their own stop rules)
    **{f"bundled/{name}": (name, {}) for name in
       ("iris_sync", "cascade_svm", "hist_tree", "crash_recovery", "synthetic_16")},
    # every gradient strategy, every gradient learner
    "sync/logistic": ("iris_sync", {}),
    "sync/wait_for": ("iris_sync", {"strategy.wait_for": 3}),
    "sync/timeout_retries": ("iris_sync", {"strategy.round_timeout": 0.004,
                                           "strategy.retries": 1, "network.loss": 0.1}),
    "sync/batch": ("iris_sync", {"strategy.batch_size": 8}),
    "sync/svm": ("iris_sync", {"model.kind": "svm"}),
    "sync/linear": ("iris_sync", {"model.kind": "linear", "data.dataset": "synthetic_regression",
                                  "strategy.lr": 0.1}),
    "sync/class_weight": ("iris_sync", {"data.dataset": "breast_cancer_rare",
                                        "model.class_weight": "balanced"}),
    "sync/checkpoint": ("iris_sync", {"faults.server_mtbf": 0.05, "faults.mttr": 0.01,
                                      "faults.checkpoint_every": 3, "faults.checkpoint_time": 1e-3,
                                      "strategy.round_timeout": 0.05, "stop.rounds": 30}),
    "async": ("iris_sync", {"strategy.kind": "async"}),
    "ssp": ("iris_sync", {"strategy.kind": "ssp", "strategy.staleness": 1}),
    "ssp/batch": ("iris_sync", {"strategy.kind": "ssp", "strategy.staleness": 2,
                                "strategy.batch_size": 10, "cluster.compute_time": "exponential"}),
    "allreduce": ("iris_sync", {"strategy.kind": "allreduce"}),
    "ddp": ("iris_sync", {"strategy.kind": "ddp", "model": {"kind": "mlp", "hidden": [8, 8]},
                          "strategy.bucket_size": 300}),
    "local_sgd": ("iris_sync", {"strategy.kind": "local_sgd", "strategy.local_steps": 3}),
    "admm_svm": ("iris_sync", {"strategy.kind": "admm_svm", "model.kind": "svm"}),
    "local_fusion/vote": ("iris_sync", {"strategy.kind": "local_fusion", "strategy.rule": "vote"}),
    "local_fusion/average": ("iris_sync", {"strategy.kind": "local_fusion",
                                           "strategy.rule": "average"}),
    "local_fusion/forest": ("iris_sync", {"strategy.kind": "local_fusion", "model": {"kind": "forest",
                                          "n_estimators": 5}, "strategy.rule": "soft"}),
    "local_fusion/kernel_svm": ("iris_sync", {"strategy.kind": "local_fusion",
                                              "model": {"kind": "kernel_svm"}, "strategy.rule": "best"}),
    "cascade_svm": ("cascade_svm", {"data.dataset": "iris"}),
    "hist_tree": ("hist_tree", {"data.dataset": "wine"}),
    "voting_tree": ("hist_tree", {"strategy": {"kind": "voting_tree", "top_k": 3},
                                  "data.dataset": "wine"}),
    # every partitioner
    **{f"partition/{p}": ("iris_sync", {"data.partition": p})
       for p in ("proportional", "label_skew", "size_skew", "by_label")},
    "partition/rebalance": ("iris_sync", {"data.partition": "by_label", "data.rebalance": True}),
    # every scheduling policy
    **{f"policy/{p}": ("iris_sync", {"scheduling.policy": p, "scheduling.blocks": 8,
                                     "cluster.compute_time": "lognormal"})
       for p in ("round_robin", "random", "proportional", "least_loaded", "earliest_finish",
                 "pull", "work_stealing", "power_of_two")},
    "policy/crash": ("iris_sync", {"scheduling.policy": "pull", "faults.crash":
                                   [{"node": 1, "at": 0.05, "recover_after": 0.05}],
                                   "scheduling.detect_after": 0.01}),
    # faults
    "faults/mtbf": ("iris_sync", {"faults.mtbf": 0.2, "faults.mttr": 0.02,
                                  "strategy.round_timeout": 0.05}),
    "faults/partition": ("iris_sync", {"faults.partition": [{"nodes": [0], "at": 0.02,
                                                             "heal_after": 0.03}],
                                       "strategy.round_timeout": 0.05}),
    "faults/links": ("iris_sync", {"network.links": [{"a": "server", "b": 3, "latency": 0.01}]}),
    "faults/async_crash": ("iris_sync", {"strategy.kind": "async", "faults.crash":
                                         [{"node": 2, "at": 0.03, "recover_after": 0.02}]}),
    # imbalance
    **{f"imbalance/{m}/{w}": ("iris_sync", {"data.dataset": "breast_cancer_rare",
                                            "imbalance.method": m, "imbalance.where": w})
       for m in ("oversample", "undersample", "smote") for w in ("global", "local")},
    # datasets and compute-time distributions
    **{f"data/{d}": ("iris_sync", {"data.dataset": d}) for d in ("wine", "digits", "synthetic")},
    **{f"compute/{c}": ("iris_sync", {"cluster.compute_time": c})
       for c in ("deterministic", "exponential", "shifted_exponential", "pareto")},
}


def scenario(label: str):
    name, overrides = CASES[label]
    s = simdml.load_scenario(name)
    return s if label.startswith("bundled/") else s.replace(**{**_BASE, **overrides})


def _exact(x):
    """A JSON-able copy in which every float is exact (its hex form)."""
    if isinstance(x, (float, np.floating)):
        return float(x).hex()
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, np.ndarray):
        return [_exact(v) for v in x.ravel().tolist()] + [list(x.shape), str(x.dtype)]
    if isinstance(x, dict):
        return {str(k): _exact(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_exact(v) for v in x]
    return x


def record(result) -> dict:
    """Everything a run produced that a refactoring must keep."""
    model = result.model
    params = getattr(model, "params_", None)
    return {"history": result.history, "summary": result.summary, "nodes": result.nodes,
            "spans": [tuple(s) for s in result.trace.spans],
            "instants": result.trace.instants,
            "params": params,
            # the final model's predictions on the run's own (standardized) test rows
            "predict": (model.predict(prepare_data(result.scenario).X_test)
                        if model is not None else None)}


def digest(result) -> str:
    text = json.dumps(_exact(record(result)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def headline(result) -> dict:
    """A few numbers, readable in a diff."""
    s = result.summary
    return {"sim_time": s["sim_time"], "updates": s["updates"],
            "final_loss": s.get("final_loss"), "bytes_sent": s["bytes_sent"]}


def compute(labels=None) -> dict:
    out = {}
    for label in labels or CASES:
        r = simdml.run(scenario(label))
        out[label] = {"digest": digest(r), **headline(r)}
    return out


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.golden.cases --write")
    GOLDEN.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
