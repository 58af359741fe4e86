"""Metrics of a run: accuracy, time to target, throughput, per-node time budgets."""
from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "time_to_target", "staleness_stats", "summarize"]


def accuracy(y_true, y_pred) -> float:
    """Fraction of equal labels."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def time_to_target(history: list[dict], target: float) -> float | None:
    """Simulated time of the first evaluation whose test score (accuracy, or R² for a
    regressor) is >= ``target``; None if never."""
    for row in history:
        if row["score"] >= target:
            return row["time"]
    return None


def staleness_stats(histogram: list[int]) -> dict:
    """Mean and max staleness from ``histogram[s]`` = number of gradients with staleness s."""
    n = sum(histogram)
    if n == 0:
        return {}
    mean = sum(s * c for s, c in enumerate(histogram)) / n
    return {"staleness_mean": mean, "staleness_max": len(histogram) - 1,
            "staleness_histogram": list(histogram)}


def summarize(history, trace, *, updates, score_name, stop_reason, target_accuracy, bytes_sent,
              messages_sent, messages_lost, counters, staleness=(), messages_skipped=0) -> dict:
    """The summary of a run: what it reached, in how much simulated time, at what cost."""
    last = history[-1] if history else {"loss": float("nan"), "score": float("nan")}
    sim_time = trace.end
    return {
        "sim_time": sim_time,
        "updates": updates,
        "updates_per_s": updates / sim_time if sim_time > 0 else float("nan"),
        "final_loss": last["loss"],
        "score_name": score_name,
        "final_score": last["score"],
        "final_accuracy": last.get("accuracy"),  # None for a regressor (see final_score)
        "target_accuracy": target_accuracy,
        "time_to_target": (time_to_target(history, target_accuracy)
                           if target_accuracy is not None else None),
        "bytes_sent": bytes_sent,
        "messages_sent": messages_sent,
        "messages_lost": messages_lost,
        "messages_skipped": messages_skipped,
        "stop_reason": stop_reason,
        **{k: v for k, v in sorted(counters.items())},
        **staleness_stats(list(staleness)),
    }
