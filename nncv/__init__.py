"""nncv: hyperparameter search and cross-validation for a NumPy neural network."""

from nncv import datasets
from nncv.exceptions import ArtifactError, DivergedError, NncvError, SearchError, StopTraining

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "DivergedError",
    "NncvError",
    "SearchError",
    "StopTraining",
    "datasets",
]
