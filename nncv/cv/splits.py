"""Fold splits and seeds: what makes a cross-validation (and a study) reproducible.

The one place that splits rows into folds (:func:`make_splits`) and derives seeds from
keys (:func:`derive_seed`): ``(random_state, fold)`` for :func:`nncv.cross_validate`,
``(study_seed, trial, fold)`` for a study. Splits are computed once, in the calling
process, before any work is sent out; so a fold trains the same way in whichever
process runs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import KFold, StratifiedKFold, check_cv
from sklearn.utils.multiclass import type_of_target

from nncv.exceptions import CVSetupError

__all__ = [
    "base_seed",
    "compact_rows",
    "derive_seed",
    "fold_seed",
    "make_splits",
    "seed_estimator",
    "shuffle_seed",
]


def base_seed(random_state: int | np.random.Generator | np.random.RandomState | None) -> int:
    """One non-negative integer from which every fold's seed and the shuffling derive.

    An ``int`` is used as is; a generator or ``RandomState`` is drawn from once; ``None``
    draws fresh OS entropy (so two calls differ, but the folds of one call stay
    consistent with each other).

    Examples
    --------
    >>> base_seed(7)
    7
    """
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, (bool, np.bool_)):
        raise CVSetupError(f"random_state must be an int, a generator or None, not {random_state}")
    if isinstance(random_state, (int, np.integer)):
        if random_state < 0:
            raise CVSetupError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    raise CVSetupError(
        "random_state must be an int, a numpy Generator/RandomState or None, "
        f"got {type(random_state).__name__}"
    )


def derive_seed(*keys: int, spawn_key: tuple[int, ...] = ()) -> int:
    """A 32-bit seed from integer keys: ``SeedSequence(keys, spawn_key).generate_state(1)[0]``.

    Every seed nncv derives comes from here: a fold of :func:`nncv.cross_validate` from
    ``(random_state, fold)``, a fold of a trial from ``(study_seed, trial, fold)``, a
    study's shuffling and samplers from ``study_seed`` with a ``spawn_key``.

    Examples
    --------
    >>> derive_seed(0, 3, 1) == derive_seed(0, 3, 1) != derive_seed(0, 3, 2)
    True
    """
    entropy = keys[0] if len(keys) == 1 else list(keys)
    return int(np.random.SeedSequence(entropy, spawn_key=spawn_key).generate_state(1)[0])


def fold_seed(base: int, fold: int) -> int:
    """The seed of fold ``fold``: ``derive_seed(base, fold)``.

    Examples
    --------
    >>> fold_seed(0, 1) == fold_seed(0, 1) != fold_seed(0, 2)
    True
    """
    return derive_seed(base, fold)


def shuffle_seed(base: int) -> int:
    """The ``random_state`` for shuffling the splits: ``base`` itself when it fits 32 bits.

    So ``cross_validate(..., cv=5, random_state=0)`` splits exactly as
    ``StratifiedKFold(5, shuffle=True, random_state=0)`` does.

    Examples
    --------
    >>> shuffle_seed(0)
    0
    """
    if base < 2**32:
        return base
    return derive_seed(base)


def seed_estimator(estimator: Any, seed: int) -> list[str]:
    """Give every ``random_state`` parameter left at ``None`` the value ``seed``, in place.

    Parameters set by the user are kept. Returns the names of the parameters set.

    Examples
    --------
    >>> from sklearn.neural_network import MLPClassifier
    >>> net = MLPClassifier()
    >>> seed_estimator(net, 3), net.random_state
    (['random_state'], 3)
    """
    params = estimator.get_params(deep=True)
    unset = [
        name
        for name, value in params.items()
        if (name == "random_state" or name.endswith("__random_state")) and value is None
    ]
    if unset:
        estimator.set_params(**dict.fromkeys(unset, seed))
    return unset


def compact_rows(rows: np.ndarray, n_samples: int) -> np.ndarray:
    """A boolean mask of ``rows`` (1 byte a row) when sorted and unique, else ``rows``.

    Examples
    --------
    >>> compact_rows(np.array([0, 2]), 3)
    array([ True, False,  True])
    >>> compact_rows(np.array([2, 0]), 3)
    array([2, 0])
    """
    if len(rows) > 1 and np.any(np.diff(rows) <= 0):
        return rows  # unsorted or repeated rows: keep them as given
    mask = np.zeros(n_samples, dtype=bool)
    mask[rows] = True
    return mask


def _row_indices(rows: Any, n_samples: int, what: str) -> np.ndarray:
    """``rows`` of a split as an index array, refused unless whole numbers in
    ``[0, n_samples)`` (or a boolean mask of ``n_samples`` rows)."""
    array = np.asarray(rows)
    if array.dtype == bool:
        if array.shape != (n_samples,):
            raise CVSetupError(
                f"{what} are a boolean mask of shape {array.shape}, but the data has "
                f"{n_samples} rows"
            )
        return np.flatnonzero(array).astype(np.intp)
    if array.ndim != 1:
        raise CVSetupError(f"{what} must be a 1-d array of row indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise CVSetupError(f"{what} must be integer row indices, got dtype {array.dtype}")
    array = array.astype(np.intp, copy=False)
    if array.size and (array.min() < 0 or array.max() >= n_samples):
        bad = array[(array < 0) | (array >= n_samples)]
        raise CVSetupError(
            f"{what} hold indices outside 0..{n_samples - 1} (the data has {n_samples} "
            f"rows): {bad[:5].tolist()}"
        )
    return array


def make_splits(
    cv: Any,
    X: Any,
    y: Any,
    *,
    estimator: Any,
    groups: Any = None,
    shuffle_seed: int | None,
    compact: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Compute every fold's ``(train, test)`` rows once.

    ``test`` is an index array; ``train`` is a boolean row mask when that loses nothing
    (see :func:`compact_rows`): a million-row, 5-fold split then takes 5 MB, not 32 MB.
    ``compact=False`` keeps ``train`` an index array too (a study stores its splits).

    ``cv`` as an int gives ``StratifiedKFold`` for a classifier with a binary or
    multiclass target and ``KFold`` otherwise, both shuffled with ``shuffle_seed``, or
    unshuffled for ``shuffle_seed=None`` (scikit-learn's ``cv=5``); any scikit-learn
    splitter or iterable of ``(train, test)`` pairs is used as given.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = np.zeros((10, 1)), np.array([0, 1] * 5)
    >>> splits = make_splits(2, X, y, estimator=LogisticRegression(), shuffle_seed=0)
    >>> [len(test) for _, test in splits]
    [5, 5]
    """
    if isinstance(cv, (bool, np.bool_)):
        raise CVSetupError(f"cv must be an int >= 2 or a splitter, got {cv!r}")
    if isinstance(cv, (int, np.integer)):
        if cv < 2:
            raise CVSetupError(f"cv must be at least 2 folds, got {cv}")
        target_type = type_of_target(y)
        shuffle = {"shuffle": shuffle_seed is not None, "random_state": shuffle_seed}
        if is_classifier(estimator) and target_type in ("binary", "multiclass"):
            splitter: Any = StratifiedKFold(int(cv), **shuffle)
        else:
            splitter = KFold(int(cv), **shuffle)
    else:
        try:
            splitter = check_cv(cv, y, classifier=is_classifier(estimator))
        except (TypeError, ValueError) as error:
            raise CVSetupError(f"cv must be an int >= 2 or a splitter: {error}") from error
    n_samples = len(y)
    try:
        splits = [
            (
                _row_indices(train, n_samples, f"fold {fold}'s training rows"),
                _row_indices(test, n_samples, f"fold {fold}'s test rows"),
            )
            for fold, (train, test) in enumerate(splitter.split(X, y, groups))
        ]
    except ValueError as error:
        if isinstance(error, CVSetupError):
            raise
        raise CVSetupError(f"cannot split the data with {splitter!r}: {error}") from error
    if not splits:
        raise CVSetupError(f"{splitter!r} produced no folds")
    if compact:
        splits = [(compact_rows(train, n_samples), test) for train, test in splits]
    for fold, (train, test) in enumerate(splits):
        n_train = np.count_nonzero(train) if train.dtype == bool else len(train)
        if n_train == 0 or len(test) == 0:
            raise CVSetupError(f"fold {fold} has an empty training or test set")
    return splits
