"""The command line: argument parsing, and the exit status of every command.

This package is the only place that reads argv or the environment, configures
logging handlers, installs signal handlers or decides exit statuses. Standard
output carries data only (``list``, ``-o -``); logs, progress and the summary go
to standard error. Each command lives in its own module and imports what it needs
when it runs, so ``--help`` and a memory crawl import no more than they use.

Exit status: 0 the crawl ended normally (``finished``, a limit, a graceful stop);
2 a usage or configuration error found before starting (one line on stderr); 1 the
crawl could not run or was aborted; 130 a second signal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..exceptions import (ConfigError, NotSupported, SpiderError, SpiderNotFound, StorageError,
                          StorageLocked, StorageUnusable)
from ..version import __version__
from .console import CommandFailed
from .signals import SIGNALS

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    # the commands are imported here, not with the package: ``python -m scraper`` imports
    # this package to install the signal handlers, and should do so at once
    from . import (admin, cassette, check, fetch, genspider, new, parse, run, runspider,
                   schedule, serve, settings, shell)

    p = _Parser(prog="scraper", description="Run and manage spiders.")
    p.add_argument("--version", action="version", version=f"scraper {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    run.add_parsers(sub)
    admin.add_parsers(sub)
    schedule.add_parsers(sub)
    serve.add_parsers(sub)
    for tool in (new, genspider, fetch, shell, parse, check, runspider, settings, cassette):
        tool.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    SIGNALS.install()
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
        return status
    except (ConfigError, SpiderNotFound, SpiderError) as e:
        return _fail(str(e), 2)
    except (StorageUnusable, StorageLocked, NotSupported) as e:
        return _fail(_storage_message(e, args), 2)
    except StorageError as e:  # a backend that cannot be reached: the crawl could not run
        return _fail(_storage_message(e, args), 1)
    except CommandFailed as e:  # a tool (fetch, parse, check...) that could not do its job
        return _fail(str(e), 1)


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"scraper: error: {' '.join(message.split())}\n")
    return status


def _storage_message(e: StorageError, args: argparse.Namespace) -> str:
    """The storage error worded with the flag that named its location."""
    job_dir = getattr(args, "job_dir", None)
    if job_dir is not None and e.location is not None and e.location.rstrip("/") == str(job_dir).rstrip("/"):
        return f"--job-dir {job_dir}: {e.reason}"
    return str(e)
