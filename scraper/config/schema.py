"""The settings schema: every key with its default, its check, its section and one line
of documentation. ``SCHEMA`` is the single source; ``config.settings`` builds the
typed sections from it and ``config.yaml``'s comments document the same keys.

A check returns the normalised value or raises ``Invalid`` saying what was
expected; ``check_layer`` turns that into a ConfigError naming the key, the
value and the layer it came from.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..version import __version__

__all__ = ["DEFAULT_USER_AGENT", "SCHEMA", "SECRET_SETTINGS", "SECTIONS", "Invalid", "Setting",
           "check_layer", "flatten", "suggest"]

DEFAULT_USER_AGENT = f"scraper/{__version__} (+https://pypi.org/project/scraper/)"

Check = Callable[[Any], Any]


class Invalid(ValueError):
    """A value that does not fit a setting; the message says what was expected
    (``whole``: the message is a complete sentence about the value, not "must be ...")."""

    def __init__(self, message: str, whole: bool = False) -> None:
        super().__init__(message)
        self.whole = whole


# -- value checks: each returns the normalised value or raises Invalid --------
def _integer(minimum: int, optional: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise Invalid(f"an integer >= {minimum}" + (" or null" if optional else ""))
        return v
    return check


def _number(minimum: float, optional: bool = False, strict: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or v < minimum or (strict and v == minimum):
            rel = ">" if strict else ">="
            raise Invalid(f"a number {rel} {minimum}" + (" or null" if optional else ""))
        return float(v)
    return check


def _processes(v: Any) -> int:
    """An integer >= 1, or "auto": the CPUs this process may use. More than one needs
    os.fork (worker processes are forked from the coordinator's)."""
    n: int
    if v == "auto":
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            n = os.cpu_count() or 1
    elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise Invalid('an integer >= 1 or "auto"')
    else:
        n = v
    if n > 1 and not hasattr(os, "fork"):
        raise Invalid("1 on this platform: worker processes are forked, and it has no fork()")
    return n


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise Invalid("true or false")
    return v


def _string(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise Invalid("a non-empty string")
    return v


def _header_value(v: Any) -> str:
    """A string that can go in an HTTP header as it is: latin-1 (what http.client
    writes), no line breaks (a header injection), not empty."""
    text = _string(v)
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise Invalid("a header value in latin-1 (percent-encode other characters)") from None
    if "\r" in text or "\n" in text:
        raise Invalid("a header value on one line") from None
    return text


def _timeout(v: Any) -> tuple[float, float]:
    """A number (connect and read) or a pair [connect, read], seconds > 0."""
    values = v if isinstance(v, list | tuple) else [v, v]
    if len(values) != 2 or any(isinstance(x, bool) or not isinstance(x, int | float) or x <= 0
                               for x in values):
        raise Invalid("a number of seconds > 0, or a pair [connect, read]")
    return float(values[0]), float(values[1])


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10,
               "m": 10**6, "mb": 10**6, "mi": 2**20, "mib": 2**20,
               "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30}


def _size(v: Any) -> int:
    """Bytes: an integer, or a string such as "10 MB" or "512KiB"."""
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    m = _SIZE_RE.match(v) if isinstance(v, str) else None
    if not m or float(m.group(1)) <= 0:
        raise Invalid('a size in bytes > 0, e.g. 10485760 or "10 MB"')
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])


def _statuses(v: Any) -> tuple[int, ...]:
    if not isinstance(v, list | tuple) or not all(
            isinstance(x, int) and not isinstance(x, bool) and 100 <= x <= 599 for x in v):
        raise Invalid("a list of HTTP status codes (100-599)")
    return tuple(v)


def _log_level(v: Any) -> str:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    if not isinstance(v, str) or v.upper() not in levels:
        raise Invalid("one of " + ", ".join(levels))
    return v.upper()


def _outputs(v: Any) -> tuple[dict[str, Any], ...]:
    """A list of paths or of mappings with ``path`` (and optional ``type``, ``overwrite``)."""
    if not isinstance(v, list):
        raise Invalid('a list such as [{type: jsonl, path: "out/{spider}.jsonl"}]')
    out = []
    for item in v:
        if isinstance(item, str) and item:
            item = {"path": item}
        if isinstance(item, dict) and item.get("type") == "redis-stream" and "path" not in item:
            item = {**item, "path": "-"}
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"]:
            raise Invalid("a list of outputs, each a path or a mapping with a path "
                           "(or {type: redis-stream})")
        _output_keys(item)
        out.append(dict(item))
    return tuple(out)


OUTPUT_KEYS = ("path", "type", "overwrite", "fields", "table", "csv_formula_escape", "key")


def _output_keys(item: Mapping[str, Any]) -> None:
    for key in item:
        if key not in OUTPUT_KEYS:
            close = difflib.get_close_matches(str(key), OUTPUT_KEYS, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(OUTPUT_KEYS)
            raise Invalid(f"output {item['path']}: unknown key {key!r} ({hint})", whole=True)


def _pipelines(v: Any) -> tuple[dict[str, Any], ...]:
    """A list of dotted paths or of mappings with ``class`` and constructor options."""
    if not isinstance(v, list):
        raise Invalid("a list of dotted class paths or {class: dotted.path, ...options}")
    out = []
    for item in v:
        if isinstance(item, str) and item:
            item = {"class": item}
        if not isinstance(item, dict) or not isinstance(item.get("class"), str):
            raise Invalid("a list of dotted class paths or {class: dotted.path, ...options}")
        out.append(dict(item))
    return tuple(out)


def _schedules(v: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise Invalid('a list of mappings such as {spider: books, every: "1h"}')
    return tuple(dict(x) for x in v)


def _cache_policy(v: Any) -> str:
    if v not in ("dummy", "rfc9111"):
        raise Invalid("dummy (serve whatever is stored) or rfc9111 (honour Cache-Control, "
                      "Expires and validators)")
    return str(v)


def _strings(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) and x for x in v):
        raise Invalid("a list of non-empty strings")
    return tuple(v)


def _port(v: Any) -> int | None:
    """null (off), or a TCP port; 0 picks any free port."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
        raise Invalid("a TCP port (0-65535; 0: any free port) or null")
    return v


def _headers(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str | int)
                                          for k, x in v.items()):
        raise Invalid("a mapping of header names to values")
    return {k: str(x) for k, x in v.items()}


def _headers_for(v: Any) -> dict[str, dict[str, str]]:
    """{domain: {Header: value}}: a domain matches itself and its subdomains."""
    if not isinstance(v, dict):
        raise Invalid("a mapping of domains to header mappings, e.g. "
                      "{api.example.com: {Authorization: Bearer ...}}")
    out: dict[str, dict[str, str]] = {}
    for domain, headers in v.items():
        if not isinstance(domain, str) or not domain.strip() or any(c in domain for c in "/:?# "):
            raise Invalid(f"headers_for: {domain!r} must be a host name such as 'example.com', "
                          "without a scheme, port or path", whole=True)
        try:
            out[domain.strip().lower().rstrip(".")] = _headers(headers)
        except Invalid:
            raise Invalid(f"headers_for: {domain}: must be a mapping of header names to values",
                          whole=True) from None
    return out


def _proxy(v: Any) -> dict[str, str]:
    """A proxy URL for every scheme, or a mapping {http: URL, https: URL}; null for none."""
    if v is None or v == {}:
        return {}
    if isinstance(v, str) and v.startswith(("http://", "https://", "socks5://", "socks5h://")):
        return {"http": v, "https": v}
    if isinstance(v, dict) and v and all(k in ("http", "https") and isinstance(u, str) and "://" in u
                                         for k, u in v.items()):
        return dict(v)
    raise Invalid('a proxy URL such as "http://127.0.0.1:3128", or {http: URL, https: URL}')


def _http_auth(v: Any) -> dict[str, Any] | None:
    """null, or {username, password, domains: [hosts it may be sent to]}."""
    if v is None:
        return None
    if (isinstance(v, dict) and isinstance(v.get("username"), str)
            and isinstance(v.get("password"), str) and isinstance(v.get("domains"), list)
            and v["domains"] and all(isinstance(d, str) and d for d in v["domains"])
            and set(v) <= {"username", "password", "domains"}):
        return {"username": v["username"], "password": v["password"],
                "domains": [d.lower() for d in v["domains"]]}
    raise Invalid("null or {username: ..., password: ..., domains: [hosts to send it to]}")


def _ca_bundle(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not Path(v).is_file():
        raise Invalid("null or the path of an existing CA bundle file (PEM)")
    return v


def _api_token(v: Any) -> str | None:
    """null, or a token of at least 16 printable characters (no spaces: it goes in headers)."""
    if v is None:
        return None
    if not isinstance(v, str) or len(v) < 16 or not v.isprintable() or any(c.isspace() for c in v):
        raise Invalid("null or a string of at least 16 printable characters without spaces")
    return v


def _backend(v: Any) -> str | None:
    """null (this process, in memory), or a backend URL: the scheme picks the backend
    (storage.registry checks that it is a known one when the crawl is built)."""
    if v is None:
        return None
    if isinstance(v, str) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", v):
        return v
    raise Invalid("null or a backend URL such as redis://127.0.0.1:6379/0 or sqlite:///path/to/job")


@dataclass(frozen=True)
class Setting:
    """One key of the schema: its default, its check, the section (and attribute) of the
    typed settings it lands in, and one line of documentation."""

    name: str
    default: Any
    check: Check
    doc: str
    section: str
    attr: str = ""

    @property
    def field(self) -> str:
        """The attribute name in its section (the key without its group prefix)."""
        return self.attr or self.name.rsplit(".", 1)[-1]


#: The sections of the typed settings, in the order the README documents them.
SECTIONS = ("crawl", "fetch", "politeness", "retry", "limits", "backend", "export", "httpcache",
            "browser", "schedule")


def _s(name: str, default: Any, check: Check, doc: str, section: str, attr: str = "") -> Setting:
    return Setting(name, default, check, doc, section, attr)


SCHEMA: dict[str, Setting] = {s.name: s for s in [
    # crawl: the process itself
    _s("spiders_path", "spiders", _string,
       "directory (relative to the config file) or importable package scanned for spiders", "crawl"),
    _s("workers", 16, _integer(1), "worker threads, each with its own HTTP session", "crawl"),
    _s("processes", 1, _processes,
       "worker processes, each running `workers` threads, under one coordinator; auto: one "
       "per usable CPU", "crawl"),
    _s("shutdown_timeout", 30.0, _number(0),
       "after a stop (Ctrl-C, SIGTERM, a limit), seconds in-flight requests get to finish", "crawl"),
    _s("log_level", "INFO", _log_level, "DEBUG, INFO, WARNING or ERROR", "crawl"),
    _s("progress_interval", 10.0, _number(0, strict=True),
       "seconds between progress lines in the log when stderr is not a terminal", "crawl"),
    _s("middlewares", (), _pipelines,
       "request/response hooks run in the worker threads around every fetch, in order: dotted "
       "class paths or {class: ..., options}", "crawl"),
    # limits
    _s("max_pages", None, _integer(1, optional=True), "stop gracefully after this many responses",
       "limits"),
    _s("max_items", None, _integer(1, optional=True), "stop gracefully after this many items",
       "limits"),
    _s("max_duration", None, _number(0, optional=True, strict=True),
       "stop gracefully after this many seconds", "limits"),
    _s("max_depth", None, _integer(0, optional=True),
       "do not follow links deeper than this from a start URL", "limits"),
    _s("max_url_length", 2083, _integer(1),
       "a request whose URL is longer is dropped and counted as url-too-long", "limits"),
    # politeness
    _s("delay", 0.0, _number(0), "seconds between two requests to the same host", "politeness"),
    _s("randomize_delay", False, _boolean,
       "wait a random 0.5x-1.5x of delay instead of exactly delay", "politeness"),
    _s("autothrottle", False, _boolean,
       "adapt each host's delay toward its latency / autothrottle_target", "politeness"),
    _s("autothrottle_target", 2.0, _number(0, strict=True),
       "requests the adaptive throttle aims to keep in flight per host", "politeness"),
    _s("autothrottle_max_delay", 60.0, _number(0, strict=True),
       "the adaptive throttle never waits longer than this between two requests", "politeness"),
    _s("per_host_workers", 8, _integer(1), "at most this many requests in flight to one host",
       "politeness"),
    _s("obey_robots", True, _boolean, "fetch and honour robots.txt", "politeness"),
    # fetch
    _s("user_agent", DEFAULT_USER_AGENT, _header_value, "User-Agent sent with every request",
       "fetch"),
    _s("headers", {}, _headers,
       "headers sent with every request, to every host (robots.txt included): use headers_for "
       "for credentials", "fetch"),
    _s("headers_for", {}, _headers_for,
       "headers sent only to a domain and its subdomains: {domain: {Header: value}}", "fetch"),
    _s("proxy", {}, _proxy, "proxy URL for every request, or {http: URL, https: URL}", "fetch"),
    _s("http_auth", None, _http_auth,
       "basic auth {username, password, domains}: sent only to those hosts", "fetch"),
    _s("tls_verify", True, _boolean, "verify TLS certificates", "fetch"),
    _s("ca_bundle", None, _ca_bundle, "a CA bundle (PEM) to verify TLS certificates with", "fetch"),
    _s("timeout", (30.0, 30.0), _timeout,
       "seconds for one request: a number, or [connect, read]; read is a total deadline", "fetch"),
    _s("max_response_size", 10 * 10**6, _size,
       "a larger body is abandoned while streaming and counted as too-large", "fetch"),
    _s("max_redirects", 10, _integer(0), "redirect hops followed per request", "fetch"),
    # retry
    _s("retry.attempts", 3, _integer(1),
       "tries per request for connection errors, timeouts and retry.statuses", "retry"),
    _s("retry.statuses", (429, 500, 502, 503, 504), _statuses, "statuses that are retried", "retry"),
    _s("retry.backoff", 0.5, _number(0), "first retry waits about this many seconds", "retry"),
    _s("retry.backoff_max", 60.0, _number(0), "no back-off waits longer than this", "retry"),
    _s("retry.retry_after_max", 300.0, _number(0),
       "a Retry-After header is honoured up to this many seconds", "retry"),
    # export: where items go
    _s("outputs", (), _outputs, 'item outputs, e.g. [{type: jsonl, path: "out/{spider}.jsonl"}]',
       "export"),
    _s("pipelines", (), _pipelines,
       "pipeline classes run in order before the outputs: dotted paths or {class: ..., options}",
       "export"),
    # backend: where the crawl's state lives
    _s("backend", None, _backend,
       "where the crawl's state lives: null (this process), redis://HOST:PORT/DB (shared; "
       "rediss:// for TLS), sqlite:///DIR (as --job-dir DIR)", "backend", "url"),
    _s("seen_ttl", None, _number(0, optional=True, strict=True),
       "seconds after which a seen page may be fetched again (job dirs and Redis)", "backend"),
    _s("lease_seconds", 60.0, _number(0, strict=True),
       "a request handed to a worker is leased this long (renewed while in flight); a dead "
       "process's leases go back to the queue when they expire", "backend"),
    _s("heartbeat_interval", 15.0, _number(0, strict=True),
       "seconds between lease renewals and cluster stats updates", "backend"),
    _s("poll_interval", 0.5, _number(0, strict=True),
       "with a shared backend, an idle process looks for work this often (backing off to 5 s)",
       "backend"),
    _s("redis_retry_window", 30.0, _number(0),
       "seconds to keep retrying (with back-off) a Redis that does not answer before failing",
       "backend"),
    _s("prefetch", None, _integer(0, optional=True),
       "with a shared backend, requests a process leases beyond its busy workers so that a "
       "freed worker never waits on a round trip (null: as many as workers; each holds a "
       "slot of its host)", "backend"),
    # httpcache: responses kept on disk, for developing a spider without hitting the site again
    _s("httpcache.enabled", False, _boolean,
       "serve GET/HEAD responses from a local cache when it has them (hits skip the host's delay)",
       "httpcache"),
    _s("httpcache.dir", ".scraper/httpcache/{spider}", _string,
       "directory of the cache (one SQLite file per spider; relative to the working directory)",
       "httpcache"),
    _s("httpcache.expiration_s", 0.0, _number(0),
       "seconds a stored response is used at all (0: forever)", "httpcache"),
    _s("httpcache.ignore_statuses", (), _statuses, "responses with these statuses are not stored",
       "httpcache"),
    _s("httpcache.policy", "dummy", _cache_policy,
       "dummy (serve whatever is stored) or rfc9111 (Cache-Control, Expires, ETag and "
       "Last-Modified revalidation)", "httpcache"),
    # browser: pages rendered by Chromium (meta={"browser": True}; README: Pages that need JavaScript)
    _s("browser.executable", "/usr/bin/chromium", _string,
       "the Chromium (or Chrome) binary Playwright drives: Debian's chromium package by default",
       "browser"),
    _s("browser.pages", 4, _integer(1),
       "browser pages rendering at once (in each crawl process), apart from the HTTP workers",
       "browser"),
    _s("browser.contexts_per_host", 1, _integer(1),
       "browser contexts (cookie stores) per host; a host's cookies are shared with HTTP",
       "browser"),
    _s("browser.headless", True, _boolean, "run Chromium without a window", "browser"),
    _s("browser.launch_args", (), _strings,
       "extra Chromium command-line switches, e.g. [--lang=fr]", "browser"),
    _s("browser.recycle_after", 100, _integer(1),
       "a browser context is closed and replaced after rendering this many pages (bounds memory)",
       "browser"),
    _s("browser.timeout", 30.0, _number(0, strict=True),
       "seconds a page gets to load (and for wait_for); meta option timeout overrides it",
       "browser"),
    _s("browser.screenshot_dir", ".scraper/screenshots/{spider}", _string,
       "where screenshot: true stores PNGs (relative to the working directory)", "browser"),
    # schedule: the scheduler's own settings
    _s("schedules", (), _schedules, "recurring crawls for `python -m scraper schedule`", "schedule",
       "entries"),
    _s("schedule_dir", ".scraper/schedule", _string,
       "where `schedule` keeps its run history and each run's log and summary "
       "(relative to the working directory)", "schedule", "dir"),
    _s("schedule_keep_runs", 100, _integer(1),
       "runs kept per schedule in the history, with their logs; older ones are deleted",
       "schedule", "keep_runs"),
    _s("schedule_kill_grace", 60.0, _number(0),
       "seconds a scheduled run gets to stop gracefully after SIGTERM (run_timeout, "
       "scheduler stop) before it is killed", "schedule", "kill_grace"),
    _s("metrics_port", None, _port,
       "serve Prometheus metrics on this port (0: any free port): in config.yaml, the "
       "scheduler's (schedule, serve); `run -s metrics_port=N`: that crawl's", "schedule"),
    _s("metrics_host", "127.0.0.1", _string,
       "address the metrics endpoints listen on (0.0.0.0: every interface)", "schedule"),
    _s("api_token", None, _api_token,
       "the token `serve` requires of every request (Bearer, or the HTTP basic auth "
       "password); required to listen off loopback (env SCRAPER_API_TOKEN)", "schedule"),
]}

_GROUPS = {name.split(".", 1)[0] for name in SCHEMA if "." in name}


# Scrapy's names for our settings, so a Scrapy user's habit gets a pointer, not a shrug
SCRAPY_NAMES = {
    "CONCURRENT_REQUESTS": "workers", "CONCURRENT_REQUESTS_PER_DOMAIN": "per_host_workers",
    "CONCURRENT_REQUESTS_PER_IP": "per_host_workers", "DOWNLOAD_DELAY": "delay",
    "RANDOMIZE_DOWNLOAD_DELAY": "randomize_delay", "ROBOTSTXT_OBEY": "obey_robots",
    "USER_AGENT": "user_agent", "DEPTH_LIMIT": "max_depth",
    "CLOSESPIDER_PAGECOUNT": "max_pages", "CLOSESPIDER_ITEMCOUNT": "max_items",
    "CLOSESPIDER_TIMEOUT": "max_duration", "DOWNLOAD_TIMEOUT": "timeout",
    "DOWNLOAD_MAXSIZE": "max_response_size", "DEFAULT_REQUEST_HEADERS": "headers",
    "REDIRECT_MAX_TIMES": "max_redirects", "RETRY_TIMES": "retry.attempts",
    "RETRY_HTTP_CODES": "retry.statuses", "AUTOTHROTTLE_ENABLED": "autothrottle",
    "AUTOTHROTTLE_TARGET_CONCURRENCY": "autothrottle_target",
    "AUTOTHROTTLE_MAX_DELAY": "autothrottle_max_delay", "ITEM_PIPELINES": "pipelines",
    "FEEDS": "outputs", "LOG_LEVEL": "log_level", "URLLENGTH_LIMIT": "max_url_length",
    "HTTPPROXY_ENABLED": "proxy", "HTTPCACHE_ENABLED": "httpcache.enabled",
    "HTTPCACHE_DIR": "httpcache.dir", "HTTPCACHE_EXPIRATION_SECS": "httpcache.expiration_s",
    "DOWNLOADER_MIDDLEWARES": "middlewares", "SPIDER_MODULES": "spiders_path",
    "NEWSPIDER_MODULE": "spiders_path",
}


def suggest(key: str) -> str:
    """" (did you mean 'workers'?)" for a mistyped key or a Scrapy name, or ""."""
    ours = SCRAPY_NAMES.get(key.upper())
    if ours in SCHEMA:
        return f" (did you mean {ours!r}? {key} is Scrapy's name for it)"
    close = difflib.get_close_matches(key, list(SCHEMA), n=1, cutoff=0.6)
    if not close and "." not in key:
        close = [n for n in SCHEMA if n.endswith("." + key)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def flatten(layer: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A layer's keys in dotted form (``retry: {attempts: 5}`` → ``retry.attempts``)."""
    flat: dict[str, Any] = {}
    for key, value in layer.items():
        if not isinstance(key, str):
            raise ConfigError(f"{source}: setting names must be strings, got {key!r}")
        if key in _GROUPS:
            if value is None:
                continue  # a group whose keys are all commented out
            if not isinstance(value, Mapping):
                subs = ", ".join(n.split(".", 1)[1] for n in SCHEMA if n.startswith(key + "."))
                raise ConfigError(f"{source}: {key} must be a mapping (of {subs}), got {value!r}")
            for sub, subvalue in flatten(value, source).items():
                flat[f"{key}.{sub}"] = subvalue
        else:
            flat[key] = value
    return flat


#: Settings whose values may hold credentials: an error about one does not repeat it.
SECRET_SETTINGS = frozenset({"http_auth", "headers", "headers_for", "proxy", "backend",
                             "api_token"})


def check_layer(layer: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Flatten and validate one layer; ConfigError names the key, value and source."""
    out = {}
    for key, value in flatten(layer, source).items():
        setting = SCHEMA.get(key)
        if setting is None:
            raise ConfigError(f"{source}: unknown setting {key!r}{suggest(key)}")
        try:
            out[key] = setting.check(value)
        except Invalid as e:
            if e.whole:
                raise ConfigError(f"{source}: {key}: {e}") from None
            got = "" if key in SECRET_SETTINGS else f", got {value!r}"  # no password in logs
            raise ConfigError(f"{source}: {key} must be {e}{got}") from None
    return out
