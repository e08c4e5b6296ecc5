"""``check [NAME]``: run the contracts in spiders' callback docstrings (``@url``,
``@cb_kwargs``, ``@meta``, ``@returns``, ``@scrapes``; see ``contracts``) and print one
line per contracted callback on standard output:

    ok: books.parse_book
    FAIL: books.parse: @returns items 1: got 0, expected at least 1
    skip: books.parse_author: no @url, so not checked

Every contract of every spider is read first: a malformed one is a usage error (exit
2) before anything is fetched. Each spider's callbacks are then tried in one crawl of
that spider (its settings; pipelines and outputs off; nothing followed), each against
its own ``@url`` fetched as the crawl would. A callback that raises, or whose page
cannot be fetched, fails. Exit 1 when any callback failed, 0 when all passed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .console import CommandFailed
from .contracts import Contracts, contracted_methods, read_contracts
from .run import cassette_args, cassette_mode, settings_args

if TYPE_CHECKING:
    from ..failure import Failure
    from ..http import Request
    from ..response import Response
    from ..spider import Spider
    from .probe import ToolContext

__all__ = ["add_parsers"]

log = logging.getLogger("scraper")

_KEY = "_scraper_check"
_CHECK = "_scraper_check_page"
_FAILED = "_scraper_check_failed"
_RUN = "_scraper_check_run"


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "check", help="run the contracts in spiders' callback docstrings",
        description="Run the Scrapy contracts (@url, @cb_kwargs, @meta, @returns, @scrapes) in "
                    "the docstrings of the callbacks of spider NAME (default: every spider), "
                    "and print ok or FAIL for each. Exit 1 when any fails.")
    p.set_defaults(handler=check_command)
    p.add_argument("name", metavar="NAME", nargs="?", help="only this spider (see `list`)")
    cassette_args(p)
    settings_args(p)


def check_command(args: argparse.Namespace) -> int:
    from ..loader import find_spiders
    from .probe import ToolContext

    ctx = ToolContext.from_args(args, spider_name=args.name)
    ctx.cassette = cassette_mode(args)  # check against a recorded cassette, offline
    if ctx.spider_cls is not None:
        classes = [ctx.spider_cls]
    else:
        found = find_spiders(ctx.settings().crawl.spiders_path, ctx.config.base_dir)
        classes = list(found.values())
    plans = [(cls, [read_contracts(cls.name, m, getattr(cls, m).__doc__ or "")
                    for m in contracted_methods(cls)]) for cls in classes]
    # a docstring line such as "@ text" is no contract: such a callback is left out (as in Scrapy)
    plans = [(cls, [c for c in contracts if c.names]) for cls, contracts in plans]
    plans = [(cls, contracts) for cls, contracts in plans if contracts]
    if not plans:
        sys.stderr.write("no contracts found: a callback's docstring lists them "
                         "(@url, @returns, @scrapes, @cb_kwargs, @meta)\n")
        return 0
    failed: list[str] = []
    total = 0
    for cls, contracts in plans:
        run = CheckRun({c.method: c for c in contracts})
        if run.runnable:
            _check_spider(ctx, cls, run)
        total += len(run.runnable)
        failed += run.report()
    sys.stderr.write(f"{total} callback(s) checked: {total - len(failed)} ok, "
                     f"{len(failed)} failed\n")
    if failed:
        raise CommandFailed(f"check: contracts failed in {', '.join(failed)}")
    return 0


def _check_spider(ctx: ToolContext, cls: type[Spider], run: CheckRun) -> None:
    from .probe import not_fetched, run_tool_crawl

    probe = type(cls.__name__, (cls,), {"start_requests": _start, _CHECK: _page,
                                        _FAILED: _failed, _RUN: run})
    stats = run_tool_crawl(ctx.build(probe))
    for method, c in run.runnable.items():
        if method not in run.results:
            assert c.url is not None
            run.done(method, [f"never called: {not_fetched(c.url, stats)}"])


@dataclass
class CheckRun:
    """The contracts of one spider and, as the crawl goes, what each callback broke."""

    contracts: dict[str, Contracts]
    results: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def runnable(self) -> dict[str, Contracts]:
        return {m: c for m, c in self.contracts.items() if c.url is not None}

    def done(self, method: str, failures: list[str]) -> None:
        with self.lock:
            self.results[method] = failures

    def report(self) -> list[str]:
        """Print one line per callback; return the labels of those that failed."""
        failed = []
        for method, c in sorted(self.contracts.items()):
            if c.url is None:
                sys.stdout.write(f"skip: {c.label}: no @url, so not checked\n")
                continue
            problems = self.results.get(method, [])
            if problems:
                failed.append(c.label)
                sys.stdout.write(f"FAIL: {c.label}: {'; '.join(problems)}\n")
            else:
                sys.stdout.write(f"ok: {c.label}\n")
        sys.stdout.flush()
        return failed


# -- the methods the probe subclass adds to the user's spider -------------------------------
def _start(self: Spider) -> Iterator[Request]:
    from ..http import Request

    run: CheckRun = getattr(self, _RUN)
    for method, c in sorted(run.runnable.items()):
        assert c.url is not None
        # dont_filter: several callbacks may be checked on the same URL (as in Scrapy)
        yield Request(c.url, callback=_CHECK, errback=_FAILED, dont_filter=True,
                      cb_kwargs=dict(c.cb_kwargs) or None, meta={**c.meta, _KEY: method})


def _page(self: Spider, response: Response, **cb_kwargs: Any) -> None:
    from .probe import callback_output

    run: CheckRun = getattr(self, _RUN)
    method = response.meta[_KEY]
    try:
        output = list(callback_output(getattr(self, method)(response, **cb_kwargs)))
    except Exception as e:
        log.error("%s.%s raised on %s", self.name, method, response.url, exc_info=True)
        run.done(method, [f"the callback raised {type(e).__name__}: {e}"])
        return
    run.done(method, run.contracts[method].failures(output))


def _failed(self: Spider, failure: Failure) -> None:
    from .probe import describe_failure

    run: CheckRun = getattr(self, _RUN)
    method = failure.request.meta.get(_KEY)
    if isinstance(method, str):
        run.done(method, [f"@url {describe_failure(failure)}"])
