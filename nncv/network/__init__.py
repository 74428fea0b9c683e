"""The scratch network: pure NumPy, knows nothing of scikit-learn, Optuna or pandas."""

from nncv.network import activations, initializers, losses, metrics, optimizers, schedules
from nncv.network.layers import Activation, Dense, Dropout
from nncv.network.model import Network
from nncv.network.stacked import StackedNetwork
from nncv.network.stacked_training import FoldData, StackedTrainer
from nncv.network.training import Callback, EarlyStopping, EpochCallback, Trainer

__all__ = [
    "Activation",
    "Callback",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "EpochCallback",
    "FoldData",
    "Network",
    "StackedNetwork",
    "StackedTrainer",
    "Trainer",
    "activations",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "schedules",
]
