"""Reference solution of exercise 3.1."""
import numpy as np


def accuracy_weighted_vote(members, X_val, y_val, classes):
    classes = np.asarray(classes)
    weights = [float(np.mean(m.predict(X_val) == y_val)) for m in members]

    def predict(X):
        support = np.zeros((len(X), classes.size))
        for m, w in zip(members, weights):
            support[np.arange(len(X)), np.searchsorted(classes, m.predict(X))] += w
        return classes[np.argmax(support, axis=1)]
    return predict
