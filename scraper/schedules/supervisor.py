"""The scheduler: runs the schedules of a config, each run a child process, until stopped.

    loop: reap ended runs → enforce run_timeout → start queued runs → start what fell due
          └─ sleeps until the next fire time (at most ``tick``); ``stop()`` wakes it at once

Each run is ``python -m scraper run SPIDER --summary RUNDIR/summary.json ...`` in its
own session, its output in ``RUNDIR/run.log``: a crawl that crashes, leaks or hangs
cannot take the scheduler down, and a Ctrl-C on the terminal reaches only the
scheduler, which decides what the runs get. A run's settings reach it through
``run --schedule-settings @RUNDIR/settings.json``, a layer between custom_settings and
``-s``: a file only this user can read, which the run deletes once read, so passwords
and tokens never show in ``ps``; the log (also this user's only) shows them masked.
A run starts with SIGINT and SIGTERM blocked until its handlers are in, so stopping
it at any instant is a graceful stop, never a kill.

- One run per spider at a time: a fire time that comes while the spider's previous
  run is going is skipped (``overlap: skip``) or queued, one deep (``queue``).
- Fire times are counted from the last one handled, kept in the history, so a
  scheduler started after being down knows what it missed (``misfire``).
- ``run_timeout``: SIGTERM (the run stops gracefully and writes its summary), then
  SIGKILL ``schedule_kill_grace`` seconds later.
- ``stop()``: no new runs; running ones get SIGTERM and up to ``schedule_kill_grace``
  to stop, then SIGKILL. ``stop(force=True)``: SIGKILL at once.

The history (``history``), metrics (``metrics``) and state files live in
``schedule_dir``, which one scheduler at a time may use (a lock file).

Beside ``serve``'s web server (another thread), the scheduler also runs jobs asked for
by hand (``submit``, ``run_now``), cancels runs (``cancel``), pauses schedules
(``pause``); the server calls these through ``call``, which runs them on the
scheduler's own thread, where its state and its history connection live. With
``run_files`` each run also writes its live stats (``STATS_FILE``) and its items
(``ITEMS_FILE``) in its run dir, for the dashboard and Scrapyd's ``items/``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TypeVar

from ..exceptions import ConfigError
from .listing import clock
from .childrun import counts, read_summary, signal_name, stop_signals_held, write_private
from .history import History
from .jobs import (JobRequest, PendingJobs, RunningJob, SchedulerState,
                   ScheduleState, new_job_id)
from .metrics import SchedulerMetrics
from .entries import (SchedulePlan, ScheduleEntry, due, format_duration, next_due,
                       upcoming)

__all__ = ["ITEMS_FILE", "SETTINGS_FILE", "STATS_FILE", "Scheduler"]

log = logging.getLogger(__name__)

#: The run dir's file that hands a run its schedule's settings (deleted once read).
SETTINGS_FILE = "settings.json"
#: With ``run_files``: the run dir's live stats (``run --stats-file``) and items (``-o``).
STATS_FILE = "stats.jsonl"
ITEMS_FILE = "items.jsonl"

T = TypeVar("T")


@dataclass
class _Run:
    """A run in progress: its child process and what the scheduler did to it."""

    id: int
    entry: ScheduleEntry
    proc: subprocess.Popen[bytes]
    started: float              # wall clock
    dir: Path
    summary_path: Path
    log_path: Path
    deadline: float | None      # monotonic; from run_timeout
    term_at: float | None = None  # monotonic: when it was sent SIGTERM
    why: str | None = None      # "timeout", "stopped" or "cancelled": why it was ended
    killed: bool = False
    job: str | None = None      # its API id


class Scheduler:
    """Runs ``plan``'s schedules until ``stop()``; ``run()`` returns the exit status
    (0 after a graceful stop, 130 after a forced one)."""

    def __init__(self, plan: SchedulePlan, *, tick: float = 0.5, misfire_grace: float = 60.0,
                 kill_grace: float | None = None, python: str = sys.executable,
                 run_files: bool = False, max_jobs: int | None = None) -> None:
        """``tick``: the most the loop sleeps (how soon an ended run is noticed);
        ``misfire_grace``: how late a fire time may be noticed and still count as on
        time (capped at half the gap to the next one); ``kill_grace``: overrides the
        ``schedule_kill_grace`` setting; ``python``: the interpreter runs use;
        ``run_files``: runs write STATS_FILE and ITEMS_FILE; ``max_jobs``: how many runs
        may go at once before a job asked for by hand waits (default: 4 per CPU, as
        Scrapyd's max_proc_per_cpu)."""
        self.plan = plan
        self.entries = plan.entries
        self.tick = tick
        self.misfire_grace = misfire_grace
        self.kill_grace = (plan.settings.schedule.kill_grace if kill_grace is None
                           else kill_grace)
        self.keep_runs: int = plan.settings.schedule.keep_runs
        self.python = python
        self.dir = plan.schedule_dir
        self.metrics = SchedulerMetrics((e.spider, e.name) for e in self.entries)
        self.history: History | None = None
        self._stop: str | None = None  # None, "graceful" or "force"
        self._running: dict[int, _Run] = {}
        self._queued: dict[str, tuple[float | None, str]] = {}  # schedule → (fire time, trigger)
        self._last: dict[str, float | None] = {}
        self._lock: IO[str] | None = None
        self.run_files = run_files
        self.max_jobs = max_jobs or 4 * (os.cpu_count() or 1)
        self.pending = PendingJobs()
        self._paused: set[str] = set()
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    @property
    def metrics_port(self) -> int | None:
        return self.metrics.port

    # -- control -----------------------------------------------------------------
    def stop(self, force: bool = False) -> None:
        """Stop starting runs and end the running ones: gracefully, or (``force``) with
        SIGKILL at once. Safe to call from a signal handler or another thread."""
        if force:
            self._stop = "force"
            for run in list(self._running.values()):
                self._signal(run, signal.SIGKILL)
                run.killed = True
        elif self._stop is None:
            self._stop = "graceful"
        self._wake()

    def _wake(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:  # the pipe is full: already woken
                pass

    def call(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the scheduler's thread at its next turn (at once: it is woken);
        the future has its result or exception. From any thread."""
        fut: Future[T] = Future()
        self._calls.put((fn, fut))
        if self._wake_w < 0:
            self._fail_calls()
        self._wake()
        return fut

    def _run_calls(self) -> None:
        while True:
            try:
                fn, fut = self._calls.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except Exception as e:
                    fut.set_exception(e)

    def _fail_calls(self) -> None:
        while True:
            try:
                _, fut = self._calls.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(ConfigError("the scheduler has stopped"))

    # -- what the server asks for (on the scheduler's thread, through ``call``) ---
    def submit(self, job: JobRequest) -> None:
        """Queue a job asked for by hand; it starts at the next turn if a slot is free.
        ConfigError if the scheduler is stopping or the job id is taken."""
        assert self.history is not None
        if self._stop is not None:
            raise ConfigError("the server is stopping: no new jobs")
        if self.pending.get(job.id) or self.history.find_job(job.id):
            raise ConfigError(f"jobid {job.id!r} is taken: give another or none")
        self.pending.add(job)
        log.info("job %s of spider %s queued", job.id, job.spider)

    def run_now(self, name: str) -> str:
        """Start a run of schedule ``name`` now (trigger ``manual``); returns its job id.
        ConfigError if its spider is running (one run per spider) or it cannot start."""
        entry = self._entry(name)
        if self._stop is not None:
            raise ConfigError("the server is stopping: no new runs")
        busy = self._busy(entry.spider)
        if busy is not None:
            raise ConfigError(f"schedule {name}: spider {entry.spider} is already running "
                              f"(run {busy.id}); one run per spider at a time")
        job = self._start(entry, None, "manual")
        if job is None:
            raise ConfigError(f"schedule {name}: the run could not start (see the server's log)")
        return job

    def cancel(self, job: str) -> str | None:
        """Cancel job ``job``: a pending one is dropped, a running one stopped gracefully
        (SIGTERM; killed after schedule_kill_grace, or at once when cancelled again).
        Returns its state before ("pending", "running"), None if it is neither."""
        if self.pending.remove(job) is not None:
            log.info("job %s cancelled before it started", job)
            return "pending"
        run = next((r for r in self._running.values() if r.job == job), None)
        if run is None:
            return None
        if run.term_at is None:
            run.why, run.term_at = "cancelled", time.monotonic()
            self._signal(run, signal.SIGTERM)
            log.info("run %d of %s (job %s) cancelled: stopping it gracefully (SIGTERM)",
                     run.id, run.entry.name, job)
        elif not run.killed:
            run.why, run.killed = "cancelled", True
            self._signal(run, signal.SIGKILL)
            log.info("run %d of %s (job %s) cancelled again: killed", run.id, run.entry.name, job)
        return "running"

    def pause(self, name: str, paused: bool = True) -> None:
        """Pause (or resume) schedule ``name``: while paused its fire times pass without a
        run. Kept in the history, so a restart keeps it paused."""
        assert self.history is not None
        self._entry(name)
        self.history.set_paused(name, paused, time.time())
        (self._paused.add if paused else self._paused.discard)(name)
        log.info("schedule %s %s", name, "paused" if paused else "resumed")

    def state(self) -> SchedulerState:
        """What the scheduler is doing now."""
        now = time.time()
        schedules = tuple(ScheduleState(e, next_due(e, self._last.get(e.name), now),
                                        e.name in self._paused, e.name in self._queued)
                          for e in self.entries)
        running = tuple(RunningJob(r.id, r.job, r.entry.name, r.entry.spider, r.proc.pid,
                                   r.started, r.term_at is not None)
                        for r in sorted(self._running.values(), key=lambda r: r.id))
        return SchedulerState(schedules, tuple(self.pending.jobs()), running,
                              self._stop is not None, now)

    def _entry(self, name: str) -> ScheduleEntry:
        entry = next((e for e in self.entries if e.name == name), None)
        if entry is None:
            known = ", ".join(e.name for e in self.entries) or "none"
            raise ConfigError(f"no schedule named {name!r} (known: {known})")
        return entry

    def run(self) -> int:
        try:
            self.open()
            while self._stop is None:
                self._step()
                if self._stop is None:
                    self._wait(self._sleep_time())
            return self._shutdown()
        except BaseException:
            # the history failed, say: do not leave runs going unwatched
            for run in self._running.values():
                self._signal(run, signal.SIGTERM)
            if self._running:
                log.error("scheduler failing: %d run(s) sent SIGTERM", len(self._running))
            raise
        finally:
            self.close()

    def open(self) -> None:
        """Take ``schedule_dir``, open the history, settle runs a dead scheduler left,
        start the metrics endpoint. Raises ConfigError (another scheduler, a port).
        Once open, does nothing (``run`` opens it unless the caller did)."""
        if self._lock is not None:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.dir / "scheduler.lock", "a+", encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"schedule_dir {self.dir}: cannot be used ({e.strerror or e})") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.seek(0)
            owner = self._lock.read().strip() or "?"
            self._lock.close()
            self._lock = None
            raise ConfigError(f"schedule_dir {self.dir}: another scheduler (pid {owner}) is "
                              "running there; stop it or set another schedule_dir") from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"{os.getpid()}\n")
        self._lock.flush()
        self.history = History(self.dir / "history.sqlite")
        self._settle_orphans()
        for entry in self.entries:
            self._last[entry.name] = self.history.last_fire(entry.name, entry.spec)
        self._paused = set(self.history.paused()) & {e.name for e in self.entries}
        for spider, t in self.history.last_success().items():
            self.metrics.last_success.labels(spider).set(t)
        port = self.plan.settings.schedule.metrics_port
        if port is not None:
            host = self.plan.settings.schedule.metrics_host
            actual = self.metrics.serve(host, port)
            log.info("metrics on http://%s:%d/metrics", host, actual)
        now = time.time()
        log.info("scheduler started: %d schedule(s); history and logs in %s",
                 len(self.entries), self.dir)
        for entry in self.entries:
            first = upcoming(entry, self._last[entry.name], now, 1, self.misfire_grace)[0]
            log.info("schedule %s: spider %s, %s, next run %s%s", entry.name, entry.spider,
                     entry.spec, "now" if first[0] <= now else clock(first[0]),
                     " (paused)" if entry.name in self._paused else "")

    def close(self) -> None:
        self.metrics.close()
        self._fail_calls()
        if self.pending:
            log.info("dropping %d pending job(s)", len(self.pending.clear()))
        if self.history is not None:
            self.history.close()
            self.history = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        wake_r, wake_w = self._wake_r, self._wake_w
        self._wake_r = self._wake_w = -1  # stop() after this must not write to a reused fd
        for fd in (wake_r, wake_w):
            if fd >= 0:
                os.close(fd)

    # -- the loop ----------------------------------------------------------------
    def _reap(self) -> None:
        """Record runs that ended; stop those past their run_timeout."""
        for run in list(self._running.values()):
            rc = run.proc.poll()
            if rc is not None:
                self._ended(run, rc)
            else:
                self._enforce_timeout(run)

    def _step(self) -> None:
        assert self.history is not None
        self._run_calls()
        self._reap()
        self._start_queued()
        self._start_pending()
        now = time.time()
        for entry in self.entries:
            d = due(entry, self._last[entry.name], now, self.misfire_grace)
            if d is None:
                continue
            self._last[entry.name] = d.last
            self.history.set_last_fire(entry.name, entry.spec, d.last)
            if d.missed:
                log.warning("schedule %s: %d run(s) missed while the scheduler was not running "
                            "(misfire: %s)%s", entry.name, d.missed, entry.misfire,
                            "; running once now" if d.trigger == "misfire" and
                            d.fire_time is not None else "")
            if d.fire_time is not None and entry.name in self._paused:
                log.info("schedule %s is paused: no run for its fire time %s", entry.name,
                         clock(d.fire_time))
            elif d.fire_time is not None:
                self._fire(entry, d.fire_time, d.trigger)
        for entry in self.entries:
            self.metrics.next_fire.labels(entry.name).set(
                next_due(entry, self._last[entry.name], now))

    def _sleep_time(self) -> float:
        now = time.time()
        wake = now + self.tick
        for entry in self.entries:
            wake = min(wake, next_due(entry, self._last[entry.name], now))
        mono = time.monotonic()
        for run in self._running.values():
            for t in (run.deadline if run.term_at is None else None,
                      run.term_at + self.kill_grace if run.term_at is not None else None):
                if t is not None:
                    wake = min(wake, now + (t - mono))
        return max(0.0, wake - now)

    def _wait(self, timeout: float) -> None:
        ready, _, _ = select.select([self._wake_r], [], [], timeout)
        if ready:
            try:
                os.read(self._wake_r, 4096)
            except OSError:
                pass

    def _fire(self, entry: ScheduleEntry, fire_time: float | None, trigger: str) -> None:
        busy = self._busy(entry.spider)
        if busy is None:
            self._start(entry, fire_time, trigger)
            return
        if entry.overlap == "queue" and entry.name not in self._queued:
            self._queued[entry.name] = (fire_time, "queued")
            log.info("schedule %s: spider %s is still running (run %d); this run is queued "
                     "(overlap: queue)", entry.name, entry.spider, busy.id)
            return
        why = ("a run is already queued" if entry.overlap == "queue"
               else f"run {busy.id} of spider {entry.spider} still running")
        assert self.history is not None
        self.history.record_skip(schedule=entry.name, spider=entry.spider, trigger=trigger,
                                 fire_time=fire_time, at=time.time(), reason="overlap",
                                 note=why)
        self.metrics.runs.labels(entry.spider, entry.name, "skipped").inc()
        log.warning("schedule %s: skipped: %s (overlap: %s)", entry.name, why, entry.overlap)

    def _busy(self, spider: str) -> _Run | None:
        return next((r for r in self._running.values() if r.entry.spider == spider), None)

    def _start_pending(self) -> None:
        """Jobs asked for by hand, while fewer than ``max_jobs`` runs go."""
        while len(self._running) < self.max_jobs:
            job = self.pending.pop()
            if job is None:
                return
            self._start(job.entry(), None, "api", job=job.id)

    def _start_queued(self) -> None:
        for name, (fire_time, trigger) in list(self._queued.items()):
            entry = next(e for e in self.entries if e.name == name)
            if self._busy(entry.spider) is None:
                del self._queued[name]
                self._start(entry, fire_time, trigger)

    # -- one run -----------------------------------------------------------------
    def command(self, entry: ScheduleEntry, summary_path: Path) -> list[str]:
        """The command line of a run of ``entry``; its settings (if any) are read from
        ``settings.json`` next to ``summary_path``, which ``_start`` writes."""
        cmd = [self.python, "-m", "scraper", "run", entry.spider, "--summary", str(summary_path)]
        if self.plan.config.path is not None:
            cmd += ["--config", str(self.plan.config.path.resolve())]
        if entry.run_settings():
            cmd += ["--schedule-settings", f"@{summary_path.parent / SETTINGS_FILE}"]
        for key, value in entry.args.items():
            cmd += ["-a", f"{key}={value}"]
        if entry.job_dir is not None:
            cmd += ["--job-dir", entry.job_dir]
        if self.run_files:
            cmd += ["--stats-file", str(summary_path.parent / STATS_FILE),
                    "-o", str(summary_path.parent / ITEMS_FILE)]
        return cmd

    def _start(self, entry: ScheduleEntry, fire_time: float | None, trigger: str,
               job: str | None = None) -> str | None:
        """Start a run; returns its job id (None: it could not start)."""
        assert self.history is not None
        started = time.time()
        job_dir = str(Path(entry.job_dir).resolve()) if entry.job_dir else None
        job = job or new_job_id()
        run_id = self.history.start_run(schedule=entry.name, spider=entry.spider,
                                        trigger=trigger, fire_time=fire_time, started=started,
                                        job_dir=job_dir, job=job)
        stamp = datetime.fromtimestamp(started).strftime("%Y%m%dT%H%M%S")
        rundir = self.dir / "runs" / entry.name / f"{stamp}-{run_id}"
        summary, logfile = rundir / "summary.json", rundir / "run.log"
        cmd = self.command(entry, summary)
        try:
            proc = self._spawn(cmd, rundir, logfile, entry,
                               f"# run {run_id} of schedule {entry.name} ({trigger}): ")
        except OSError as e:
            note = f"could not start: {e.strerror or e}"
            self.history.update(run_id, finished=time.time(), status="failed", note=note,
                                log_path=str(logfile), summary_path=str(summary))
            self.metrics.run_ended(entry.spider, entry.name, "failed", pages=0, items=0,
                                   errors=0, finished=time.time())
            log.error("run %d of %s: %s", run_id, entry.name, note)
            return None
        self.history.update(run_id, pid=proc.pid, summary_path=str(summary),
                            log_path=str(logfile))
        deadline = time.monotonic() + entry.run_timeout if entry.run_timeout else None
        self._running[run_id] = _Run(run_id, entry, proc, started, rundir, summary, logfile,
                                     deadline, job=job)
        self.metrics.running.labels(entry.spider).inc()
        log.info("run %d of %s started (spider %s, %s, pid %d, job %s); log: %s", run_id,
                 entry.name, entry.spider, trigger, proc.pid, job, logfile)
        return job

    @staticmethod
    def _spawn(cmd: list[str], rundir: Path, logfile: Path, entry: ScheduleEntry,
               header: str) -> subprocess.Popen[bytes]:
        """Start a run: its settings in a private file, its log private too (both may show
        what the crawl does with credentials), its stop signals held until it handles them."""
        rundir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings = entry.run_settings()
        if settings:
            write_private(rundir / SETTINGS_FILE, json.dumps(settings, default=str))
        fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as out:
            out.write(f"{header}{shlex.join(cmd)}\n".encode())
            if settings:
                out.write(f"# settings: {json.dumps(entry.shown_settings(), default=str)}\n"
                          .encode())
            out.flush()
            with stop_signals_held():
                return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def _enforce_timeout(self, run: _Run) -> None:
        mono = time.monotonic()
        if run.term_at is None and run.deadline is not None and mono >= run.deadline:
            run.why = "timeout"
            run.term_at = mono
            self._signal(run, signal.SIGTERM)
            log.warning("run %d of %s: over its run_timeout of %s; stopping it gracefully "
                        "(SIGTERM)", run.id, run.entry.name,
                        format_duration(run.entry.run_timeout or 0))
        elif run.term_at is not None and not run.killed and mono >= run.term_at + self.kill_grace:
            run.killed = True
            self._signal(run, signal.SIGKILL)
            log.warning("run %d of %s: still running %s after SIGTERM; killed (SIGKILL)",
                        run.id, run.entry.name, format_duration(self.kill_grace))

    @staticmethod
    def _signal(run: _Run, sig: int) -> None:
        try:
            os.killpg(run.proc.pid, sig)  # its own session: the run and anything it started
        except (ProcessLookupError, PermissionError):
            pass

    def _ended(self, run: _Run, rc: int) -> None:
        assert self.history is not None
        self._running.pop(run.id, None)
        (run.dir / SETTINGS_FILE).unlink(missing_ok=True)  # a run that died before reading it
        finished = time.time()
        entry = run.entry
        summary = read_summary(run.summary_path)
        reason = summary.get("reason") if summary else None
        if run.why is not None:
            status = run.why
        else:
            status = "ok" if rc == 0 and reason != "error" else "failed"
        crawl = counts(summary)
        own = crawl
        job_dir = str(Path(entry.job_dir).resolve()) if entry.job_dir else None
        if summary is not None and job_dir is not None:
            # a resumed job's summary holds the job's totals: count this run's share only
            prev = self.history.previous_job_run(job_dir, run.id)
            if prev is not None and prev.crawl_started == summary.get("started"):
                own = (max(0, crawl[0] - (prev.crawl_pages or 0)),
                       max(0, crawl[1] - (prev.crawl_items or 0)),
                       max(0, crawl[2] - (prev.crawl_errors or 0)))
        notes = []
        if rc < 0:
            notes.append(f"killed by {signal_name(-rc)}")
        if run.why == "stopped":
            notes.append("stopped with the scheduler")
        elif run.why == "cancelled":
            notes.append("cancelled by a user")
        if summary is None:
            notes.append("no summary written (see the log)")
        self.history.update(
            run.id, finished=finished, status=status, exit_status=rc, reason=reason,
            pages=own[0] if summary else None, items=own[1] if summary else None,
            errors=own[2] if summary else None,
            crawl_started=summary.get("started") if summary else None,
            crawl_pages=crawl[0] if summary else None, crawl_items=crawl[1] if summary else None,
            crawl_errors=crawl[2] if summary else None, note="; ".join(notes) or None)
        self.metrics.running.labels(entry.spider).dec()
        self.metrics.run_ended(entry.spider, entry.name, status, pages=own[0], items=own[1],
                               errors=own[2], finished=finished)
        level = logging.INFO if status == "ok" else logging.WARNING
        log.log(level, "run %d of %s ended: %s (exit %d, reason %s): %d pages, %d items, "
                "%d errors in %s", run.id, entry.name, status, rc, reason, own[0], own[1],
                own[2], format_duration(max(finished - run.started, 0.001)))
        self._prune(entry.name)

    def _prune(self, schedule: str) -> None:
        assert self.history is not None
        runs_root = (self.dir / "runs").resolve()
        for old in self.history.prune(schedule, self.keep_runs):
            if old.log_path:
                rundir = Path(old.log_path).parent.resolve()
                if runs_root in rundir.parents:
                    shutil.rmtree(rundir, ignore_errors=True)

    def _settle_orphans(self) -> None:
        """Runs a previous scheduler left as running: ended since (a summary) or lost."""
        assert self.history is not None
        for rec in self.history.runs(status="running"):
            if rec.log_path:  # the settings of a run that died before reading them
                (Path(rec.log_path).parent / SETTINGS_FILE).unlink(missing_ok=True)
            summary = read_summary(Path(rec.summary_path)) if rec.summary_path else None
            if summary is not None:
                pages, items, errors = counts(summary)
                self.history.update(rec.id, status="ok" if summary.get("reason") != "error"
                                    else "failed", finished=time.time(),
                                    reason=summary.get("reason"), pages=pages, items=items,
                                    errors=errors, crawl_started=summary.get("started"),
                                    crawl_pages=pages, crawl_items=items, crawl_errors=errors,
                                    note="ended while the scheduler was not running")
            else:
                self.history.update(rec.id, status="lost", finished=time.time(),
                                    note=f"the scheduler stopped while it ran (pid {rec.pid}); "
                                         "if that process is still alive, nothing watches it")
                log.warning("run %d of %s was running when the scheduler stopped (pid %s); "
                            "recorded as lost", rec.id, rec.schedule, rec.pid)

    # -- stopping ----------------------------------------------------------------
    def _shutdown(self) -> int:
        if self._queued:
            log.info("dropping %d queued run(s): %s", len(self._queued), ", ".join(self._queued))
            self._queued.clear()
        self._terminate_all()
        if self._running and self._stop != "force":
            log.info("stopping: %d run(s) going; they stop gracefully (up to %s, then killed; "
                     "a second signal kills them at once)", len(self._running),
                     format_duration(self.kill_grace))
        while self._running:
            if self._stop == "force":
                self._kill_all()
            self._run_calls()  # the web server still asks (and may cancel a run)
            self._reap()
            if self._running:
                self._wait(min(self.tick, 0.05) if self._stop == "force" else self.tick)
        log.info("scheduler stopped")
        return 130 if self._stop == "force" else 0

    def _terminate_all(self) -> None:
        """SIGTERM to every run not yet asked to stop: they stop gracefully."""
        now = time.monotonic()
        for run in self._running.values():
            if run.why is None:
                run.why = "stopped"
            if run.term_at is None:
                run.term_at = now
                self._signal(run, signal.SIGTERM)

    def _kill_all(self) -> None:
        for run in self._running.values():
            if not run.killed:
                run.killed = True
                self._signal(run, signal.SIGKILL)
