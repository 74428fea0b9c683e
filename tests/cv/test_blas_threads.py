"""cross_validate leaves the caller's BLAS thread counts as they were, under every backend."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg  # noqa: F401  (loads scipy's BLAS too)
from joblib import parallel_backend, parallel_config
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info

from nncv import NNClassifier
from nncv.cv import cross_validate


def thread_counts() -> list[tuple[str, str, int]]:
    return sorted((i["filepath"], i["user_api"], i["num_threads"]) for i in threadpool_info())


@pytest.fixture
def several_blas_threads():
    """The process's own BLAS thread counts (more than one, or a leaked limit would not show).

    Not set by a ``threadpool_limits`` context here: inside one, the old per-fold limits
    did not leak, and the bug did not show.
    """
    counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    if not counts or max(counts) < 2:
        pytest.skip("BLAS runs one thread here: a leaked limit of one cannot show")


def model():
    return make_pipeline(
        StandardScaler(), NNClassifier(hidden_layer_sizes=16, max_epochs=10, random_state=0)
    )


@pytest.mark.parametrize(
    "backend",
    [
        lambda: parallel_backend("threading"),
        lambda: parallel_config(backend="threading"),
        lambda: parallel_config(backend="loky"),
        lambda: parallel_config(backend="sequential"),
    ],
    ids=["parallel_backend-threading", "threading", "loky", "sequential"],
)
def test_thread_counts_are_unchanged_after_the_call(several_blas_threads, backend):
    X, y = load_iris(return_X_y=True)
    # Folds of growing size: the first to start finishes first, so with per-fold limits
    # set from threads it restores the caller's count while later folds still hold theirs,
    # and the last to finish restores the limit of one it saw on entry (the old bug).
    rows = np.random.default_rng(0).permutation(len(y))
    splits = [(rows[: 10 + 25 * k], rows[140:]) for k in range(6)]
    before = thread_counts()
    scores = []
    for _ in range(5):
        with backend():
            result = cross_validate(model(), X, y, cv=splits, n_jobs=3)
        assert thread_counts() == before
        scores.append(result["test_score"])
    # and the numbers do not depend on it
    for other in scores[1:]:
        np.testing.assert_array_equal(other, scores[0])


def test_one_blas_thread_limits_restores_and_sees_new_imports(several_blas_threads):
    import sys

    from nncv import _blas

    before = thread_counts()
    for _ in range(2):  # the second time with the cached controller
        with _blas.one_blas_thread():
            assert {n for _, api, n in thread_counts() if api == "blas"} == {1}
        assert thread_counts() == before
    cached = _blas._cached[2]
    with _blas.one_blas_thread():
        pass
    assert _blas._cached[2] is cached
    sys.modules["nncv_test_new_module"] = type(sys)("nncv_test_new_module")
    try:
        with _blas.one_blas_thread():  # an import since: the libraries are looked at again
            pass
        assert _blas._cached[2] is not cached
    finally:
        del sys.modules["nncv_test_new_module"]
