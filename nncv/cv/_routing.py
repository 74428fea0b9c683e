"""Metadata routing: which fit parameters reach which step, by the steps' own requests.

Used when ``sklearn.set_config(enable_metadata_routing=True)``: the parameters a caller
passes (``sample_weight=w``) are routed as scikit-learn's meta-estimators route them — to
the steps that requested them (``set_fit_request(sample_weight=True)``), nowhere for a
step that declined (``False``), an error for one that never said — and come back under
the ``<step path>__<param>`` names the fold engine uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn import get_config
from sklearn.pipeline import Pipeline
from sklearn.utils.metadata_routing import MetadataRouter, MethodMapping, process_routing

from nncv.cv.fold import pipeline_steps

__all__ = ["routed_fit_params", "routing_enabled", "step_params"]


def routing_enabled() -> bool:
    """Whether scikit-learn's metadata routing is on (``enable_metadata_routing``)."""
    return bool(get_config().get("enable_metadata_routing", False))


def _pipeline_params(pipeline: Pipeline, params: Mapping[str, Any], prefix: str) -> dict:
    routed = process_routing(pipeline, "fit", **params)
    out: dict[str, Any] = {}
    for name, step in pipeline.steps:
        if step is None or step == "passthrough":
            continue
        methods = routed[name]
        given = {**methods.get("fit", {}), **methods.get("fit_transform", {})}
        if isinstance(step, Pipeline):
            out.update(_pipeline_params(step, given, f"{prefix}{name}__"))
        else:
            out.update({f"{prefix}{name}__{key}": value for key, value in given.items()})
    return out


def step_params(estimator: Any, params: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """``params`` routed to the steps of ``estimator``, keyed ``<step path>__<param>``.

    A bare estimator's params are keyed by their own names. Raises scikit-learn's
    ``UnsetMetadataPassedError`` (a ``ValueError``) for a parameter no step said it
    wants or not.
    """
    router = MetadataRouter(owner=owner).add(
        estimator=estimator, method_mapping=MethodMapping().add(caller="fit", callee="fit")
    )
    router.validate_metadata(params=dict(params), method="fit")
    top = router.route_params(params=dict(params), caller="fit")["estimator"]["fit"]
    if isinstance(estimator, Pipeline):
        return _pipeline_params(estimator, top, "")
    return dict(top)


def routed_fit_params(
    estimator: Any, params: Mapping[str, Any], owner: str = "cross_validate"
) -> tuple[Any, dict[str, Any]]:
    """``(sample_weight for the final step, {<step path>__<param>: value} for the others)``."""
    routed = step_params(estimator, params, owner)
    steps, (final_path, _) = pipeline_steps(estimator)
    weight_key = f"{final_path}__sample_weight" if final_path else "sample_weight"
    sample_weight = routed.pop(weight_key, None)
    final_head = f"{final_path}__" if final_path else ""
    unsupported = [key for key in routed if not final_path or key.startswith(final_head)]
    if unsupported:
        from nncv.exceptions import CVSetupError

        raise CVSetupError(
            f"fit parameters {sorted(unsupported)} were routed to the final step, which "
            "takes sample_weight only"
        )
    return sample_weight, routed
