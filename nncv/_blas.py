"""BLAS held to one thread, without inspecting the process's libraries on every call.

``threadpoolctl.threadpool_limits`` finds the loaded BLAS and OpenMP libraries afresh each
time it is entered (about 5 ms here: a scan of every shared object), which a 5-fold
cross-validation of a small network pays for nothing. :func:`one_blas_thread` keeps one
``ThreadpoolController`` per process and takes a new one whenever modules were imported
since (a newly imported package may have brought its own BLAS).
"""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread"]

_cached: tuple[int, int, ThreadpoolController] | None = None


def one_blas_thread(user_api: str | None = "blas") -> AbstractContextManager:
    """``threadpool_limits(limits=1, user_api=user_api)`` with a cached controller.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> with one_blas_thread():
    ...     all(pool["num_threads"] == 1 for pool in threadpool_info()
    ...         if pool["user_api"] == "blas")
    True
    """
    global _cached
    key = (os.getpid(), len(sys.modules))
    if _cached is None or _cached[:2] != key:
        _cached = (*key, ThreadpoolController())
    return _cached[2].limit(limits=1, user_api=user_api)
