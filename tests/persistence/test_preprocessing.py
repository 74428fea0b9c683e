"""Common preprocessing before a network (issue 15, item 9): each step round-trips in a
pipeline bit-identically, and a loaded step whose learnt arrays disagree with its input width
is refused naming the array."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MinMaxScaler,
    Normalizer,
    OrdinalEncoder,
    PolynomialFeatures,
    PowerTransformer,
    QuantileTransformer,
    SplineTransformer,
    StandardScaler,
)

from nncv import NNClassifier
from nncv.exceptions import ArtifactError
from nncv.persistence import load, save

from .conftest import SMALL, read_manifest
from .test_hostile import replace_arrays


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 4)) * [1.0, 20.0, 0.1, 3.0]
    X[::9, 0] = np.nan
    y = (np.nan_to_num(X[:, 0]) + X[:, 3] > 0).astype(int) + (X[:, 1] > 10)
    return X, y


def impute() -> tuple[str, SimpleImputer]:
    return ("impute", SimpleImputer())


STEPS = {
    "SimpleImputer": [impute()],
    "SimpleImputer-constant": [("impute", SimpleImputer(strategy="constant", fill_value=-1.0))],
    "PCA": [impute(), ("pca", PCA(n_components=3, random_state=0))],
    "PCA-whiten": [impute(), ("pca", PCA(n_components=2, whiten=True, svd_solver="full"))],
    "TruncatedSVD": [impute(), ("svd", TruncatedSVD(n_components=2, random_state=0))],
    "PolynomialFeatures": [impute(), ("poly", PolynomialFeatures(degree=2))],
    "SplineTransformer": [impute(), ("spline", SplineTransformer(n_knots=4))],
    "SplineTransformer-periodic": [
        impute(),
        ("spline", SplineTransformer(extrapolation="periodic", include_bias=False)),
    ],
    "QuantileTransformer": [impute(), ("quantile", QuantileTransformer(n_quantiles=20))],
    "QuantileTransformer-normal": [
        impute(),
        ("quantile", QuantileTransformer(n_quantiles=15, output_distribution="normal")),
    ],
    "PowerTransformer": [impute(), ("power", PowerTransformer())],
    "PowerTransformer-box-cox": [
        impute(),
        ("shift", MinMaxScaler(feature_range=(1, 2))),
        ("power", PowerTransformer(method="box-cox")),
    ],
    "Normalizer": [impute(), ("norm", Normalizer(norm="l1"))],
    "KBinsDiscretizer": [impute(), ("bins", KBinsDiscretizer(n_bins=4, quantile_method="linear"))],
    "KBinsDiscretizer-ordinal": [
        impute(),
        ("bins", KBinsDiscretizer(n_bins=3, encode="ordinal", strategy="uniform")),
    ],
    "OrdinalEncoder": [("codes", OrdinalEncoder())],
}


def fitted(steps, X, y) -> Pipeline:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Pipeline([*steps, ("net", NNClassifier(**SMALL))]).fit(X, y)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_a_pipeline_with_the_step_round_trips_bit_identically(tmp_path, data, name):
    X, y = data
    if name == "OrdinalEncoder":
        X = np.round(np.nan_to_num(X[:, :2]) / 10)  # a few categories per column
    pipe = fitted(STEPS[name], X, y)
    loaded = load(save(pipe, tmp_path / "model.nncv"))
    assert [type(s) for _, s in loaded.steps] == [type(s) for _, s in pipe.steps]
    assert np.array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    before, after = pipe[:-1].transform(X), loaded[:-1].transform(X)
    before, after = (m.toarray() if hasattr(m, "toarray") else m for m in (before, after))
    assert np.array_equal(before, after, equal_nan=True)


@pytest.mark.parametrize(
    "name, array, bad",
    [
        ("SimpleImputer", "steps.0.1.statistics_", np.zeros(3)),
        ("PCA", "steps.1.1.components_", np.zeros((3, 5))),
        ("PCA", "steps.1.1.mean_", np.zeros(2)),
        ("TruncatedSVD", "steps.1.1.components_", np.zeros((2, 3))),
        ("QuantileTransformer", "steps.1.1.quantiles_", np.zeros((20, 3))),
        ("QuantileTransformer", "steps.1.1.references_", np.zeros(19)),
        ("PowerTransformer", "steps.1.1.lambdas_", np.zeros(5)),
        ("KBinsDiscretizer", "steps.1.1.n_bins_", np.full(4, 9)),
    ],
)
def test_a_learnt_array_of_the_wrong_shape_is_refused_naming_it(tmp_path, data, name, array, bad):
    X, y = data
    path = save(fitted(STEPS[name], X, y), tmp_path / "model")
    manifest = read_manifest(path)
    replace_arrays(path, manifest, {array: bad})
    attribute = array.rsplit(".", 1)[1]
    with pytest.raises(ArtifactError, match=attribute):
        load(path)


def test_polynomial_features_with_a_forged_output_width_are_refused(tmp_path, data):
    X, y = data
    path = save(fitted(STEPS["PolynomialFeatures"], X, y), tmp_path / "model")
    manifest = read_manifest(path)
    poly = manifest["root"]["params"]["steps"][1]["tuple"][1]["estimator"]
    poly["attributes"]["n_features_in_"] = 40  # 861 outputs: not the 15 the network takes
    replace_arrays(path, manifest)
    with pytest.raises(ArtifactError, match="n_output_features_ is 15, the degree and input"):
        load(path)


def test_a_spline_whose_coefficients_do_not_fit_its_knots_is_refused(tmp_path, data):
    X, y = data
    path = save(fitted(STEPS["SplineTransformer"], X, y), tmp_path / "model")
    manifest = read_manifest(path)
    replace_arrays(path, manifest, {"steps.1.1.bsplines_.0.c": np.eye(9)})
    with pytest.raises(ArtifactError, match="knots, coefficients and degree disagree"):
        load(path)


def test_a_scaler_after_pca_must_take_the_components(tmp_path, data):
    X, y = data
    steps = [*STEPS["PCA"], ("scale", StandardScaler())]
    path = save(fitted(steps, X, y), tmp_path / "model")
    manifest = read_manifest(path)
    pca = manifest["root"]["params"]["steps"][1]["tuple"][1]["estimator"]
    pca["attributes"]["n_components_"] = 2
    replace_arrays(
        path,
        manifest,
        steps__1__1__components_=np.zeros((2, 4)),
        steps__1__1__explained_variance_=np.zeros(2),
        steps__1__1__explained_variance_ratio_=np.zeros(2),
        steps__1__1__singular_values_=np.zeros(2),
    )
    with pytest.raises(ArtifactError, match="step 'scale' takes 3 features, but step 'pca'"):
        load(path)


def test_an_imputer_that_drops_a_column_must_feed_one_fewer(tmp_path, data):
    """An all-NaN column is dropped by the imputer: statistics_ decide its output width."""
    X, y = data
    X = X.copy()
    X[:, 2] = np.nan
    path = save(fitted(STEPS["SimpleImputer"], X, y), tmp_path / "model")
    manifest = read_manifest(path)
    replace_arrays(path, manifest, {"steps.0.1.statistics_": np.ones(4)})  # keeps all 4
    with pytest.raises(ArtifactError, match="step 'net' takes 3 features, but step 'impute'"):
        load(path)
