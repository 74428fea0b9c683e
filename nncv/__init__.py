"""nncv: hyperparameter search and cross-validation for a NumPy neural network.

Examples
--------
>>> import nncv
>>> X, y = nncv.datasets.load("iris")
>>> pipe = nncv.make_pipeline("standard", hidden_layer_sizes=16, max_epochs=20, random_state=0)
>>> nncv.cross_validate(pipe, X, y, cv=3, random_state=0).scores["score"].shape
(3,)
"""

from nncv import datasets
from nncv.cv import CVResult, cross_validate
from nncv.estimators import NNClassifier, NNRegressor
from nncv.exceptions import (
    ArtifactError,
    ConfigurationError,
    DivergedError,
    NncvError,
    SearchError,
    StopTraining,
)
from nncv.persistence import inspect, load, save
from nncv.pipeline import make_pipeline
from nncv.search import Categorical, Float, Int, NNSearchCV, SearchSpace, TuneResult, tune

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "CVResult",
    "Categorical",
    "ConfigurationError",
    "DivergedError",
    "Float",
    "Int",
    "NNClassifier",
    "NNRegressor",
    "NNSearchCV",
    "NncvError",
    "SearchError",
    "SearchSpace",
    "StopTraining",
    "TuneResult",
    "cross_validate",
    "datasets",
    "inspect",
    "load",
    "make_pipeline",
    "save",
    "tune",
]
