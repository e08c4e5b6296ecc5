"""Fetching one request: a requests.Session per worker, timeouts with a total deadline,
streamed bodies capped while reading, manual redirects, and the retry policy.

This is the one boundary where ``requests``/``urllib3`` errors enter the package:
each is translated here, once, into a FetchError subclass with the request
attached and a ``kind`` for the stats (``timeout``, ``dns``, ``tls``...).
"""

from __future__ import annotations

import email.utils
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import tenacity
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar

from .exceptions import ConnectionFailed, FetchError, FetchTimeout, ResponseTooLarge
from .http import Request
from .response import Response

__all__ = ["FetchConfig", "Fetcher", "RetryPolicy", "Watchdog", "redirect_request", "retry_after"]

_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 65536

@dataclass(frozen=True)
class FetchConfig:
    """What a Fetcher needs from the settings."""

    user_agent: str
    headers: Mapping[str, str]
    connect_timeout: float
    read_timeout: float
    max_response_size: int
    pool_size: int
    proxies: Mapping[str, str]
    verify: bool | str
    auth: tuple[str, str] | None = None
    auth_domains: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> FetchConfig:
        connect, read = s["timeout"]
        auth = s["http_auth"]
        return cls(user_agent=s["user_agent"], headers=dict(s["headers"]),
                   connect_timeout=connect, read_timeout=read,
                   max_response_size=s["max_response_size"],
                   pool_size=max(s["per_host_workers"], 1),
                   proxies=dict(s["proxy"]),
                   verify=s["ca_bundle"] or s["tls_verify"],
                   auth=(auth["username"], auth["password"]) if auth else None,
                   auth_domains=tuple(auth["domains"]) if auth else ())


class Watchdog:
    """One thread that cuts the connection of any fetch still running at its deadline.

    requests' read timeout bounds each read, not the response: a server sending a
    header line or a byte every few seconds would hold a worker for ever. Each fetch
    registers its deadline here (a heap push, no thread per request); past it, the
    socket is shut down and the fetch fails as a timeout.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Fetcher]] = []
        self._active: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def watch(self, deadline: float, fetcher: Fetcher) -> int:
        token = next(self._tokens)
        with self._cond:
            self._active.add(token)
            heapq.heappush(self._heap, (deadline, token, fetcher))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][1] == token:
                self._cond.notify()
        return token

    def done(self, token: int) -> None:
        with self._cond:
            self._active.discard(token)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                heap = self._heap
                while heap and heap[0][1] not in self._active:
                    heapq.heappop(heap)  # finished in time
                if not heap:
                    self._cond.wait()
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, token, fetcher = heapq.heappop(heap)
                self._active.discard(token)
                fetcher.expire(token)


class _Adapter(HTTPAdapter):
    """An HTTPAdapter that tells its Fetcher which connection each request uses, so the
    watchdog can cut it."""

    def __init__(self, on_conn: Any, **kw: Any) -> None:
        self._on_conn = on_conn
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._on_conn)

    def proxy_manager_for(self, proxy: str, **kw: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kw)
        manager.pool_classes_by_scheme = _pool_classes(self._on_conn)
        return manager


def _pool_classes(on_conn: Any) -> dict[str, type]:
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Pool(HTTPConnectionPool):
        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            on_conn(conn)
            return conn

    class TLSPool(HTTPSConnectionPool):
        def _get_conn(self, timeout: float | None = None) -> Any:
            conn = super()._get_conn(timeout)
            on_conn(conn)
            return conn

    return {"http": Pool, "https": TLSPool}


class Fetcher:
    """Fetches requests on one thread's own Session; cookies are shared through one jar."""

    def __init__(self, config: FetchConfig, cookies: RequestsCookieJar,
                 watchdog: Watchdog | None = None) -> None:
        self.config = config
        self.watchdog = watchdog
        self._conn: Any = None
        self._token: int | None = None
        self._expired = False
        session = requests.Session()
        adapter = _Adapter(self._use_conn, pool_connections=16, pool_maxsize=config.pool_size,
                           max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = config.user_agent
        session.headers.update(config.headers)
        session.cookies = cookies  # a cookielib jar locks itself: safe to share
        session.verify = config.verify
        if config.verify is False:
            # the user turned verification off on purpose; the engine logs it once
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        session.trust_env = False  # proxies come from settings, not the environment
        self.session = session

    def close(self) -> None:
        self.session.close()

    def _use_conn(self, conn: Any) -> None:
        self._conn = conn

    def expire(self, token: int) -> None:
        """Called by the watchdog at the deadline: cut the connection of that fetch."""
        if token != self._token:
            return  # that fetch is over
        self._expired = True
        sock = getattr(self._conn, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def fetch(self, request: Request) -> Response:
        """One HTTP exchange. A redirect comes back as a 3xx Response with no body
        (see ``redirect_request``); any other status with its body, read under the
        size cap and the total deadline. FetchError on failure."""
        started = time.monotonic()
        deadline = started + self.config.read_timeout
        self._expired = False
        self._conn = None
        if self.watchdog is not None:
            self._token = self.watchdog.watch(deadline, self)
        try:
            raw = self._send(request, deadline)
            status = raw.status_code
            if status in _REDIRECTS and "Location" in raw.headers:
                raw.close()
                content = b""
            else:
                content = self._read(raw, request, deadline)
        except FetchError as e:
            if self._expired and not isinstance(e, FetchTimeout):
                raise FetchTimeout(f"timed out fetching {request.url} (no complete response "
                                   f"within {self.config.read_timeout:g} s)", request=request) from e
            raise
        finally:
            if self._token is not None and self.watchdog is not None:
                self.watchdog.done(self._token)
            self._token = None
        return Response(request.url, status, raw.headers, content, request,
                        elapsed=time.monotonic() - started)

    def _send(self, request: Request, deadline: float) -> requests.Response:
        url = request.url
        meta = request.meta
        proxy = meta.get("proxy")
        proxies = {"http": proxy, "https": proxy} if proxy else self.config.proxies
        auth = meta.get("http_auth")
        if auth is None and self.config.auth is not None and _host_in(url, self.config.auth_domains):
            auth = self.config.auth
        try:
            return self.session.request(
                request.method, url, headers=request.headers, data=request.body,
                cookies=dict(request.cookies) if request.cookies else None,
                allow_redirects=False, stream=True, proxies=dict(proxies) if proxies else None, auth=tuple(auth) if auth else None,
                timeout=(self.config.connect_timeout, self.config.read_timeout))
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


def redirect_request(response: Response, max_redirects: int) -> Request:
    """The request that follows a 3xx response; FetchError for a loop, too many hops,
    or a non-http target. The chain so far travels in ``meta["redirect_chain"]``."""
    request = response.request
    chain = list(request.meta.get("redirect_chain") or ())
    chain.append([request.url, response.status])
    if len(chain) > max_redirects:
        raise FetchError(f"more than {max_redirects} redirects from {chain[0][0]}",
                         request=request, response=response, kind="too-many-redirects")
    url = urljoin(request.url, (response.headers.get("Location") or "").strip()).split("#", 1)[0]
    if not url.startswith(("http://", "https://")):
        raise FetchError(f"redirect to a non-http URL {url!r} from {request.url}",
                         request=request, response=response, kind="bad-redirect")
    if any(url == hop[0] for hop in chain):
        raise FetchError(f"redirect loop at {url} from {chain[0][0]}",
                         request=request, response=response, kind="redirect-loop")
    changes: dict[str, Any] = {"url": url, "meta": {**request.meta, "redirect_chain": chain}}
    post_to_get = response.status == 303 or (response.status in (301, 302) and request.method == "POST")
    if post_to_get and request.method != "HEAD":
        headers = {k: v for k, v in (request.headers or {}).items()
                   if k.lower() not in ("content-type", "content-length")}
        changes.update(method="GET", headers=headers or None)
    new = request.replace(**changes)
    if post_to_get:
        new.body = None
    return new


def _host_in(url: str, domains: tuple[str, ...]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


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
                 backoff_max: float, retry_after_max: float = 300.0) -> None:
        self.retry_after_max = retry_after_max
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
                   s["retry.backoff_max"], s["retry.retry_after_max"])

    def backoff(self, attempt: int) -> float:
        """The back-off before attempt ``attempt + 1``, whatever failed."""
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return min(self._wait(state), self.backoff_max)

    def retryable(self, *, response: Response | None = None,
                  error: BaseException | None = None) -> bool:
        """Whether this kind of failure is one that is retried (whatever the attempt)."""
        if error is not None:
            return isinstance(error, (FetchTimeout, ConnectionFailed))
        return response is not None and response.status in self.statuses

    def host_backoff(self, attempt: int, response: Response) -> float:
        """How long a host that answered 429/503 should get no requests."""
        after = retry_after(response.headers.get("Retry-After"))
        if after is not None:
            return min(after, self.retry_after_max)
        return self.backoff(attempt)

    def delay(self, attempt: int, *, response: Response | None = None,
              error: BaseException | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None if not to retry.

        ``attempt`` counts from 1. ``Retry-After`` (seconds or an HTTP date) wins
        over the back-off when present, capped at ``retry.retry_after_max``.
        """
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        if error is not None:
            state.set_exception((type(error), error, error.__traceback__))
        else:
            state.set_result(response)
        if not self._retry(state) or self._stop(state):
            return None
        if response is not None:
            after = retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.retry_after_max)
        return min(self._wait(state), self.backoff_max)


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
