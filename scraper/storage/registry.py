"""Backends by URL scheme, the way requests mounts adapters by prefix.

    memory://                    this process only (the default)
    sqlite:///DIR                a job dir (what ``--job-dir DIR`` opens)
    redis:// rediss:// unix://   one crawl shared through Redis
    redis+cluster:// rediss+cluster://   ... through a Redis Cluster, sharded by host

A backend is a factory ``(url, BackendOptions) -> Backend``. The built-in ones are
imported only when their scheme is used (a memory crawl never imports redis);
others register with ``register`` or through the ``scraper.backends`` entry-point
group (name: the scheme; value: ``module:factory``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from urllib.parse import urlsplit

from ..exceptions import StorageUnusable
from .base import Backend

__all__ = ["BackendOptions", "Factory", "mask_url", "open_backend", "register", "scheme_of",
           "schemes"]


@dataclass(frozen=True)
class BackendOptions:
    """What a backend is opened with besides its URL."""

    spider: str
    lease_seconds: float = 60.0
    seen_ttl: float | None = None
    retry_window: float = 30.0
    lock: bool = True  # take the location for this process alone (a job dir)


Factory = Callable[[str, BackendOptions], Backend]

_BUILTIN: dict[str, str] = {
    "memory": "scraper.storage.memory:open_memory",
    "sqlite": "scraper.storage.sqlite:open_sqlite",
    "redis": "scraper.storage.redis:open_redis",
    "rediss": "scraper.storage.redis:open_redis",
    "unix": "scraper.storage.redis:open_redis",
    "redis+cluster": "scraper.storage.rediscluster:open_redis_cluster",
    "rediss+cluster": "scraper.storage.rediscluster:open_redis_cluster",
}
_registered: dict[str, Factory | str] = dict(_BUILTIN)
_entry_points_loaded = False
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def register(scheme: str, factory: Factory | str) -> None:
    """Open URLs of ``scheme`` with ``factory`` (a callable, or ``"module:function"``)."""
    _registered[scheme.lower()] = factory


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group="scraper.backends"):
        _registered.setdefault(ep.name.lower(), ep.value)


def schemes() -> list[str]:
    """Every scheme a backend is registered for."""
    _load_entry_points()
    return sorted(_registered)


def scheme_of(url: str) -> str:
    """The scheme of a backend URL, checked; StorageUnusable names the URL otherwise."""
    m = _SCHEME_RE.match(url)
    scheme = m.group(1).lower() if m else ""
    _load_entry_points()
    if scheme not in _registered:
        raise StorageUnusable(f"unknown backend (known schemes: {', '.join(schemes())})",
                              location=mask_url(url))
    return scheme


def _factory(scheme: str) -> Factory:
    found = _registered[scheme]
    if isinstance(found, str):
        module, _, name = found.partition(":")
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise StorageUnusable(f"backend {found} cannot be loaded ({e})",
                                  location=f"{scheme}://") from None
        _registered[scheme] = found
    return found


def open_backend(url: str, options: BackendOptions) -> Backend:
    """Open the backend ``url`` names; StorageError (StorageUnusable, StorageLocked) names
    the URL, with any password masked, when it cannot be used."""
    return _factory(scheme_of(url))(url, options)


def mask_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***``: the password of its user info
    and the value of a ``password`` query option (redis-py reads one there too). Every
    message, log line or summary that shows a backend URL shows it through this."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        password = ""  # unparsable (a bad port, a bracket): hide all of the user info
    if password is not None:
        url = _USER_INFO.sub(lambda m: m.group(1) + (
            f"{parts.username or ''}:***@" if password else "***@"), url, count=1)
    base, sep, query = url.partition("?")
    return base + sep + _SECRET_QUERY.sub(r"\1***", query) if sep else url


_USER_INFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
# ``password=...`` (any case) in a query string
_SECRET_QUERY = re.compile(r"((?:^|&)password=)[^&#]*", re.IGNORECASE)
