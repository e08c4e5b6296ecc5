"""``parse URL --spider NAME``: run one callback of a spider on one page, fetched as a crawl
would, and show what it made: items as JSON lines on standard output, requests on
standard error (``GET url callback``, one a line).

The spider is the user's own class, its settings, arguments (``-a``) and
``allowed_domains`` included; only its start requests are replaced (by URL, to
``-c CALLBACK`` or its default callback: ``parse``, or a CrawlSpider's rules), and
every request a callback makes is noted, and followed while the page it came from is
less than ``--depth`` levels deep (default 1: only URL itself). Items do not go
through pipelines or outputs. Output is in level order (a page's items and requests,
then its children's in the order they were made), whatever order workers ran them.

Exit status 1, after printing what was made, when URL itself got no handled response
or a callback raised (its traceback is logged).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import CloseSpider, ConfigError
from .console import CommandFailed
from .run import settings_args

if TYPE_CHECKING:
    from ..failure import Failure
    from ..http import Request
    from ..response import Response
    from ..spider import Spider

__all__ = ["add_parsers"]

_KEY = "_scraper_parse"  # meta: where the request stands in the tree, its real callbacks
_PAGE = "_scraper_parse_page"
_FAILED = "_scraper_parse_failed"
_RUN = "_scraper_parse_run"


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "parse", help="run a spider's callback on one URL and print what it makes",
        description="Fetch URL as a crawl of spider NAME would, run a callback on it (-c, or "
                    "the spider's default: parse, or a CrawlSpider's rules) and print its items "
                    "as JSON lines on stdout and the requests it made on stderr (GET url "
                    "callback). --depth N follows those requests N-1 levels further.")
    p.set_defaults(handler=parse_command)
    p.add_argument("url", metavar="URL", help="an absolute http(s) URL")
    p.add_argument("--spider", metavar="NAME", required=True, help="the spider (see `list`)")
    p.add_argument("-c", "--callback", dest="callback", metavar="CALLBACK",
                   help="the spider method to call (default: the spider's default callback)")
    p.add_argument("--depth", type=int, default=1, metavar="N",
                   help="levels of requests to follow: 1 (default) only parses URL")
    p.add_argument("-a", dest="spider_args", metavar="KEY=VALUE", action="append", default=[],
                   help="set a spider attribute (a string), as with run")
    settings_args(p)


def parse_command(args: argparse.Namespace) -> int:
    from .probe import ToolContext, checked_url, not_fetched, run_tool_crawl
    from .run import spider_args

    url = checked_url("parse", args.url)
    if args.depth < 1:
        raise ConfigError(f"parse --depth {args.depth}: must be at least 1")
    ctx = ToolContext.from_args(args)
    cls = ctx.spider_cls
    assert cls is not None  # --spider is required
    callback = args.callback or str(getattr(cls, "default_callback", "parse"))
    if not callable(getattr(cls, callback, None)):
        raise ConfigError(f"parse -c {callback}: spider {cls.name} has no method {callback!r}")
    run = ParseRun(url, callback, args.depth)
    probe = type(cls.__name__, (cls,), {"start_requests": _start, _PAGE: _page, _FAILED: _failed,
                                        _RUN: run})
    crawl = ctx.build(probe, spider_args=spider_args(args.spider_args))
    stats = run_tool_crawl(crawl)
    run.print()
    problem = run.problem()
    if problem is None and not run.pages and not run.failures:
        problem = not_fetched(url, stats)
    if problem is not None:
        raise CommandFailed(f"parse {problem}")
    return 0


@dataclass
class Page:
    """What one callback (or errback) call made."""

    key: tuple[int, ...]   # its place in the tree: () for URL, (3,) for URL's 4th request...
    items: list[str]       # as JSON
    requests: list[str]    # "GET url callback"
    error: str | None = None


@dataclass
class ParseRun:
    """What the callbacks of a ``parse`` made, page by page; filled from worker threads."""

    url: str
    callback: str
    depth: int
    pages: list[Page] = field(default_factory=list)
    failures: dict[tuple[int, ...], str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, spider: Spider, fn: Callable[..., Any], arg: Any,
               kwargs: dict[str, Any] | None, key: tuple[int, ...], url: str) -> list[Request]:
        """Call ``fn``, note what it made; return the requests to follow (wrapped)."""
        from ..crawl.callbacks import is_item
        from ..http import Request
        from ..items import dumps, item_to_dict
        from .probe import callback_output

        items: list[str] = []
        requests: list[Request] = []
        error = None
        try:
            for value in callback_output(fn(arg, **kwargs) if kwargs else fn(arg)):
                if isinstance(value, Request):
                    requests.append(value)
                elif is_item(value):
                    items.append(dumps(item_to_dict(value)))
                elif value is not None:
                    spider.logger.error("%s yielded %s; expected a Request or an item",
                                        _name(fn), type(value).__name__)
        except CloseSpider:
            pass
        except Exception as e:
            spider.logger.error("%s raised on %s", _name(fn), url, exc_info=True)
            error = f"{spider.name}.{_name(fn)} raised {type(e).__name__}: {e} (on {url})"
        lines = [f"{r.method} {r.url} {_label(spider, r)}" for r in requests]
        with self.lock:
            self.pages.append(Page(key, items, lines, error))
        if len(key) + 1 >= self.depth:
            return []
        return [_wrapped(spider, r, key + (i,)) for i, r in enumerate(requests)]

    def failed(self, key: tuple[int, ...], failure: Failure) -> None:
        from .probe import describe_failure

        with self.lock:
            self.failures[key] = describe_failure(failure)

    def print(self) -> None:
        pages = sorted(self.pages, key=lambda p: (len(p.key), p.key))
        for page in pages:
            for item in page.items:
                sys.stdout.write(item + "\n")
        sys.stdout.flush()
        for page in pages:
            for line in page.requests:
                sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def problem(self) -> str | None:
        """Why the exit status is 1: URL itself failed, or a callback raised."""
        first = self.failures.get(())
        if first is not None:
            return first
        errors = [p.error for p in sorted(self.pages, key=lambda p: (len(p.key), p.key)) if p.error]
        return errors[0] if errors else None


# -- the methods the probe subclass adds to the user's spider -------------------------------
def _start(self: Spider) -> Iterator[Request]:
    from ..http import Request

    run: ParseRun = getattr(self, _RUN)
    yield Request(run.url, callback=_PAGE, errback=_FAILED, dont_filter=True,
                  meta={_KEY: {"key": [], "callback": run.callback, "errback": None}})


def _page(self: Spider, response: Response, **cb_kwargs: Any) -> list[Request]:
    run: ParseRun = getattr(self, _RUN)
    info = response.meta[_KEY]
    name = info["callback"] or getattr(self, "default_callback", "parse")
    return run.handle(self, getattr(self, name), response, cb_kwargs, tuple(info["key"]),
                      response.url)


def _failed(self: Spider, failure: Failure) -> list[Request]:
    run: ParseRun = getattr(self, _RUN)
    info = failure.request.meta.get(_KEY) or {}
    key = tuple(info.get("key") or ())
    run.failed(key, failure)
    errback = info.get("errback")
    if errback is None:
        return []
    return run.handle(self, getattr(self, errback), failure, None, key, failure.request.url)


def _wrapped(spider: Spider, r: Request, key: tuple[int, ...]) -> Request:
    """``r`` sent to the probe's methods, its own callbacks kept in meta. A request whose
    callback is not a method of the spider is left as it is (the crawl rejects it)."""
    names = [_method_name(spider, ref) for ref in (r.callback, r.errback)]
    if any(n is False for n in names):
        return r
    r.meta = {**r.meta, _KEY: {"key": list(key), "callback": names[0], "errback": names[1]}}
    r.callback, r.errback = _PAGE, _FAILED
    return r


def _method_name(spider: Spider, ref: Any) -> str | None | bool:
    """The method name ``ref`` stands for; None for none; False when it is no method."""
    if ref is None or isinstance(ref, str):
        return ref
    if getattr(ref, "__self__", None) is spider:
        return str(ref.__name__)
    return False


def _label(spider: Spider, r: Request) -> str:
    """The callback a request goes to, as a name; for a CrawlSpider rule's request, the
    rule's callback (``(follow)`` when the rule only follows links)."""
    ref = r.callback
    rule_index = r.meta.get("rule")
    if ref == "_callback" and isinstance(rule_index, int):
        rules = list(getattr(spider, "rules", None) or ())
        if 0 <= rule_index < len(rules):
            ref = getattr(rules[rule_index], "callback", None)
            if ref is None:
                return "(follow)"
    if ref is None:
        return str(getattr(spider, "default_callback", "parse"))
    return ref if isinstance(ref, str) else _name(ref)


def _name(fn: Any) -> str:
    return str(getattr(fn, "__name__", None) or repr(fn))
