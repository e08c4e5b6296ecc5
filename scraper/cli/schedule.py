"""``schedule`` (run config.yaml's schedules until stopped; ``--dry-run``) and ``runs``
(the history table)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from .console import setup_logging
from .signals import SIGNALS

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    sch = sub.add_parser(
        "schedule", help="run the crawls config.yaml's `schedules` lists, until stopped",
        description="Run the crawls that the config's `schedules` lists at their times (cron or "
                    "every), each as a child process with its own log, until stopped. Every "
                    "schedule is checked first: a bad one is a one-line error. SIGTERM/Ctrl-C: "
                    "start no more runs, stop running ones gracefully (killed after "
                    "schedule_kill_grace), exit 0; a second signal kills them at once (exit 130).")
    sch.set_defaults(handler=schedule_command)
    sch.add_argument("--config", metavar="PATH",
                     help="config file (default: ./config.yaml if present)")
    sch.add_argument("--dry-run", action="store_true",
                     help="check the schedules and print each one's next run times on stdout; "
                          "run nothing")
    sch.add_argument("--count", type=int, default=5, metavar="N",
                     help="with --dry-run: how many run times to print per schedule (default: 5)")
    runs = sub.add_parser(
        "runs", help="print the last scheduled runs as a table",
        description="Print the last runs of the scheduler (newest first) from its history in "
                    "schedule_dir: status, exit status, reason, pages, items, errors, log file.")
    runs.set_defaults(handler=runs_command)
    runs.add_argument("name", metavar="NAME", nargs="?",
                      help="only the runs of this schedule or spider")
    runs.add_argument("--config", metavar="PATH",
                      help="config file (default: ./config.yaml if present)")
    runs.add_argument("--limit", type=int, default=20, metavar="N",
                      help="how many runs to print (default: 20)")


def schedule_command(args: argparse.Namespace) -> int:
    from ..crawl.runner import check_crawl
    from ..schedules.entries import load_schedules
    from ..schedules.listing import dry_run
    from ..schedules.supervisor import Scheduler

    if args.count < 1:
        raise ConfigError(f"--count {args.count}: must be at least 1")
    plan = load_schedules(args.config, check_crawl)
    if args.dry_run:
        sys.stdout.write(dry_run(plan, args.count) + "\n")
        return 0
    setup_logging(plan.settings.crawl.log_level)
    scheduler = Scheduler(plan)

    SIGNALS.attach(scheduler.stop, "starting no more runs; stopping the running ones "
                                   "gracefully (again to kill them at once)",
                   again=lambda: scheduler.stop(force=True),
                   again_message="killing the running runs")
    try:
        return scheduler.run()  # a failing history (StorageError) is exit 1, in main()
    finally:
        SIGNALS.detach()


def runs_command(args: argparse.Namespace) -> int:
    from ..config import load_config, resolve_settings
    from ..schedules.history import History
    from ..schedules.listing import format_runs

    if args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: must be at least 1")
    config = load_config(args.config)
    settings = resolve_settings(config)
    path = Path(settings.schedule.dir) / "history.sqlite"
    if not path.is_file():
        sys.stderr.write(f"no runs recorded yet ({path} does not exist)\n")
        return 0
    history = History(path, readonly=True)
    try:
        records = history.runs(args.name, args.limit)
        if not records and args.name is not None:
            entries = settings.schedule.entries
            known = {e.get("name", e.get("spider")) for e in entries} | {e.get("spider") for e in entries}
            if args.name not in known:
                raise ConfigError(f"runs {args.name}: no schedule or spider of that name in "
                                  f"{config.source} or the history")
    finally:
        history.close()
    if not records:
        sys.stderr.write("no runs recorded yet" + (f" for {args.name}" if args.name else "") + "\n")
        return 0
    sys.stdout.write(format_runs(records) + "\n")
    return 0
