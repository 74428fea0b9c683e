"""Check a search space against the estimator's own parameter validation, before any trial.

A range reaching outside what the estimator accepts (``dropout`` up to 1.5, a log range
of ``batch_size`` down to 0) used to be found inside trial 0, which stopped the study after
the storage was written. Ranges are intervals and the estimator's constraints are
intervals too, so trying each range's ends (and each categorical choice, and the 0 of an
``or_zero`` range) finds every such space without running anything.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import clone

from nncv.exceptions import SearchError
from nncv.search.space import Categorical, Float, Int, SearchSpace

__all__ = ["check_space_bounds"]


def _candidates(param: Any) -> list[tuple[Any, str]]:
    """The values of a range worth trying, each with how to name it."""
    if isinstance(param, Categorical):
        return [(choice, "a choice") for choice in param.choices]
    if isinstance(param, Int):
        last = param.low + (param.high - param.low) // param.step * param.step
        values = [(param.low, "its low end"), (last, "its high end")]
    else:
        values = [(param.low, "its low end"), (param.high, "its high end")]
        if isinstance(param, Float) and param.or_zero:
            values.append((0.0, "the 0 of or_zero"))
    return values


def _owner(estimator: Any, full_name: str) -> Any:
    """The object whose constructor parameter ``full_name`` is (a pipeline step or the root)."""
    if "__" not in full_name:
        return estimator
    return estimator.get_params(deep=True)[full_name.rsplit("__", 1)[0]]


def check_space_bounds(
    estimator: Any, space: SearchSpace, names: dict[str, str], hidden_layers: int = 1
) -> None:
    """Raise :class:`~nncv.SearchError` when a value the space can draw is invalid.

    Every range is tried at its ends (and every choice) with the other ranges at their
    first value, through the owning estimator's ``_validate_params`` (scikit-learn's
    ``_parameter_constraints`` and, for nncv networks, the per-layer checks).

    Parameters
    ----------
    estimator : estimator or Pipeline
        What the study tunes (it is cloned, never changed).
    space : SearchSpace
    names : dict
        Estimator-level name to full ``set_params`` name (``resolve_space_names``).
    hidden_layers : int, default=1
        Depth used for ``hidden_size`` when ``n_layers`` is not in the space.
    """
    first = {name: _candidates(param)[0][0] for name, param in space.items()}
    points = [(first, None)]
    for name, param in space.items():
        for value, which in _candidates(param)[1:]:
            points.append(({**first, name: value}, (name, value, which)))
    for raw, varied in points:
        params = space._assemble(raw, hidden_layers)
        candidate = clone(estimator)
        full = {names[name]: value for name, value in params.items()}
        candidate.set_params(**full)
        owners = {id(o): o for o in (_owner(candidate, n) for n in full)}
        for owner in owners.values():
            validate = getattr(owner, "_validate_params", None)
            if validate is None:
                continue
            try:
                validate()
            except (TypeError, ValueError) as error:
                if varied is None:
                    named = [k for k in raw if f"'{k}'" in str(error)]
                    if named:
                        where = f"{named[0]}={raw[named[0]]!r} (its low end or first choice)"
                    else:
                        drawn = ", ".join(f"{k}={v!r}" for k, v in raw.items())
                        where = f"the first values of its ranges ({drawn})"
                else:
                    where = f"{varied[0]}={varied[1]!r} ({varied[2]})"
                raise SearchError(
                    f"search space: {where} is not a valid value for "
                    f"{type(owner).__name__}: {error} Narrow the range; no trial was run."
                ) from None
