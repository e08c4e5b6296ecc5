"""What every output is: the Output protocol (encode an item, then put it: so an item one
output cannot write is written to none), a file written in binary append mode so its
byte position is exact, the cut-back of a resumed job's file to its last committed
position, the job claim kept next to a file (``PATH.scraper-job``: which job's items it
holds), and paths with ``{spider}``/``{hostname}``/``{pid}`` filled in."""

from __future__ import annotations

import json
import logging
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from ..exceptions import BadItem, ConfigError, StorageError
from ..items import dumps

__all__ = ["CLAIM_SUFFIX", "FileOutput", "JobMark", "Output", "check_claim", "cut_back",
           "encode_json", "output_path", "read_claim", "utf8", "write_claim", "write_item"]

log = logging.getLogger(__name__)

#: The file next to an output that names the job whose items it holds.
CLAIM_SUFFIX = ".scraper-job"


class Output(Protocol):
    """Where items go. ``encode`` an item (a plain dict) into what this output will write,
    raising BadItem if it cannot and changing nothing; ``put`` writes what ``encode``
    returned; ``write`` does both. Then ``flush``, ``position``, ``close``."""

    path: str

    def encode(self, item: dict[str, Any]) -> Any: ...

    def put(self, encoded: Any) -> None: ...

    def write(self, item: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...

    def position(self) -> int: ...

    def close(self) -> None: ...


def write_item(outputs: Sequence[Output], item: dict[str, Any]) -> None:
    """Write ``item`` to every output or to none: every output encodes it first, and a
    BadItem from any one of them leaves all of them untouched."""
    if not outputs:
        return
    for key in item:
        if not isinstance(key, str):
            raise BadItem(f"key {key!r} is a {type(key).__name__}, not a string")
    encoded = [o.encode(item) for o in outputs]
    for output, data in zip(outputs, encoded):
        output.put(data)


def utf8(text: str, path: str) -> bytes:
    """``text`` as UTF-8; BadItem for a lone surrogate (JSON's "\\ud800" decodes to one)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadItem(f"output {path}: holds text that is not valid Unicode "
                      f"({e.reason}: {e.object[e.start:e.end]!r})") from None


def encode_json(item: Any, path: str) -> str:
    """The item as JSON text; BadItem for what JSON cannot hold (a dict key that is a
    tuple, a value that contains itself, nesting deeper than Python can recurse)."""
    try:
        return dumps(item)
    except (TypeError, ValueError, RecursionError) as e:
        raise BadItem(f"output {path}: cannot be written as JSON ({e})") from None


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


# -- which job's items an output holds --------------------------------------------
@dataclass(frozen=True)
class JobMark:
    """The job that writes an output (``--job-dir``): ``id``, made once with its job.sqlite;
    ``location``, its job dir (absolute); ``force``, ``--force-resume`` was given."""

    id: str
    location: str
    force: bool = False

    def as_claim(self) -> dict[str, str]:
        return {"job": self.id, "job_dir": self.location}


def check_claim(path: str, claim: Mapping[str, Any] | None, mark: JobMark) -> None:
    """Refuse an output that holds items of a job other than ``mark`` (ConfigError): a job
    whose job.sqlite was deleted starts afresh and would write every item again.
    ``claim`` is what the output records (None: nothing, or nothing in it yet)."""
    if claim is None or claim.get("job") == mark.id:
        return
    where = str(claim.get("job_dir") or "?")
    if where == mark.location:
        whose = (f"holds items of an earlier job in {where} whose job.sqlite is gone "
                 "(deleted or replaced): this run would write them all again")
    else:
        whose = (f"holds items of another job (job dir {where}): two jobs appending to it "
                 "would cut back each other's items")
    if mark.force:
        log.warning("output %s: %s; appending to it anyway (--force-resume)", path, whose)
        return
    raise ConfigError(f"output {path}: {whose}; use -O to start it afresh, another output, "
                      "or --force-resume to append to it anyway")


def read_claim(path: str) -> dict[str, Any] | None:
    """The claim next to file ``path``; None when there is none or the file is missing or
    empty (then it holds no items to duplicate)."""
    try:
        if os.path.getsize(path) == 0:
            return None
    except OSError:
        return None
    return _sidecar(path)


def _sidecar(path: str) -> dict[str, Any] | None:
    try:
        with open(path + CLAIM_SUFFIX, encoding="utf-8") as f:
            claim = json.load(f)
    except (OSError, ValueError):
        return None
    return claim if isinstance(claim, dict) else None


def write_claim(path: str, mark: JobMark) -> None:
    """Record that ``mark``'s job writes file ``path`` (atomically, before any item)."""
    claim = mark.as_claim()
    if _sidecar(path) == claim:
        return
    tmp = f"{path}{CLAIM_SUFFIX}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(claim, f)
        f.write("\n")
    os.replace(tmp, path + CLAIM_SUFFIX)


class FileOutput(ABC):
    """A file written in binary append mode, so its byte position is exact."""

    def __init__(self, path: str, overwrite: bool) -> None:
        self.path = path
        self.file: IO[bytes] = open(path, "wb" if overwrite else "ab")

    @abstractmethod
    def encode(self, item: dict[str, Any]) -> Any:
        """What ``put`` will write for ``item``; BadItem if it cannot be written."""

    @abstractmethod
    def put(self, encoded: Any) -> None:
        """Write what ``encode`` returned."""

    def write(self, item: dict[str, Any]) -> None:
        self.put(self.encode(item))

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

    def _write(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except OSError as e:
            raise StorageError(f"output {self.path}: {e.strerror or e}") from e
