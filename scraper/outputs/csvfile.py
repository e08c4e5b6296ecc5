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
from typing import Any

from ..items import scalar_or_json
from .base import FileOutput

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

    def write(self, item: dict[str, Any]) -> None:
        if self.fields is None:
            self.fields = list(item)
            self._row(self.fields)
        extra = [k for k in item if k not in self.fields and k not in self._warned]
        for key in extra:
            self._warned.add(key)
            log.warning("output %s: item key %r is not a column (columns: %s); its values are "
                        "not written", self.path, key, ", ".join(self.fields))
        cell = self._cell
        self._row([cell(item.get(k)) for k in self.fields])

    def _row(self, row: list[Any]) -> None:
        self._writer.writerow(row)
        self._write(self._buffer.getvalue())
        self._buffer.seek(0)
        self._buffer.truncate()


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
