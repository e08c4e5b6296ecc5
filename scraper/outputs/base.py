"""What every output is: the Output protocol, a file written in binary append mode so its
byte position is exact, the cut-back of a resumed job's file to its last committed
position, and paths with ``{spider}``/``{hostname}``/``{pid}`` filled in."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import IO, Any, Protocol

from ..exceptions import ConfigError, StorageError

__all__ = ["FileOutput", "Output", "cut_back", "output_path"]

log = logging.getLogger(__name__)


class Output(Protocol):
    """Where items go: ``write`` each item (a plain dict), ``flush``, then ``close``."""

    path: str

    def write(self, item: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def position(self) -> int: ...

    def close(self) -> None: ...


def output_path(spec: Mapping[str, Any], spider: str) -> str:
    """The output's path with ``{spider}`` filled in."""
    raw_path = str(spec.get("path") or "-")
    try:
        return raw_path.format(spider=spider, hostname=socket.gethostname(), pid=os.getpid())
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(f"output {raw_path}: bad placeholder {e} (known: {{spider}}, "
                          "{hostname}, {pid})") from None


def cut_back(path: str, position: int) -> None:
    """Drop what was written after the last committed position (a crash's leftovers)."""
    size = os.path.getsize(path) if os.path.exists(path) else 0
    if size > position:
        os.truncate(path, position)
    elif size < position:
        log.warning("output %s is shorter than the job recorded (%d < %d bytes); it was "
                    "changed outside the crawl; appending to it as it is", path, size, position)


class FileOutput:
    """A file written in binary append mode, so its byte position is exact."""

    def __init__(self, path: str, overwrite: bool) -> None:
        self.path = path
        self.file: IO[bytes] = open(path, "wb" if overwrite else "ab")

    def flush(self) -> None:
        try:
            self.file.flush()
        except OSError as e:
            raise StorageError(f"output {self.path}: {e.strerror or e}") from e

    def position(self) -> int:
        """Bytes written so far, flushed to the OS (what a job records as committed)."""
        self.flush()
        return self.file.tell()

    def close(self) -> None:
        if not self.file.closed:
            self.flush()
            self.file.close()

    def _write(self, text: str) -> None:
        try:
            self.file.write(text.encode("utf-8"))
        except OSError as e:
            raise StorageError(f"output {self.path}: {e.strerror or e}") from e
