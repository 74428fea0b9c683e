"""``make_pipeline``: a scaler and an nncv estimator in one scikit-learn ``Pipeline``."""

from __future__ import annotations

from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from nncv.estimators import NNClassifier, NNRegressor

__all__ = ["SCALERS", "make_pipeline"]

SCALERS = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
    "maxabs": MaxAbsScaler,
}


def make_pipeline(
    scaler: str | None = "standard", *, regressor: bool = False, **params
) -> Pipeline:
    """Build ``Pipeline([("scale", <scaler>), ("net", <estimator>)])``.

    The scaler is fitted on the training data only — in cross-validation, on each training
    fold — and is saved with the network by :func:`nncv.save`.

    Parameters
    ----------
    scaler : {"standard", "minmax", "robust", "maxabs"} or None, default="standard"
        Input scaling; None puts ``"passthrough"`` in the ``scale`` step.
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
    scale = "passthrough" if scaler is None else SCALERS[scaler]()
    return Pipeline([("scale", scale), ("net", estimator)])
