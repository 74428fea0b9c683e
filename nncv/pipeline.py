"""``make_pipeline``: a scaler and an nncv estimator in one scikit-learn ``Pipeline``.

Also the one policy for what a target calls for (:func:`infer_task`) and the default
estimator that :func:`nncv.tune`, :class:`nncv.NNSearchCV` and the CLI build from it
(:func:`default_estimator`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse
from sklearn.pipeline import Pipeline

from nncv.estimators import NNClassifier, NNRegressor
from nncv.scalers import SCALERS

__all__ = ["SCALERS", "TASKS", "default_estimator", "infer_task", "make_pipeline"]

#: The tasks :func:`infer_task` tells apart.
TASKS = ("classification", "regression")
#: A float target is a regression target when it takes more distinct values than this…
MIN_DISTINCT_FOR_REGRESSION = 20
#: …and than this share of its rows.
MIN_DISTINCT_SHARE_FOR_REGRESSION = 0.05


def make_pipeline(
    scaler: str | None = "standard", *, regressor: bool = False, **params
) -> Pipeline:
    """Build ``Pipeline([("scale", <scaler>), ("net", <estimator>)])``.

    The scaler is fitted on the training data only — in cross-validation, on each training
    fold — and is saved with the network by :func:`nncv.save`.

    Parameters
    ----------
    scaler : {"standard", "minmax", "robust", "maxabs"} or None, default="standard"
        Input scaling, a name of :data:`nncv.scalers.SCALERS`; None puts ``"passthrough"``
        in the ``scale`` step.
    regressor : bool, default=False
        Use :class:`~nncv.NNRegressor` instead of :class:`~nncv.NNClassifier`.
    **params
        Parameters of the estimator (``hidden_layer_sizes=64, dropout=0.2``, …).

    Returns
    -------
    sklearn.pipeline.Pipeline

    Examples
    --------
    >>> from nncv import make_pipeline
    >>> pipe = make_pipeline("standard", hidden_layer_sizes=32, dropout=0.1)
    >>> pipe.set_params(net__dropout=0.2).get_params()["net__dropout"]
    0.2
    """
    if scaler is not None and scaler not in SCALERS:
        raise ValueError(f"unknown scaler {scaler!r}; choose one of {sorted(SCALERS)} or None")
    estimator = (NNRegressor if regressor else NNClassifier)(**params)
    scale = "passthrough" if scaler is None else SCALERS[scaler].cls()
    return Pipeline([("scale", scale), ("net", estimator)])


def infer_task(y: Any, task: str | None = None) -> str:
    """``"classification"`` or ``"regression"``: what ``y`` calls for (or ``task`` says).

    Integer, bool, string or categorical targets are classes. A float target whose values
    are not all whole numbers is a regression target; a whole-numbered float target is
    one when it takes many distinct values — more than 20 and more than 5 % of the rows
    (diabetes: 214 of 442) — and classes otherwise (labels 0.0 … 9.0 are classes).

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    task : {"classification", "regression"} or None
        Overrides the inference.

    Examples
    --------
    >>> infer_task([0.0, 1.0, 2.0]), infer_task([0.5, 1.5]), infer_task([1, 2], "regression")
    ('classification', 'regression', 'regression')
    """
    if task is not None:
        if task not in TASKS:
            raise ValueError(f"task must be 'classification', 'regression' or None, got {task!r}")
        return task
    if isinstance(y, pd.Series | pd.DataFrame):
        dtypes = [y.dtype] if isinstance(y, pd.Series) else list(y.dtypes)
        if any(isinstance(dtype, pd.CategoricalDtype) for dtype in dtypes):
            return "classification"
    values = np.asarray(y)
    if values.dtype.kind != "f":
        return "classification"  # integers, bools, strings, objects
    finite = values[np.isfinite(values)] if values.size else values
    if not np.all(finite == np.round(finite)):
        return "regression"
    distinct = len(np.unique(finite))
    many = distinct > max(
        MIN_DISTINCT_FOR_REGRESSION, MIN_DISTINCT_SHARE_FOR_REGRESSION * len(values)
    )
    return "regression" if many else "classification"


def default_estimator(
    y: Any,
    task: str | None = None,
    scaler: str | None = "standard",
    *,
    X: Any = None,
    **params: Any,
) -> Pipeline:
    """A scaler and an NNClassifier or NNRegressor, as :func:`infer_task` decides for ``y``.

    For a sparse ``X`` the ``"standard"`` scaler becomes ``"maxabs"``: centring would make
    every zero entry non-zero (scikit-learn's ``StandardScaler`` refuses it), while
    ``MaxAbsScaler`` keeps the zeros and scales each column into [-1, 1].

    Examples
    --------
    >>> type(default_estimator([0.5, 1.5, 2.5])[-1]).__name__
    'NNRegressor'
    >>> import scipy.sparse
    >>> default_estimator([0, 1], X=scipy.sparse.eye(2, format="csr"))[0]
    MaxAbsScaler()
    """
    regressor = infer_task(y, task) == "regression"
    if scaler == "standard" and scipy.sparse.issparse(X):
        scaler = "maxabs"
    return make_pipeline(scaler, regressor=regressor, **params)
