"""Small real crawls for the daily tools (``fetch``, ``shell``, ``parse``, ``check``).

A tool does not fetch pages by itself: it runs a crawl through ``build_crawl`` and the
engine, so what is sent and what comes back (settings, user agent, headers, cookies,
robots.txt, retries, redirects, politeness) is exactly what ``run`` would do. Only the
start requests and what becomes of the callbacks' output are the tool's. Such a crawl
writes nothing: outputs and pipelines are off, its state lives in memory, and the
crawl limits (max_pages, max_depth...) are the tool's to decide.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import ConfigError, ScraperError, SpiderError
from ..failure import Failure
from ..http import Request
from ..spider import Spider
from .console import CommandFailed, setup_logging
from .signals import SIGNALS

if TYPE_CHECKING:
    from ..config import ConfigFile, Settings
    from ..crawl.runner import Crawl
    from ..crawl.stats import Stats
    from ..fetch.cassette import CassetteMode
    from ..response import Response

__all__ = ["DefaultSpider", "FetchSpider", "Fetched", "ToolContext", "callback_output",
           "checked_url", "describe_failure", "fetch_one", "not_fetched", "run_tool_crawl"]

log = logging.getLogger("scraper")

#: What every tool crawl overrides, above ``-s``: it writes nothing, keeps its state in
#: this process, and stops when its own work is done, not at a configured limit.
TOOL_OVERRIDES: dict[str, Any] = {"outputs": [], "pipelines": [], "backend": None,
                                  "max_pages": None, "max_items": None, "max_duration": None,
                                  "max_depth": None}

#: Tools log only errors unless ``-s log_level=...`` says otherwise: what they report
#: (a failed fetch, a failed contract) they report themselves, once.
TOOL_LOG_LEVEL = "ERROR"


@dataclass
class ToolContext:
    """What a tool crawl is built from: the config file, ``-s`` (with the tool's
    overrides above it), and the spider whose settings apply (if any)."""

    config: ConfigFile
    user: dict[str, Any]  # -s
    spider_cls: type[Spider] | None
    cassette: CassetteMode | None = None  # --record / --replay (check)

    @property
    def cli(self) -> dict[str, Any]:
        """The ``-s`` layer of a tool crawl: the user's, under the tool's overrides."""
        return {**self.user, **TOOL_OVERRIDES}

    @classmethod
    def from_args(cls, args: argparse.Namespace, spider_name: str | None = None) -> ToolContext:
        """Read the config and ``-s``, find the spider (``--spider`` or ``spider_name``),
        and set up logging; ConfigError/SpiderNotFound for anything wrong."""
        from ..config import load_config, parse_cli_settings, resolve_settings
        from ..loader import load_spider

        config = load_config(args.config)
        user = parse_cli_settings(args.settings)
        base = resolve_settings(config, cli=user)  # a bad -s or config fails here, named
        name = spider_name or getattr(args, "spider", None)
        spider_cls = load_spider(name, base.crawl.spiders_path, config.base_dir) if name else None
        setup_logging(str(user.get("log_level") or TOOL_LOG_LEVEL).upper())
        return cls(config, user, spider_cls)

    def settings(self) -> Settings:
        """The settings a ``run`` of the context's spider would have (no spider: the
        config's and ``-s``), without the tool's overrides."""
        from ..config import resolve_settings
        from ..crawl.runner import crawl_settings

        if self.spider_cls is None:
            return resolve_settings(self.config, cli=self.user)
        return crawl_settings(self.spider_cls, config=self.config, settings=self.user)

    def build(self, cls: type[Spider], spider_args: Mapping[str, str] | None = None) -> Crawl:
        from ..crawl.runner import build_crawl

        return build_crawl(cls, config=self.config, settings=self.cli, spider_args=spider_args,
                           cassette=self.cassette)


def checked_url(command: str, url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else a usage error naming it."""
    try:
        return Request(url).url
    except (TypeError, ValueError):
        raise ConfigError(f"{command} {url}: not an absolute http(s) URL "
                          "(such as https://example.com/)") from None


def run_tool_crawl(crawl: Crawl) -> Stats:
    """Run a tool's crawl to its end; a first Ctrl-C stops it gracefully. A crawl that
    aborts is CommandFailed (exit 1)."""
    SIGNALS.attach(lambda: crawl.stop("interrupted"))
    try:
        return crawl.run()
    except (ConfigError, SpiderError):
        raise  # found before anything was fetched: a usage error
    except ScraperError as e:
        raise CommandFailed(f"the crawl aborted: {e}") from e
    except Exception as e:
        log.error("the crawl aborted", exc_info=True)
        raise CommandFailed(f"the crawl aborted: {type(e).__name__}: {e}") from e
    finally:
        SIGNALS.detach()


def describe_failure(failure: Failure) -> str:
    """``URL: what happened (kind)``, the URL said once."""
    url = failure.request.url
    text = str(failure.exception)
    if text.startswith(url):
        text = text[len(url):].lstrip(": ")
    text = text.replace(f" for {url}", "") or "failed"
    if failure.kind not in text:
        text += f" ({failure.kind})"
    return f"{url}: {text}"


def not_fetched(url: str, stats: Stats) -> str:
    """Why a request of a tool crawl never reached its callback nor its errback."""
    if stats.reason == "interrupted":
        return f"{url}: interrupted before it was fetched"
    filtered = ", ".join(f"{k}" for k, v in sorted(stats.filtered.items()) if v)
    if "offsite" in filtered:
        return f"{url}: dropped as off-site (not in the spider's allowed_domains)"
    return f"{url}: dropped before it was fetched ({filtered or 'no reason recorded'})"


def callback_output(result: Any) -> Iterable[Any]:
    """What a callback returned, as something to iterate: None is nothing, one Request
    or item is itself (the same rules as a crawl's)."""
    from ..crawl.callbacks import is_item

    if result is None:
        return ()
    if isinstance(result, Request) or is_item(result):
        return (result,)
    iterable: Iterable[Any] = result
    return iterable


class DefaultSpider(Spider):
    """The spider of a tool run without ``--spider``: no callbacks of its own."""

    name = "default"


class FetchSpider(Spider):
    """Fetches ``target`` and keeps what became of it: the response its callback got
    (2xx, or a status the spider handles), or the failure its errback got."""

    name = "fetch"
    target: ClassVar[Request | None] = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.response: Response | None = None
        self.failure: Failure | None = None

    def start_requests(self) -> Iterator[Request]:
        target = type(self).target
        if target is not None:
            yield target.replace(callback="fetched", errback="failed", dont_filter=True)

    def fetched(self, response: Response) -> None:
        self.response = response

    def failed(self, failure: Failure) -> None:
        self.failure = failure


@dataclass
class Fetched:
    """What fetching one request as a crawl would came to."""

    request: Request
    response: Response | None   # the final response, whatever its status
    failure: Failure | None     # set when it did not end in a handled response
    why_not: str = ""           # neither: why it was never fetched

    @property
    def error(self) -> str | None:
        """One line saying what went wrong, naming the URL and the kind; None if fine."""
        if self.failure is not None:
            return describe_failure(self.failure)
        if self.response is None:
            return self.why_not
        return None


def fetch_one(request: Request, ctx: ToolContext) -> Fetched:
    """Fetch ``request`` exactly as a crawl with the context's settings would."""
    base = ctx.spider_cls
    attrs: dict[str, Any] = {"target": request}
    if base is not None:  # its name and custom_settings (and only those)
        attrs.update(name=base.name, custom_settings=dict(getattr(base, "custom_settings", None) or {}))
    cls = type("FetchSpider", (FetchSpider,), attrs)
    crawl = ctx.build(cls)
    stats = run_tool_crawl(crawl)
    spider = crawl.spider
    assert isinstance(spider, FetchSpider)
    failure = spider.failure
    response = spider.response or (failure.response if failure is not None else None)
    why = not_fetched(request.url, stats) if response is None and failure is None else ""
    return Fetched(request, response, failure, why)
