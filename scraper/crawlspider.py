"""CrawlSpider and Rule: Scrapy's rule-driven crawling, where a spider lists which links
to follow (``Rule(LinkExtractor(...))``) and which method parses what they lead to.

A request made by a rule carries the rule's index in ``meta["rule"]`` (and the link's
text in ``meta["link_text"]``, as in Scrapy) and names ``_callback``/``_errback``, which
look the rule up again: a callback stays a method name and meta stays JSON, so rule
requests persist, resume and travel between processes like any other. Rules are
applied in the worker thread that parsed the page, on the tree ``links()`` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .http import Request
from .links import Link, LinkExtractor
from .spider import Spider

if TYPE_CHECKING:
    from .failure import Failure
    from .response import Response

__all__ = ["CrawlSpider", "Rule"]

_FETCHABLE = ("http://", "https://")


def _identity(links: list[Link]) -> list[Link]:
    return links


def _same_request(request: Request, response: Response) -> Request | None:
    return request


@dataclass(frozen=True, slots=True)
class _BoundRule:
    """A Rule of one spider instance, its method names resolved."""

    link_extractor: LinkExtractor
    callback: Callable[..., Any] | None
    errback: Callable[..., Any] | None
    cb_kwargs: dict[str, Any]
    follow: bool
    process_links: Callable[[list[Link]], Iterable[Link]]
    process_request: Callable[[Request, Response], Request | None]


class Rule:
    """Which links of a page to follow and what to do with the pages they lead to.

    link_extractor: a ``LinkExtractor`` (default: every link).
    callback: the spider method (its name, or the method) that parses the pages;
        ``cb_kwargs`` are passed to it as keyword arguments.
    follow: whether the rules apply to those pages too; default True when there is no
        callback, False when there is one.
    process_links: called with each page's list of ``Link``s; returns those to follow.
    process_request: called with ``(request, response)``; returns the request to make
        (changed or not), or None to drop it.
    errback: the spider method called with the ``Failure`` of a request this rule made.
    browser: how the requests this rule makes are fetched (``meta["browser"]``): True
        (rendered by Chromium), "auto", or a dict of browser options; None: as the
        spider's ``browser`` attribute says.
    """

    def __init__(self, link_extractor: LinkExtractor | None = None,
                 callback: Callable[..., Any] | str | None = None,
                 cb_kwargs: dict[str, Any] | None = None, follow: bool | None = None,
                 process_links: Callable[..., Any] | str | None = None,
                 process_request: Callable[..., Any] | str | None = None,
                 errback: Callable[..., Any] | str | None = None,
                 browser: bool | str | dict[str, Any] | None = None) -> None:
        if browser is not None and not isinstance(browser, bool | str | dict):
            raise TypeError(f'Rule browser must be true, "auto" or a dict of options, got '
                            f"{browser!r}")
        self.browser = browser
        self.link_extractor = link_extractor if link_extractor is not None else LinkExtractor()
        self.callback = callback
        self.errback = errback
        self.cb_kwargs = cb_kwargs or {}
        self.process_links: Callable[..., Any] | str = process_links or _identity
        self.process_request: Callable[..., Any] | str = process_request or _same_request
        self.follow = follow if follow is not None else not callback

    def _bound(self, spider: Spider, index: int) -> _BoundRule:
        """This rule for ``spider``; ValueError naming the rule and the attribute when a
        name is not a method of the spider (Scrapy would silently ignore it)."""
        def method(attr: str) -> Any:
            ref = getattr(self, attr)
            if not isinstance(ref, str):
                return ref
            found = getattr(spider, ref, None)
            if not callable(found):
                raise ValueError(f"rules[{index}]: {attr} {ref!r} is not a method of "
                                 f"{type(spider).__name__}")
            return found

        return _BoundRule(self.link_extractor, method("callback"), method("errback"),
                          self.cb_kwargs, self.follow, method("process_links"),
                          method("process_request"))

    def __repr__(self) -> str:
        return f"<Rule callback={self.callback!r} follow={self.follow!r}>"


class CrawlSpider(Spider):
    """A spider that follows links by ``rules``: Scrapy's CrawlSpider.

    Class attributes:
        rules: a sequence of ``Rule``; a link that several rules extract from one page
            is followed by the first of them.

    Pages of ``start_urls`` (and any request without a callback) go to ``_parse``: the
    result of ``parse_start_url`` (override it to scrape them), then the rules. ``parse``
    does the same unless overridden, so a rule may name an overridden ``parse``.
    """

    rules: ClassVar[Sequence[Rule]] = ()
    default_callback: ClassVar[str] = "_parse"
    #: Scrapy's CRAWLSPIDER_FOLLOW_LINKS: False makes every rule behave as follow=False
    _follow_links: ClassVar[bool] = True
    _compiled: list[_BoundRule] | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._compile_rules()  # a rule naming a missing method fails here, before the crawl

    def _compile_rules(self) -> list[_BoundRule]:
        compiled = [rule._bound(self, i) for i, rule in enumerate(self.rules)]
        self._compiled = compiled
        return compiled

    @property
    def _rules(self) -> list[_BoundRule]:
        """The rules with their method names resolved (made once, even when a subclass's
        ``__init__`` does not call ours)."""
        compiled = self._compiled
        return compiled if compiled is not None else self._compile_rules()

    # -- callbacks ---------------------------------------------------------------
    def _parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        """What a page without a rule (a start URL) goes to: ``parse_start_url``, then the rules."""
        return self.parse_with_rules(response, self.parse_start_url, kwargs, True)

    def parse(self, response: Response, **kwargs: Any) -> Any:
        """Applies the rules (as ``_parse``); may be overridden and named by a rule."""
        return self._parse(response, **kwargs)

    def parse_start_url(self, response: Response, **kwargs: Any) -> Any:
        """Items and requests for a start page (nothing by default)."""
        return ()

    def process_results(self, response: Response, results: Iterable[Any]) -> Iterable[Any]:
        """Called with what each rule callback returned; returns what to keep."""
        return results

    def _callback(self, response: Response, **cb_kwargs: Any) -> Iterator[Any]:
        rule = self._rules[response.meta["rule"]]
        return self.parse_with_rules(response, rule.callback, {**rule.cb_kwargs, **cb_kwargs},
                                     rule.follow)

    def _errback(self, failure: Failure) -> Iterator[Any]:
        rule = self._rules[failure.request.meta["rule"]]
        if rule.errback is not None:
            yield from _outputs(rule.errback(failure))

    def parse_with_rules(self, response: Response, callback: Callable[..., Any] | None,
                         cb_kwargs: dict[str, Any], follow: bool = True) -> Iterator[Any]:
        """What ``callback`` gives for ``response`` (through ``process_results``), then, when
        ``follow``, the requests the rules make from its links."""
        if callback is not None:
            results = callback(response, **cb_kwargs)
            yield from _outputs(self.process_results(response, _outputs(results)))
        if follow and self._follow_links:
            yield from self._requests_to_follow(response)

    # -- following ---------------------------------------------------------------
    def _requests_to_follow(self, response: Response) -> Iterator[Request]:
        if not response.is_markup:
            return
        seen: set[Link] = set()
        memo: dict[Any, Any] = {}  # rules that read the page alike read it once
        for index, rule in enumerate(self._rules):
            links = [link for link in _extracted(rule.link_extractor, response, memo)
                     if link not in seen]
            for link in rule.process_links(links):
                seen.add(link)
                if not link.url.startswith(_FETCHABLE):
                    continue  # ftp:, file: links are extracted, as in Scrapy, but not fetched
                request = rule.process_request(self._build_request(
                    index, link, getattr(self.rules[index], "browser", None)), response)
                if request is not None:
                    yield request

    def _build_request(self, rule_index: int, link: Link, browser: Any = None) -> Request:
        # cb_kwargs as a dict, not None: process_request code written for Scrapy fills it in
        meta: dict[str, Any] = {"rule": rule_index, "link_text": link.text}
        if browser is not None:
            meta["browser"] = browser
        return Request(link.url, "_callback", errback="_errback", cb_kwargs={}, meta=meta)


def _extracted(extractor: Any, response: Response, memo: dict[Any, Any]) -> list[Link]:
    """The links of ``extractor`` (ours, or any object with Scrapy's ``extract_links``)."""
    if isinstance(extractor, LinkExtractor):
        return extractor._links_for(response, memo)
    return list(extractor.extract_links(response))


def _outputs(results: Any) -> Iterable[Any]:
    """A callback's result as outputs: None is none; a list, tuple or iterator is each of
    them; anything else (a Request, an item) is one."""
    if results is None:
        return ()
    if isinstance(results, list | tuple | Iterator):
        return results
    return (results,)
