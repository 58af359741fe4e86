"""Exercise 3.1 -- write a fusion rule (lesson 9).

A vote where each member's vote counts as much as it is *right*: weigh member i by its
accuracy on the validation split (X_val, y_val), then predict, for each row, the class
with the largest total weight of the members that predict it (ties: the lower class).

Implement ``accuracy_weighted_vote``: return a function ``predict(X) -> labels``.
``members`` are fitted classifiers (``m.predict(X)``); ``classes`` are all the labels.

Check it with:  python -m simdml.check ex03
"""


def accuracy_weighted_vote(members, X_val, y_val, classes):
    raise NotImplementedError("Exercise 3.1: build the accuracy-weighted vote")
