"""Reference solution of exercise 7.1."""


def iteration_time(forward: float, backward: list[float], buckets: list[tuple[int, ...]],
                   allreduce: list[float], step: float) -> float:
    free = 0.0  # when the communication stream can take the next bucket
    for layers, seconds in zip(buckets, allreduce):
        # ready when backward has passed its lowest layer: from the last layer down to it
        ready = forward + sum(backward[min(layers):])
        free = max(free, ready) + seconds   # one stream: after the previous bucket
    return free + step
