"""The scratch network: pure NumPy, knows nothing of scikit-learn, Optuna or pandas."""

from nncv.network import activations, initializers, losses, metrics, optimizers, schedules
from nncv.network.gradient_check import GradientCheck, check_gradients
from nncv.network.layers import Activation, BatchNorm, Dense, Dropout
from nncv.network.model import Network
from nncv.network.stacked import StackedNetwork
from nncv.network.stacked_evaluation import StackedEvaluator
from nncv.network.stacked_training import FoldData, StackCallback, StackedTrainer
from nncv.network.training import Callback, EarlyStopping, EpochCallback, Trainer

__all__ = [
    "Activation",
    "BatchNorm",
    "Callback",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "EpochCallback",
    "FoldData",
    "GradientCheck",
    "Network",
    "StackCallback",
    "StackedEvaluator",
    "StackedNetwork",
    "StackedTrainer",
    "Trainer",
    "activations",
    "check_gradients",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "schedules",
]
