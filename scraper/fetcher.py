"""Fetching one request: a requests.Session per worker, timeouts with a total deadline,
streamed bodies capped while reading, manual redirects, and the retry policy.

This is the one boundary where ``requests``/``urllib3`` errors enter the package:
each is translated here, once, into a FetchError subclass with the request
attached and a ``kind`` for the stats (``timeout``, ``dns``, ``tls``...).
"""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
import tenacity
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar

from .exceptions import ConnectionFailed, FetchError, FetchTimeout, ResponseTooLarge
from .http import Request
from .response import Response

__all__ = ["FetchConfig", "Fetcher", "RetryPolicy"]

_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 65536

#: Called for each redirect hop with (original request, next URL); raises FetchError to stop.
HopCheck = Callable[[Request, str], None]


@dataclass(frozen=True)
class FetchConfig:
    """What a Fetcher needs from the settings."""

    user_agent: str
    headers: Mapping[str, str]
    connect_timeout: float
    read_timeout: float
    max_response_size: int
    max_redirects: int
    pool_size: int

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> FetchConfig:
        connect, read = s["timeout"]
        return cls(user_agent=s["user_agent"], headers=dict(s["headers"]),
                   connect_timeout=connect, read_timeout=read,
                   max_response_size=s["max_response_size"], max_redirects=s["max_redirects"],
                   pool_size=max(s["per_host_workers"], 1))


class Fetcher:
    """Fetches requests on one thread's own Session; cookies are shared through one jar."""

    def __init__(self, config: FetchConfig, cookies: RequestsCookieJar,
                 hop_check: HopCheck | None = None) -> None:
        self.config = config
        self.hop_check = hop_check
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=config.pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = config.user_agent
        session.headers.update(config.headers)
        session.cookies = cookies  # a cookielib jar locks itself: safe to share
        self.session = session

    def close(self) -> None:
        self.session.close()

    def fetch(self, request: Request) -> Response:
        """The final response (any status) after redirects; FetchError on failure."""
        started = time.monotonic()
        deadline = started + self.config.read_timeout
        history: list[Response] = []
        method, url, body = request.method, request.url, request.body
        visited = {url}
        while True:
            raw = self._send(request, method, url, body, deadline)
            status = raw.status_code
            location = raw.headers.get("Location") if status in _REDIRECTS else None
            if location is None:
                content = self._read(raw, request, deadline)
                return Response(raw.url or url, status, raw.headers, content, request,
                                history=history, elapsed=time.monotonic() - started)
            raw.close()
            hop = Response(url, status, raw.headers, b"", request)
            history.append(hop)
            if len(history) > self.config.max_redirects:
                raise FetchError(f"more than {self.config.max_redirects} redirects from {request.url}",
                                 request=request, response=hop, kind="too-many-redirects")
            url = urljoin(url, location.strip())
            if not url.startswith(("http://", "https://")):
                raise FetchError(f"redirect to a non-http URL {url!r} from {request.url}",
                                 request=request, response=hop, kind="bad-redirect")
            url = url.split("#", 1)[0]
            if url in visited:
                raise FetchError(f"redirect loop at {url} from {request.url}",
                                 request=request, response=hop, kind="redirect-loop")
            visited.add(url)
            if self.hop_check is not None:
                self.hop_check(request, url)
            if status == 303 or (status in (301, 302) and method == "POST"):
                method, body = "GET", None

    def _send(self, request: Request, method: str, url: str, body: bytes | None,
              deadline: float) -> requests.Response:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout(f"timed out fetching {url}", request=request)
        try:
            return self.session.request(
                method, url, headers=request.headers, data=body, cookies=request.cookies,
                allow_redirects=False, stream=True,
                timeout=(self.config.connect_timeout, min(self.config.read_timeout, remaining)))
        except Exception as e:
            raise _translate(e, request, url) from e

    def _read(self, raw: requests.Response, request: Request, deadline: float) -> bytes:
        limit = self.config.max_response_size
        declared = raw.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit and "Content-Encoding" not in raw.headers:
            raw.close()
            raise ResponseTooLarge(f"{raw.url}: Content-Length {declared} is over "
                                   f"max_response_size {limit}", request=request)
        stream = raw.raw
        sock = _socket_of(stream)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FetchTimeout(f"timed out reading {raw.url} (total deadline)", request=request)
                if sock is not None:
                    sock.settimeout(min(remaining, self.config.read_timeout))
                chunk = stream.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge(f"{raw.url}: body over max_response_size {limit} bytes",
                                           request=request)
                chunks.append(chunk)
        except FetchError:
            raw.close()
            raise
        except Exception as e:
            raw.close()
            raise _translate(e, request, raw.url) from e
        raw.close()
        return b"".join(chunks)


def _socket_of(stream: Any) -> socket.socket | None:
    """The socket under a urllib3 response, to bound each read by the remaining deadline."""
    conn = getattr(stream, "_connection", None) or getattr(stream, "connection", None)
    sock = getattr(conn, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _translate(e: Exception, request: Request, url: str) -> FetchError:
    """A requests/urllib3/socket exception as one of ours, with a stats kind."""
    text = str(e)
    if isinstance(e, (requests.Timeout, urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError)):
        return FetchTimeout(f"timed out fetching {url}", request=request)
    if isinstance(e, (requests.exceptions.SSLError, urllib3.exceptions.SSLError)):
        return ConnectionFailed(f"TLS error for {url}: {_short(text)}", request=request, kind="tls")
    if isinstance(e, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                      requests.exceptions.MissingSchema, urllib3.exceptions.LocationParseError)):
        return FetchError(f"invalid URL {url}: {_short(text)}", request=request, kind="bad-url")
    if isinstance(e, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
        return FetchError(f"cannot decode body of {url}: {_short(text)}", request=request, kind="decode")
    if isinstance(e, (requests.ConnectionError, urllib3.exceptions.HTTPError, ConnectionError,
                      requests.exceptions.ChunkedEncodingError, OSError)):
        if "NameResolutionError" in text or "Name or service not known" in text or \
                "getaddrinfo failed" in text or "nodename nor servname" in text:
            return ConnectionFailed(f"DNS lookup failed for {url}", request=request, kind="dns")
        return ConnectionFailed(f"connection failed for {url}: {_short(text)}", request=request)
    return FetchError(f"fetching {url} failed: {type(e).__name__}: {_short(text)}", request=request)


def _short(text: str) -> str:
    text = text.strip().splitlines()[0] if text.strip() else ""
    return text[:200]


class RetryPolicy:
    """Whether a failed attempt is retried and how long to wait: tenacity's strategies.

    The engine does the waiting, by re-queueing the request with a not-before
    time, so no worker sleeps.
    """

    def __init__(self, attempts: int, statuses: tuple[int, ...], backoff: float,
                 backoff_max: float) -> None:
        self.attempts = attempts
        self.statuses = frozenset(statuses)
        self._retry = (tenacity.retry_if_exception_type((FetchTimeout, ConnectionFailed))
                       | tenacity.retry_if_result(lambda r: r.status in self.statuses))
        self._stop = tenacity.stop_after_attempt(attempts)
        self._wait = (tenacity.wait_exponential(multiplier=backoff, max=backoff_max)
                      + tenacity.wait_random(0, backoff))
        self.backoff_max = backoff_max

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> RetryPolicy:
        return cls(s["retry.attempts"], s["retry.statuses"], s["retry.backoff"],
                   s["retry.backoff_max"])

    def backoff(self, attempt: int) -> float:
        """The back-off before attempt ``attempt + 1``, whatever failed."""
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return min(self._wait(state), self.backoff_max)

    def delay(self, attempt: int, *, response: Response | None = None,
              error: BaseException | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None if not to retry.

        ``attempt`` counts from 1. ``Retry-After`` (seconds or an HTTP date) wins
        over the back-off when present, capped at ``retry.backoff_max``.
        """
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        if error is not None:
            state.set_exception((type(error), error, error.__traceback__))
        else:
            state.set_result(response)
        if not self._retry(state) or self._stop(state):
            return None
        wait = self._wait(state)
        if response is not None:
            after = retry_after(response.headers.get("Retry-After"))
            if after is not None:
                wait = after
        return min(wait, self.backoff_max)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
