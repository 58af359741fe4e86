"""Reference solution of exercise 1.1."""


def predict_round_time(n_workers: int, compute: float, latency: float, bandwidth: float,
                       model_bytes: int, grad_bytes: int, server_compute: float) -> float:
    # copy k leaves the server's card after k transfers; its first gradient bit returns
    # one latency after the worker finished computing
    first_bits = sorted(k * model_bytes / bandwidth + latency + compute + latency
                        for k in range(1, n_workers + 1))
    free = 0.0  # when the server's card can take the next gradient
    for t in first_bits:
        free = max(t, free) + grad_bytes / bandwidth
    return free + server_compute
