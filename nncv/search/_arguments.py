"""Argument checks run first in :func:`nncv.tune` and :class:`nncv.NNSearchCV`, naming the argument.

Optuna takes ``n_trials=2.5`` as 3 trials, ignores ``timeout=nan``, and ends ``n_trials=0``
or ``timeout=-5`` with an empty study; each is refused here, before anything is opened.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np

from nncv.exceptions import SearchError

__all__ = ["check_run_limits", "check_sample_weight_values", "check_search_arguments"]


def _is_int(value: Any) -> bool:
    return isinstance(value, Integral | np.integer) and not isinstance(value, bool | np.bool_)


def check_run_limits(n_trials: Any, timeout: Any) -> None:
    """``n_trials``: a positive int or None; ``timeout``: a positive finite number or None."""
    if n_trials is not None and not (_is_int(n_trials) and n_trials >= 1):
        raise SearchError(f"n_trials must be a positive integer or None, got {n_trials!r}")
    if timeout is not None:
        if isinstance(timeout, bool | np.bool_) or not isinstance(timeout, Real):
            raise SearchError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        if not (math.isfinite(timeout) and timeout > 0):
            raise SearchError(
                f"timeout must be a positive, finite number of seconds or None, got {timeout!r}"
            )


def check_search_arguments(
    *,
    n_workers: Any,
    random_state: Any,
    study_name: Any,
    cv: Any,
    sampler: Any,
) -> None:
    """The arguments of :func:`~nncv.search._run.prepare` that need no data to check."""

    if not _is_int(n_workers) or n_workers < 1:
        raise SearchError(f"n_workers must be a positive integer, got {n_workers!r}")
    if random_state is not None and not _is_int(random_state):
        raise SearchError(f"random_state must be an int or None, got {random_state!r}")
    if random_state is not None and random_state < 0:
        raise SearchError(f"random_state must be a non-negative int or None, got {random_state!r}")
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise SearchError(f"study_name must be a non-empty string or None, got {study_name!r}")
    if isinstance(cv, bool | np.bool_) or (isinstance(cv, Real) and not _is_int(cv)):
        raise SearchError(
            f"cv must be an int >= 2, a cross-validation splitter or (train, test) pairs; "
            f"got {cv!r}"
        )
    if _is_int(cv) and cv < 2:
        raise SearchError(f"cv must be at least 2 folds, got {cv!r}")
    if isinstance(cv, str):
        raise SearchError(
            f"cv must be an int >= 2, a cross-validation splitter or (train, test) pairs; "
            f"got {cv!r}"
        )
    from nncv.search._components import check_sampler

    check_sampler(sampler)  # a name of SAMPLERS, an optuna sampler or None


def check_sample_weight_values(sample_weight: Any) -> None:
    """Numeric, finite and non-negative weights, refused before the study with their index."""
    if sample_weight is None:
        return
    from nncv._validation import check_non_negative_weights

    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise SearchError(f"sample_weight must be numeric: {error}") from error
    if not np.all(np.isfinite(weights)):
        raise SearchError("sample_weight must be finite (it holds NaN or infinity)")
    try:
        check_non_negative_weights(weights)
    except ValueError as error:
        raise SearchError(str(error)) from error
