"""An exclusive lock on a directory for one process: an ``flock`` on a file in it that
holds the owner's pid. The job dir and the scheduler's directory both use it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from ..exceptions import StorageLocked, StorageUnusable

__all__ = ["FileLock"]


class FileLock:
    """``acquire`` takes the lock or raises StorageLocked (``holder``: the owner's pid, as
    it wrote it); the lock goes with ``release`` or with the process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self.holder: str | None = None

    def acquire(self) -> None:
        try:
            f = open(self.path, "a+", encoding="utf-8")
        except OSError as e:
            raise StorageUnusable(f"cannot open its lock file ({e.strerror or e})",
                                  location=str(self.path.parent)) from None
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            self.holder = f.read().strip().removeprefix("pid ") or "?"
            f.close()
            raise StorageLocked(f"in use by pid {self.holder}",
                                location=str(self.path.parent)) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
