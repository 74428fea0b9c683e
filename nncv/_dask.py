"""Where nncv's parallel work runs: local worker processes (loky) or a Dask cluster.

One factory turns the user's ``backend`` argument into a place to run, in one place:

* ``None`` — whatever an enclosing ``joblib.parallel_config`` says: loky worker
  processes by default, the Dask cluster of ``joblib.parallel_config(backend="dask")``;
* ``"loky"`` — local worker processes, whatever the enclosing configuration;
* ``"dask"`` — the running ``dask.distributed`` client (``distributed.get_client()``);
* a scheduler address such as ``"tcp://10.0.0.5:8786"`` — a client connected for the
  call and closed after it;
* a ``distributed.Client`` — used as it is.

On a Dask cluster the data go to every worker once (:func:`parallel_map` scatters them,
broadcast, and again if every copy died: :class:`ScatteredData`), a task lost with its
workers is submitted again under a new key (a few times, then an error), and every task
holds BLAS to one thread while it runs (:func:`one_blas_thread`, inside the task: the
worker's setting is restored afterwards, and nothing is changed in the calling process).
Dask itself is an optional dependency (``pip install "nncv[dask]"``): only this module
imports it, and only when a Dask backend is asked for.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import joblib
from threadpoolctl import threadpool_limits

from nncv.exceptions import BackendError

__all__ = [
    "BACKENDS",
    "BackendSpec",
    "ScatteredData",
    "active_dask_client",
    "check_backend",
    "dask_client",
    "in_dask_worker",
    "is_worker_loss",
    "one_blas_thread",
    "parallel_map",
    "resubmit_key",
    "wants_dask",
]

BackendSpec = Any  # None, "loky", "dask", a scheduler address or a distributed.Client

#: The backend names accepted besides a scheduler address or a ``distributed.Client``.
BACKENDS = ("loky", "dask")

#: Shared arguments larger than this are scattered to the workers, not sent with each task.
SCATTER_BYTES = 1024

#: Times a task is submitted again, under a new key, after the workers running it died
#: (``KilledWorker``) or the data it needed died with them; one more loss is an error.
MAX_RESUBMITS = 3

#: Seconds to wait for a worker to come back before scattering lost data again.
WORKER_WAIT_S = 300

#: What to install for the Dask backend.
INSTALL_HINT = 'pip install "nncv[dask]"'

T = TypeVar("T")


def _is_address(backend: Any) -> bool:
    return isinstance(backend, str) and "://" in backend


def _is_client(backend: Any) -> bool:
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(backend, distributed.Client)


def check_backend(backend: BackendSpec) -> None:
    """Raise :class:`~nncv.BackendError` for a ``backend`` that names no place to run.

    Examples
    --------
    >>> check_backend("dask"), check_backend(None), check_backend("tcp://localhost:8786")
    (None, None, None)
    >>> check_backend("ray")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nncv.exceptions.BackendError: unknown backend 'ray'; use None, 'loky', 'dask', ...
    """
    if backend is None or backend in BACKENDS or _is_address(backend) or _is_client(backend):
        return
    raise BackendError(
        f"unknown backend {backend!r}; use None, 'loky', 'dask', a Dask scheduler address "
        "such as 'tcp://host:8786' or a distributed.Client"
    )


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise BackendError(
            f"the Dask backend needs dask.distributed: {INSTALL_HINT} ({error})"
        ) from None
    return distributed


def in_dask_worker() -> bool:
    """Whether this code runs inside a task on a Dask worker."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def active_dask_client() -> Any | None:
    """The client of an enclosing ``joblib.parallel_config(backend="dask")``, else None.

    Always None inside a Dask task: work nested in a task (the inner search of a nested
    cross-validation, say) runs in that task, as submitting more tasks from tasks that
    hold every worker thread would wait forever.
    """
    if "joblib._dask" not in sys.modules:  # imported by joblib when the dask backend is used
        return None
    if in_dask_worker():
        return None
    from joblib._dask import DaskDistributedBackend
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    return backend.client if isinstance(backend, DaskDistributedBackend) else None


def wants_dask(backend: BackendSpec) -> bool:
    """Whether ``backend`` (checked) means a Dask cluster, here and now."""
    check_backend(backend)
    if backend is None:
        return active_dask_client() is not None
    return backend != "loky"


@contextlib.contextmanager
def dask_client(backend: BackendSpec) -> Iterator[Any | None]:
    """The ``distributed.Client`` that ``backend`` names (see the module), or None for loky.

    A client connected here to a scheduler address is closed on exit; a given or running
    client is left open.

    Raises
    ------
    BackendError
        For an unknown backend, ``"dask"`` without a running client, an unreachable
        scheduler, or dask.distributed not installed.
    """
    check_backend(backend)
    if backend is None:
        yield active_dask_client()
        return
    if backend == "loky":
        yield None
        return
    if _is_client(backend):
        yield backend
        return
    distributed = _import_distributed()
    if backend == "dask":
        try:
            client = distributed.get_client()
        except ValueError:
            raise BackendError(
                "backend='dask' needs a running dask.distributed Client: start one "
                "(distributed.Client() or Client('tcp://host:8786')) or pass its scheduler "
                "address as backend"
            ) from None
        yield client
        return
    try:
        client = distributed.Client(backend, set_as_default=False, timeout=30)
    except OSError as error:
        raise BackendError(f"cannot reach the Dask scheduler at {backend}: {error}") from None
    try:
        yield client
    finally:
        client.close()


def parallel_map(
    backend: BackendSpec,
    function: Callable[..., T],
    shared: dict[str, Any],
    calls: list[dict[str, Any]],
    *,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> list[T]:
    """``[function(**shared, **call) for call in calls]``, in parallel where ``backend`` says.

    On a Dask cluster (``backend`` naming one, or an enclosing
    ``joblib.parallel_config(backend="dask")``) every call is a task and the large
    ``shared`` values (X, y, …) are scattered to every worker once, broadcast. A call
    whose worker died (Dask gave up on it, ``KilledWorker``, or it was cancelled as every
    copy of X died) is submitted again under a new key, with X scattered again if it was
    lost, up to ``MAX_RESUBMITS`` times; one more loss raises :class:`~nncv.BackendError`.
    Otherwise joblib runs the calls (``n_jobs``, ``verbose``): ``"loky"`` forces local
    processes; None keeps joblib's configuration, except inside a Dask task, where the
    calls run one after another in that task. The results keep the order of ``calls``.
    """
    with dask_client(backend) as client:
        if client is not None:
            return _map_on_dask(client, function, shared, calls)
    if backend == "loky":
        config = joblib.parallel_config(backend="loky")
    elif in_dask_worker():  # nested in a Dask task: see active_dask_client
        config = joblib.parallel_config(backend="sequential")
    else:
        config = contextlib.nullcontext()
    with config:
        return joblib.Parallel(n_jobs=n_jobs, verbose=verbose)(
            joblib.delayed(function)(**shared, **call) for call in calls
        )


def _map_on_dask(
    client: Any, function: Callable[..., T], shared: dict[str, Any], calls: list[dict[str, Any]]
) -> list[T]:
    from dask.sizeof import sizeof
    from distributed import as_completed

    large = {k: v for k, v in shared.items() if v is not None and sizeof(v) > SCATTER_BYTES}
    data = ScatteredData(client, large)
    prefix = f"{getattr(function, '__name__', 'call')}-{uuid.uuid4().hex[:12]}"
    losses = [0] * len(calls)
    pending: dict[str, tuple[int, Any]] = {}  # key -> (call, future)

    def submit(i: int) -> Any:
        future = client.submit(
            function,
            **{**shared, **data.futures},
            **calls[i],
            key=resubmit_key(f"{prefix}-{i}", losses[i]),
            pure=False,
        )
        pending[str(future.key)] = (i, future)
        return future

    running = as_completed([submit(i) for i in range(len(calls))], loop=client.loop)
    results: dict[int, T] = {}
    try:
        for future in running:
            i, _ = pending.pop(str(future.key))
            try:
                results[i] = future.result()
            except Exception as error:
                if not is_worker_loss(error):
                    raise
                # Its worker died (or every worker holding X did): run it again under a
                # new key, with X scattered again if it was lost, a few times at most.
                losses[i] += 1
                if losses[i] > MAX_RESUBMITS:
                    raise BackendError(
                        f"Dask lost the task {prefix}-{i} {losses[i]} times: the workers "
                        f"running it kept dying ({type(error).__name__}: {error})"
                    ) from error
                data.restore()
                running.add(submit(i))
    except BaseException:
        client.cancel([future for _, future in pending.values()])
        raise
    return [results[i] for i in range(len(calls))]


def resubmit_key(key: str, resubmits: int) -> str:
    """The Dask key of a task submitted again: Dask counts worker deaths per key."""
    return key if resubmits == 0 else f"{key}-resubmit{resubmits}"


def is_worker_loss(error: BaseException) -> bool:
    """Whether a task's error says a worker died, not that the task itself failed.

    ``KilledWorker``: Dask gave up on the task after ``allowed-failures`` workers died
    running it (two at once count twice). ``FutureCancelledError``: Dask forgot the
    task because scattered data it needed died with every worker holding it.
    """
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    return isinstance(error, (KilledWorker, FutureCancelledError))


class ScatteredData:
    """Values scattered to every worker (broadcast), scattered again once all copies died.

    Scattered data, unlike a task's result, cannot be recomputed by Dask: when every
    worker holding a copy dies, the scheduler forgets it and cancels the tasks that need
    it. :meth:`restore` asks the scheduler whether any value lost all its copies and, if
    so, waits for a worker and scatters the values again (to every worker running then).

    Parameters
    ----------
    client : distributed.Client
    values : dict
        Name -> value; :attr:`futures` maps the same names to the scattered futures.
    """

    def __init__(self, client: Any, values: dict[str, Any]) -> None:
        self._client = client
        self._values = values
        self.futures: dict[str, Any] = {}
        self.placements = 0
        self._scatter()

    def _scatter(self) -> None:
        if not self._values:
            return
        names = list(self._values)
        copies = self._client.scatter(
            [self._values[name] for name in names], broadcast=True, hash=False
        )
        self.futures = dict(zip(names, copies, strict=True))
        self.placements += 1

    def lost(self) -> bool:
        """Whether some value has no copy left on any worker (asked of the scheduler)."""
        from concurrent.futures import CancelledError

        futures = list(self.futures.values())
        if any(future.status != "finished" for future in futures):
            return True  # forgotten by the scheduler, cancelled here
        try:
            holders = self._client.who_has(futures)
        except CancelledError:  # forgotten meanwhile
            return True
        return not all(holders.get(future.key) for future in futures)

    def restore(self) -> bool:
        """Scatter the values again if any was lost; return whether they were."""
        if not self.lost():
            return False
        try:
            self._client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError:
            raise BackendError(
                f"every Dask worker holding the scattered data died and none came back "
                f"within {WORKER_WAIT_S} s"
            ) from None
        self._scatter()
        return True


def one_blas_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``function`` with BLAS held to one thread, restoring the previous limit after.

    Meant to run inside a task on a worker (a Dask task, a joblib job), never around work
    in the calling process.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return function(*args, **kwargs)
