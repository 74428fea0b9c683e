"""Optuna search over a network's hyperparameters, scored by lockstep k-fold CV.

Examples
--------
>>> from nncv.search import Float, SearchSpace
>>> SearchSpace.default().set(learning_rate=Float(1e-3, 1e-2, log=True))["learning_rate"].low
0.001
"""

from nncv.search._result import TuneResult
from nncv.search._searchcv import NNSearchCV
from nncv.search._tune import tune
from nncv.search.space import Categorical, Float, Int, SearchSpace

__all__ = ["Categorical", "Float", "Int", "NNSearchCV", "SearchSpace", "TuneResult", "tune"]
