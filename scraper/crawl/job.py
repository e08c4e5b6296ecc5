"""A persistent crawl's job: its identity (an id made once, with its job database, and
the spider and start requests it belongs to), its cumulative stats, where each output
was last committed, and how a run of it begins (fresh, resumed, or a new pass of an
incremental job). The id is also recorded next to every output the job writes, so an
output that holds the items of a job that no longer exists (a deleted job.sqlite) is
refused rather than written again. It works on any backend with a ``JobState`` (the
SQLite job dir today).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import ConfigError
from ..http import Request
from ..outputs import JobMark
from ..storage import Backend, JobState
from .stats import Stats

__all__ = ["FINGERPRINT_VERSION", "Job", "JobMismatch", "start_hash"]

log = logging.getLogger(__name__)

#: Bumped whenever the request fingerprint changes; a job made with another version
#: would see every page as new.
FINGERPRINT_VERSION = 1


class JobMismatch(ConfigError):
    """The job dir was made by another spider, other start requests or fingerprints."""


class Job:
    """The job-level state of a persistent backend, read at start and saved with every commit."""

    def __init__(self, state: JobState, spider: str, *, force: bool = False) -> None:
        self.state = state
        self.spider = spider
        self.force = force
        where = state.location
        owner = state.get_meta("spider")
        self.resumed = owner is not None
        self.new_pass = False
        if owner is not None and owner != spider:
            raise JobMismatch(f"--job-dir {where}: it holds a crawl of spider {owner!r}, "
                              f"not {spider!r}; use another --job-dir")
        version = state.get_meta("fingerprint_version")
        if self.resumed and version != FINGERPRINT_VERSION and not force:
            raise JobMismatch(f"--job-dir {where}: made with request fingerprints v{version}, "
                              f"this version uses v{FINGERPRINT_VERSION}; every page would be "
                              "fetched again (use --force-resume to do so anyway)")
        self._positions = state.output_positions() if self.resumed else {}
        # made before anything is written, and kept even if this run stops before the
        # job is started: outputs claimed with it must stay this job's
        job_id = state.get_meta("job_id")
        if not isinstance(job_id, str) or not job_id:
            job_id = uuid.uuid4().hex
            state.set_meta("job_id", job_id)
        self.id: str = job_id

    @property
    def mark(self) -> JobMark:
        """What the outputs record as their writer: this job's id and job dir."""
        return JobMark(self.id, os.path.abspath(self.state.location), self.force)

    @staticmethod
    def output_key(path: str) -> str:
        return os.path.abspath(path)

    def output_position(self, path: str) -> int | None:
        """Where output ``path`` was last committed, when resuming; None when new."""
        return self._positions.get(self.output_key(path)) if self.resumed else None

    # -- how a run begins ----------------------------------------------------------
    def begin(self, backend: Backend, stats: Stats, seen_ttl: float | None) -> None:
        """Decide whether this run resumes (restoring the job's stats) or, for an
        incremental job (``seen_ttl``) that finished last time, starts a new pass with
        its own stats and limits."""
        if not self.resumed:
            return
        frontier = backend.frontier
        if seen_ttl and frontier.pending() == 0 and frontier.leased() == 0:
            self.new_pass = True
            return
        snap = self.state.get_meta("stats")
        if snap:
            stats.restore(dict(snap))

    def seed(self, starts: Sequence[Request], backend: Backend) -> str | None:
        """Whether the start requests must be queued: their digest (for ``started``, in
        the transaction that pushes them), or None when the job already holds them (then
        what was in flight when it stopped is put back). JobMismatch before anything is
        changed."""
        digest = start_hash([r.fingerprint for r in starts])
        fresh = self.check_start(digest)
        if self.new_pass:
            log.info("job finished last time: starting a new pass (pages seen more than "
                     "seen_ttl ago are fetched again)")
            backend.seen.add_many([r.fingerprint for r in starts])  # stamp them anew
            for r in starts:
                r.dont_filter = True  # the start pages are always fetched in a new pass
            fresh = True
        elif self.resumed:
            back = backend.frontier.requeue_all()
            log.info("resuming job: %d requests queued (%d were in flight when it stopped)",
                     backend.frontier.pending(), back)
        return digest if fresh else None

    def check_start(self, start_hash: str) -> bool:
        """Compare this run's start requests with the job's; True if they are new or changed
        (and so must be pushed), JobMismatch if changed without ``force``."""
        if not self.resumed:
            return True
        recorded = self.state.get_meta("start_hash")
        if recorded is None:  # crashed before the start requests were committed
            return True
        if recorded == start_hash:
            return False
        if not self.force:
            raise JobMismatch(f"--job-dir {self.state.location}: the spider's start requests "
                              "changed since this job began (start_urls or -a arguments); use "
                              "--force-resume to continue with the new ones, or another --job-dir")
        return True

    def started(self, start_hash: str) -> None:
        """Record the job's identity (inside the transaction that pushes the start requests)."""
        s = self.state
        s.set_meta("spider", self.spider)
        s.set_meta("fingerprint_version", FINGERPRINT_VERSION)
        s.set_meta("start_hash", start_hash)

    def save(self, positions: Mapping[str, int], stats: Mapping[str, Any]) -> None:
        """Record output positions and stats (inside the engine's transaction)."""
        if positions:
            self.state.save_output_positions({self.output_key(p): n for p, n in positions.items()})
        self.state.set_meta("stats", stats)


def start_hash(fingerprints: list[bytes]) -> str:
    """A digest of the start requests' fingerprints, in order."""
    h = hashlib.sha1()
    for fp in fingerprints:
        h.update(fp)
    return h.hexdigest()
