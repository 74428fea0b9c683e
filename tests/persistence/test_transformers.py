"""Each supported scikit-learn step, saved on its own, comes back with every learnt attribute
equal (same types and dtypes) and transforms bit-identically."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)

from nncv.persistence import inspect, load, save


def assert_same(a, b, where="") -> None:
    """Deep equality of two learnt states: types, dtypes and values (NaN equal to NaN)."""
    if hasattr(a, "get_params") and not isinstance(a, type):
        assert type(a) is type(b), where
        assert vars(a).keys() == vars(b).keys(), where
        for key in vars(a):
            assert_same(vars(a)[key], vars(b)[key], f"{where}.{key}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        if a.dtype == object:
            for x, y in zip(a.ravel(), b.ravel(), strict=True):
                assert_same(x, y, where)
        else:
            assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), where
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, where
        if isinstance(a, np.generic):
            assert type(a) is type(b), where


def dense(values):
    return values.toarray() if hasattr(values, "toarray") else np.asarray(values)


@pytest.fixture(scope="module")
def numbers():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3)) * [1.0, 50.0, 0.01] + [0.0, -7.0, 3.0]
    X[::7, 1] = 0.0
    return X


@pytest.fixture(scope="module")
def categories():
    rng = np.random.default_rng(4)
    return np.column_stack(
        [
            rng.choice(["red", "green", "blue", "teal"], 60, p=[0.5, 0.3, 0.15, 0.05]),
            rng.choice(["ü", "ß", "名"], 60),
        ]
    ).astype(object)


SCALERS = [
    StandardScaler(),
    StandardScaler(with_mean=False),
    StandardScaler(with_std=False),
    MinMaxScaler(feature_range=(-2.0, 3.0), clip=True),
    RobustScaler(quantile_range=(10.0, 90.0), unit_variance=True),
    RobustScaler(with_centering=False),
    MaxAbsScaler(),
]


@pytest.mark.parametrize("scaler", SCALERS, ids=repr)
def test_scalers(tmp_path, numbers, scaler):
    fitted = scaler.fit(numbers)
    loaded = load(save(fitted, tmp_path / "scaler.nncv"))
    assert_same(fitted, loaded, type(fitted).__name__)
    assert loaded.get_params() == fitted.get_params()
    shifted = numbers * 1.5 + 2.0  # outside the fitted range: clipping and scaling matter
    assert np.array_equal(loaded.transform(shifted), fitted.transform(shifted))
    assert np.array_equal(loaded.inverse_transform(shifted), fitted.inverse_transform(shifted))


ENCODERS = [
    OneHotEncoder(),
    OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float32),
    OneHotEncoder(drop="first"),
    OneHotEncoder(drop="if_binary", handle_unknown="ignore"),
    OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist"),
    OneHotEncoder(max_categories=2, handle_unknown="infrequent_if_exist", drop="first"),
    OneHotEncoder(categories=[["red", "green", "blue", "teal", "navy"], ["ü", "ß", "名"]]),
]


@pytest.mark.parametrize("encoder", ENCODERS, ids=repr)
def test_one_hot_encoders(tmp_path, categories, encoder):
    fitted = encoder.fit(categories)
    loaded = load(save(fitted, tmp_path / "encoder"))
    assert_same(fitted, loaded, "OneHotEncoder")
    assert np.array_equal(dense(loaded.transform(categories)), dense(fitted.transform(categories)))
    assert list(loaded.get_feature_names_out()) == list(fitted.get_feature_names_out())
    if fitted.handle_unknown != "error":
        unseen = categories.copy()
        unseen[:5, 0] = "mauve"
        with warnings.catch_warnings(record=True) as theirs:
            warnings.simplefilter("always")
            expected = dense(fitted.transform(unseen))
        with warnings.catch_warnings(record=True) as ours:
            warnings.simplefilter("always")
            assert np.array_equal(dense(loaded.transform(unseen)), expected)
        assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]


def test_one_hot_encoder_with_numbers_and_missing_values(tmp_path):
    X = np.array([[1.5, 3], [np.nan, 4], [2.5, 3], [1.5, 5]], dtype=float)
    fitted = OneHotEncoder(sparse_output=False).fit(X)
    loaded = load(save(fitted, tmp_path / "encoder"))
    assert_same(fitted, loaded)
    assert np.array_equal(loaded.transform(X), fitted.transform(X))


def test_object_arrays_go_to_the_manifest_and_numbers_to_the_npz(tmp_path, categories):
    fitted = OneHotEncoder(min_frequency=10).fit(categories)
    assert fitted._infrequent_indices[0] is not None
    manifest = inspect(save(fitted, tmp_path / "encoder"))
    stored = manifest["root"]["attributes"]["categories_"][0]["object_array"]
    assert stored["dtype"] == "object"
    assert stored["items"] == list(fitted.categories_[0])
    assert manifest["root"]["attributes"]["_infrequent_indices"][0] == {
        "array": "_infrequent_indices.0"
    }
    assert manifest["arrays"]["_infrequent_indices.0"]["dtype"] == "<i8"
    assert all(spec["dtype"] != "|O" for spec in manifest["arrays"].values())


@pytest.mark.parametrize("remainder", ["drop", "passthrough"])
def test_column_transformer_on_arrays(tmp_path, numbers, remainder):
    columns = ColumnTransformer(
        [("a", StandardScaler(), [0]), ("b", MinMaxScaler(), slice(1, 2)), ("skip", "drop", [2])],
        remainder=remainder,
        transformer_weights={"a": 2.0, "b": 0.5},
    )
    fitted = columns.fit(numbers)
    loaded = load(save(fitted, tmp_path / "columns.nncv"))
    assert_same(fitted, loaded, "ColumnTransformer")
    assert np.array_equal(loaded.transform(numbers), fitted.transform(numbers))
    assert list(loaded.get_feature_names_out()) == list(fitted.get_feature_names_out())


def test_nested_pipeline_and_identity_function_transformer(tmp_path, numbers):
    inner = Pipeline([("same", FunctionTransformer()), ("scale", MaxAbsScaler())])
    fitted = ColumnTransformer([("inner", inner, [0, 1])], remainder=StandardScaler()).fit(numbers)
    loaded = load(save(fitted, tmp_path / "nested"))
    assert_same(fitted, loaded)
    assert np.array_equal(loaded.transform(numbers), fitted.transform(numbers))


def test_big_endian_and_non_contiguous_arrays_round_trip(tmp_path, numbers):
    fitted = StandardScaler().fit(numbers)
    fitted.scale_ = fitted.scale_.astype(">f8")
    fitted.mean_ = np.asfortranarray(np.stack([fitted.mean_, fitted.mean_]))[0]
    loaded = load(save(fitted, tmp_path / "scaler"))
    assert np.array_equal(loaded.scale_, fitted.scale_)
    assert loaded.scale_.dtype == np.dtype("<f8")  # stored little-endian
    assert np.array_equal(loaded.mean_, fitted.mean_)
