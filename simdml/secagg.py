"""The arithmetic of secure aggregation (Bonawitz et al. 2017): key agreement, Shamir
secret sharing, pairwise and self masks that cancel in the sum, fixed-point vectors.

Every client ``u`` holds two key pairs (``c`` to encrypt what it sends through the server,
``s`` to agree pairwise masks) and a self-mask seed ``b_u``. It secret-shares ``s_sk`` and
``b_u`` among the others (threshold ``t``), and sends the server its input masked:

    y_u = x_u + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)   (mod 2^64),

``s_uv = s_pk_v ^ s_sk_u = s_pk_u ^ s_sk_v`` (Diffie-Hellman), so the pairwise masks
cancel in ``sum_u y_u`` over the clients that all sent. For those that sent (``U3``) the
server rebuilds ``b_u`` from ``t`` shares and removes ``PRG(b_u)``; for those that shared
their keys but sent no input (``U2 \\ U3``, the dropouts) it rebuilds ``s_sk_v`` and
removes the pairwise masks they left in the others' inputs. It never asks for both of one
client's secrets, so it never learns an input alone.

Simplifications (an educational model, not a cryptosystem): the group is the integers
mod the Mersenne prime ``P = 2^127 - 1`` with generator 3 (keys of 16 bytes; real ones
are elliptic curves); the PRG is numpy's PCG64 seeded by the agreed key; "encryption" of
a share is an XOR with a PRG stream of the agreed ``c`` key (no authentication); the
inputs are fixed point with ``SCALE`` fractional bits in ``Z_{2^64}``.

Costs (``*_FLOPS``, the clock's model, not a measurement): a 127-bit modular
exponentiation ``MODEXP_FLOPS``; a mask entry ``PRG_FLOPS``; a share or a Lagrange term
``FIELD_FLOPS``. Per client (``n`` clients, ``d`` entries): ``2 + 2 (n - 1)``
exponentiations, two polynomials of degree ``t - 1`` at ``n`` points (``O(n^2)``) and
``n`` mask expansions (``O(n d)``): the paper's ``O(n^2 + n d)``; its messages ``O(n + d)``
bytes. The server: the Lagrange weights of the ``r`` revealers once (``r^2``) and ``r``
terms for each of the ``n`` secrets, plus ``|dropped| |U3|`` agreements and mask
expansions: ``O(n^2 + |dropped| n d)``.

Reference
---------
K. Bonawitz et al. (2017), "Practical Secure Aggregation for Privacy-Preserving Machine
Learning", CCS (Sec. 4, the protocol; Sec. 6, its costs).
"""
from __future__ import annotations

import numpy as np

__all__ = ["P", "KEY_NBYTES", "SHARE_NBYTES", "SCALE", "keypair", "agree", "share",
           "reconstruct", "lagrange_weights", "mask", "encode", "decode", "xor_share", "seed_of"]

P = 2**127 - 1               # a Mersenne prime: the group and the field of the shares
G = 3
KEY_NBYTES = 16              # a public key, an agreed key, a share's value: < 2^127
SHARE_NBYTES = 2 * KEY_NBYTES + 8  # an encrypted pair of shares and its sender's index
SCALE = 24                   # fixed point: 2^-24 resolution
MODEXP_FLOPS = 1e5
PRG_FLOPS = 10
FIELD_FLOPS = 10


def _int(rng: np.random.Generator) -> int:
    """128 random bits."""
    return int.from_bytes(rng.bytes(16), "little")


def keypair(rng: np.random.Generator) -> tuple[int, int]:
    """``(secret, public = 3^secret mod P)``."""
    sk = _int(rng) % (P - 3) + 2
    return sk, pow(G, sk, P)


def agree(sk: int, pk: int) -> int:
    """The key two clients agree on: ``pk^sk mod P`` (the same from either side)."""
    return pow(pk, sk, P)


def share(secret: int, n: int, t: int, rng: np.random.Generator) -> list[int]:
    """``n`` Shamir shares of ``secret`` (the values at ``x = 1 .. n`` of a random
    polynomial of degree ``t - 1`` through it), any ``t`` of which rebuild it."""
    coeffs = [secret] + [_int(rng) % P for _ in range(t - 1)]
    out = []
    for x in range(1, n + 1):
        y = 0
        for a in reversed(coeffs):                 # Horner
            y = (y * x + a) % P
        out.append(y)
    return out


def lagrange_weights(xs) -> dict[int, int]:
    """The weights ``l_i(0)`` of the shares at the points ``xs``: the secret is ``sum_i
    l_i(0) y_i mod P`` for every secret shared at those points (so a server rebuilding
    many secrets from the same clients computes them once)."""
    out = {}
    for i in xs:
        num = den = 1
        for j in xs:
            if j != i:
                num = num * (-j) % P
                den = den * (i - j) % P
        out[i] = num * pow(den, P - 2, P) % P
    return out


def reconstruct(points: dict[int, int], weights: dict[int, int] | None = None) -> int:
    """The secret from shares ``{x: y}`` (Lagrange at 0, mod P; ``weights``: those of
    ``lagrange_weights(points)``, if already computed)."""
    weights = lagrange_weights(list(points)) if weights is None else weights
    return sum(points[i] * weights[i] for i in points) % P


def mask(seed: int, d: int) -> np.ndarray:
    """``d`` pseudo-random words of ``Z_{2^64}`` from ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    return rng.integers(0, 2**64, size=d, dtype=np.uint64, endpoint=False)


def encode(x: np.ndarray) -> np.ndarray:
    """``x`` in fixed point, as words of ``Z_{2^64}``."""
    return np.round(np.asarray(x, dtype=np.float64) * 2.0**SCALE).astype(np.int64).view(
        np.uint64)


def decode(words: np.ndarray) -> np.ndarray:
    return words.view(np.int64).astype(np.float64) / 2.0**SCALE


def xor_share(key: int, pair: tuple[int, int]) -> tuple[int, int]:
    """A pair of shares encrypted (or decrypted) with the stream of ``key``."""
    pad = mask(key, 4)
    a = int(pad[0]) << 64 | int(pad[1])
    b = int(pad[2]) << 64 | int(pad[3])
    return pair[0] ^ a, pair[1] ^ b


def seed_of(rng: np.random.Generator) -> int:
    """A fresh self-mask seed ``b_u`` (< P, so that it can be shared)."""
    return _int(rng) % P
