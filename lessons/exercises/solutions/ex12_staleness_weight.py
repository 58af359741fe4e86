"""Reference solution of exercise 12.1."""
import math


def weight(s):
    return 1 / math.sqrt(1 + s)


def buffered_change(changes, rows, stalenesses):
    total = sum(rows)
    return sum(n / total * weight(s) * change
               for change, n, s in zip(changes, rows, stalenesses))
