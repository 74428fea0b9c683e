"""nncv: hyperparameter search and cross-validation for a NumPy neural network.

Examples
--------
>>> import nncv
>>> X, y = nncv.datasets.load("iris")
>>> pipe = nncv.make_pipeline("standard", hidden_layer_sizes=16, max_epochs=20, random_state=0)
>>> nncv.cross_validate(pipe, X, y, cv=3, random_state=0).scores["score"].shape
(3,)
"""

from __future__ import annotations

import importlib
from typing import Any

from nncv import datasets
from nncv._version import __version__
from nncv.cv import CVResult, cross_validate
from nncv.estimators import NNClassifier, NNRegressor
from nncv.exceptions import (
    ArtifactError,
    BackendError,
    ConfigurationError,
    CVSetupError,
    DivergedError,
    NncvError,
    ScoringError,
    SearchError,
    StopTraining,
)
from nncv.pipeline import make_pipeline

# Imported on first use, so that cross-validation workers (which unpickle nncv's fold
# function, importing this package) do not load Optuna and the artifact code.
_LAZY = {
    **dict.fromkeys(
        ["Categorical", "Float", "Int", "NNSearchCV", "SearchSpace", "TuneResult", "tune"],
        "nncv.search",
    ),
    **dict.fromkeys(["inspect", "load", "save"], "nncv.persistence"),
    "FoldEnsemble": "nncv.ensemble",
    "SeedEnsemble": "nncv.ensemble",
}
_LAZY_MODULES = ("cli", "persistence", "plots", "report", "search")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"nncv.{name}")
    else:
        raise AttributeError(f"module 'nncv' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_LAZY_MODULES})


__all__ = [
    "ArtifactError",
    "BackendError",
    "CVResult",
    "CVSetupError",
    "Categorical",
    "ConfigurationError",
    "DivergedError",
    "Float",
    "FoldEnsemble",
    "Int",
    "NNClassifier",
    "NNRegressor",
    "NNSearchCV",
    "NncvError",
    "ScoringError",
    "SearchError",
    "SearchSpace",
    "SeedEnsemble",
    "StopTraining",
    "TuneResult",
    "__version__",
    "cross_validate",
    "datasets",
    "inspect",
    "load",
    "make_pipeline",
    "save",
    "tune",
]
