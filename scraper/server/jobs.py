"""The jobs model of ``serve``: the one project, its spiders and schedules, and every run
as a job — pending (asked for, waiting for a slot), running, finished — with the files
of a run (log, items, live stats, summary) and the crawl state behind it (dead letters).

What the scheduler holds in memory (pending jobs, paused schedules, next fire times,
runs being stopped) is read and changed on its own thread (``Scheduler.call``);
everything else comes from its history, opened read-only for each question (SQLite in
WAL mode: the scheduler writes while this reads).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..config import load_config, parse_cli_settings
from ..crawl.admin import DeadLetter, dead_letters, retry_failed
from ..crawl.runner import check_crawl
from ..crawl.statsfile import read_stats
from ..exceptions import ConfigError, SpiderNotFound
from ..loader import find_spiders
from ..schedules.entries import SCHEDULER_SETTINGS, SchedulePlan
from ..schedules.history import History, RunRecord
from ..schedules.jobs import API_SCHEDULE, JobRequest, SchedulerState, new_job_id
from ..schedules.supervisor import ITEMS_FILE, STATS_FILE, Scheduler

__all__ = ["Job", "JobLists", "Project", "SchedulerGone", "first_items", "live_stats", "log_tail",
           "recent_stats", "summary"]

T = TypeVar("T")

_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: How long a request waits for the scheduler's thread to answer.
ANSWER_TIMEOUT = 15.0


class SchedulerGone(ConfigError):
    """The scheduler did not answer (it is stopping, or stuck in a long step)."""


@dataclass(frozen=True)
class Job:
    """A run as the API and the dashboard show it."""

    id: str
    spider: str
    state: str                        # pending, running or finished
    status: str                       # pending, running, or the history's final status
    schedule: str | None = None       # None: asked for by hand (schedule.json)
    trigger: str = "api"
    run_id: int | None = None
    pid: int | None = None
    started: float | None = None
    finished: float | None = None
    pages: int | None = None
    items: int | None = None
    errors: int | None = None
    reason: str | None = None
    note: str | None = None
    exit_status: int | None = None
    stopping: bool = False
    log_path: Path | None = None
    summary_path: Path | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    priority: float = 0.0

    @property
    def stats_path(self) -> Path | None:
        return self.log_path.parent / STATS_FILE if self.log_path else None

    @property
    def items_path(self) -> Path | None:
        return self.log_path.parent / ITEMS_FILE if self.log_path else None

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return None if self.finished is None else self.finished - self.started

    @classmethod
    def of_run(cls, r: RunRecord, stopping: bool = False) -> Job:
        running = r.status == "running"
        return cls(id=r.job or str(r.id), spider=r.spider,
                   state="running" if running else "finished", status=r.status,
                   schedule=None if r.schedule == API_SCHEDULE else r.schedule,
                   trigger=r.trigger, run_id=r.id, pid=r.pid, started=r.started,
                   finished=r.finished, pages=r.pages, items=r.items, errors=r.errors,
                   reason=r.reason, note=r.note, exit_status=r.exit_status, stopping=stopping,
                   log_path=Path(r.log_path) if r.log_path else None,
                   summary_path=Path(r.summary_path) if r.summary_path else None)

    @classmethod
    def of_request(cls, j: JobRequest) -> Job:
        return cls(id=j.id, spider=j.spider, state="pending", status="pending",
                   started=None, args=dict(j.args), settings=dict(j.settings),
                   priority=j.priority)


@dataclass(frozen=True)
class JobLists:
    pending: list[Job]
    running: list[Job]
    finished: list[Job]


class Project:
    """The project ``serve`` runs: its config, spiders, scheduler and history."""

    def __init__(self, plan: SchedulePlan, scheduler: Scheduler) -> None:
        self.plan = plan
        self.scheduler = scheduler
        base = plan.config.base_dir.resolve()
        self.name = base.name or "default"
        self.history_path = plan.schedule_dir / "history.sqlite"

    # -- the scheduler's side ------------------------------------------------------
    async def ask(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the scheduler's thread; its exception is raised here."""
        fut = self.scheduler.call(lambda: fn(*args))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), ANSWER_TIMEOUT)
        except TimeoutError:
            raise SchedulerGone(f"the scheduler did not answer within {ANSWER_TIMEOUT:g} s "
                                "(is it stopping?)") from None

    async def state(self) -> SchedulerState:
        return await self.ask(self.scheduler.state)

    # -- reading the history -------------------------------------------------------
    @contextmanager
    def history(self) -> Iterator[History]:
        h = History(self.history_path, readonly=True)
        try:
            yield h
        finally:
            h.close()

    async def jobs(self, spider: str | None = None, finished_limit: int = 100) -> JobLists:
        state = await self.state()
        stopping = {r.run_id for r in state.running if r.stopping}
        pending = [Job.of_request(j) for j in state.pending if spider in (None, j.spider)]
        with self.history() as h:
            running = [Job.of_run(r, r.id in stopping)
                       for r in reversed(h.runs(spider, status="running"))
                       if spider in (None, r.spider)]
            finished = []
            for r in h.runs(spider, limit=finished_limit * 2):
                if r.status not in ("running", "skipped") and spider in (None, r.spider):
                    finished.append(Job.of_run(r))
        return JobLists(pending, running, finished[:finished_limit])

    async def find(self, job_id: str) -> Job | None:
        """The job ``job_id`` in any state; None if there is none."""
        state = await self.state()
        for j in state.pending:
            if j.id == job_id:
                return Job.of_request(j)
        with self.history() as h:
            r = h.find_job(job_id)
        if r is None:
            return None
        return Job.of_run(r, any(x.run_id == r.id and x.stopping for x in state.running))

    async def job(self, job_id: str, spider: str | None = None) -> Job:
        """``find``, or ConfigError naming the job (and the spider, if it is not its)."""
        job = await self.find(job_id)
        if job is None or (spider is not None and job.spider != spider):
            of = f" of spider {spider!r}" if spider is not None else ""
            raise ConfigError(f"job {job_id!r}: no such job{of}")
        return job

    # -- spiders and the jobs asked for ----------------------------------------------
    def spiders(self) -> list[str]:
        return list(self._spider_classes())

    def _spider_classes(self) -> dict[str, type]:
        s = self.plan.settings
        return dict(find_spiders(s.crawl.spiders_path, self.plan.config.base_dir))

    def check_project(self, project: str | None) -> None:
        if project not in (None, "", self.name):
            raise ConfigError(f"project {project!r} not found: this server runs one project, "
                              f"{self.name!r}")

    def job_request(self, spider: str | None, settings: Sequence[str],
                    args: Mapping[str, str], jobid: str | None,
                    priority: str | None) -> JobRequest:
        """A job asked for through schedule.json, checked as ``run`` would check it (the
        spider, every setting, the spider arguments, outputs and pipelines)."""
        if not spider:
            raise ConfigError("spider is required (the spider's name)")
        classes = self._spider_classes()
        if spider not in classes:
            known = ", ".join(classes) or "none"
            raise SpiderNotFound(f"spider {spider!r} not found (known: {known})")
        if jobid is not None and not _JOB_ID_RE.match(jobid):
            raise ConfigError(f"jobid {jobid!r}: letters, digits, '.', '_' and '-' only "
                              "(at most 100, not starting with a sign)")
        prio = _priority(priority)
        layer = parse_cli_settings(list(settings), flag="setting")
        for key in layer:
            if key in SCHEDULER_SETTINGS or key == "api_token":
                raise ConfigError(f"setting {key}: a setting of the server, not of a run")
        for key in args:
            if not key.isidentifier():
                raise ConfigError(f"spider argument {key!r}: must be a Python identifier")
        config = load_config(self.plan.config.path)  # as the run will read it
        check_crawl(classes[spider], config=config, schedule_settings=layer,
                    schedule_source="the job's settings", spider_args=dict(args))
        return JobRequest(jobid or new_job_id(), spider, layer, dict(args), prio)

    # -- dead letters --------------------------------------------------------------
    def dead_letter_store(self, spider: str) -> str | None:
        """Where ``spider``'s dead letters are kept: the job dir of its schedule that has
        one (returned), else the config's backend (None). ConfigError if neither."""
        if spider not in self._spider_classes():
            raise SpiderNotFound(f"spider {spider!r} not found")
        for entry in self.plan.entries:
            if entry.spider == spider and entry.job_dir:
                return entry.job_dir
        if self.plan.settings.backend.url:
            return None
        raise ConfigError(f"spider {spider!r} keeps no dead letters: none of its schedules has a "
                          "job_dir and the config has no backend (a run's state ends with it)")

    def dead_letter_spiders(self) -> list[tuple[str, str]]:
        """(spider, where) for every spider whose dead letters can be listed."""
        out: dict[str, str] = {}
        for entry in self.plan.entries:
            if entry.job_dir and entry.spider not in out:
                out[entry.spider] = f"job dir {entry.job_dir}"
        if self.plan.settings.backend.url:
            for entry in self.plan.entries:
                out.setdefault(entry.spider, "backend")
        return sorted(out.items())

    def dead_letters(self, spider: str, limit: int = 100) -> tuple[int, list[DeadLetter]]:
        job_dir = self.dead_letter_store(spider)
        return dead_letters(spider, job_dir, self.plan.config.path, limit=limit)

    def retry_failed(self, spider: str) -> int:
        job_dir = self.dead_letter_store(spider)
        return retry_failed(spider, job_dir, self.plan.config.path)


# -- the files of a run ------------------------------------------------------------
def live_stats(job: Job, max_points: int = 300) -> list[dict[str, Any]]:
    """The run's progress snapshots (see ``crawl.statsfile``), oldest first."""
    return read_stats(job.stats_path, max_points) if job.stats_path else []


def recent_stats(job: Job, count: int = 2, max_bytes: int = 4096) -> list[dict[str, Any]]:
    """The run's last ``count`` progress snapshots, reading only the end of its file."""
    if job.stats_path is None:
        return []
    try:
        with open(job.stats_path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - max_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for raw in reversed(lines):
        try:
            value = json.loads(raw)
        except ValueError:
            continue  # cut at the start of the window, or being written
        if isinstance(value, dict):
            out.insert(0, value)
            if len(out) >= count:
                break
    return out


def summary(job: Job) -> dict[str, Any] | None:
    if job.summary_path is None:
        return None
    try:
        data = json.loads(job.summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def log_tail(job: Job, lines: int = 40, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of the run's log."""
    if job.log_path is None:
        return ""
    try:
        with open(job.log_path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def first_items(job: Job, count: int = 10) -> list[dict[str, Any]]:
    """The run's first ``count`` items (from its own items file)."""
    if job.items_path is None:
        return []
    out: list[dict[str, Any]] = []
    try:
        with open(job.items_path, encoding="utf-8") as f:
            for raw in f:
                if len(out) >= count:
                    break
                try:
                    value = json.loads(raw)
                except ValueError:
                    continue  # a line still being written
                out.append(value if isinstance(value, dict) else {"value": value})
    except OSError:
        return []
    return out


def _priority(value: str | None) -> float:
    if value is None or value == "":
        return 0.0
    try:
        prio = float(value)
    except ValueError:
        prio = float("nan")
    if prio != prio or prio in (float("inf"), float("-inf")):
        raise ConfigError(f"priority {value!r}: must be a number")
    return prio
