"""Issue 22, targets 1 and 7: each learner's strategy-face gradient (``grad``, what a
worker calls) and DP-SGD's clipped sum of per-example gradients, against plain numpy
doing the same math, written here without calling simdml.

The plain versions are what a careful student would write: row-major scores, the loss
skipped, no copies beyond the math's. For logistic regression on two classes there are
two limits: the same two-class softmax simdml computes, and a sigmoid on one column (the
least a binary problem needs; a different parameter layout).
"""
from __future__ import annotations

import timeit

import numpy as np

from simdml.models import MODELS
from simdml.privacy import clipped_outer_sum

N_FEATURES = 50
ROWS = (100, 1_000, 10_000)
L2 = 1e-4


def per_call(fn, repeat: int) -> float:
    """Best of ``repeat`` loops of ~20 ms (or one call) of ``fn``: seconds a call."""
    timer = timeit.Timer(fn)
    once = min(timer.repeat(3, 1))
    number = max(1, int(0.02 / max(once, 1e-9)))
    return min(timer.repeat(max(repeat, 3), number)) / number


# -- plain numpy: the same math, no simdml -----------------------------------------------

def softmax_minus_onehot(Z, y):
    """Each row's derivative of its cross-entropy in its scores ``Z`` (overwritten)."""
    Z -= Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    P /= P.sum(axis=1, keepdims=True)
    P[np.arange(Z.shape[0]), y] -= 1.0
    return P


def plain_softmax(W, b, X, y):
    P = softmax_minus_onehot(X @ W + b, y)
    P /= X.shape[0]
    return X.T @ P + L2 * W, P.sum(axis=0)


def plain_sigmoid(w, b, X, y):
    """The binary problem on one column: ``sigmoid(x w + b) - y``."""
    r = 1.0 / (1.0 + np.exp(-(X @ w + b)))
    r -= y
    r /= X.shape[0]
    return X.T @ r + L2 * w, r.sum()


def plain_least_squares(w, b, X, y):
    r = X @ w
    r += b - y
    r /= X.shape[0]
    return X.T @ r + L2 * w, r.sum()


def plain_multiclass_hinge(W, b, X, y):
    """One-vs-rest hinge, ``sum_c max(0, 1 - t_c z_c)`` with ``t = +-1``, its subgradient."""
    n = X.shape[0]
    T = -np.ones_like(X, shape=(n, W.shape[1]))
    T[np.arange(n), y] = 1.0
    G = np.where(1.0 - T * (X @ W + b) > 0.0, -T, 0.0)
    G /= n
    return X.T @ G + L2 * W, G.sum(axis=0)


def plain_mlp(Ws, bs, X, y):
    """ReLU hidden layers, a softmax head: forward, then backward layer by layer."""
    inputs, masks, A = [], [], X
    for W, b in zip(Ws[:-1], bs[:-1]):
        inputs.append(A)
        Z = A @ W + b
        mask = Z > 0
        masks.append(mask)
        A = Z * mask
    inputs.append(A)
    dZ = softmax_minus_onehot(A @ Ws[-1] + bs[-1], y) / X.shape[0]
    grads = []
    for l in reversed(range(len(Ws))):
        grads.append((inputs[l].T @ dZ + L2 * Ws[l], dZ.sum(axis=0)))
        if l:
            dZ = (dZ @ Ws[l].T) * masks[l - 1]
    return grads


def plain_per_example_logistic(W, b, X, y):
    """DP-SGD's clipped sum as written from its definition, the gradients spelled out."""
    n = X.shape[0]
    P = softmax_minus_onehot(X @ W + b, y)
    Xt = np.hstack([X, np.ones((n, 1))])
    G = (Xt[:, :, None] * P[:, None, :]).reshape(n, -1)
    norms = np.linalg.norm(G, axis=1)
    return (G * np.minimum(1.0, 1.0 / np.maximum(norms, 1e-300))[:, None]).sum(axis=0)


# -- the benchmark ----------------------------------------------------------------------

def _problem(n, rng, classes=2):
    X = rng.standard_normal((n, N_FEATURES))
    return X, rng.integers(0, classes, n)


def bench_math(quick: bool, repeat: int, rows=None) -> list[dict]:
    rows_list = rows or (ROWS[:2] if quick else ROWS)
    rng = np.random.default_rng(0)
    out = []
    for n in rows_list:
        X, y = _problem(n, rng)
        yf = rng.standard_normal(n)
        for kind, classes in (("logistic", 2), ("svm", 2), ("linear", 1), ("mlp", 2)):
            model = MODELS[kind](l2=L2)
            params = 0.01 * rng.standard_normal(model.init_params(N_FEATURES, classes).size)
            target = yf if kind == "linear" else y
            t_ours = per_call(lambda: model.grad(params, X, target), repeat)
            for label, fn in limits(kind, model, params, X, target).items():
                t = per_call(fn, repeat)
                out.append({"group": "math", "name": f"{kind} grad, {n:,} rows, vs {label}",
                            "simdml_us": 1e6 * t_ours, "limit_us": 1e6 * t,
                            "vs_limit": t_ours / t})
        for kind in ("logistic", "linear"):   # target 7: DP-SGD's clipped sum vs the batch
            model = MODELS[kind](l2=L2)
            classes = 2 if kind == "logistic" else 1
            params = 0.01 * rng.standard_normal(model.init_params(N_FEATURES, classes).size)
            target = yf if kind == "linear" else y
            t_batch = per_call(lambda: model.grad(params, X, target), repeat)
            row_sq = np.einsum("ij,ij->i", X, X)   # a shard's, computed at its first step
            t_clip = per_call(lambda: clipped_outer_sum(
                X, model.per_example_factors(params, X, target), 1.0, row_sq), repeat)
            t_first = per_call(lambda: clipped_outer_sum(
                X, model.per_example_factors(params, X, target), 1.0), repeat)
            t_spelled = per_call(lambda: model.per_example_grads(params, X, target), repeat)
            row = {"group": "math", "name": f"{kind} clipped sum, {n:,} rows, vs batch grad",
                   "simdml_us": 1e6 * t_clip, "limit_us": 1e6 * t_batch,
                   "vs_limit": t_clip / t_batch, "first_step_vs_batch": t_first / t_batch,
                   "spelled_out_vs_batch": t_spelled / t_batch}
            if kind == "logistic":
                W = params.reshape(N_FEATURES + 1, 2)
                t_plain = per_call(lambda: plain_per_example_logistic(W[:-1], W[-1], X, y),
                                   repeat)
                row["plain_per_example_vs_batch"] = t_plain / t_batch
            out.append(row)
    return out


def limits(kind, model, params, X, y) -> dict:
    """Label -> a call of plain numpy computing what ``model.grad(params, X, y)`` does
    (tests/test_benchmarks.py holds them equal to it)."""
    d = N_FEATURES
    if kind in ("logistic", "svm"):
        W = params.reshape(d + 1, -1)
        plain = plain_softmax if kind == "logistic" else plain_multiclass_hinge
        out = {"plain numpy, the same math": lambda: plain(W[:-1], W[-1], X, y)}
        if kind == "logistic":
            w = W[:-1, 1] - W[:-1, 0]
            out["plain numpy, binary sigmoid"] = lambda: plain_sigmoid(
                w, W[-1, 1] - W[-1, 0], X, y)
        return out
    if kind == "linear":
        return {"plain numpy, the same math": lambda: plain_least_squares(
            params[:-1], params[-1], X, y)}
    layers = [model.layer_params(l, params) for l in range(model.n_layers)]
    Ws, bs = [np.ascontiguousarray(W) for W, _ in layers], [b.copy() for _, b in layers]
    return {"plain numpy, the same math": lambda: plain_mlp(Ws, bs, X, y)}
