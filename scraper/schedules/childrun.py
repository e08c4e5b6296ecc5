"""What the scheduler needs around a run's child process: its private settings file, the
signal mask it starts under, and reading what it left (its summary, its counts)."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["counts", "read_summary", "signal_name", "stop_signals_held", "write_private"]

def write_private(path: Path, text: str) -> None:
    """``text`` in a new file only this user can read (made so, not chmod-ed after)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@contextmanager
def stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread while a run is started: the child inherits
    the mask across exec and unblocks them once its handlers are installed (see
    cli.signals), so a SIGTERM in its first instants stops it gracefully instead of
    killing it. This process gets any that came meanwhile when the mask is restored."""
    stop = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def counts(summary: dict[str, Any] | None) -> tuple[int, int, int]:
    if not summary:
        return 0, 0, 0
    errors = summary.get("errors") or {}
    n_errors = sum(v for v in errors.values() if isinstance(v, int)) if isinstance(errors, dict) else 0
    return int(summary.get("pages") or 0), int(summary.get("items") or 0), n_errors


def signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"
