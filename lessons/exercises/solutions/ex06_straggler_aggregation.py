"""Reference solution of exercise 6.1."""


def aggregate(grads, weights):
    share = sum(weights[i] for i in grads)
    return sum((weights[i] / share) * grads[i] for i in sorted(grads))
