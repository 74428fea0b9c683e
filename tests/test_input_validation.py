"""Inputs that used to train silently into wrong models, or fail with errors naming nothing.

Issue 14 sections 2 and 3 (estimator side), issue 15 items 7 and 8.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
    check_sample_weight_equivalence_on_sparse_data,
)

from nncv import NNClassifier, NNRegressor
from nncv.datasets import load
from nncv.exceptions import DivergedError

ESTIMATORS = (NNClassifier, NNRegressor)


@pytest.fixture(scope="module")
def iris():
    return load("iris")


@pytest.fixture(scope="module")
def diabetes():
    return load("diabetes")


def data_for(cls, iris, diabetes):
    return iris if cls is NNClassifier else diabetes


# ------------------------------------------------------------------ sample weights
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_negative_sample_weight_refused_by_fit(cls, iris, diabetes):
    X, y = data_for(cls, iris, diabetes)
    weights = np.ones(len(y))
    weights[7] = -0.5
    with pytest.raises(ValueError, match="sample_weight must be non-negative.*index 7"):
        cls(max_epochs=2).fit(X, y, sample_weight=weights)


def test_negative_sample_weight_refused_by_partial_fit(iris, diabetes):
    X, y = iris
    weights = -np.ones(len(y))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        NNClassifier().partial_fit(X, y, classes=np.unique(y), sample_weight=weights)
    fitted = NNClassifier(max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fitted.partial_fit(X, y, sample_weight=weights)
    X, y = diabetes
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        NNRegressor().partial_fit(X, y, sample_weight=-np.ones(len(y)))


def test_negative_validation_weight_refused(iris):
    X, y = iris
    estimator = NNClassifier(max_epochs=1)
    with pytest.raises(ValueError, match="validation sample_weight must be non-negative"):
        list(estimator.iter_fit(X, y, validation_data=(X, y, -np.ones(len(y)))))


# ------------------------------------------------------------------ overflow
def test_regressor_on_huge_targets_predicts_the_scaled_model(diabetes):
    X, y = diabetes
    params = dict(hidden_layer_sizes=8, max_epochs=10, random_state=0)
    plain = NNRegressor(**params).fit(X, y).predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no NumPy overflow on the way
        huge = NNRegressor(**params).fit(X, y * 1e300).predict(X)
    assert np.all(np.isfinite(huge))
    np.testing.assert_allclose(huge / 1e300, plain, rtol=1e-9)


def test_regressor_refuses_targets_beyond_float64():
    X = np.arange(8.0).reshape(4, 2)
    y = np.array([-1.7e308, 1.7e308, 1.7e308, 1.7e308])  # y - mean overflows
    with pytest.raises(ValueError, match="y overflows float64 once standardised"):
        NNRegressor(max_epochs=1).fit(X, y)


def test_later_targets_overflowing_the_network_dtype_refused(diabetes):
    """partial_fit standardises with the first call's scale: 1e25 overflows float32's MSE."""
    X, y = diabetes
    model = NNRegressor(hidden_layer_sizes=4, random_state=0).partial_fit(X, y)
    with pytest.raises(ValueError, match="y standardised with the first fit's .*float32"):
        model.partial_fit(X, y * 1e25)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inputs_whose_squares_overflow_are_refused(dtype, iris):
    X, y = iris
    scale = 1e300 if dtype == "float64" else 1e20
    with pytest.raises(ValueError, match=rf"X has values up to .* {dtype}.*overflow"):
        NNClassifier(dtype=dtype, max_epochs=2).fit(X * scale, y)
    fitted = NNClassifier(dtype=dtype, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="overflow"):
        fitted.predict(X * scale)


def test_sparse_inputs_range_checked(iris):
    X, y = iris
    with pytest.raises(ValueError, match="overflow"):
        NNClassifier(max_epochs=1).fit(sp.csr_matrix(X * 1e20), y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_weights_overflowing_in_the_last_step_raise(cls, iris):
    """One full batch: the loss is measured before the step that breaks the weights."""
    X, y = iris
    y = y if cls is NNClassifier else y.astype(float)
    estimator = cls(
        hidden_layer_sizes=8,
        max_epochs=1,
        batch_size="full",
        l2=0.0,
        optimizer="sgd",
        learning_rate=3e38,
        random_state=0,
    )
    with pytest.raises(DivergedError, match="weights became NaN or infinite"):
        estimator.fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_non_finite_outputs_never_returned(cls, iris):
    X, y = iris
    y = y if cls is NNClassifier else y.astype(float)
    estimator = cls(hidden_layer_sizes=4, max_epochs=1, random_state=0).fit(X, y)
    estimator.coefs_[-1][0, 0] = np.nan  # coefs_ are views: this breaks the model
    with pytest.raises(DivergedError, match="NaN or infinity"):
        estimator.predict(X)


# ------------------------------------------------------------------ parameters
@pytest.mark.parametrize(
    "params",
    [
        {"hidden_layer_sizes": (True,)},
        {"hidden_layer_sizes": True},
        {"hidden_layer_sizes": (8, np.True_)},
        {"max_epochs": True},
        {"batch_size": True},
        {"patience": True},
        {"random_state": True},
    ],
)
def test_booleans_are_not_ints(params, iris):
    X, y = iris
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=rf"'{name}'.*boolean"):
        NNClassifier(**params).fit(X, y)


@pytest.mark.parametrize("name", ["l1", "l2", "bias_l1", "bias_l2", "dropout"])
def test_text_in_per_layer_parameters_named(name, iris):
    X, y = iris
    value = ("a",) if name == "dropout" else ("a", "b")
    with pytest.raises(InvalidParameterError, match=rf"'{name}' parameter must hold numbers"):
        NNClassifier(max_epochs=1, hidden_layer_sizes=4, **{name: value}).fit(X, y)


# ------------------------------------------------------------------ messages naming X
@pytest.mark.parametrize(
    "X",
    [
        [["a", 1.0], ["b", 2.0]],
        np.array([["a", 1.0], ["b", 2.0]], dtype=object),
    ],
)
def test_text_in_x_names_x(X):
    with pytest.raises(ValueError, match="X must hold numbers only.*'a'"):
        NNClassifier(max_epochs=1).fit(X, [0, 1])


def test_text_column_of_a_dataframe_named():
    X = pd.DataFrame({"height": [1.0, 2.0, 3.0, 4.0], "city": ["a", "b", "a", "b"]})
    with pytest.raises(ValueError, match="X column 'city' must hold numbers only"):
        NNClassifier(max_epochs=1).fit(X, [0, 1, 0, 1])


def test_ragged_x_named(iris):
    with pytest.raises(ValueError, match="X is a ragged list: row 0 has 2 values but row 2 has 1"):
        NNClassifier(max_epochs=1).fit([[1.0, 2.0], [3.0, 4.0], [5.0]], [0, 1, 0])
    fitted = NNClassifier(max_epochs=1).fit(*iris)
    with pytest.raises(ValueError, match="ragged"):
        fitted.predict([[1.0, 2.0, 3.0, 4.0], [1.0]])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_constructor_errors_name_the_class(cls):
    with pytest.raises(TypeError, match=rf"^{cls.__name__}\.__init__\(\) got an unexpected"):
        cls(hiden_layer_sizes=3)
    with pytest.raises(TypeError, match=rf"^{cls.__name__}\.__init__\(\) takes"):
        cls((8,), "relu")


def test_subclasses_keep_their_parent_s_constructor_under_their_own_name():
    class MyRegressor(NNRegressor):
        pass

    class MyClassifier(NNClassifier):
        pass

    assert MyRegressor().l2 == NNRegressor().l2 == 1e-2  # NNRegressor's defaults, not the base's
    assert MyClassifier().get_params() == NNClassifier().get_params()
    with pytest.raises(TypeError, match=r"^MyRegressor\.__init__\(\) got an unexpected"):
        MyRegressor(hiden=3)


# ------------------------------------------------------------------ MLP attributes
@pytest.mark.parametrize(
    "target", ["binary", "multiclass", "multilabel", "regression", "multioutput"]
)
def test_mlp_fitted_attributes_match_scikit_learn(target, iris):
    X, y = iris
    if target == "binary":
        y = (y == 1).astype(int)
    elif target == "multilabel":
        y = np.column_stack([y == 1, y == 2, y != 0]).astype(int)
    elif target == "regression":
        y = X[:, 0] * 2.0
    elif target == "multioutput":
        y = X[:, :2] * 2.0
    regression = target in ("regression", "multioutput")
    ours_cls, theirs_cls = (
        (NNRegressor, MLPRegressor) if regression else (NNClassifier, MLPClassifier)
    )
    ours = ours_cls(hidden_layer_sizes=(6, 5), max_epochs=4, batch_size=32, random_state=0)
    theirs = theirs_cls(hidden_layer_sizes=(6, 5), max_iter=4, batch_size=32, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y)
        theirs.fit(X, y)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in theirs.intercepts_]
    assert all(c.dtype == np.float32 for c in ours.coefs_ + ours.intercepts_)
    assert ours.n_layers_ == theirs.n_layers_ == 4
    assert ours.n_outputs_ == theirs.n_outputs_
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.t_ == theirs.t_ == 4 * len(X)
    assert len(ours.loss_curve_) == len(theirs.loss_curve_) == 4
    assert ours.best_loss_ == min(ours.loss_curve_)
    assert ours.validation_scores_ is None and theirs.validation_scores_ is None
    assert ours.best_validation_score_ is None and theirs.best_validation_score_ is None
    # the weights are the network's own: the first layer's product reproduces its output
    np.testing.assert_array_equal(ours.coefs_[0], ours.network_.dense_layers[0].weights)


def test_validation_attributes_with_early_stopping(iris):
    X, y = iris
    model = NNClassifier(
        hidden_layer_sizes=8, max_epochs=30, early_stopping=True, patience=3, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    scores = model.validation_scores_
    assert isinstance(scores, list) and len(scores) == model.n_iter_
    assert not np.isnan(scores).any()
    assert model.best_validation_score_ == max(scores)
    assert model.best_loss_ is None  # as MLPClassifier with early stopping
    assert model.t_ == model.n_iter_ * (len(X) - round(0.1 * len(X)))


def test_t_counts_partial_fit_and_warm_start(iris):
    X, y = iris
    model = NNClassifier(hidden_layer_sizes=4, random_state=0)
    model.partial_fit(X, y, classes=np.unique(y))
    model.partial_fit(X[:50], y[:50])
    assert model.t_ == len(X) + 50
    model.set_params(warm_start=True, max_epochs=2).fit(X, y)
    assert model.t_ == 3 * len(X) + 50
    model.set_params(warm_start=False).fit(X, y)
    assert model.t_ == 2 * len(X)


def test_fitted_attributes_absent_before_fit():
    model = NNClassifier()
    for name in ("coefs_", "intercepts_", "n_layers_", "out_activation_", "t_", "best_loss_"):
        assert not hasattr(model, name)


# ------------------------------------------------------------------ sample-weight equivalence
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "check",
    [check_sample_weight_equivalence_on_dense_data, check_sample_weight_equivalence_on_sparse_data],
)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_sample_weight_equivalence_float64(cls, check, batch_norm):
    """scikit-learn's check passes in float64: the float32 xfails are round-off alone."""
    estimator = cls(max_epochs=50, random_state=0, dtype="float64", batch_norm=batch_norm)
    check(cls.__name__, estimator)


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("sparse", [False, True])
def test_sample_weight_equivalence_float32_within_round_off(cls, sparse):
    """The check's data in float32: weighted = repeated to a few float32 ulps, and the
    batch size makes no difference (the 27 repeated rows are one mini-batch)."""
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15)
    weights = rng.randint(0, 5, size=15)
    convert = sp.csr_matrix if sparse else np.asarray
    method = "predict_proba" if cls is NNClassifier else "predict"
    outputs = {}
    for batch_size in (32, "full"):
        params = dict(max_epochs=50, random_state=0, batch_size=batch_size)
        repeated = cls(**params).fit(convert(X.repeat(weights, axis=0)), y.repeat(weights))
        weighted = cls(**params).fit(convert(X), y, sample_weight=weights)
        outputs[batch_size] = (getattr(repeated, method)(X), getattr(weighted, method)(X))
    np.testing.assert_array_equal(outputs[32][0], outputs["full"][0])
    np.testing.assert_array_equal(outputs[32][1], outputs["full"][1])
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(outputs[32][0], outputs[32][1], rtol=8 * eps, atol=eps)
