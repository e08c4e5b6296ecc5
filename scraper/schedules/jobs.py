"""Runs asked for by hand, beside the schedules (``serve``: Scrapyd's ``schedule.json``
and the dashboard): what such a job is (``JobRequest``), the queue of those waiting for
a slot (``PendingJobs``, highest ``priority`` first, then first come), and the snapshot
of the scheduler the web server shows (``SchedulerState``).

A job runs exactly as a scheduled run does (a ``python -m scraper run`` child, recorded
in the same history), as a run of the pseudo-schedule ``API_SCHEDULE``; its settings
and spider arguments were checked when it was asked for, as a schedule's are at start.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .entries import ScheduleEntry

__all__ = ["API_SCHEDULE", "JobRequest", "PendingJobs", "RunningJob", "ScheduleState",
           "SchedulerState", "new_job_id"]

#: The schedule name of runs started through the API: a schedule's own name must start
#: with a letter or digit, so it is never one.
API_SCHEDULE = "_api"


def new_job_id() -> str:
    """A job id as Scrapyd makes them: 32 hex digits."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class JobRequest:
    """A run asked for by hand: its id, spider, settings layer, spider arguments, priority."""

    id: str
    spider: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    args: Mapping[str, str] = field(default_factory=dict)
    priority: float = 0.0
    submitted: float = field(default_factory=time.time)

    def entry(self) -> ScheduleEntry:
        """The entry its run is started from, as a scheduled run is from its schedule's."""
        return ScheduleEntry(name=API_SCHEDULE, spider=self.spider, every=1.0,
                             settings=dict(self.settings), args=dict(self.args))


class PendingJobs:
    """Jobs waiting to start: highest priority first, then in the order they came.
    Thread-safe (the web server lists them while the scheduler takes them)."""

    def __init__(self) -> None:
        self._jobs: list[JobRequest] = []
        self._lock = threading.Lock()

    def add(self, job: JobRequest) -> None:
        with self._lock:
            self._jobs.append(job)
            self._jobs.sort(key=lambda j: (-j.priority, j.submitted))

    def pop(self) -> JobRequest | None:
        with self._lock:
            return self._jobs.pop(0) if self._jobs else None

    def remove(self, job_id: str) -> JobRequest | None:
        with self._lock:
            for i, job in enumerate(self._jobs):
                if job.id == job_id:
                    return self._jobs.pop(i)
        return None

    def get(self, job_id: str) -> JobRequest | None:
        with self._lock:
            return next((j for j in self._jobs if j.id == job_id), None)

    def jobs(self) -> list[JobRequest]:
        with self._lock:
            return list(self._jobs)

    def clear(self) -> list[JobRequest]:
        with self._lock:
            jobs, self._jobs = self._jobs, []
            return jobs

    def __len__(self) -> int:
        return len(self._jobs)


@dataclass(frozen=True)
class ScheduleState:
    """One schedule as the dashboard shows it."""

    entry: ScheduleEntry
    next_run: float
    paused: bool
    queued: bool


@dataclass(frozen=True)
class RunningJob:
    """A run going now: its history row id, API id, process, and whether it is being stopped."""

    run_id: int
    job: str | None
    schedule: str
    spider: str
    pid: int
    started: float
    stopping: bool


@dataclass(frozen=True)
class SchedulerState:
    """What the scheduler is doing, taken on its own thread (``Scheduler.state``)."""

    schedules: tuple[ScheduleState, ...]
    pending: tuple[JobRequest, ...]
    running: tuple[RunningJob, ...]
    stopping: bool
    taken_at: float
