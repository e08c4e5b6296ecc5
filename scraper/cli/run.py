"""``run`` (alias ``crawl``) and ``demo``: run one crawl in this process, with progress on
standard error, the summary at the end, and the exit status API.md promises."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError, ScraperError, SpiderError, StorageError
from .console import Progress, setup_logging
from .signals import SIGNALS

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..crawl.metrics import CrawlMetrics
    from ..crawl.runner import Crawl
    from ..fetch.cassette import CassetteMode
    from ..spider import Spider

__all__ = ["add_parsers", "add_run_options", "settings_args"]

log = logging.getLogger("scraper")


def settings_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", dest="settings", metavar="KEY=VALUE", action="append", default=[],
                   help="set a setting (value read as YAML), e.g. -s workers=4 -s retry.attempts=5")
    p.add_argument("--config", metavar="PATH",
                   help="config file (default: ./config.yaml if present); spiders_path is "
                        "relative to it")


def add_parsers(sub: Any) -> None:
    run = sub.add_parser(
        "run", aliases=["crawl"], help="run a spider",
        description="Run the spider NAME until its frontier is empty, a limit is reached, "
                    "or it is stopped (Ctrl-C: graceful; twice: at once).")
    run.set_defaults(handler=run_command)
    run.add_argument("name", metavar="NAME", help="the spider's name (see `list`)")
    add_run_options(run)

    demo = sub.add_parser("demo", help="crawl the bundled demo site and print the summary",
                          description="Serve the bundled demo book shop on a free loopback port "
                                      "and crawl it with the spider NAME (default: books).")
    demo.set_defaults(handler=demo_command)
    demo.add_argument("name", metavar="NAME", nargs="?", default="books",
                      help="the spider to run against the demo site (default: books)")
    demo.add_argument("--serve", action="store_true",
                      help="only serve the demo site (prints its URL) until interrupted")
    demo.add_argument("--port", type=int, default=0, help="port to serve on (default: any free)")
    demo.add_argument("-o", dest="append", metavar="PATH", action="append", default=[],
                      help="write items to PATH, as with run (default: a fresh "
                           f"{_DEMO_OUTPUT.replace('{spider}', 'NAME')})")
    settings_args(demo)


def add_run_options(run: argparse.ArgumentParser) -> None:
    """The options of ``run`` after NAME (``runspider`` takes the same)."""
    out = run.add_mutually_exclusive_group()
    out.add_argument("-o", dest="append", metavar="PATH", action="append", default=[],
                     help="write items to PATH (.jsonl .json .csv .db; '-' for JSON lines "
                          "on stdout; postgresql://USER@HOST:PORT/DB?table=NAME for a "
                          "PostgreSQL table), appending to what is there")
    out.add_argument("-O", dest="overwrite", metavar="PATH", action="append", default=[],
                     help="like -o, but overwrite PATH")
    settings_args(run)
    run.add_argument("-a", dest="spider_args", metavar="KEY=VALUE", action="append",
                     default=[], help="set a spider attribute (a string), e.g. -a category=books")
    run.add_argument("--summary", metavar="PATH",
                     help="also write the run summary as JSON to PATH")
    run.add_argument("--stats-file", metavar="PATH",
                     help="append the crawl's progress (pages, items, errors, pages/s) to PATH "
                          "as JSON lines while it runs, about every second (what `serve` shows)")
    run.add_argument("--job-dir", metavar="DIR",
                     help="make the crawl persistent in DIR: stopped in any way (even killed) "
                          "and started again with the same command, it goes on where it was")
    run.add_argument("--force-resume", action="store_true",
                     help="resume a job dir even though the spider's start requests (or the "
                          "fingerprint version) changed")
    run.add_argument("--backend", metavar="URL",
                     help="where the crawl's state lives: redis://HOST:PORT/DB (rediss:// "
                          "for TLS) shares it: every process started with the same spider "
                          "and backend works on the same crawl")
    run.add_argument("--processes", metavar="N|auto",
                     help="run the crawl's workers in N processes (each with `workers` "
                          "threads) under this one, which keeps the frontier, politeness and "
                          "outputs: uses N cores; auto: one per usable CPU (setting: processes)")
    run.add_argument("--keep-alive", action="store_true",
                     help="with --backend: when the shared crawl runs dry, wait for URLs "
                          "added with `push` instead of exiting")
    cassette_args(run)
    # how the scheduler hands a schedule's `settings` to its runs: a layer below -s
    run.add_argument("--schedule-settings", metavar="JSON", help=argparse.SUPPRESS)


def _outputs(args: argparse.Namespace) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = [{"path": p} for p in args.append]
    specs += [{"path": p, "overwrite": True} for p in getattr(args, "overwrite", [])]
    return specs


def spider_args(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"-a {pair}: expected KEY=VALUE with KEY a Python identifier")
        out[key.strip()] = value
    return out


def _schedule_settings(args: argparse.Namespace) -> dict[str, Any] | None:
    """The scheduler's settings layer: JSON, or ``@PATH``, a private file holding it (how
    the scheduler passes them, so that passwords never show in ``ps``), deleted once read."""
    raw = getattr(args, "schedule_settings", None)
    if raw is None:
        return None
    text = raw
    if raw.startswith("@"):
        try:
            with open(raw[1:], encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(f"--schedule-settings {raw}: cannot be read "
                              f"({e.strerror or e})") from None
        finally:
            try:
                os.unlink(raw[1:])  # secrets stay on disk no longer than needed
            except OSError:
                pass
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        # the file's content may hold secrets: only its name is shown
        raise ConfigError(f"--schedule-settings {raw}: expected a JSON object of settings")
    return value


def run_command(args: argparse.Namespace, extra_args: dict[str, str] | None = None) -> int:
    from ..config import parse_cli_settings
    from ..crawl.runner import prepare

    summary_path = getattr(args, "summary", None)
    if summary_path:
        _check_writable(summary_path)
    settings = parse_cli_settings(args.settings)
    if getattr(args, "backend", None):
        settings["backend"] = args.backend
    processes = getattr(args, "processes", None)
    if processes is not None:  # checked with the settings: an integer >= 1 or auto
        settings["processes"] = int(processes) if processes.strip().isdigit() else processes
    spider_cls = getattr(args, "spider_cls", None)  # runspider: a class read from a file
    build = prepare if spider_cls is None else _prepare_class(spider_cls)
    # listening first: a port in use is a usage error before any output is touched
    metrics = _crawl_metrics(args, settings)
    try:
        crawl = build(args.name, config_path=args.config, settings=settings,
                      schedule_settings=_schedule_settings(args),
                      spider_args={**spider_args(getattr(args, "spider_args", [])),
                                   **(extra_args or {})},
                      outputs=_outputs(args), job_dir=getattr(args, "job_dir", None),
                      force_resume=getattr(args, "force_resume", False),
                      keep_alive=getattr(args, "keep_alive", False), cassette=cassette_mode(args))
        setup_logging(crawl.settings.crawl.log_level)
        if metrics is not None:
            metrics.engine = lambda: crawl.engine
            log.info("metrics on http://%s:%d/metrics", metrics.host, metrics.port)
        return _execute(crawl, summary_path, metrics, getattr(args, "stats_file", None))
    finally:
        if metrics is not None:
            metrics.close()


def _crawl_metrics(args: argparse.Namespace, settings: dict[str, Any]) -> CrawlMetrics | None:
    """``-s metrics_port=N``: this crawl's Prometheus metrics, listening already. Only
    ``-s`` asks for them: a ``metrics_port`` in config.yaml is the scheduler's, which a
    crawl started beside it (or by it) must not take."""
    if settings.get("metrics_port") is None:
        return None
    from ..config import load_config, resolve_settings
    from ..crawl.metrics import CrawlMetrics

    chosen = resolve_settings(load_config(args.config), cli=settings).schedule
    if chosen.metrics_port is None:
        return None
    metrics = CrawlMetrics(args.name, lambda: None)
    metrics.serve(chosen.metrics_host, chosen.metrics_port)
    return metrics


def cassette_args(p: argparse.ArgumentParser) -> None:
    """--record DIR / --replay DIR [--strict] (run, runspider, check)."""
    tape = p.add_mutually_exclusive_group()
    tape.add_argument("--record", metavar="DIR",
                      help="store every exchange of the crawl (responses, redirect hops, "
                           "failures) in DIR/cassette.sqlite, replacing what was there")
    tape.add_argument("--replay", metavar="DIR",
                      help="serve the crawl from the cassette in DIR: nothing is sent over the "
                           "network; a request not recorded fails as not-recorded")
    p.add_argument("--strict", action="store_true",
                   help="with --replay: a request not in the cassette stops the crawl (exit 1)")


def cassette_mode(args: argparse.Namespace) -> CassetteMode | None:
    from pathlib import Path

    from ..fetch.cassette import CassetteMode

    record, replay = getattr(args, "record", None), getattr(args, "replay", None)
    if getattr(args, "strict", False) and not replay:
        raise ConfigError("--strict goes with --replay DIR")
    if record:
        return CassetteMode(Path(record), replay=False)
    if replay:
        return CassetteMode(Path(replay), replay=True, strict=bool(args.strict))
    return None


def _prepare_class(cls: type[Spider]) -> Callable[..., Crawl]:
    """``prepare`` for a spider class already loaded (``runspider``), same arguments."""
    def build(name: str, *, config_path: str | None, **kwargs: Any) -> Crawl:
        from ..config import load_config
        from ..crawl.runner import build_crawl

        return build_crawl(cls, config=load_config(config_path), **kwargs)
    return build


def _check_writable(path: str) -> None:
    """The summary file can be written: it is not a directory, and its nearest existing
    ancestor is a writable directory (missing directories are created)."""
    target = os.path.abspath(path)
    parent = os.path.dirname(target)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if os.path.isdir(target) or not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        raise ConfigError(f"--summary {path}: cannot be written")


def _stats_file(path: str, then: Callable[[dict[str, Any]], None],
                interval: float) -> tuple[Callable[[dict[str, Any]], None], float]:
    """``--stats-file``: progress snapshots to ``path`` about every second; ``then`` (the
    progress lines) keeps its own interval."""
    from ..crawl.statsfile import StatsFile

    try:
        return StatsFile(path, then=then, then_every=interval), min(interval, 1.0)
    except OSError as e:
        raise ConfigError(f"--stats-file {path}: cannot be written ({e.strerror or e})") from None


def _execute(crawl: Crawl, summary_path: str | None, metrics: CrawlMetrics | None = None,
             stats_file: str | None = None) -> int:
    progress = Progress(sys.stderr)
    on_progress = progress if metrics is None else metrics.tee(progress)
    interval = progress.interval(crawl.settings.crawl.progress_interval)
    if stats_file:
        on_progress, interval = _stats_file(stats_file, on_progress, interval)
    SIGNALS.attach(lambda: crawl.stop("interrupted"),
                   "finishing requests in flight (again to exit at once)")
    status = 0
    aborted: Exception | None = None
    try:
        stats = crawl.run(on_progress=on_progress, progress_interval=interval)
    except (ConfigError, SpiderError):
        # found before anything was fetched (a job dir mismatch, a start request naming
        # a method the spider lacks): a usage error
        raise
    except Exception as e:
        aborted = e
        log.error("crawl aborted: %s", e, exc_info=not isinstance(e, ScraperError))
        if crawl.engine is None:
            return 1
        stats = crawl.engine.stats
        status = 1
    finally:
        SIGNALS.detach()
    if stats.reason == "error":
        status = 1
    # a backend that stopped the crawl fails every later call: its one line was enough
    if crawl.engine is not None and crawl.engine.shared and not isinstance(aborted, StorageError):
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


_DEMO_OUTPUT = ".scraper/demo/{spider}.jsonl"


def demo_command(args: argparse.Namespace) -> int:
    from ..demosite import DemoSite

    with DemoSite(port=args.port) as site:
        if args.serve:
            sys.stderr.write(f"demo site at {site.url} (Ctrl-C to stop)\n")
            stopped = threading.Event()
            SIGNALS.attach(stopped.set)
            while not stopped.wait(1.0):
                pass
            return 0
        if not args.append:  # the items go somewhere a newcomer can look at them
            args.overwrite = [_DEMO_OUTPUT]
        where = ", ".join(args.append or [_DEMO_OUTPUT.replace("{spider}", args.name)])
        sys.stderr.write(f"demo site at {site.url}; crawling it with spider {args.name!r}; "
                         f"items to {where}\n")
        args.summary = None
        return run_command(args, extra_args={"base_url": site.url})
