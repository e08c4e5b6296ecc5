"""The command line: argument parsing, logging set-up, signals, progress and exit codes.

This is the only module that reads argv or the environment, configures
logging handlers, or decides exit statuses. Standard output carries data only
(``list``, ``-o -``); logs, progress and the summary go to standard error.

Exit status: 0 the crawl ended normally (``finished``, a limit, a graceful
stop); 2 a usage or configuration error found before starting (one line on
stderr); 1 the crawl could not run or was aborted; 130 a second signal.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__
from .config import parse_cli_settings
from .exceptions import ConfigError, ScraperError, SpiderError, SpiderNotFound, StorageError
from .stats import Stats
from .runner import Crawl, list_spiders, prepare, push, reset, retry_failed

__all__ = ["main"]

log = logging.getLogger("scraper")

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="scraper", description="Run and manage spiders.")
    p.add_argument("--version", action="version", version=f"scraper {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser("run", help="run a spider",
                         description="Run the spider NAME until its frontier is empty, a limit "
                                     "is reached, or it is stopped (Ctrl-C: graceful; twice: at once).")
    run.add_argument("name", metavar="NAME", help="the spider's name (see `list`)")
    out = run.add_mutually_exclusive_group()
    out.add_argument("-o", dest="append", metavar="PATH", action="append", default=[],
                     help="write items to PATH (.jsonl .json .csv .db; '-' for JSON lines on "
                          "stdout), appending to what is there")
    out.add_argument("-O", dest="overwrite", metavar="PATH", action="append", default=[],
                     help="like -o, but overwrite PATH")
    _settings_args(run)
    run.add_argument("-a", dest="spider_args", metavar="KEY=VALUE", action="append", default=[],
                     help="set a spider attribute (a string), e.g. -a category=books")
    run.add_argument("--summary", metavar="PATH", help="also write the run summary as JSON to PATH")
    run.add_argument("--job-dir", metavar="DIR",
                     help="make the crawl persistent in DIR: stopped in any way (even killed) and "
                          "started again with the same command, it goes on where it was")
    run.add_argument("--force-resume", action="store_true",
                     help="resume a job dir even though the spider's start requests (or the "
                          "fingerprint version) changed")
    run.add_argument("--backend", metavar="URL",
                     help="share the crawl through Redis (redis://HOST:PORT/DB, rediss:// for "
                          "TLS): every process started with the same spider and backend works "
                          "on the same crawl")
    run.add_argument("--keep-alive", action="store_true",
                     help="with --backend: when the shared crawl runs dry, wait for URLs added "
                          "with `push` instead of exiting")
    # how the scheduler hands a schedule's `settings` to its runs: a layer below -s
    run.add_argument("--schedule-settings", metavar="JSON", help=argparse.SUPPRESS)

    push = sub.add_parser("push", help="add start URLs to a shared (Redis) crawl",
                          description="Add URLs to the frontier of NAME's shared crawl (skipping "
                                      "those already seen); running processes pick them up.")
    push.add_argument("name", metavar="NAME", help="the spider's name")
    push.add_argument("urls", metavar="URL", nargs="+", help="absolute http(s) URLs")
    push.add_argument("--backend", metavar="URL", help="the Redis URL (default: config.yaml's backend)")
    push.add_argument("--config", metavar="PATH", help="config file (default: ./config.yaml if present)")

    reset = sub.add_parser("reset", help="delete a shared crawl's state from Redis",
                           description="Delete every key of NAME's shared crawl (all under "
                                       "scraper:NAME:) from the backend: its frontier, seen-set, "
                                       "stats and items stream.")
    reset.add_argument("name", metavar="NAME", help="the spider's name")
    reset.add_argument("--backend", metavar="URL", help="the Redis URL (default: config.yaml's backend)")
    reset.add_argument("--config", metavar="PATH", help="config file (default: ./config.yaml if present)")

    rf = sub.add_parser("retry-failed", help="put a job's failed requests back in its queue",
                        description="Put the requests of --job-dir DIR that failed after their "
                                    "last retry back in its frontier; run the crawl again to fetch them.")
    rf.add_argument("name", metavar="NAME", help="the spider's name")
    rf.add_argument("--job-dir", metavar="DIR", required=True, help="the job dir")
    rf.add_argument("--config", metavar="PATH", help="config file (default: ./config.yaml if present)")

    lst = sub.add_parser("list", help="print the name of every spider, one a line",
                         description="Print each spider's name, one a line, on stdout.")
    lst.add_argument("--config", metavar="PATH", help="config file (default: ./config.yaml if present)")

    demo = sub.add_parser("demo", help="crawl the bundled demo site and print the summary",
                          description="Serve the bundled demo book shop on a free loopback port "
                                      "and crawl it with the spider NAME (default: books).")
    demo.add_argument("name", metavar="NAME", nargs="?", default="books",
                      help="the spider to run against the demo site (default: books)")
    demo.add_argument("--serve", action="store_true",
                      help="only serve the demo site (prints its URL) until interrupted")
    demo.add_argument("--port", type=int, default=0, help="port to serve on (default: any free)")
    demo.add_argument("-o", dest="append", metavar="PATH", action="append", default=[],
                      help="write items to PATH, as with run")
    _settings_args(demo)
    _add_schedule_commands(sub)
    return p


def _settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", dest="settings", metavar="KEY=VALUE", action="append", default=[],
                   help="set a setting (value read as YAML), e.g. -s workers=4 -s retry.attempts=5")
    p.add_argument("--config", metavar="PATH",
                   help="config file (default: ./config.yaml if present); spiders_path is "
                        "relative to it")


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "list":
            for name in list_spiders(args.config):
                sys.stdout.write(name + "\n")
            return 0
        if args.command == "demo":
            return _demo(args)
        if args.command in ("schedule", "runs"):
            return _schedule(args) if args.command == "schedule" else _runs(args)
        if args.command == "push":
            added, seen = push(args.name, args.urls, config_path=args.config,
                               backend_url=args.backend)
            sys.stderr.write(f"{added} URL(s) added to {args.name}'s crawl"
                             + (f" ({seen} already seen)" if seen else "") + "\n")
            return 0
        if args.command == "reset":
            n = reset(args.name, config_path=args.config, backend_url=args.backend)
            sys.stderr.write(f"{n} key(s) of {args.name}'s crawl deleted\n")
            return 0
        if args.command == "retry-failed":
            n = retry_failed(args.name, args.job_dir, args.config)
            sys.stderr.write(f"{n} failed request(s) put back in {args.job_dir}; run the crawl "
                             "again to fetch them\n")
            return 0
        return _run(args)
    except (ConfigError, SpiderNotFound, SpiderError) as e:
        sys.stderr.write(f"scraper: error: {_one_line(e)}\n")
        return 2
    except StorageError as e:  # a backend that cannot be reached: the crawl could not run
        sys.stderr.write(f"scraper: error: {_one_line(e)}\n")
        return 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _outputs(args: argparse.Namespace) -> list[dict[str, Any]]:
    specs = [{"path": p} for p in args.append]
    specs += [{"path": p, "overwrite": True} for p in getattr(args, "overwrite", [])]
    return specs


def _spider_args(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"-a {pair}: expected KEY=VALUE with KEY a Python identifier")
        out[key.strip()] = value
    return out


def _run(args: argparse.Namespace, extra_args: dict[str, str] | None = None) -> int:
    summary_path = getattr(args, "summary", None)
    if summary_path:
        _check_writable(summary_path)
    settings = parse_cli_settings(args.settings)
    if getattr(args, "backend", None):
        settings["backend"] = args.backend
    crawl = prepare(args.name, config_path=args.config,
                    settings=settings,
                    schedule_settings=_schedule_settings(args),
                    spider_args={**_spider_args(getattr(args, "spider_args", [])), **(extra_args or {})},
                    outputs=_outputs(args), job_dir=getattr(args, "job_dir", None),
                    force_resume=getattr(args, "force_resume", False),
                    keep_alive=getattr(args, "keep_alive", False))
    _setup_logging(crawl.settings["log_level"])
    return _execute(crawl, summary_path)


def _check_writable(path: str) -> None:
    """The summary file can be written: it is not a directory, and its nearest existing
    ancestor is a writable directory (missing directories are created)."""
    target = os.path.abspath(path)
    parent = os.path.dirname(target)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if os.path.isdir(target) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise ConfigError(f"--summary {path}: cannot be written")


def _execute(crawl: Crawl, summary_path: str | None) -> int:
    progress = _Progress(sys.stderr)
    restore = _install_signals(crawl)
    status = 0
    stats: Stats | None
    try:
        stats = crawl.run(on_progress=progress, progress_interval=progress.interval(
            crawl.settings["progress_interval"]))
    except ConfigError:
        raise  # found before anything was fetched (a job dir mismatch): a usage error
    except Exception as e:
        log.error("crawl aborted: %s", e, exc_info=not isinstance(e, ScraperError))
        stats = crawl.engine.stats if crawl.engine is not None else None
        status = 1
    finally:
        restore()
    if stats is None:
        return 1
    if stats.reason == "error":
        status = 1
    if crawl.engine is not None and crawl.engine.shared:
        try:
            stats.cluster = crawl.engine.cluster_stats()
        except ScraperError as e:
            log.warning("cluster stats unavailable: %s", e)
    sys.stderr.write(stats.format_summary() + "\n")
    if summary_path:
        try:
            stats.write_summary(summary_path)
        except OSError as e:
            log.error("--summary %s: cannot write (%s)", summary_path, e.strerror or e)
            status = status or 1
    return status


def _install_signals(crawl: Crawl) -> Any:
    """First SIGINT/SIGTERM: graceful stop. Second: exit 130 at once."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    hits = {"n": 0}

    def handler(signum: int, frame: Any) -> None:
        hits["n"] += 1
        if hits["n"] > 1:
            sys.stderr.write("\nscraper: second signal, exiting now\n")
            sys.stderr.flush()
            os._exit(130)
        sys.stderr.write(f"\nscraper: {signal.Signals(signum).name}: finishing requests in "
                         "flight (again to exit at once)\n")
        crawl.stop("interrupted")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)
    return restore


class _Progress:
    """A live line on a terminal; a periodic INFO log line otherwise."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_len = 0

    def interval(self, configured: float) -> float:
        return 0.5 if self.tty else configured

    def __call__(self, p: dict[str, Any]) -> None:
        line = (f"pages {p['pages']} | items {p['items']} | {p['pages_per_s']:.1f} pages/s | "
                f"queued {p['queued']} | in flight {p['in_flight']} | errors {p['errors']}")
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if p.get("final") else ""))
            self.stream.flush()
        elif not p.get("final"):
            log.info("progress: %s", line)


def _setup_logging(level: str) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("urllib3", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _demo(args: argparse.Namespace) -> int:
    from .demosite import DemoSite

    with DemoSite(port=args.port) as site:
        if args.serve:
            sys.stderr.write(f"demo site at {site.url} (Ctrl-C to stop)\n")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        sys.stderr.write(f"demo site at {site.url}; crawling it with spider {args.name!r}\n")
        args.summary = None
        return _run(args, extra_args={"base_url": site.url})


# -- scheduled crawls ---------------------------------------------------------
def _add_schedule_commands(sub: Any) -> None:
    sch = sub.add_parser(
        "schedule", help="run the crawls config.yaml's `schedules` lists, until stopped",
        description="Run the crawls that the config's `schedules` lists at their times (cron or "
                    "every), each as a child process with its own log, until stopped. Every "
                    "schedule is checked first: a bad one is a one-line error. SIGTERM/Ctrl-C: "
                    "start no more runs, stop running ones gracefully (killed after "
                    "schedule_kill_grace), exit 0; a second signal kills them at once (exit 130).")
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
    runs.add_argument("name", metavar="NAME", nargs="?",
                      help="only the runs of this schedule or spider")
    runs.add_argument("--config", metavar="PATH",
                      help="config file (default: ./config.yaml if present)")
    runs.add_argument("--limit", type=int, default=20, metavar="N",
                      help="how many runs to print (default: 20)")


def _schedule_settings(args: argparse.Namespace) -> dict[str, Any] | None:
    raw = getattr(args, "schedule_settings", None)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError(f"--schedule-settings {raw}: expected a JSON object of settings")
    return value


def _schedule(args: argparse.Namespace) -> int:
    from .scheduler import Scheduler, dry_run
    from .schedule import load_schedules

    if args.count < 1:
        raise ConfigError(f"--count {args.count}: must be at least 1")
    plan = load_schedules(args.config)
    if args.dry_run:
        sys.stdout.write(dry_run(plan, args.count) + "\n")
        return 0
    _setup_logging(plan.settings["log_level"])
    scheduler = Scheduler(plan)
    hits = {"n": 0}

    def handler(signum: int, frame: Any) -> None:
        hits["n"] += 1
        name = signal.Signals(signum).name
        if hits["n"] == 1:
            sys.stderr.write(f"\nscraper: {name}: starting no more runs; stopping the running "
                             "ones gracefully (again to kill them at once)\n")
        else:
            sys.stderr.write(f"\nscraper: {name} again: killing the running runs\n")
        scheduler.stop(force=hits["n"] > 1)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return scheduler.run()  # a failing history (StorageError) is exit 1, in main()
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _runs(args: argparse.Namespace) -> int:
    from .config import load_config, merge_settings
    from .history import History
    from .scheduler import format_runs

    if args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: must be at least 1")
    config = load_config(args.config)
    settings = merge_settings((config.source, config.settings))
    path = Path(settings["schedule_dir"]) / "history.sqlite"
    if not path.is_file():
        sys.stderr.write(f"no runs recorded yet ({path} does not exist)\n")
        return 0
    history = History(path, readonly=True)
    try:
        records = history.runs(args.name, args.limit)
        if not records and args.name is not None:
            known = {e.get("name", e.get("spider")) for e in settings["schedules"]} | {
                e.get("spider") for e in settings["schedules"]}
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
