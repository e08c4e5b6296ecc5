"""JSON lines: one object per line, to a file or to standard output (``-o -``)."""

from __future__ import annotations

import sys
from typing import Any

from ..items import dumps
from .base import FileOutput

__all__ = ["JsonLinesOutput", "StdoutOutput"]


class JsonLinesOutput(FileOutput):
    """One JSON object per line."""

    def write(self, item: dict[str, Any]) -> None:
        self._write(dumps(item) + "\n")


class StdoutOutput:
    """JSON lines on standard output (``-o -``): data only, flushed per item."""

    path = "-"

    def write(self, item: dict[str, Any]) -> None:
        sys.stdout.write(dumps(item) + "\n")

    def flush(self) -> None:
        sys.stdout.flush()

    def position(self) -> int:
        self.flush()
        return 0

    def close(self) -> None:
        self.flush()
