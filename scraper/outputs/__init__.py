"""Item outputs: JSON lines, JSON array, CSV and SQLite files, JSON lines on stdout, the
backend's item stream, and PostgreSQL tables; opened by type (from ``type:``, the
path's extension, or a ``postgresql://`` URL).

Every output is opened before the crawl starts, so a path that cannot be written is
a configuration error, not a crash halfway through. ``-o`` appends to what is
there; ``-O`` (``overwrite: true``) starts the file afresh; a resumed job cuts each
file back to its last committed position. A job (``--job-dir``) records next to each
output that it writes it, and an output holding another job's items is refused.
An item is written to every output or, when one of them cannot take it (BadItem), to
none (``write_item``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..storage import ItemStream
from . import postgresql
from .base import (CLAIM_SUFFIX, JobMark, Output, check_claim, cut_back, read_claim, write_claim,
                   write_item)
from .base import output_path as _file_path
from .csvfile import CsvOutput
from .jsonarray import JsonArrayOutput
from .jsonlines import JsonLinesOutput, StdoutOutput
from .sqlite import SqliteOutput, read_table_claim
from .stream import StreamOutput

__all__ = ["JobMark", "Output", "check_output", "open_output", "output_path", "output_type",
           "write_item"]

_TYPES = {".jsonl": "jsonl", ".jl": "jsonl", ".ndjson": "jsonl", ".json": "json",
          ".csv": "csv", ".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite"}
TYPES = ("jsonl", "json", "csv", "sqlite", "redis-stream", "postgresql")


def output_path(spec: Mapping[str, Any], spider: str) -> str:
    """The output's path with ``{spider}`` filled in; a PostgreSQL URL without its password
    (what logs show and a job records its position under)."""
    path = _file_path(spec, spider)
    return postgresql.hide_password(path) if postgresql.is_postgresql(path) else path


def output_type(spec: Mapping[str, Any]) -> str:
    """The output's type: ``type`` if given, else from the path's extension."""
    kind = spec.get("type")
    if kind == "redis-stream":
        return "redis-stream"
    path = str(spec["path"])
    if postgresql.is_postgresql(path) and kind in (None, "postgresql"):
        return "postgresql"
    if kind is None:
        if path == "-":
            return "jsonl"
        kind = _TYPES.get(Path(path).suffix.lower())
        if kind is None:
            raise ConfigError(f"output {path}: unknown type; use a .jsonl, .json, .csv or .db path, "
                              f"or give type: one of {', '.join(TYPES)}")
    if kind == "db":
        kind = "sqlite"
    if kind not in TYPES:
        raise ConfigError(f"output {path}: unknown type {kind!r} (one of {', '.join(TYPES)})")
    if kind == "postgresql":
        raise ConfigError(f"output {path}: type postgresql needs a postgresql://USER@HOST:PORT/DB "
                          "URL as its path")
    return kind


def open_output(spec: Mapping[str, Any], spider: str, *, resume_at: int | None = None,
                stream: ItemStream | None = None, job: JobMark | None = None) -> Output:
    """Open the output ``spec`` names: appended to, overwritten (``overwrite: true``), or,
    when a job resumes, cut back to ``resume_at`` (its last committed position).
    ``stream``: the backend's item stream, for the redis-stream output; ``job``: the job
    that writes it, recorded next to it (``check_output`` refused another job's)."""
    raw_path = str(spec.get("path") or "-")
    kind = output_type(spec)
    if kind == "redis-stream":
        if stream is None:
            raise ConfigError("output type redis-stream needs a Redis backend (--backend)")
        return StreamOutput(stream)
    overwrite = bool(spec.get("overwrite", False)) and resume_at is None
    if raw_path == "-":
        return StdoutOutput()
    if kind == "postgresql":
        t = postgresql.target(_file_path(spec, spider), spider, spec)
        return postgresql.PostgresOutput(t, overwrite, resume_at, job)
    path = output_path(spec, spider)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if os.path.isdir(path):
            raise ConfigError(f"output {path}: is a directory")
        return _open_file(kind, path, spec, spider, overwrite, resume_at, job)
    except OSError as e:
        raise ConfigError(f"output {path}: cannot open ({e.strerror or e})") from None
    except sqlite3.Error as e:
        raise ConfigError(f"output {path}: cannot open as SQLite ({e})") from None


def _open_file(kind: str, path: str, spec: Mapping[str, Any], spider: str, overwrite: bool,
               resume_at: int | None, job: JobMark | None) -> Output:
    if kind == "sqlite":
        return SqliteOutput(path, overwrite, spec.get("table") or spider, resume_at, job)
    if resume_at is not None:
        cut_back(path, resume_at)
    if job is not None:
        write_claim(path, job)  # before the first item, so a crash cannot leave items unclaimed
    elif overwrite:
        Path(path + CLAIM_SUFFIX).unlink(missing_ok=True)  # started afresh: no job's items in it
    if kind == "jsonl":
        return JsonLinesOutput(path, overwrite)
    if kind == "json":
        return JsonArrayOutput(path, overwrite)
    _check_fields(spec, path)
    return CsvOutput(path, overwrite, spec.get("fields"),
                     formula_escape=spec.get("csv_formula_escape", True))


def _check_fields(spec: Mapping[str, Any], path: object) -> None:
    fields = spec.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise ConfigError(f"output {path}: fields must be a list of column names")
    if not isinstance(spec.get("csv_formula_escape", True), bool):
        raise ConfigError(f"output {path}: csv_formula_escape must be true or false")


def check_output(spec: Mapping[str, Any], spider: str, *, stream: bool = False,
                 job: JobMark | None = None, resume_at: int | None = None) -> None:
    """Everything about an output that can be checked without touching its file, so a bad
    second output never leaves the first one truncated. ``stream``: the backend keeps an
    item stream (the redis-stream output needs one); ``job`` and ``resume_at``: the job
    that will write it and its committed position there (an output holding another
    job's items is refused, unless it is to be started afresh)."""
    kind = output_type(spec)
    if kind == "redis-stream":
        if not stream:
            raise ConfigError("output type redis-stream needs a Redis backend (--backend)")
        return
    if str(spec["path"]) == "-":
        return
    if kind == "postgresql":
        _check_postgresql(spec, spider, job, resume_at)
        return
    path = Path(output_path(spec, spider))
    if path.is_dir():
        raise ConfigError(f"output {path}: is a directory")
    parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"output {path}: cannot be created (no writable directory)")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"output {path}: not writable")
    _check_fields(spec, path)
    if job is not None and not (spec.get("overwrite") and resume_at is None):
        claim = (read_table_claim(str(path), spec.get("table") or spider) if kind == "sqlite"
                 else read_claim(str(path)))
        check_claim(str(path), claim, job)


def _check_postgresql(spec: Mapping[str, Any], spider: str, job: JobMark | None,
                      resume_at: int | None) -> None:
    """The URL, table, fields and key, and psycopg; with a job, the server too: a table
    holding another job's items is refused before any output is touched."""
    t = postgresql.target(_file_path(spec, spider), spider, spec)
    postgresql.require_psycopg()
    if job is not None and not (spec.get("overwrite") and resume_at is None):
        check_claim(t.shown, postgresql.read_claim(t), job)
