"""Fixtures shared by several test modules."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """The first 300 rows of scikit-learn's digits (10 classes, 64 features)."""
    X, y = load_digits(return_X_y=True)
    return np.ascontiguousarray(X[:300]), y[:300]
