"""Small fitted models and helpers for the persistence tests."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nncv import NNClassifier, NNRegressor

SMALL = {"hidden_layer_sizes": (5,), "max_epochs": 3, "batch_size": 16, "random_state": 0}


def features(n: int = 48, d: int = 4, seed: int = 0) -> np.ndarray:
    scales = np.array([1.0, 10.0, 0.1, 100.0])[np.arange(d) % 4]
    return np.random.default_rng(seed).normal(size=(n, d)) * scales


@pytest.fixture(scope="session")
def X():
    return features()


@pytest.fixture(scope="session")
def frame():
    """A DataFrame with numeric and string columns (a missing string included)."""
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, 48),
            "income": rng.normal(3000, 900, 48),
            "city": rng.choice(["Oslo", "Lima", "Kyiv", None], 48),
            "rooms": rng.integers(1, 6, 48),
        }
    )


@pytest.fixture(scope="session")
def classifier(X):
    return NNClassifier(**SMALL).fit(X, np.arange(len(X)) % 3)


@pytest.fixture(scope="session")
def regressor(X):
    return NNRegressor(**SMALL).fit(X, X[:, 0] * 2 + 1)


def resign(directory: Path) -> None:
    """Rewrite SHA256SUMS after editing a directory artifact: what an attacker who knows the
    format would do, so that the checks behind the checksums are the ones under test."""
    lines = [
        f"{hashlib.sha256((directory / name).read_bytes()).hexdigest()}  {name}\n"
        for name in ("arrays.npz", "manifest.json")
    ]
    (directory / "SHA256SUMS").write_text("".join(lines))


def read_manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def write_manifest(directory: Path, manifest: dict, *, sign: bool = True) -> None:
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if sign:
        resign(directory)


def rewrite_npz(directory: Path, entries: dict[str, bytes]) -> None:
    """Replace arrays.npz by a valid zip holding ``entries`` (entry name → raw bytes)."""
    with zipfile.ZipFile(directory / "arrays.npz", "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def npz_entries(directory: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(directory / "arrays.npz") as zf:
        return {name: zf.read(name) for name in zf.namelist()}
