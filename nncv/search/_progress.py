"""Progress of a running study on a terminal, and Optuna's log level during a search.

:class:`StudyProgress` draws a tqdm bar — trials done (of those asked), pruned, failed,
best so far, elapsed time and ETA — by reading the study's trials from its storage
twice a second in a background thread. Reading the storage rather than hooking
``study.optimize`` means trials run by worker processes (or by other machines on the
same storage) are counted too. :func:`optuna_verbosity` keeps Optuna's per-trial INFO
lines out of a library call unless asked, and restores the caller's level afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO, Any

import optuna

from nncv.search._study import FRESH_STUDY_NAME

__all__ = [
    "StudyProgress",
    "optuna_verbosity",
    "quiet_unless_verbose",
    "run_with_progress",
    "wants_progress",
]

#: Seconds between two reads of the study's trials.
POLL_INTERVAL_S = 0.5


@contextlib.contextmanager
def optuna_verbosity(verbose: bool) -> Iterator[None]:
    """Optuna logs its per-trial INFO lines only when ``verbose``; restored on exit.

    Without ``verbose`` the level is raised to WARNING (never lowered: a caller who set
    ERROR keeps it); with it, lowered to INFO. With a tqdm bar on the screen, Optuna's
    lines are written above the bar instead of through it.
    """
    previous = optuna.logging.get_verbosity()
    wanted = min(previous, logging.INFO) if verbose else max(previous, logging.WARNING)
    optuna.logging.set_verbosity(wanted)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def quiet_unless_verbose(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``function`` under :func:`optuna_verbosity` of its ``verbose`` keyword argument."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with optuna_verbosity(bool(kwargs.get("verbose", False))):
            return function(*args, **kwargs)

    return wrapper


def run_with_progress(
    search: Any, n_trials: int | None, timeout: float | None, progress: bool | None
) -> bool:
    """``search.run(n_trials, timeout)`` with a :class:`StudyProgress` bar when wanted.

    While the bar is drawn, Optuna's log lines (``verbose``) are written above it.
    Returns what ``search.run`` returns (True when interrupted).
    """
    with StudyProgress(search.study, n_trials, timeout, enabled=wants_progress(progress)) as bar:
        if not bar.enabled:
            return bool(search.run(n_trials, timeout))
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm(loggers=[logging.getLogger("optuna")]):
            interrupted = search.run(n_trials, timeout)
        bar.refresh(search.study)  # an in-memory study run by workers was moved back
        return bool(interrupted)


def wants_progress(progress: bool | None, stream: IO[str] | None = None) -> bool:
    """``progress``, or for None (auto) whether ``stream`` (stderr) is a terminal."""
    if progress is not None:
        return bool(progress)
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class StudyProgress:
    """A tqdm bar over the trials a study finishes while the context is open.

    Parameters
    ----------
    study : optuna.Study
        The study to watch (any storage; worker processes' trials count too).
    n_trials : int or None
        Trials asked for (the bar's total); None runs until ``timeout``.
    timeout : float, optional
        With ``n_trials=None``, the bar's ETA is the time left to the timeout.
    enabled : bool, default=True
        False draws nothing (the context then does nothing).
    file : text stream, optional
        Where the bar goes (default ``sys.stderr``).

    Examples
    --------
    >>> import io, optuna
    >>> study = optuna.create_study(direction="maximize")
    >>> out = io.StringIO()
    >>> with StudyProgress(study, n_trials=2, file=out) as progress:
    ...     optuna.logging.set_verbosity(optuna.logging.WARNING)
    ...     study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    ...     progress.refresh()
    >>> "2/2" in out.getvalue() and "best=" in out.getvalue()
    True
    """

    def __init__(
        self,
        study: optuna.Study,
        n_trials: int | None,
        timeout: float | None = None,
        *,
        enabled: bool = True,
        file: IO[str] | None = None,
    ) -> None:
        self.study = study
        self.n_trials = n_trials
        self.timeout = timeout
        self.enabled = enabled
        self.file = file
        self._seen: set[int] = set()
        self._bar: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.counts = {"complete": 0, "pruned": 0, "failed": 0}

    def __enter__(self) -> StudyProgress:
        if not self.enabled:
            return self
        from tqdm.auto import tqdm

        self._seen = {t.number for t in self.study.get_trials(deepcopy=False)}
        self._started = time.monotonic()
        self._bar = tqdm(
            total=self.n_trials,
            desc=self._name(),
            unit="trial",
            file=self.file if self.file is not None else sys.stderr,
            # a terminal that reports no size (0 × 0) would get a hidden, empty bar
            ncols=shutil.get_terminal_size((100, 24)).columns,
            nrows=shutil.get_terminal_size((100, 24)).lines,
            leave=True,
        )
        self._thread = threading.Thread(target=self._poll, name="nncv-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if not self.enabled or self._bar is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(Exception):  # the storage may be gone (a temporary journal)
            self.refresh()
        self._bar.close()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_S):
            with contextlib.suppress(Exception):  # a storage being written: try again later
                self.refresh()

    def refresh(self, study: optuna.Study | None = None) -> None:
        """Read the study's trials (``study``, if the search replaced it) and redraw."""
        if not self.enabled or self._bar is None:
            return
        if study is not None:
            self.study = study
        with self._lock:
            trials = self.study.get_trials(deepcopy=False)
            new = [t for t in trials if t.number not in self._seen and t.state.is_finished()]
            states = optuna.trial.TrialState
            for trial in new:
                self._seen.add(trial.number)
                key = {states.COMPLETE: "complete", states.PRUNED: "pruned"}.get(
                    trial.state, "failed"
                )
                self.counts[key] += 1
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            if new:
                self._bar.update(len(new))
            if self.n_trials is None and self.timeout:
                elapsed = time.monotonic() - self._started
                left = max(0.0, self.timeout - elapsed)
                self._bar.set_description_str(f"{self._name()} ({left:.0f} s left)", refresh=False)
            self._bar.refresh()

    def _name(self) -> str:
        name = self.study.study_name
        unnamed = name.startswith("no-name-") or name == FRESH_STUDY_NAME
        return "trials" if unnamed else f"study {name}"

    def _postfix(self) -> str:
        parts = [f"pruned={self.counts['pruned']}", f"failed={self.counts['failed']}"]
        try:
            best = self.study.best_value
        except ValueError:  # no complete trial yet
            best = math.nan
        parts.append(f"best={best:.4g}" if not math.isnan(best) else "best=–")
        return " ".join(parts)
