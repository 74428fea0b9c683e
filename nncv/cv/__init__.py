"""Cross-validation: the one fold engine of nncv.

:func:`cross_validate` drains the folds of one estimator in joblib workers; the search
(:mod:`nncv.search`) advances the same :class:`~nncv.cv.fold.Fold` objects a chunk of
epochs at a time. The modules:

* :mod:`nncv.cv.splits` — fold splits and seeds derived from keys;
* :mod:`nncv.cv.scoring` — scorers from a ``scoring`` argument, and applying them;
* :mod:`nncv.cv.rows` — rows of ``X`` read, and row-wise scalers applied, a block at a time;
* :mod:`nncv.cv.held_out` — a fold's held-out rows scored a block at a time;
* :mod:`nncv.cv.fold` — :class:`~nncv.cv.fold.Fold` and :class:`~nncv.cv.fold.FoldGroup`;
* :mod:`nncv.cv.crossval` — :func:`cross_validate` and :class:`CVResult`.
"""

from nncv.cv.crossval import CURVE_COLUMNS, CVResult, cross_validate
from nncv.exceptions import CVSetupError, ScoringError

__all__ = ["CURVE_COLUMNS", "CVResult", "CVSetupError", "ScoringError", "cross_validate"]
