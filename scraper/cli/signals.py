"""SIGINT and SIGTERM for the whole process, installed before anything else is imported
(``python -m scraper`` does it first): the first signal asks whatever runs to stop
gracefully, or, during start-up, is remembered until something can; the second exits
at once with status 130. A signal never produces a traceback.

Before the interpreter reaches this code a signal still has its default effect (a
SIGTERM kills). So the scheduler starts its runs with both signals blocked (a mask
survives exec): ``install`` unblocks them once handled, and a stop sent while the run
was starting is delivered then, as a graceful one.

Once the command is done (``exiting``), a signal exits at once with the status it had
decided, and is ignored while Python shuts down: Python puts the default handlers
back then, and a late SIGTERM would otherwise end a finished run as killed.

Only the standard library is imported here, so installing costs nothing.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SIGNALS", "StopSignals"]


class StopSignals:
    """The process's stop signals; ``attach`` names what a first signal stops."""

    def __init__(self) -> None:
        self.hits = 0
        self.requested = False
        self._stop: Callable[[], None] | None = None
        self._again: Callable[[], None] | None = None
        self._message = ""
        self._again_message = ""
        self._installed = False
        self._exit_status: int | None = None

    def install(self) -> None:
        if self._installed or threading.current_thread() is not threading.main_thread():
            return
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._handle)
        # started with them blocked (a scheduled run): what came meanwhile arrives now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        self._installed = True

    def attach(self, stop: Callable[[], None], message: str = "", *,
               again: Callable[[], None] | None = None, again_message: str = "") -> None:
        """From now on a first signal calls ``stop`` (at once if one already came); a
        second calls ``again`` when given (a third exits), else exits 130."""
        self._stop, self._message = stop, message
        self._again, self._again_message = again, again_message
        if self.requested:
            stop()

    def detach(self) -> None:
        self._stop = self._again = None

    def exiting(self, status: int) -> None:
        """The command is over and the process exits with ``status``: a signal from now on
        exits at once with it, and is ignored once Python starts shutting down (atexit
        handlers run after other threads are joined, before the default handlers return)."""
        if not self._installed:
            return
        self._exit_status = status
        atexit.register(self._ignore)

    @staticmethod
    def _ignore() -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)

    def _handle(self, signum: int, frame: Any) -> None:
        if self._exit_status is not None:  # nothing left to stop: leave as decided
            sys.stdout.flush()
            os._exit(self._exit_status)
        self.hits += 1
        name = signal.Signals(signum).name
        if self.hits == 2 and self._again is not None:
            sys.stderr.write(f"\nscraper: {name} again: {self._again_message}\n")
            self._again()
            return
        if self.hits > 1:
            sys.stderr.write(f"\nscraper: {name} again: exiting now\n")
            sys.stderr.flush()
            os._exit(130)
        self.requested = True
        stop = self._stop
        if stop is not None:
            if self._message:
                sys.stderr.write(f"\nscraper: {name}: {self._message}\n")
            stop()


SIGNALS = StopSignals()
