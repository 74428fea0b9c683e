"""Registries that register: an entry added at run time is usable by name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

import nncv
from nncv import NNClassifier
from nncv.cv import fold as cv_fold
from nncv.cv import rows
from nncv.network import optimizers, schedules
from nncv.search import SearchSpace


class SignDescent(optimizers.Optimizer):
    """A toy optimizer: a fixed step against the gradient's sign, scaled by ``momentum``."""

    def __init__(self, momentum: float = 0.0) -> None:
        super().__init__()
        self.scale = 1.0 + momentum

    def _step(self, parameter, gradient, learning_rate, scratch, **slots) -> None:
        parameter -= self.scale * learning_rate * np.sign(gradient)


@dataclass(frozen=True)
class Constant:
    """A toy schedule: the learning rate never changes."""

    learning_rate: float

    def rate(self, step: int, epoch: int) -> float:
        return self.learning_rate


def test_an_optimizer_added_to_the_table_fits_by_name(monkeypatch):
    monkeypatch.setitem(optimizers.OPTIMIZERS, "sign", SignDescent)
    X, y = load_iris(return_X_y=True)
    net = NNClassifier(optimizer="sign", momentum=0.5, max_epochs=15, random_state=0)
    net.fit(StandardScaler().fit_transform(X), y)
    assert isinstance(net._trainer.optimizer, SignDescent)
    assert net._trainer.optimizer.scale == 1.5  # the estimator's momentum reached it
    assert net.loss_curve_[-1] < net.loss_curve_[0]
    # and the search space's optimizer list is the table
    assert "sign" in SearchSpace.default(optimizer=True)["optimizer"].choices


def test_a_schedule_added_to_the_table_fits_by_name_without_special_cases(monkeypatch):
    monkeypatch.setitem(schedules.SCHEDULES, "constant", Constant)
    X, y = load_iris(return_X_y=True)
    net = NNClassifier(schedule="constant", learning_rate=0.01, max_epochs=3).fit(X, y)
    assert net.history_["learning_rate"].tolist() == [0.01] * 3


class ShiftedScaler(StandardScaler):
    """A scaler type of its own (row-wise, as StandardScaler is)."""


def test_adding_a_scaler_is_one_registry_entry(monkeypatch):
    from nncv import scalers

    X, y = load_iris(return_X_y=True)
    pipe = nncv.make_pipeline("standard", hidden_layer_sizes=4, max_epochs=2)
    pipe.steps[0] = ("scale", ShiftedScaler())
    assert not rows.is_rowwise(pipe[0])
    assert not cv_fold.can_train_from_x(pipe, X)
    with pytest.raises(ValueError, match="unknown scaler 'shifted'"):
        nncv.make_pipeline("shifted")
    monkeypatch.setitem(
        scalers.SCALERS, "shifted", scalers.Scaler(ShiftedScaler, rowwise=True, blockwise_fit=True)
    )
    assert type(nncv.make_pipeline("shifted")[0]) is ShiftedScaler
    assert rows.is_rowwise(pipe[0])
    assert cv_fold.can_train_from_x(pipe, X)  # trains straight from X's rows now
    assert not scalers.SCALERS["shifted"].savable
