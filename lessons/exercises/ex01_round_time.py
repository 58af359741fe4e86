"""Exercise 1.1 -- predict a synchronous round's time on paper (lesson 1).

A synchronous round: the server's network card sends the model to the n workers one
copy after another (each copy takes model_bytes / bandwidth on the wire, and arrives
`latency` s after it left); each worker then computes for `compute` s and sends its
gradient back; the server's card receives one gradient at a time (grad_bytes /
bandwidth each, in the order their first bits arrive); then the server computes for
`server_compute` s. Return how long the round takes, in s.

Check your answer with:  python -m simdml.check ex01
"""


def predict_round_time(n_workers: int, compute: float, latency: float, bandwidth: float,
                       model_bytes: int, grad_bytes: int, server_compute: float) -> float:
    raise NotImplementedError("Exercise 1.1: predict the round time (see the docstring)")
