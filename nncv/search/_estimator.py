"""Where the network sits in the user's estimator, and how names and fit params reach it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nncv.cv.fold import pipeline_steps
from nncv.exceptions import SearchError
from nncv.search.space import HIDDEN_LAYER_SIZES, SearchSpace, did_you_mean

__all__ = ["hidden_depth", "network_prefix", "resolve_space_names", "route_fit_params"]


def network_prefix(estimator: Any) -> tuple[str, Any]:
    """Return ``(prefix, network)``: ``("net__", step)`` for a Pipeline, ``("", est)`` bare.

    A Pipeline ending in a Pipeline gives the innermost last step (``"inner__net__"``).
    """
    _, (path, network) = pipeline_steps(estimator)
    prefix = f"{path}__" if path else ""
    if not hasattr(network, "iter_fit"):
        raise SearchError(
            f"the estimator to tune must be an nncv estimator (NNClassifier/NNRegressor) or a "
            f"Pipeline ending in one; got {type(network).__name__}, which has no iter_fit"
        )
    return prefix, network


def resolve_space_names(estimator: Any, space: SearchSpace) -> dict[str, str]:
    """Map each estimator-level name of ``space`` to the full ``set_params`` name.

    A plain name is the network's parameter; ``step__param`` addresses any pipeline step.
    Raises :class:`~nncv.SearchError` for a name the estimator lacks.
    """
    prefix, network = network_prefix(estimator)
    known = list(estimator.get_params(deep=True))
    resolved = {}
    for name in space.estimator_names():
        full = name if "__" in name else prefix + name
        if full not in known:
            own = [k[len(prefix) :] for k in known if k.startswith(prefix)]
            shown = [k for k in own if "__" not in k]
            hint = did_you_mean(name, shown) or did_you_mean(full, known)
            origin = " (set by hidden_size/n_layers)" if name == HIDDEN_LAYER_SIZES else ""
            raise SearchError(
                f"search space names {name!r}{origin}, which {type(network).__name__} does "
                f"not have{hint}; its parameters are {sorted(shown)}"
            )
        resolved[name] = full
    return resolved


def hidden_depth(estimator: Any) -> int:
    """Number of hidden layers the estimator has now (used when n_layers is not searched)."""
    prefix, network = network_prefix(estimator)
    sizes = network.get_params().get(HIDDEN_LAYER_SIZES)
    if sizes is None:
        return 1
    return max(1, int(np.size(sizes)))


def route_fit_params(
    estimator: Any, fit_params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split fit params into ``(network params, preprocessing params)``.

    ``sample_weight`` (or ``<last step>__sample_weight``) goes to the network;
    ``<step>__<param>`` to that pipeline step's ``fit``.
    """
    prefix, _ = network_prefix(estimator)
    steps = [path for path, _ in pipeline_steps(estimator)[0]]
    network: dict[str, Any] = {}
    preprocessing: dict[str, Any] = {}
    for key, value in fit_params.items():
        if prefix and key.startswith(prefix):
            network[key[len(prefix) :]] = value
        elif prefix and "__" in key:
            path = key.rsplit("__", 1)[0]
            if path not in steps:
                raise SearchError(f"fit parameter {key!r} names no pipeline step")
            preprocessing[key] = value
        else:
            network[key] = value
    unknown = sorted(set(network) - {"sample_weight"})
    if unknown:
        raise SearchError(
            f"unsupported fit parameters {unknown} for the network: it accepts sample_weight only"
        )
    return network, preprocessing
