"""The package's exception tree; third-party errors are wrapped once, where they enter.

    ScraperError                  root of everything this package raises
    ├── ConfigError               a bad setting, config file, output or pipeline (exit 2)
    ├── SpiderNotFound            no spider of that name (exit 2)
    ├── SpiderError               a spider that cannot be loaded or is malformed (exit 2)
    ├── FetchError                a request that failed; carries .request and .response
    │   ├── FetchTimeout          connect or read deadline passed  (kind "timeout")
    │   ├── ConnectionFailed      refused, reset, DNS, TLS         (kind "connection", "dns", "tls")
    │   ├── ResponseTooLarge      body over max_response_size      (kind "too-large")
    │   ├── RobotsBlocked         disallowed by robots.txt          (kind "robots")
    │   └── HttpError             a final status a callback does not handle (kind "http-404", ...)
    ├── StorageError              a backend or an output store failed (exit 1)
    │   ├── StorageUnusable       its location cannot be used: bad URL, unwritable dir,
    │   │                         a job.sqlite that is not a database (exit 2)
    │   ├── StorageLocked         another process holds it (exit 2)
    │   └── NotSupported          the backend does not do that (push on memory://) (exit 2)
    └── BadItem                   an item no output can write as it is (a NUL in a key, too
                                  many columns, text that is not Unicode): skipped, counted

Control flow, not errors: DropItem (a pipeline discards an item), CloseSpider
(a callback ends the crawl gracefully) and IgnoreRequest (a middleware drops a
request: kind "ignored").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .http import Request
    from .response import Response

__all__ = [
    "BadItem",
    "CloseSpider",
    "ConfigError",
    "ConnectionFailed",
    "DropItem",
    "FetchError",
    "FetchTimeout",
    "HttpError",
    "IgnoreRequest",
    "ResponseTooLarge",
    "RobotsBlocked",
    "ScraperError",
    "SpiderError",
    "SpiderNotFound",
    "NotSupported",
    "StorageError",
    "StorageLocked",
    "StorageUnusable",
]


class ScraperError(Exception):
    """Root of every exception this package raises on purpose."""


class ConfigError(ScraperError):
    """A setting, config file, output or pipeline is wrong; the message names it."""


class SpiderNotFound(ScraperError):
    """No spider has the requested name."""


class SpiderError(ScraperError):
    """A spider module cannot be imported, or a spider class is malformed."""


class StorageError(ScraperError):
    """A backend or an output store failed. ``location`` is what was being used (a job
    dir, a Redis URL with its password masked) and ``reason`` the message without it, so
    the command line can name the flag that gave the location."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location
        self.reason = message


class StorageUnusable(StorageError):
    """The backend's location cannot be used at all (bad URL, directory not writable)."""


class StorageLocked(StorageError):
    """Another process owns the backend's location (one crawl per job dir)."""


class NotSupported(StorageError):
    """The backend cannot do what was asked (``push`` into an in-memory crawl)."""


class BadItem(ScraperError):
    """An output cannot write this item because of what it holds (a key with a NUL, more
    columns than SQLite allows, a string with a lone surrogate...). Raised before anything
    is written to any output; the crawl skips the item and counts it as ``bad-item``."""


class FetchError(ScraperError):
    """A request failed; ``kind`` is the stats key (``timeout``, ``http-404``...)."""

    kind = "fetch"

    def __init__(self, message: str, *, request: Request | None = None,
                 response: Response | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.request = request
        self.response = response
        if kind is not None:
            self.kind = kind


class FetchTimeout(FetchError):
    """The connect or read deadline passed."""

    kind = "timeout"


class ConnectionFailed(FetchError):
    """The connection could not be made or broke (refused, reset, DNS, TLS)."""

    kind = "connection"


class ResponseTooLarge(FetchError):
    """The body grew past ``max_response_size``; it was abandoned while streaming."""

    kind = "too-large"


class RobotsBlocked(FetchError):
    """robots.txt disallows the request (or could not be fetched); it was never sent."""

    kind = "robots"


class HttpError(FetchError):
    """A final status the request's callback does not handle."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status} for {response.url}",
                         request=response.request, response=response,
                         kind=f"http-{response.status}")


class DropItem(Exception):
    """Raised by a pipeline's ``process`` to discard an item (counted, not an error)."""


class CloseSpider(Exception):
    """Raised in a callback to end the crawl gracefully; ``reason`` goes in the summary."""

    def __init__(self, reason: str = "closespider") -> None:
        super().__init__(reason)
        self.reason = reason


class IgnoreRequest(Exception):
    """Raised by a middleware hook to drop a request: it is not fetched (or its response
    not handled); its errback runs with kind ``ignored``."""
