"""Exercise 11.1 -- the epsilon of a DP-SGD run, from the RDP formula (lesson 18).

A DP-SGD run takes ``steps`` steps; each samples every example with probability ``q``,
clips, and adds Gaussian noise of ``sigma`` (the noise multiplier) times the clip. One
step of this sampled Gaussian mechanism is (alpha, eps(alpha))-Rényi-DP with, for an
integer order alpha >= 2 (Mironov, Talwar and Zhang 2019, Sec. 3.3),

    eps(alpha) = log(A) / (alpha - 1),
    A = sum_{k=0}^{alpha} C(alpha, k) (1 - q)^(alpha - k) q^k exp((k^2 - k) / (2 sigma^2)).

Rényi DP composes by addition: ``steps`` steps are (alpha, steps * eps(alpha))-RDP. And
(alpha, r)-RDP implies (r + log(1 / delta) / (alpha - 1), delta)-DP (Mironov 2017,
Prop. 3). Return the smallest such epsilon over the integer orders 2, 3, ..., 63.
(simdml's accountant uses fractional orders too and a tighter conversion, Balle et al.
2020: the epsilon of a run's history is a little smaller than yours.)

(math.comb, math.log and math.exp are enough; for large alpha, A is a sum of huge
terms: add them in log space, e.g. log(sum exp(t)) = m + log(sum exp(t - m)).)

Check your answer with:  python -m simdml.check ex11
"""


def epsilon(q: float, sigma: float, steps: int, delta: float) -> float:
    raise NotImplementedError("Exercise 11.1: the epsilon of steps compositions of the "
                              "sampled Gaussian mechanism (see the docstring)")
