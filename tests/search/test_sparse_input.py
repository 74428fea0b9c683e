"""Sparse X (multi-hot text, as in the Keras course) through tune and NNSearchCV."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import MaxAbsScaler

import nncv
from nncv.search._study import fingerprint_data

SPACE = {"learning_rate": (1e-3, 1e-1), "max_epochs": [2]}


@pytest.fixture(scope="module")
def multi_hot():
    X = sp.random(120, 2000, density=0.01, format="csr", random_state=0, dtype=np.float32)
    X.data[:] = 1.0
    y = np.random.default_rng(0).integers(0, 2, 120)
    return X, y


def test_tune_on_sparse_x_with_the_default_estimator(multi_hot, tmp_path):
    X, y = multi_hot
    storage = tmp_path / "study.log"
    common = dict(space=SPACE, cv=3, random_state=0, storage=storage, study_name="sparse")
    result = nncv.tune(X, y, n_trials=2, **common)
    assert isinstance(result.best_estimator[0], MaxAbsScaler)  # centring would densify X
    assert np.isfinite(result.best_value)
    # The study knows the data again (its fingerprint) and resumes instead of refusing it.
    again = nncv.tune(X, y, n_trials=1, **common)
    assert len(again.study.trials) == 3


def test_searchcv_on_sparse_x(multi_hot):
    X, y = multi_hot
    search = nncv.NNSearchCV(space=SPACE, n_trials=2, cv=3, random_state=0).fit(X, y)
    assert search.predict(X).shape == (120,)


def test_the_sparse_fingerprint_ignores_format_and_entry_order_but_sees_values(multi_hot):
    X, y = multi_hot
    reference = fingerprint_data(X, y)
    assert fingerprint_data(X.tocoo(), y) == reference
    assert fingerprint_data(sp.csr_array(X), y) == reference
    shuffled = X.tocoo()
    order = np.random.default_rng(1).permutation(shuffled.nnz)
    shuffled = sp.coo_matrix(
        (shuffled.data[order], (shuffled.row[order], shuffled.col[order])), shape=X.shape
    )
    assert fingerprint_data(shuffled, y) == reference
    changed = X.copy()
    changed.data[0] = 2.0
    assert fingerprint_data(changed, y) != reference
    assert fingerprint_data(X[:, :1999], y) != reference
