"""Reference solution of exercise 8.1."""


def memory_per_worker(stage: int, n_params: int, n_workers: int,
                      state_arrays: int) -> dict[str, float]:
    whole = 8 * n_params                  # one float64 vector of the parameters' size
    shard = whole / n_workers             # ... its share on one worker
    return {"params": shard if stage >= 3 else whole,
            "grads": shard if stage >= 2 else whole,
            "optimizer": state_arrays * (shard if stage >= 1 else whole)}
