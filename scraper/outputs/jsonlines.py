"""JSON lines: one object per line, to a file or to standard output (``-o -``)."""

from __future__ import annotations

import sys
from typing import Any

from .base import FileOutput, encode_json, utf8

__all__ = ["JsonLinesOutput", "StdoutOutput"]


class JsonLinesOutput(FileOutput):
    """One JSON object per line."""

    def encode(self, item: dict[str, Any]) -> bytes:
        return utf8(encode_json(item, self.path) + "\n", self.path)

    def put(self, encoded: bytes) -> None:
        self._write(encoded)


class StdoutOutput:
    """JSON lines on standard output (``-o -``): data only, flushed per item."""

    path = "-"

    def encode(self, item: dict[str, Any]) -> str:
        line = encode_json(item, "-") + "\n"
        utf8(line, "-")  # what the UTF-8 stream would fail on, found before anything is written
        return line

    def put(self, encoded: str) -> None:
        sys.stdout.write(encoded)

    def write(self, item: dict[str, Any]) -> None:
        self.put(self.encode(item))

    def flush(self) -> None:
        sys.stdout.flush()

    def position(self) -> int:
        self.flush()
        return 0

    def close(self) -> None:
        self.flush()
