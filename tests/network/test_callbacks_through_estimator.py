"""User epoch callbacks reach the trainer through the estimator (fit and iter_fit)."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_iris

import nncv
from nncv import NNClassifier, StopTraining
from nncv.network.training import EpochCallback


def stop_after(epochs: int):
    def check(record):
        if record["epoch"] >= epochs:
            raise StopTraining

    return EpochCallback(check)


def test_fit_and_iter_fit_keep_the_users_callbacks():
    X, y = load_iris(return_X_y=True)
    seen = []
    net = NNClassifier(max_epochs=6, random_state=0)
    net.fit(X, y, callbacks=[EpochCallback(lambda record: seen.append(record["epoch"]))])
    assert seen == [1, 2, 3, 4, 5, 6]
    records = list(net.iter_fit(X, y, callbacks=[stop_after(2)]))
    assert [record["epoch"] for record in records] == [1, 2]
    assert net.n_iter_ == 2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_callbacks_run_beside_early_stopping_and_through_a_pipeline():
    X, y = load_iris(return_X_y=True)
    pipe = nncv.make_pipeline("standard", max_epochs=20, early_stopping=True, random_state=0)
    pipe.fit(X, y, net__callbacks=[stop_after(3)])
    assert pipe[-1].n_iter_ == 3
