"""The HTTP fetcher: one request, one exchange, on a worker's own requests.Session, with
a total deadline (the watchdog), streamed bodies capped while reading, and redirects
left to the caller (a 3xx comes back as a Response). The ``headers`` setting goes
with every request to every host; ``headers_for`` only to its domain and subdomains.

This is the one boundary where ``requests``/``urllib3`` errors enter the package:
each is translated here, once, into a FetchError subclass with the request
attached and a ``kind`` for the stats (``timeout``, ``dns``, ``tls``...).

A request goes out the way ``Session.request`` sends it, minus the work that does
nothing here (~0.25 ms of ~0.6 a page): it is prepared once, by
``PreparedRequest``'s own steps, with the session's headers already merged and
checked; the session's jar makes the Cookie header only when it holds a cookie
(``Session.prepare_request`` copies the whole jar for every request), and takes
cookies back only from a response that sets one; then it goes straight to the
adapter (``Session.send`` adds hooks, which no one sets here, redirect handling,
which ``fetch.redirects`` does, and an environment that ``trust_env`` is off for).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.cookies import (RequestsCookieJar, cookiejar_from_dict, extract_cookies_to_jar,
                              merge_cookies)
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict

from ..config import FetchSettings, PolitenessSettings
from ..exceptions import ConnectionFailed, FetchError, FetchTimeout, ResponseTooLarge
from ..http import Request, host_in_domains
from ..response import Response
from .cookies import MAX_HEADER_BYTES, cap_cookie_header, wire_cookies
from .redirects import is_redirect
from .watchdog import Watchdog

__all__ = ["FetchConfig", "HttpFetcher"]

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
    # (domain, headers), least specific first: a subdomain's own headers win
    headers_for: tuple[tuple[str, Mapping[str, str]], ...] = ()

    @classmethod
    def from_settings(cls, s: FetchSettings, politeness: PolitenessSettings) -> FetchConfig:
        connect, read = s.timeout
        auth = s.http_auth
        return cls(user_agent=s.user_agent, headers=dict(s.headers),
                   connect_timeout=connect, read_timeout=read,
                   max_response_size=s.max_response_size,
                   pool_size=max(politeness.per_host_workers, 1),
                   proxies=dict(s.proxy),
                   verify=s.ca_bundle or s.tls_verify,
                   auth=(auth["username"], auth["password"]) if auth else None,
                   auth_domains=tuple(auth["domains"]) if auth else (),
                   headers_for=tuple(sorted(((d, dict(h)) for d, h in s.headers_for.items()),
                                            key=lambda dh: len(dh[0]))))


class _Adapter(HTTPAdapter):
    """An HTTPAdapter that tells its Fetcher which connection each request uses, so the
    watchdog can cut it."""

    def __init__(self, on_conn: Any, **kw: Any) -> None:
        self._on_conn = on_conn
        super().__init__(**kw)

    def init_poolmanager(self, *args: Any, **kw: Any) -> None:
        super().init_poolmanager(*args, **kw)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._on_conn)

    def add_headers(self, request: requests.PreparedRequest, **kw: Any) -> None:
        """The last look at the headers before they are sent: the Cookie header (the
        jar's and the request's cookies merged) is capped, see ``cap_cookie_header``."""
        cookie = request.headers.get("Cookie")
        if cookie is not None and len(cookie) > MAX_HEADER_BYTES:
            request.headers["Cookie"] = cap_cookie_header(cookie)

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        """``HTTPAdapter.build_response`` without filling ``Response.cookies``, a jar
        of its own that nothing here reads: the fetcher puts what a response sets into
        the crawl's jar itself."""
        response = requests.Response()
        response.status_code = resp.status
        response.headers = CaseInsensitiveDict(resp.headers)
        response.raw = resp
        response.reason = resp.reason
        response.url = str(req.url)  # prepare_url made it a str
        response.request = req
        response.connection = self
        return response

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


class HttpFetcher:
    """Fetches requests on one thread's own Session; cookies are shared through one jar.
    Implements ``fetch.base.Fetcher``."""

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
        self._adapter = adapter
        # With a watchdog the response is read on a blocking socket: the watchdog cuts
        # it at the total deadline, which comes before any per-read timeout would (the
        # deadline is read_timeout after the start). A socket with a timeout costs a
        # poll() before each recv(), and each is one more hand-off of the GIL among the
        # workers (~2 context switches each with 32 threads): a tenth of the crawl's CPU.
        self._blocking_reads = watchdog is not None
        self._timeout: tuple[float, float] | tuple[float, None] = (
            (config.connect_timeout, None) if self._blocking_reads
            else (config.connect_timeout, config.read_timeout))

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
            if is_redirect(status, raw.headers):
                raw.close()
                content = b""
            else:
                content = self._read(raw, request, deadline)
            if self._expired:  # cut at the deadline: a body without a length looks whole
                raise FetchTimeout(f"timed out fetching {request.url} (no complete response "
                                   f"within {self.config.read_timeout:g} s)", request=request)
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
        host = (urlsplit(url).hostname or "").lower()
        auth = meta.get("http_auth")
        if auth is None and self.config.auth is not None and host_in_domains(
                host, self.config.auth_domains):
            auth = self.config.auth
        try:
            prepared = self._prepare(request, url, self._headers(request, host), auth)
            raw = self._adapter.send(prepared, stream=True, timeout=self._timeout,
                                     verify=self.config.verify, cert=None,
                                     proxies=dict(proxies) if proxies else {})
        except Exception as e:
            raise _translate(e, request, url) from e
        headers = raw.headers
        if "Set-Cookie" in headers or "Set-Cookie2" in headers:  # what cookielib reads
            extract_cookies_to_jar(self.session.cookies, prepared, raw.raw)  # type: ignore[no-untyped-call]
        return raw

    def _prepare(self, request: Request, url: str, headers: Mapping[str, str] | None,
                 auth: Any) -> requests.PreparedRequest:
        """The request as ``Session.prepare_request`` prepares it (see the module's
        docstring for what is left out, and why that changes nothing sent)."""
        session = self.session
        prepared = requests.PreparedRequest()
        prepared.prepare_method(request.method)
        prepared.prepare_url(url, None)
        prepared.prepare_headers(session.headers if headers is None else merge_setting(  # type: ignore[no-untyped-call]
            headers, session.headers, dict_class=CaseInsensitiveDict))
        jar = session.cookies
        if request.cookies:
            own = cookiejar_from_dict(wire_cookies(request.cookies))  # type: ignore[no-untyped-call]
            merged = merge_cookies(merge_cookies(RequestsCookieJar(), jar), own)  # type: ignore[no-untyped-call]
            prepared.prepare_cookies(merged)
        elif jar._cookies:  # type: ignore[attr-defined]  # cookielib's own: any cookie at all
            prepared.prepare_cookies(jar)
        else:
            prepared._cookies = jar  # type: ignore[attr-defined]  # as prepare_cookies sets it
        prepared.prepare_body(request.body, None, None)
        prepared.prepare_auth(tuple(auth) if auth else None, url)
        return prepared

    def _headers(self, request: Request, host: str) -> Mapping[str, str] | None:
        """The request's own headers over those ``headers_for`` gives ``host`` (the
        session's global ones go under both)."""
        matching = [h for d, h in self.config.headers_for if host_in_domains(host, (d,))]
        if not matching:
            return request.headers
        merged: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        for headers in matching:
            merged.update(headers)
        merged.update(request.headers or {})
        return merged

    def _read(self, raw: requests.Response, request: Request, deadline: float) -> bytes:
        limit = self.config.max_response_size
        declared = raw.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit and "Content-Encoding" not in raw.headers:
            raw.close()
            raise ResponseTooLarge(f"{raw.url}: Content-Length {declared} is over "
                                   f"max_response_size {limit}", request=request)
        stream = raw.raw
        sock = None if self._blocking_reads else _socket_of(stream)
        decode = _decoding(stream)
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FetchTimeout(f"timed out reading {raw.url} (total deadline)", request=request)
                if sock is not None:
                    sock.settimeout(min(remaining, self.config.read_timeout))
                chunk = stream.read1(_CHUNK, decode_content=decode)
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


# The codings urllib3 can undo here ("br" with the brotli extra, "zstd" with backports.zstd)
_DECODABLE = frozenset(urllib3.HTTPResponse.CONTENT_DECODERS)


def _decoding(stream: Any) -> bool:
    """Whether to undo the body's Content-Encoding while reading it, the header read as
    RFC 9110 8.4 defines it: the codings in the order applied, comma-separated, case and
    spaces not significant, ``identity`` a no-op. urllib3 alone would take " gzip " for
    an unknown coding and undo an unknown or ``identity`` coding inside a list as
    deflate (a ``decode`` failure). With a coding we cannot undo anywhere in the list
    nothing is undone: the body is passed on as sent, as with one unknown coding, and
    its Content-Encoding header says what it is."""
    header = stream.headers.get("Content-Encoding")
    if header is None:
        return True
    codings = [c for c in (part.strip().lower() for part in header.split(","))
               if c and c != "identity"]
    if not all(c in _DECODABLE for c in codings):
        return False
    # urllib3 picks its decoders from this header when the body is first read; the
    # Response keeps the header as the server sent it (requests copied it already)
    stream.headers["Content-Encoding"] = ", ".join(codings)
    return True


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


