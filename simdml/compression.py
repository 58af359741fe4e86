"""Gradient compression: what a worker sends instead of its dense gradient.

A compressor is a pair of pure functions, ``compress(v, rng) -> Compressed`` and
``decompress(c) -> v_hat``; the ``Compressed`` payload holds real arrays, and its bytes
are what travels (``nbytes``, the sum of its arrays'). With ``n`` entries of ``v``
(float64, 8 bytes) and ``k = max(1, round(ratio n))``:

=========  ======================================================  ========================
kind       payload                                                 bytes on the wire
=========  ======================================================  ========================
``topk``   the ``k`` entries of largest magnitude: indices, values  ``k (4 + 8)``
``randk``  ``k`` entries drawn uniformly, values times ``n / k``    ``k (4 + 8)``
           (unbiased)
``qsgd``   ``||v||``, the signs packed 8 to a byte, a level in       ``8 + ceil(n/8) + n b``,
           ``0 .. s`` per entry (``s = levels``), rounded up with   ``b = 1`` byte (``s <
           probability the remainder (unbiased; Alistarh et al.     256``) else 2
           2017)
``sign``   the signs packed 8 to a byte, and the mean magnitude     ``ceil(n/8) + 8``
           ``||v||_1 / n`` (scaled sign; the server of signSGD
           with majority vote uses only the signs)
=========  ======================================================  ========================

(indices are int32: a vector of 2^31 entries or more is refused.) QSGD's variance is
``E ||Q(v) - v||^2 <= min(n / s^2, sqrt(n) / s) ||v||^2`` (Alistarh et al. 2017, Lemma
3.1). **Error feedback** (Seide et al. 2014; Stich et al. 2018; Karimireddy et al.
2019): the worker compresses ``p = g + e`` and keeps ``e <- p - decompress(c)``, so what
a compressor drops is sent later; ``e`` is real per-worker state (its bytes are booked
as the worker's ``optimizer`` memory, beside its optimizer's state; a worker that
crashes loses them).

Where it runs (``_rules.COMPRESSING``): the parameter servers' pushes (``sync``: decoded
and aggregated by ``Compression.aggregate``; ``async``, ``ssp``: each decoded alone);
``allreduce`` and ``ddp`` (each bucket, a residual per bucket), whose payloads are
all-gathered on a ring (``Job.all_gather_sum``: they cannot be added on the way) and
aggregated by every worker alike; ``local_sgd``, whose workers send each round's change
of the model.

References
----------
D. Alistarh et al. (2017), "QSGD: Communication-Efficient SGD via Gradient Quantization
and Encoding", NeurIPS; S. U. Stich, J.-B. Cordonnier and M. Jaggi (2018), "Sparsified SGD
with Memory", NeurIPS; J. Bernstein et al. (2018), "signSGD: Compressed Optimisation for
Non-Convex Problems", ICML (majority vote); S. P. Karimireddy et al. (2019), "Error
Feedback Fixes SignSGD and other Gradient Compression Schemes", ICML; F. Seide et al.
(2014), "1-Bit Stochastic Gradient Descent and its Application to Data-Parallel
Distributed Training of Speech DNNs", Interspeech.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["COMPRESSORS", "Compressed", "Compression", "compress", "decompress", "wire_bytes",
           "qsgd_variance_bound"]

COMPRESSORS = ("none", "topk", "randk", "qsgd", "sign")


class Compressed:
    """A compressed vector: its ``kind``, ``size`` (entries of the dense vector) and the
    arrays that travel (``parts``); ``nbytes`` is theirs."""

    __slots__ = ("kind", "size", "parts", "levels")

    def __init__(self, kind: str, size: int, parts: tuple, levels: int = 0):
        self.kind, self.size, self.parts, self.levels = kind, size, parts, levels

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)


def _k(n: int, ratio: float) -> int:
    return min(n, max(1, round(ratio * n)))


def compress(kind: str, v: np.ndarray, rng=None, *, ratio: float = 0.01,
             levels: int = 16) -> Compressed:
    """``v`` compressed by ``kind`` (the module docstring's table)."""
    n = v.size
    if n >= 2**31:
        raise ValueError(f"cannot compress a vector of {n} entries (indices are int32)")
    if kind == "topk":
        k = _k(n, ratio)
        idx = np.sort(np.argsort(-np.abs(v), kind="stable")[:k]).astype(np.int32)
        return Compressed(kind, n, (idx, v[idx]))
    if kind == "randk":
        k = _k(n, ratio)
        idx = np.sort(rng.choice(n, k, replace=False)).astype(np.int32)
        return Compressed(kind, n, (idx, v[idx] * (n / k)))
    if kind == "qsgd":
        norm = float(np.linalg.norm(v))
        scaled = np.abs(v) / norm * levels if norm > 0 else np.zeros(n)
        low = np.floor(scaled)
        level = low + (rng.random(n) < scaled - low)
        dtype = np.uint8 if levels < 256 else np.uint16
        return Compressed(kind, n, (np.array([norm]), np.packbits(v < 0),
                                    level.astype(dtype)), levels)
    if kind == "sign":
        scale = float(np.abs(v).mean()) if n else 0.0
        return Compressed(kind, n, (np.packbits(v < 0), np.array([scale])))
    raise ValueError(f"unknown compressor {kind!r}; known: {', '.join(COMPRESSORS[1:])}")


def signs(c: Compressed) -> np.ndarray:
    """The +1 / -1 signs of a ``sign`` or ``qsgd`` payload (zero counts as +1)."""
    packed = c.parts[1] if c.kind == "qsgd" else c.parts[0]
    return 1.0 - 2.0 * np.unpackbits(packed, count=c.size)


def decompress(c: Compressed) -> np.ndarray:
    """The dense vector a receiver rebuilds from ``c``."""
    if c.kind in ("topk", "randk"):
        out = np.zeros(c.size)
        idx, values = c.parts
        out[idx] = values
        return out
    if c.kind == "qsgd":
        norm, _, level = c.parts
        return norm[0] * signs(c) * level / c.levels
    return c.parts[1][0] * signs(c)


def wire_bytes(kind: str, n: int, *, ratio: float = 0.01, levels: int = 16) -> int:
    """The payload's bytes by formula (the module docstring's table)."""
    if kind in ("topk", "randk"):
        return _k(n, ratio) * (4 + 8)
    if kind == "qsgd":
        return 8 + math.ceil(n / 8) + n * (1 if levels < 256 else 2)
    if kind == "sign":
        return math.ceil(n / 8) + 8
    return 8 * n


def qsgd_variance_bound(n: int, levels: int) -> float:
    """``min(n / s^2, sqrt(n) / s)``: QSGD's variance over ``||v||^2`` at most."""
    return min(n / levels**2, math.sqrt(n) / levels)


class Compression:
    """A run's compression: the compressor, its settings, and each worker's residual
    (error feedback) and random stream."""

    def __init__(self, kind: str, *, ratio: float, levels: int, error_feedback: bool, rngs):
        self.kind, self.ratio, self.levels = kind, ratio, levels
        self.error_feedback, self.rngs = error_feedback, rngs
        self.residuals: dict[tuple[int, int], np.ndarray] = {}   # (worker, part) -> e
        self._held: dict[int, int] = {}                           # worker -> their bytes
        self._custom = None

    @classmethod
    def custom(cls, compress, decompress, *, ratio: float = 0.01,
               error_feedback: bool = False) -> Compression:
        """A top-k-like compressor of your own (exercise 5.1): ``compress(v, k) ->
        (indices, values)`` and ``decompress(indices, values, size) -> v``, with ``k =
        max(1, round(ratio n))``; what travels is its two arrays, as they are."""
        c = cls("custom", ratio=ratio, levels=0, error_feedback=error_feedback, rngs=None)
        c._custom = (compress, decompress)
        return c

    def _pack(self, i: int, p: np.ndarray) -> Compressed:
        if self._custom is not None:
            idx, values = self._custom[0](p, _k(p.size, self.ratio))
            return Compressed("custom", p.size, (np.asarray(idx), np.asarray(values)))
        rng = None if self.rngs is None else self.rngs[i]   # topk, sign: deterministic
        return compress(self.kind, p, rng, ratio=self.ratio, levels=self.levels)

    def _unpack(self, c: Compressed) -> np.ndarray:
        if self._custom is not None:
            return np.asarray(self._custom[1](*c.parts, c.size), dtype=float)
        return decompress(c)

    def encode(self, i: int, grad: np.ndarray, part: int = 0) -> Compressed:
        """Worker ``i``'s payload for ``grad`` (plus its residual, with error feedback);
        ``part``: which piece of the worker's vector ``grad`` is, each with its own
        residual (ddp's buckets)."""
        key = (i, part)
        p = grad + self.residuals[key] if key in self.residuals else grad
        c = self._pack(i, p)
        if self.error_feedback:
            old = self.residuals.get(key)
            self.residuals[key] = e = p - self._unpack(c)
            self._held[i] = self._held.get(i, 0) + e.nbytes - (0 if old is None else old.nbytes)
        return c

    def decode(self, c: Compressed) -> np.ndarray:
        """One payload's dense vector (an asynchronous server applies each push alone;
        a lone ``sign`` vote is its own scaled sign)."""
        return self._unpack(c)

    def forget(self, i: int) -> None:
        """Drop worker ``i``'s residuals: a worker that crashes loses its memory."""
        for key in [k for k in self.residuals if k[0] == i]:
            del self.residuals[key]
        self._held.pop(i, None)

    def residual_nbytes(self, i: int) -> int:
        """Bytes of worker ``i``'s residuals (0 without error feedback)."""
        return self._held.get(i, 0)

    def aggregate(self, payloads: list[Compressed], weights: list[float],
                  weighted_sum) -> np.ndarray:
        """The server's gradient from the workers' payloads: ``weighted_sum`` (the dense
        path's own) of what they decompress to; ``sign`` without error feedback: the
        majority vote of the signs (signSGD, Bernstein et al. 2018), scaled by the
        weighted mean magnitude."""
        if self.kind == "sign" and not self.error_feedback:
            vote = np.sign(sum(signs(c) for c in payloads))
            return vote * sum(w * c.parts[1][0] for w, c in zip(weights, payloads))
        return weighted_sum(weights, [self._unpack(c) for c in payloads])
