"""Schedules and runs as text for the command line: ``schedule --dry-run`` (the next fire
times a scheduler started now would use) and ``schedule runs`` (the history as a table)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from .entries import SchedulePlan, format_duration, upcoming
from .history import History, RunRecord

__all__ = ["clock", "dry_run", "format_runs"]


def clock(t: float) -> str:
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
                when = "now" if t <= now else clock(t)
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
