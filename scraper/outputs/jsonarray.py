"""A JSON array file that stays valid when appended to."""

from __future__ import annotations

import os
from typing import Any

from ..exceptions import ConfigError
from .base import FileOutput, encode_json, utf8

__all__ = ["JsonArrayOutput"]


class JsonArrayOutput(FileOutput):
    """A JSON array; appending to an existing array continues it, so the file stays valid.
    Its position excludes the closing bracket, which ``close`` writes."""

    def __init__(self, path: str, overwrite: bool) -> None:
        self.count = 0
        if not overwrite and os.path.isfile(path) and os.path.getsize(path) > 0:
            self._reopen_array(path)
        super().__init__(path, overwrite)
        if self.file.tell() == 0:
            self._write(b"[")

    def _reopen_array(self, path: str) -> None:
        with open(path, "rb+") as f:
            stripped = f.read().rstrip()
            if stripped.endswith(b"]"):
                stripped = stripped[:-1].rstrip()
            if not stripped.startswith(b"["):
                raise ConfigError(f"output {path}: exists and is not a JSON array "
                                  "(use -O to overwrite it)")
            f.seek(len(stripped))
            f.truncate()
            self.count = 0 if stripped == b"[" else 1

    def encode(self, item: dict[str, Any]) -> bytes:
        return utf8(encode_json(item, self.path), self.path)

    def put(self, encoded: bytes) -> None:
        self._write((b"\n" if self.count == 0 else b",\n") + encoded)
        self.count += 1

    def close(self) -> None:
        if not self.file.closed:
            self._write(b"\n]\n")
        super().close()
