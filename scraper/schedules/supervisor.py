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
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..exceptions import ConfigError
from .history import History, RunRecord
from .metrics import SchedulerMetrics
from .entries import (SchedulePlan, ScheduleEntry, due, format_duration, next_due,
                       upcoming)

__all__ = ["SETTINGS_FILE", "Scheduler", "dry_run", "format_runs"]

log = logging.getLogger(__name__)

#: The run dir's file that hands a run its schedule's settings (deleted once read).
SETTINGS_FILE = "settings.json"


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
    why: str | None = None      # "timeout" or "stopped": why the scheduler ended it
    killed: bool = False


class Scheduler:
    """Runs ``plan``'s schedules until ``stop()``; ``run()`` returns the exit status
    (0 after a graceful stop, 130 after a forced one)."""

    def __init__(self, plan: SchedulePlan, *, tick: float = 0.5, misfire_grace: float = 60.0,
                 kill_grace: float | None = None, python: str = sys.executable) -> None:
        """``tick``: the most the loop sleeps (how soon an ended run is noticed);
        ``misfire_grace``: how late a fire time may be noticed and still count as on
        time (capped at half the gap to the next one); ``kill_grace``: overrides the
        ``schedule_kill_grace`` setting; ``python``: the interpreter runs use."""
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
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:  # the pipe is full: already woken
                pass

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
        start the metrics endpoint. Raises ConfigError (another scheduler, a port)."""
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
            log.info("schedule %s: spider %s, %s, next run %s", entry.name, entry.spider,
                     entry.spec, "now" if first[0] <= now else _clock(first[0]))

    def close(self) -> None:
        self.metrics.close()
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
        self._reap()
        self._start_queued()
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
            if d.fire_time is not None:
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
        return cmd

    def _start(self, entry: ScheduleEntry, fire_time: float | None, trigger: str) -> None:
        assert self.history is not None
        started = time.time()
        job_dir = str(Path(entry.job_dir).resolve()) if entry.job_dir else None
        run_id = self.history.start_run(schedule=entry.name, spider=entry.spider,
                                        trigger=trigger, fire_time=fire_time, started=started,
                                        job_dir=job_dir)
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
            return
        self.history.update(run_id, pid=proc.pid, summary_path=str(summary),
                            log_path=str(logfile))
        deadline = time.monotonic() + entry.run_timeout if entry.run_timeout else None
        self._running[run_id] = _Run(run_id, entry, proc, started, rundir, summary, logfile,
                                     deadline)
        self.metrics.running.labels(entry.spider).inc()
        log.info("run %d of %s started (spider %s, %s, pid %d); log: %s", run_id, entry.name,
                 entry.spider, trigger, proc.pid, logfile)

    @staticmethod
    def _spawn(cmd: list[str], rundir: Path, logfile: Path, entry: ScheduleEntry,
               header: str) -> subprocess.Popen[bytes]:
        """Start a run: its settings in a private file, its log private too (both may show
        what the crawl does with credentials), its stop signals held until it handles them."""
        rundir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings = entry.run_settings()
        if settings:
            _write_private(rundir / SETTINGS_FILE, json.dumps(settings, default=str))
        fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as out:
            out.write(f"{header}{shlex.join(cmd)}\n".encode())
            if settings:
                out.write(f"# settings: {json.dumps(entry.shown_settings(), default=str)}\n"
                          .encode())
            out.flush()
            with _stop_signals_held():
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
        summary = _read_summary(run.summary_path)
        reason = summary.get("reason") if summary else None
        if run.why is not None:
            status = run.why
        else:
            status = "ok" if rc == 0 and reason != "error" else "failed"
        crawl = _counts(summary)
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
            notes.append(f"killed by {_signal_name(-rc)}")
        if run.why == "stopped":
            notes.append("stopped with the scheduler")
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
            summary = _read_summary(Path(rec.summary_path)) if rec.summary_path else None
            if summary is not None:
                pages, items, errors = _counts(summary)
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


# -- helpers -------------------------------------------------------------------
def _write_private(path: Path, text: str) -> None:
    """``text`` in a new file only this user can read (made so, not chmod-ed after)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread while a run is started: the child inherits
    the mask across exec and unblocks them once its handlers are installed (see
    cli.signals), so a SIGTERM in its first instants stops it gracefully instead of
    killing it. This process gets any that came meanwhile when the mask is restored."""
    stop = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _read_summary(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _counts(summary: dict[str, Any] | None) -> tuple[int, int, int]:
    if not summary:
        return 0, 0, 0
    errors = summary.get("errors") or {}
    n_errors = sum(v for v in errors.values() if isinstance(v, int)) if isinstance(errors, dict) else 0
    return int(summary.get("pages") or 0), int(summary.get("items") or 0), n_errors


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def dry_run(plan: SchedulePlan, count: int = 5, now: float | None = None,
            misfire_grace: float = 60.0) -> str:
    """Each schedule and its next ``count`` runs, as a scheduler started now would make
    them (reading, never creating, the history for the last fire times)."""
    now = time.time() if now is None else now
    path = plan.schedule_dir / "history.sqlite"
    history = History(path, readonly=True) if path.is_file() else None
    lines = []
    try:
        for entry in plan.entries:
            last = history.last_fire(entry.name, entry.spec) if history else None
            extras = [f"overlap {entry.overlap}", f"misfire {entry.misfire}"]
            if entry.run_timeout:
                extras.append(f"run_timeout {format_duration(entry.run_timeout)}")
            if entry.job_dir:
                extras.append(f"job_dir {entry.job_dir}")
            if entry.seen_ttl:
                extras.append(f"seen_ttl {format_duration(entry.seen_ttl)}")
            lines.append(f"{entry.name}: spider {entry.spider}, {entry.spec} "
                         f"({', '.join(extras)})")
            for t, note in upcoming(entry, last, now, count, misfire_grace):
                when = "now" if t <= now else _clock(t)
                lines.append(f"  {when}" + (f"  ({note})" if note else ""))
    finally:
        if history is not None:
            history.close()
    return "\n".join(lines)


def format_runs(records: list[RunRecord]) -> str:
    """Runs as a table, one a line, columns aligned."""
    header = ("ID", "SCHEDULE", "SPIDER", "STARTED", "DURATION", "STATUS", "EXIT", "REASON",
              "PAGES", "ITEMS", "ERRORS", "LOG")
    rows: list[tuple[str, ...]] = [header]
    cwd = Path.cwd()
    for r in records:
        log_path = r.log_path or "-"
        if r.log_path:
            try:
                log_path = str(Path(r.log_path).relative_to(cwd))
            except ValueError:
                pass
        rows.append((
            str(r.id), r.schedule, r.spider,
            datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M:%S"),
            "-" if r.duration is None or r.status == "skipped"
            else format_duration(max(round(r.duration, 1), 0.1)),
            r.status, "-" if r.exit_status is None else str(r.exit_status), r.reason or "-",
            *("-" if v is None else str(v) for v in (r.pages, r.items, r.errors)),
            log_path if r.status != "skipped" else "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
