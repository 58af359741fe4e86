"""Exercise 11.1 -- reference solution: the binomial sum in log space at each integer
order, composed over the steps, converted, minimised."""
import math


def epsilon(q: float, sigma: float, steps: int, delta: float) -> float:
    best = math.inf
    for alpha in range(2, 64):
        terms = [math.log(math.comb(alpha, k)) + (alpha - k) * math.log1p(-q)
                 + k * math.log(q) + (k * k - k) / (2 * sigma**2) for k in range(alpha + 1)]
        top = max(terms)
        log_a = top + math.log(sum(math.exp(t - top) for t in terms))
        rdp = steps * log_a / (alpha - 1)
        best = min(best, rdp + math.log(1 / delta) / (alpha - 1))
    return best
