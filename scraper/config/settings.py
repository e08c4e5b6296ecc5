"""The typed settings of one crawl: a frozen object with one section per concern, built
once from the validated values of every layer.

Each module reads its own section (``settings.fetch.timeout``,
``settings.retry.attempts``); spiders and pipelines keep the read-only mapping view
of dotted keys (``self.settings["retry.attempts"]``). Which key lands in which
section is declared once, in ``schema.SCHEMA``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from .schema import SCHEMA, suggest

__all__ = ["BackendSettings", "BrowserSettings", "CrawlSettings", "FetchSettings", "ExportSettings",
           "HttpCacheSettings", "LimitSettings",
           "PolitenessSettings", "RetrySettings", "ScheduleSettings", "Settings"]


@dataclass(frozen=True)
class CrawlSettings:
    """The crawl process: where spiders are, how many workers, stopping, logging."""

    spiders_path: str
    workers: int
    processes: int
    shutdown_timeout: float
    log_level: str
    progress_interval: float
    middlewares: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class FetchSettings:
    """How one request is sent and its answer read."""

    user_agent: str
    headers: Mapping[str, str]
    headers_for: Mapping[str, Mapping[str, str]]
    proxy: Mapping[str, str]
    http_auth: Mapping[str, Any] | None
    tls_verify: bool
    ca_bundle: str | None
    timeout: tuple[float, float]
    max_response_size: int
    max_redirects: int


@dataclass(frozen=True)
class PolitenessSettings:
    """Per-host limits, delays, the adaptive throttle, robots.txt."""

    delay: float
    randomize_delay: bool
    autothrottle: bool
    autothrottle_target: float
    autothrottle_max_delay: float
    per_host_workers: int
    obey_robots: bool


@dataclass(frozen=True)
class RetrySettings:
    """Which failures are tried again, how often, after how long."""

    attempts: int
    statuses: tuple[int, ...]
    backoff: float
    backoff_max: float
    retry_after_max: float


@dataclass(frozen=True)
class LimitSettings:
    """When a crawl stops by itself."""

    max_pages: int | None
    max_items: int | None
    max_duration: float | None
    max_depth: int | None
    max_url_length: int


@dataclass(frozen=True)
class BackendSettings:
    """Where the crawl's state lives and how a shared one is kept alive."""

    url: str | None
    seen_ttl: float | None
    lease_seconds: float
    heartbeat_interval: float
    poll_interval: float
    redis_retry_window: float
    prefetch: int | None


@dataclass(frozen=True)
class ExportSettings:
    """Where items go: pipelines, then outputs."""

    outputs: tuple[dict[str, Any], ...]
    pipelines: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class HttpCacheSettings:
    """The local HTTP cache: whether it is used, where it lives, what it keeps."""

    enabled: bool
    dir: str
    expiration_s: float
    ignore_statuses: tuple[int, ...]
    policy: str


@dataclass(frozen=True)
class BrowserSettings:
    """The browser pool that renders pages needing JavaScript (Playwright + Chromium)."""

    executable: str
    pages: int
    contexts_per_host: int
    headless: bool
    launch_args: tuple[str, ...]
    recycle_after: int
    timeout: float
    screenshot_dir: str


@dataclass(frozen=True)
class ScheduleSettings:
    """The scheduler's own settings (a run cannot change them)."""

    entries: tuple[dict[str, Any], ...]
    dir: str
    keep_runs: int
    kill_grace: float
    metrics_port: int | None
    metrics_host: str
    api_token: str | None


_SECTION_TYPES: dict[str, type] = {
    "crawl": CrawlSettings, "fetch": FetchSettings, "politeness": PolitenessSettings,
    "retry": RetrySettings, "limits": LimitSettings, "backend": BackendSettings,
    "export": ExportSettings, "httpcache": HttpCacheSettings, "schedule": ScheduleSettings,
    "browser": BrowserSettings,
}


def _section(name: str, values: Mapping[str, Any]) -> Any:
    cls = _SECTION_TYPES[name]
    kwargs = {s.field: values[s.name] for s in SCHEMA.values() if s.section == name}
    declared = {f.name for f in fields(cls)}
    if set(kwargs) != declared:  # the schema and the dataclass must agree (a test checks it too)
        raise AssertionError(f"settings section {name}: schema {sorted(kwargs)} != {sorted(declared)}")
    return cls(**kwargs)


@dataclass(frozen=True)
class Settings(Mapping[str, Any]):
    """The merged, validated settings of one crawl: typed sections, and a read-only
    mapping of dotted keys for spiders and pipelines."""

    crawl: CrawlSettings
    fetch: FetchSettings
    politeness: PolitenessSettings
    retry: RetrySettings
    limits: LimitSettings
    backend: BackendSettings
    export: ExportSettings
    httpcache: HttpCacheSettings
    schedule: ScheduleSettings
    browser: BrowserSettings
    _values: Mapping[str, Any]

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from a complete mapping of every schema key to its checked value."""
        frozen = MappingProxyType(dict(values))
        sections = {name: _section(name, frozen) for name in _SECTION_TYPES}
        return cls(_values=frozen, **sections)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"unknown setting {key!r}{suggest(key)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings({dict(self._values)!r})"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())
