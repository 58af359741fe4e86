"""Exercise 9.1 -- the time of a pipeline iteration, on paper (lesson 12).

A model is cut into ``p`` stages, one per worker, that all take the same time: a
micro-batch's forward takes ``t_f`` s on every stage and its backward ``t_b`` s.
Each iteration cuts the batch into ``m`` micro-batches; a micro-batch's forward runs on
stage 0, then 1, ..., then p - 1, and its backward comes back from stage p - 1 to stage
0. A stage runs one operation at a time, and communication is free. When a stage has
run its m backwards it steps its block of the model, which takes ``step`` s (a flush:
the next iteration starts from the new model). The schedule is GPipe's (all m forwards,
then the m backwards) or 1F1B's (backwards as early as possible): with equal stages they
take the same time. Return how long an iteration lasts, from the first forward on stage
0 to the end of the last step, in s.

(The bubble fraction, the share of p x T the stages idle, follows from your answer:
each stage works m (t_f + t_b) + step of it.)

Check your answer with:  python -m simdml.check ex09
"""


def iteration_time(p: int, m: int, t_f: float, t_b: float, step: float) -> float:
    raise NotImplementedError("Exercise 9.1: the time of a pipeline iteration with p "
                              "equal stages and m micro-batches (see the docstring)")
