"""Study bookkeeping: fingerprints, fixed fold splits and seeds recorded on the Optuna study.

A study created by nncv carries its set-up as one study user attribute, ``nncv_setup``,
written once (the first worker to write it wins, every worker then uses it), holding

* ``nncv_seed`` — the study seed every fold seed and sampler seed derives from
  (:func:`nncv.cv.splits.derive_seed`);
* ``nncv_data_sha256`` — a fingerprint of X, y (and the sample weights);
* ``nncv_space_sha256`` and ``nncv_space`` — the search space, fingerprinted and in full;
* ``nncv_splits`` and ``nncv_splits_sha256`` — the fold splits, fixed for the study's life;
* ``nncv_metrics`` — the scorer names, the first being the one the study maximises.

Each field is also copied to its own ``nncv_<field>`` attribute (``nncv_seed``, …) for
readers; a study made by an older nncv has only those, and is read from them.

Continuing a study checks all of them before any trial runs and refuses a mismatch.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import scipy.sparse

from nncv.cv.splits import derive_seed
from nncv.exceptions import SearchError
from nncv.search._storage import retry_races, set_study_attr_once
from nncv.search.space import SearchSpace

__all__ = [
    "FRESH_STUDY_NAME",
    "StudySetup",
    "decode_splits",
    "encode_splits",
    "fingerprint_data",
    "open_study",
    "sampler_seed",
    "splits_digest",
]

ATTR_PREFIX = "nncv_"
_SPLIT_KEY = 1
_SAMPLER_KEY = 2

Split = tuple[np.ndarray, np.ndarray]

#: The name of the study that ``storage=None`` keeps (in memory, or in a temporary journal
#: for several workers) when no ``study_name`` is given.
FRESH_STUDY_NAME = "nncv"


# ---------------------------------------------------------------------------- seeds
def sampler_seed(study_seed: int, n_existing_trials: int, worker: int) -> int:
    """Seed of a worker's sampler; it moves on with the study so a resume draws new points."""
    return derive_seed(study_seed, spawn_key=(_SAMPLER_KEY, n_existing_trials, worker))


def split_seed(study_seed: int) -> int:
    """Seed of the shuffling splitter built when ``cv`` is an integer."""
    return derive_seed(study_seed, spawn_key=(_SPLIT_KEY,))


def new_study_seed() -> int:
    """A fresh 32-bit seed from the operating system's entropy."""
    return int(np.random.SeedSequence().generate_state(1)[0])


# ---------------------------------------------------------------------------- data
def _hash_array(digest: Any, name: str, values: Any) -> None:
    digest.update(name.encode())
    if values is None:
        digest.update(b"<none>")
        return
    try:
        import pandas as pd

        if isinstance(values, pd.DataFrame | pd.Series):
            names = values.columns if isinstance(values, pd.DataFrame) else [values.name]
            digest.update(repr([str(n) for n in names]).encode())
            digest.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
            return
    except ImportError:  # pragma: no cover - pandas is a dependency
        pass
    if scipy.sparse.issparse(values):
        # The same matrix in any sparse format (or with its entries stored in another
        # order) gives the same digest: hash its canonical CSR parts.
        matrix = scipy.sparse.csr_matrix(values, copy=True)
        matrix.sum_duplicates()
        matrix.sort_indices()
        digest.update(f"<sparse>{matrix.shape}".encode())
        _hash_array(digest, "data", matrix.data)
        # index arrays as int64: int32 and int64 indices of one matrix hash alike
        _hash_array(digest, "indices", matrix.indices.astype(np.int64, copy=False))
        _hash_array(digest, "indptr", matrix.indptr.astype(np.int64, copy=False))
        return
    array = np.asarray(values)
    if array.dtype == object:
        array = array.astype(str)
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array).cast("B"))


def fingerprint_data(X: Any, y: Any, sample_weight: Any = None) -> str:
    """SHA-256 over the shapes, dtypes and bytes of X, y and the sample weights.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.zeros((3, 2)), np.array([0, 1, 0])
    >>> fingerprint_data(X, y) == fingerprint_data(X.copy(), y) != fingerprint_data(X, 1 - y)
    True
    """
    digest = hashlib.sha256()
    _hash_array(digest, "X", X)
    _hash_array(digest, "y", y)
    _hash_array(digest, "sample_weight", sample_weight)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- splits
def _pack(mask: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.packbits(mask).tobytes(), 9)).decode("ascii")


def _unpack(text: str, n_samples: int) -> np.ndarray:
    bits = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8)
    return np.unpackbits(bits, count=n_samples).astype(bool)


def encode_splits(splits: Sequence[Split], n_samples: int) -> dict[str, Any]:
    """Encode fold splits compactly (a zlib'd bit mask per fold and side) for a study attribute.

    Indices are kept as sets: the decoded arrays are sorted.
    """
    folds = []
    for train, test in splits:
        masks = []
        for indices in (train, test):
            mask = np.zeros(n_samples, dtype=bool)
            mask[np.asarray(indices, dtype=np.int64)] = True
            masks.append(_pack(mask))
        folds.append({"train": masks[0], "test": masks[1]})
    return {"n_samples": int(n_samples), "folds": folds}


def decode_splits(record: dict[str, Any]) -> list[Split]:
    """Inverse of :func:`encode_splits`: sorted int64 (train, test) index arrays per fold."""
    n_samples = int(record["n_samples"])
    return [
        (
            np.flatnonzero(_unpack(fold["train"], n_samples)),
            np.flatnonzero(_unpack(fold["test"], n_samples)),
        )
        for fold in record["folds"]
    ]


def splits_digest(splits: Iterable[Split]) -> str:
    """SHA-256 of the fold index arrays, to compare the splits two trials actually used."""
    digest = hashlib.sha256()
    for train, test in splits:
        for indices in (train, test):
            digest.update(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
            digest.update(b"|")
    return digest.hexdigest()


# ---------------------------------------------------------------------------- study
@dataclass
class StudySetup:
    """What a trial needs from the study: its seed and its fixed splits."""

    seed: int
    splits: list[Split]
    splits_sha256: str
    metrics: list[str]


#: The study's set-up, written once as one study user attribute (first writer wins).
SETUP_ATTR = ATTR_PREFIX + "setup"
#: Its fields; each is also copied to a ``nncv_<field>`` attribute for readers.
SETUP_FIELDS = (
    "seed",
    "data_sha256",
    "space_sha256",
    "space",
    "metrics",
    "splits",
    "splits_sha256",
)


def _create_or_load(
    storage: optuna.storages.BaseStorage,
    study_name: str | None,
    sampler: optuna.samplers.BaseSampler | None,
    pruner: optuna.pruners.BasePruner | None,
) -> optuna.Study:
    """``create_study(load_if_exists=True)``, retried while another worker is creating it."""

    def create() -> optuna.Study:
        return optuna.create_study(
            storage=storage,
            study_name=study_name,
            sampler=sampler,
            pruner=pruner,
            direction="maximize",
            load_if_exists=True,
        )

    return retry_races(create, also=(KeyError,))


def _stored_setup(attrs: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The set-up record on the study; an older study's per-key attributes; or None."""
    record = attrs.get(SETUP_ATTR)
    if record is not None:
        return record
    legacy = {key: attrs[ATTR_PREFIX + key] for key in SETUP_FIELDS if ATTR_PREFIX + key in attrs}
    if not legacy:
        return None
    missing = [ATTR_PREFIX + key for key in SETUP_FIELDS if key not in legacy]
    if missing:
        raise SearchError(
            f"study {name!r} was left half set up by an older nncv (no {', '.join(missing)}: "
            "workers started it together); use another study_name"
        )
    return legacy


def _check_setup(
    setup: dict[str, Any],
    name: str,
    data_sha256: str,
    space: SearchSpace,
    metrics: list[str],
    random_state: int | None,
) -> None:
    if setup["data_sha256"] != data_sha256:
        raise SearchError(
            f"study {name!r} was run on other data (X, y or sample_weight differ); "
            "use the same data or another study_name"
        )
    if setup["space_sha256"] != space.fingerprint():
        raise SearchError(
            f"study {name!r} was run with another search space: stored {setup['space']}, "
            f"now {space.to_dict()}; use the same space or another study_name"
        )
    if list(setup["metrics"]) != list(metrics):
        raise SearchError(
            f"study {name!r} scored {setup['metrics']}, now {metrics}; "
            "use the same scoring or another study_name"
        )
    if random_state is not None and int(random_state) != int(setup["seed"]):
        raise SearchError(
            f"study {name!r} was started with random_state={setup['seed']}, now "
            f"{random_state}; pass the same random_state (or None) to continue it"
        )


def _copy_fields(study: optuna.Study, setup: dict[str, Any]) -> None:
    """Copy the set-up's fields to ``nncv_<field>`` attributes (same values from any worker)."""
    attrs = study.user_attrs
    for key in SETUP_FIELDS:
        if attrs.get(ATTR_PREFIX + key) != setup[key]:
            study.set_user_attr(ATTR_PREFIX + key, setup[key])


def open_study(
    *,
    storage: optuna.storages.BaseStorage,
    study_name: str | None,
    sampler: optuna.samplers.BaseSampler | None,
    pruner: optuna.pruners.BasePruner | None,
    space: SearchSpace,
    data_sha256: str,
    metrics: list[str],
    random_state: int | None,
    make_splits_for_seed: Any,
    n_samples: int,
    requested_folds: int | None,
) -> tuple[optuna.Study, StudySetup]:
    """Create or continue a study and check it belongs to this data, space and scoring.

    ``make_splits_for_seed(seed)`` builds the folds when the study has none yet. The
    set-up (seed, fingerprints, space, scorers, folds) is written once, as the single
    study user attribute ``nncv_setup``: when workers start one fresh study together the
    first one written wins and every worker uses it. Raises :class:`~nncv.SearchError`
    on any mismatch, before a trial runs.
    """
    study = _create_or_load(storage, study_name, sampler, pruner)
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SearchError(f"study {study.study_name!r} minimises; nncv studies maximise a score")
    name = study.study_name
    setup = _stored_setup(study.user_attrs, name)
    if setup is None:
        finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        if finished:
            raise SearchError(
                f"study {name!r} already has {len(finished)} finished trials but was not "
                "created by nncv (no data fingerprint); use another study_name"
            )
        seed = new_study_seed() if random_state is None else int(random_state)
        record = encode_splits(make_splits_for_seed(seed), n_samples)
        candidate = {
            "seed": seed,
            "data_sha256": data_sha256,
            "space_sha256": space.fingerprint(),
            "space": space.to_dict(),
            "metrics": metrics,
            "splits": record,
            "splits_sha256": splits_digest(decode_splits(record)),
        }
        # Another worker may have written its own first: then its set-up is the study's.
        setup = set_study_attr_once(storage, study._study_id, SETUP_ATTR, candidate)
    _check_setup(setup, name, data_sha256, space, metrics, random_state)
    retry_races(lambda: _copy_fields(study, setup))
    splits = decode_splits(setup["splits"])
    if requested_folds is not None and requested_folds != len(splits):
        raise SearchError(
            f"study {name!r} has {len(splits)} folds fixed on it, but cv asks for "
            f"{requested_folds}; use the same cv or another study_name"
        )
    return study, StudySetup(
        seed=int(setup["seed"]),
        splits=splits,
        splits_sha256=setup["splits_sha256"],
        metrics=list(setup["metrics"]),
    )
