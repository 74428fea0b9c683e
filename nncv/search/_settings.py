"""One settings object for a search, shared by ``tune``, ``NNSearchCV`` and the CLI.

A new option of the search is one field here: :func:`nncv.tune` and
:class:`nncv.NNSearchCV` (and through ``tune`` the CLI's ``tune``/``worker``) build a
:class:`SearchSettings` from their arguments by field name, and the engine
(:func:`nncv.search._run.prepare`) reads only it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["SearchSettings"]


@dataclass(frozen=True)
class SearchSettings:
    """What a search is asked to do, beyond the data and the estimator.

    See :func:`nncv.tune` for each field's meaning.
    """

    space: Any = None
    n_trials: int | None = 20
    timeout: float | None = None
    cv: Any = 5
    scoring: Any = None
    pruner: Any = "median"
    sampler: Any = None
    storage: Any = None
    study_name: str | None = None
    n_workers: int = 1
    random_state: int | None = None
    task: str | None = None
    stack_folds: bool = True
    backend: Any = None
    ensemble_size: int = 5

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], **overrides: Any) -> SearchSettings:
        """The fields found in ``values`` (e.g. ``locals()`` or ``get_params()``), overridden.

        Examples
        --------
        >>> SearchSettings.from_mapping({"n_trials": 3, "other": 1}).n_trials
        3
        """
        names = {field.name for field in fields(cls)}
        chosen = {name: value for name, value in values.items() if name in names}
        return cls(**{**chosen, **overrides})
