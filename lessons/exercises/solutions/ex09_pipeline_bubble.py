"""Reference solution of exercise 9.1."""


def iteration_time(p: int, m: int, t_f: float, t_b: float, step: float) -> float:
    # each stage works m (t_f + t_b) and idles (p - 1)(t_f + t_b) while the pipeline
    # fills and drains; the stages step at once, stage 0 (the last to finish) ends it
    return (m + p - 1) * (t_f + t_b) + step
