"""Running one crawler as a child process and measuring what it cost.

Wall time is taken around the whole process (start-up and imports included, the same
stopwatch for every crawler); CPU time (user + system) and peak resident set size come
from the kernel's accounting of that one child, through `os.wait4`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Usage:
    """What one child process cost, and how it ended."""

    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mib: float
    exit_code: int
    timed_out: bool

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_measured(
    argv: Sequence[str],
    *,
    cwd: Path,
    log_path: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> Usage:
    """Run `argv` to completion with stdout and stderr in `log_path`; kill it after `timeout_s`."""
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    watchdog = _Watchdog(process.pid, timeout_s)
    try:
        # Wait without reaping, so that the watchdog never signals a recycled pid.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    except BaseException:  # Ctrl-C in the harness: do not leave the crawler running
        watchdog.cancel()
        process.kill()
        process.wait()
        raise
    wall = time.perf_counter() - started
    timed_out = watchdog.cancel()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Usage(
        wall_s=wall,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        exit_code=process.returncode,
        timed_out=timed_out,
    )


class _Watchdog:
    """Kills a process that outlives its time limit, unless cancelled first."""

    def __init__(self, pid: int, timeout_s: float) -> None:
        self._pid = pid
        self._lock = threading.Lock()
        self._done = False
        self._fired = False
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if not self._done:  # not reaped before cancel(), so the pid is still ours
                self._fired = True
                os.kill(self._pid, signal.SIGKILL)

    def cancel(self) -> bool:
        """Stop watching; True if the process had been killed for running too long."""
        with self._lock:
            self._done = True
        self._timer.cancel()
        return self._fired
