"""nncv: hyperparameter search and cross-validation for a NumPy neural network."""

from nncv import datasets
from nncv.estimators import NNClassifier, NNRegressor
from nncv.exceptions import ArtifactError, DivergedError, NncvError, SearchError, StopTraining
from nncv.pipeline import make_pipeline

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "DivergedError",
    "NNClassifier",
    "NNRegressor",
    "NncvError",
    "SearchError",
    "StopTraining",
    "datasets",
    "make_pipeline",
]
