"""Who may talk to ``serve``: the API token, the Host header, and cross-site requests.

- With an ``api_token``, every request must carry it: ``Authorization: Bearer TOKEN``,
  or HTTP basic auth with TOKEN as the password (any user name), which is what Scrapyd
  clients send and what a browser asks for (401 with ``WWW-Authenticate: Basic``).
- Without one (loopback only), the Host header must name a loopback address, so a web
  page cannot reach the server through a DNS name rebound to 127.0.0.1.
- A state-changing request (POST) whose ``Origin`` or ``Referer`` is another site, or
  that a browser marks cross-site (``Sec-Fetch-Site``), is refused: a page elsewhere
  cannot make a logged-in browser start or cancel crawls. A form-encoded POST without
  those headers, as Scrapyd clients send (no browser does), is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LOOPBACK_NAMES", "Guard"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Guard:
    """ASGI middleware: refuses what the module docstring says, with a Scrapyd-style
    JSON error (401, 403) naming what was wrong."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = self.problem(scope["method"], headers)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message = problem
        extra = {"WWW-Authenticate": 'Basic realm="scraper", charset="UTF-8"'} if status == 401 else {}
        response = JSONResponse({"status": "error", "message": message}, status_code=status,
                                headers=extra)
        await response(scope, receive, send)

    def problem(self, method: str, headers: Headers) -> tuple[int, str] | None:
        """(HTTP status, message) when the request is refused, else None."""
        host = headers.get("host", "")
        if self.token is not None:
            if not self._authorized(headers.get("authorization", "")):
                return 401, ("authentication required: send the API token as "
                             "'Authorization: Bearer TOKEN' or as the HTTP basic auth password")
        elif _hostname(host) not in LOOPBACK_NAMES:
            return 403, (f"Host {host!r} refused: this server listens on loopback only and "
                         "answers requests for 127.0.0.1, localhost or [::1]")
        if method not in _SAFE_METHODS:
            return _cross_site(headers, host)
        return None

    def _authorized(self, header: str) -> bool:
        assert self.token is not None
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            given = value
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            given = decoded.partition(":")[2]
        else:
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())


def _hostname(host: str) -> str:
    """The name part of a Host header ("127.0.0.1:6800" → "127.0.0.1", "[::1]:80" → "::1")."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _cross_site(headers: Headers, host: str) -> tuple[int, str] | None:
    site = headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        return 403, f"cross-site request refused (Sec-Fetch-Site: {site})"
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value is None:
            continue
        netloc = urlsplit(value).netloc if value != "null" else ""
        if netloc.lower() != host.lower():
            return 403, (f"cross-site request refused: {name.capitalize()} {value!r} is not this "
                         f"server ({host})")
        return None  # the first of them decides: a same-origin Origin is enough
    return None
