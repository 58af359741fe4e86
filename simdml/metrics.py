"""Metrics of a run: accuracy, time to target, throughput, per-node time budgets."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["accuracy", "balanced_accuracy", "confusion_matrix", "precision_recall_f1",
           "classification_report", "time_to_target", "staleness_stats", "summarize",
           "format_number"]

# Between these magnitudes a number reads well with fixed decimals; outside, in
# scientific notation (a diverged loss of 9.3e196 would print as 197 digits).
_FIXED_MIN, _FIXED_MAX = 1e-3, 1e6


def accuracy(y_true, y_pred) -> float:
    """Fraction of equal labels."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """``C[i, j]`` = number of samples of class ``i`` predicted as ``j`` (labels are class
    indices ``0 .. n_classes - 1``), shape (n_classes, n_classes), int64.

    >>> confusion_matrix([0, 0, 1], [0, 1, 1]).tolist()
    [[1, 1], [0, 1]]
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    if y_true.size and min(y_true.min(), y_pred.min()) < 0:
        raise ValueError("labels must be class indices >= 0")
    k = n_classes if n_classes is not None else int(max(y_true.max(initial=-1),
                                                          y_pred.max(initial=-1))) + 1
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def precision_recall_f1(y_true, y_pred, n_classes: int | None = None) -> dict:
    """Per class: ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``f1 = 2 P R / (P + R)``; 0 where a denominator is 0 (a class never predicted, or
    absent), as scikit-learn's ``zero_division=0``. Arrays of shape (n_classes,)."""
    c = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(c).astype(float)
    predicted, actual = c.sum(axis=0), c.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def balanced_accuracy(y_true, y_pred, n_classes: int | None = None) -> float:
    """The mean of the per-class recalls over the classes present in ``y_true``: 1/k for
    a constant prediction, whatever the class proportions.

    References
    ----------
    K. H. Brodersen et al., "The balanced accuracy and its posterior distribution",
    ICPR 2010.
    """
    r = precision_recall_f1(y_true, y_pred, n_classes)
    present = r["support"] > 0
    return float(r["recall"][present].mean()) if present.any() else float("nan")


def classification_report(y_true, y_pred, n_classes: int | None = None) -> dict:
    """What a result reports for a classifier: accuracy, balanced accuracy, macro F1
    (mean over the classes present), per-class precision / recall / F1 (lists) and the
    confusion matrix (nested lists)."""
    r = precision_recall_f1(y_true, y_pred, n_classes)
    present = r["support"] > 0
    return {"accuracy": accuracy(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy(y_true, y_pred, n_classes),
            "macro_f1": float(r["f1"][present].mean()) if present.any() else float("nan"),
            "precision": r["precision"].tolist(), "recall": r["recall"].tolist(),
            "f1": r["f1"].tolist(),
            "confusion_matrix": confusion_matrix(y_true, y_pred, n_classes).tolist()}


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


def format_number(value, fmt: str = "{:.4f}") -> str:
    """``value`` formatted by ``fmt`` (one ``{:...}`` field, e.g. ``"{:.1f} %"``), with
    the field as ``{:.4g}`` (scientific notation) when ``|value|`` is below 1e-3 or at
    least 1e6; ``"n/a"`` when there is no value (None or nan).

    >>> format_number(9.339e196), format_number(0.41493), format_number(2e-7, "{:.2f} s")
    ('9.339e+196', '0.4149', '2e-07 s')
    """
    if value is None or value != value:
        return "n/a"
    if value != 0 and abs(value) != math.inf and not _FIXED_MIN <= abs(value) < _FIXED_MAX:
        field = fmt[fmt.index("{"):fmt.index("}") + 1]
        fmt = fmt.replace(field, "{:.4g}")
    return fmt.format(value)
