"""A persistent crawl's identity and bookkeeping in its job dir: which spider and start
requests it belongs to, where each output was last committed, its cumulative
stats and its dead letters. The storage itself is ``storage.sqlite``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from .exceptions import ConfigError
from .storage.sqlite import SQLiteBackend

__all__ = ["FINGERPRINT_VERSION", "Job", "JobMismatch"]

#: Bumped whenever the request fingerprint changes; a job made with another version
#: would see every page as new.
FINGERPRINT_VERSION = 1


class JobMismatch(ConfigError):
    """The job dir was made by another spider, other start requests or fingerprints."""


class Job:
    """The job-level state of a SQLiteBackend, read at start and saved with every commit."""

    def __init__(self, backend: SQLiteBackend, spider: str, *, force: bool = False) -> None:
        self.backend = backend
        self.spider = spider
        self.force = force
        owner = backend.get_meta("spider")
        self.resumed = owner is not None
        if owner is not None and owner != spider:
            raise JobMismatch(f"--job-dir {backend.dir}: it holds a crawl of spider {owner!r}, "
                              f"not {spider!r}; use another --job-dir")
        version = backend.get_meta("fingerprint_version")
        if self.resumed and version != FINGERPRINT_VERSION and not force:
            raise JobMismatch(f"--job-dir {backend.dir}: made with request fingerprints v{version}, "
                              f"this version uses v{FINGERPRINT_VERSION}; every page would be "
                              "fetched again (use --force-resume to do so anyway)")
        self._positions = backend.output_positions() if self.resumed else {}

    @staticmethod
    def output_key(path: str) -> str:
        return os.path.abspath(path)

    def output_position(self, path: str) -> int | None:
        """Where output ``path`` was last committed, when resuming; None when new."""
        return self._positions.get(self.output_key(path)) if self.resumed else None

    def check_start(self, start_hash: str) -> bool:
        """Compare this run's start requests with the job's; True if they are new or changed
        (and so must be pushed), JobMismatch if changed without ``force``."""
        if not self.resumed:
            return True
        recorded = self.backend.get_meta("start_hash")
        if recorded is None:  # crashed before the start requests were committed
            return True
        if recorded == start_hash:
            return False
        if not self.force:
            raise JobMismatch(f"--job-dir {self.backend.dir}: the spider's start requests "
                              "changed since this job began (start_urls or -a arguments); use "
                              "--force-resume to continue with the new ones, or another --job-dir")
        return True

    def started(self, start_hash: str) -> None:
        """Record the job's identity (inside the transaction that pushes the start requests)."""
        b = self.backend
        b.set_meta("spider", self.spider)
        b.set_meta("fingerprint_version", FINGERPRINT_VERSION)
        b.set_meta("start_hash", start_hash)

    def stats(self) -> Mapping[str, Any] | None:
        return self.backend.get_meta("stats") if self.resumed else None

    def save(self, positions: Mapping[str, int], stats: Mapping[str, Any],
             dead: list[tuple[str, str]]) -> None:
        """Record output positions, stats and dead letters (inside the engine's transaction)."""
        b = self.backend
        if positions:
            b.save_output_positions({self.output_key(p): n for p, n in positions.items()})
        b.set_meta("stats", stats)
        b.add_dead(dead)


def start_hash(fingerprints: list[bytes]) -> str:
    """A digest of the start requests' fingerprints, in order."""
    h = hashlib.sha1()
    for fp in fingerprints:
        h.update(fp)
    return h.hexdigest()
