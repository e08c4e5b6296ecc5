"""CSV with a header row, spreadsheet-safe by default: a text cell that a spreadsheet
would run as a formula (one beginning with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return, OWASP's list) is written with a leading ``'``, so opening a
crawled file cannot run what a page put in it; ``csv_formula_escape: false``
writes values verbatim. Numbers are never escaped."""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass
from typing import Any

from ..exceptions import BadItem
from ..items import scalar_or_json
from .base import FileOutput, utf8

__all__ = ["CsvOutput"]

log = logging.getLogger(__name__)


class CsvOutput(FileOutput):
    """CSV with a header row. Columns come from ``fields``, else from the existing header,
    else from the first item; a key that is not a column is dropped with one warning."""

    def __init__(self, path: str, overwrite: bool, fields: list[str] | None,
                 formula_escape: bool = True) -> None:
        existing: list[str] | None = None
        if not overwrite and os.path.isfile(path) and os.path.getsize(path) > 0:
            with open(path, encoding="utf-8", newline="") as f:
                existing = next(csv.reader(f), None)
        super().__init__(path, overwrite)
        self.fields: list[str] | None = existing or fields
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        self._warned: set[str] = set()
        self._cell = _safe_cell if formula_escape else _cell
        if self.fields and not existing:
            self._row(self.fields)

    def encode(self, item: dict[str, Any]) -> _CsvRow:
        header = None if self.fields is not None else list(item)
        fields = self.fields if self.fields is not None else list(item)
        extra = tuple(k for k in item if k not in fields and k not in self._warned)
        cell = self._cell
        try:
            text = (self._line(header) if header else "") + self._line(
                [cell(item.get(k)) for k in fields])
        except (TypeError, ValueError, RecursionError, csv.Error) as e:
            raise BadItem(f"output {self.path}: cannot be written as CSV ({e})") from None
        return _CsvRow(header, extra, utf8(text, self.path))

    def put(self, encoded: _CsvRow) -> None:
        if encoded.header is not None:
            self.fields = encoded.header
        for key in encoded.extra:
            if key not in self._warned:
                self._warned.add(key)
                log.warning("output %s: item key %r is not a column (columns: %s); its values "
                            "are not written", self.path, key, ", ".join(self.fields or ()))
        self._write(encoded.data)

    def _row(self, row: list[Any]) -> None:
        self._write(utf8(self._line(row), self.path))

    def _line(self, row: list[Any]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()  # what a failed row may have left
        self._writer.writerow(row)
        return self._buffer.getvalue()


@dataclass(frozen=True)
class _CsvRow:
    """An encoded item: the header row it starts the file with (the first item's keys, when
    no columns are known yet), its keys that are not columns, and the bytes to write."""

    header: list[str] | None
    extra: tuple[str, ...]
    data: bytes


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str | int | float):
        return value
    return scalar_or_json(value)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(value: Any) -> Any:
    out = _cell(value)
    if isinstance(out, str) and out.startswith(_FORMULA_START):
        return "'" + out
    return out
