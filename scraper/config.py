"""Settings: the schema of every key, config.yaml loading, and merging layers into one
validated, read-only Settings mapping.

Precedence, highest first: ``-s`` on the command line, a schedule's
``settings``, the spider's ``custom_settings``, config.yaml, defaults. Every
layer is checked against the schema; an unknown key is an error naming the
nearest valid one, a bad value is an error naming the key, the value and the
layer it came from.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .exceptions import ConfigError

__all__ = ["DEFAULT_USER_AGENT", "SCHEMA", "ConfigFile", "Settings", "load_config",
           "merge_settings", "parse_cli_settings"]

DEFAULT_USER_AGENT = f"scraper/{__version__} (+https://pypi.org/project/scraper/)"

Check = Callable[[Any], Any]


class _Invalid(ValueError):
    """A value that does not fit a setting; the message says what was expected."""


# -- value checks: each returns the normalised value or raises _Invalid --------
def _integer(minimum: int, optional: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise _Invalid(f"an integer >= {minimum}" + (" or null" if optional else ""))
        return v
    return check


def _number(minimum: float, optional: bool = False, strict: bool = False) -> Check:
    def check(v: Any) -> Any:
        if v is None and optional:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or v < minimum or (strict and v == minimum):
            rel = ">" if strict else ">="
            raise _Invalid(f"a number {rel} {minimum}" + (" or null" if optional else ""))
        return float(v)
    return check


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Invalid("true or false")
    return v


def _string(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise _Invalid("a non-empty string")
    return v


def _timeout(v: Any) -> tuple[float, float]:
    """A number (connect and read) or a pair [connect, read], seconds > 0."""
    values = v if isinstance(v, list | tuple) else [v, v]
    if len(values) != 2 or any(isinstance(x, bool) or not isinstance(x, int | float) or x <= 0
                               for x in values):
        raise _Invalid("a number of seconds > 0, or a pair [connect, read]")
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
        raise _Invalid('a size in bytes > 0, e.g. 10485760 or "10 MB"')
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])


def _statuses(v: Any) -> tuple[int, ...]:
    if not isinstance(v, list | tuple) or not all(
            isinstance(x, int) and not isinstance(x, bool) and 100 <= x <= 599 for x in v):
        raise _Invalid("a list of HTTP status codes (100-599)")
    return tuple(v)


def _log_level(v: Any) -> str:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    if not isinstance(v, str) or v.upper() not in levels:
        raise _Invalid("one of " + ", ".join(levels))
    return v.upper()


def _outputs(v: Any) -> tuple[dict[str, Any], ...]:
    """A list of paths or of mappings with ``path`` (and optional ``type``, ``overwrite``)."""
    if not isinstance(v, list):
        raise _Invalid('a list such as [{type: jsonl, path: "out/{spider}.jsonl"}]')
    out = []
    for item in v:
        if isinstance(item, str) and item:
            item = {"path": item}
        if isinstance(item, dict) and item.get("type") == "redis-stream" and "path" not in item:
            item = {**item, "path": "-"}
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"]:
            raise _Invalid("a list of outputs, each a path or a mapping with a path "
                           "(or {type: redis-stream})")
        out.append(dict(item))
    return tuple(out)


def _pipelines(v: Any) -> tuple[dict[str, Any], ...]:
    """A list of dotted paths or of mappings with ``class`` and constructor options."""
    if not isinstance(v, list):
        raise _Invalid("a list of dotted class paths or {class: dotted.path, ...options}")
    out = []
    for item in v:
        if isinstance(item, str) and item:
            item = {"class": item}
        if not isinstance(item, dict) or not isinstance(item.get("class"), str):
            raise _Invalid("a list of dotted class paths or {class: dotted.path, ...options}")
        out.append(dict(item))
    return tuple(out)


def _schedules(v: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise _Invalid('a list of mappings such as {spider: books, every: "1h"}')
    return tuple(dict(x) for x in v)


def _port(v: Any) -> int | None:
    """null (off), or a TCP port; 0 picks any free port."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 65535:
        raise _Invalid("a TCP port (0-65535; 0: any free port) or null")
    return v


def _headers(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str | int)
                                          for k, x in v.items()):
        raise _Invalid("a mapping of header names to values")
    return {k: str(x) for k, x in v.items()}


def _proxy(v: Any) -> dict[str, str]:
    """A proxy URL for every scheme, or a mapping {http: URL, https: URL}; null for none."""
    if v is None or v == {}:
        return {}
    if isinstance(v, str) and v.startswith(("http://", "https://", "socks5://", "socks5h://")):
        return {"http": v, "https": v}
    if isinstance(v, dict) and v and all(k in ("http", "https") and isinstance(u, str) and "://" in u
                                         for k, u in v.items()):
        return dict(v)
    raise _Invalid('a proxy URL such as "http://127.0.0.1:3128", or {http: URL, https: URL}')


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
    raise _Invalid("null or {username: ..., password: ..., domains: [hosts to send it to]}")


def _ca_bundle(v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not Path(v).is_file():
        raise _Invalid("null or the path of an existing CA bundle file (PEM)")
    return v


def _backend(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str) and v.startswith(("redis://", "rediss://", "unix://")):
        return v
    raise _Invalid("null or a Redis URL such as redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Setting:
    """One key of the schema: its default, its check, and one line of documentation."""

    name: str
    default: Any
    check: Check
    doc: str


SCHEMA: dict[str, Setting] = {s.name: s for s in [
    Setting("spiders_path", "spiders", _string,
            "directory (relative to the config file) or importable package scanned for spiders"),
    Setting("workers", 16, _integer(1), "worker threads, each with its own HTTP session"),
    Setting("max_pages", None, _integer(1, optional=True),
            "stop gracefully after this many responses"),
    Setting("max_items", None, _integer(1, optional=True), "stop gracefully after this many items"),
    Setting("max_duration", None, _number(0, optional=True, strict=True),
            "stop gracefully after this many seconds"),
    Setting("max_depth", None, _integer(0, optional=True),
            "do not follow links deeper than this from a start URL"),
    Setting("delay", 0.0, _number(0), "seconds between two requests to the same host"),
    Setting("randomize_delay", False, _boolean,
            "wait a random 0.5x-1.5x of delay instead of exactly delay"),
    Setting("autothrottle", False, _boolean,
            "adapt each host's delay toward its latency / autothrottle_target"),
    Setting("autothrottle_target", 2.0, _number(0, strict=True),
            "requests the adaptive throttle aims to keep in flight per host"),
    Setting("autothrottle_max_delay", 60.0, _number(0, strict=True),
            "the adaptive throttle never waits longer than this between two requests"),
    Setting("per_host_workers", 8, _integer(1), "at most this many requests in flight to one host"),
    Setting("obey_robots", True, _boolean, "fetch and honour robots.txt"),
    Setting("user_agent", DEFAULT_USER_AGENT, _string, "User-Agent sent with every request"),
    Setting("headers", {}, _headers, "default headers sent with every request"),
    Setting("proxy", {}, _proxy, "proxy URL for every request, or {http: URL, https: URL}"),
    Setting("http_auth", None, _http_auth,
            "basic auth {username, password, domains}: sent only to those hosts"),
    Setting("tls_verify", True, _boolean, "verify TLS certificates"),
    Setting("ca_bundle", None, _ca_bundle, "a CA bundle (PEM) to verify TLS certificates with"),
    Setting("timeout", (30.0, 30.0), _timeout,
            "seconds for one request: a number, or [connect, read]; read is a total deadline"),
    Setting("max_response_size", 10 * 10**6, _size,
            "a larger body is abandoned while streaming and counted as too-large"),
    Setting("max_redirects", 10, _integer(0), "redirect hops followed per request"),
    Setting("retry.attempts", 3, _integer(1),
            "tries per request for connection errors, timeouts and retry.statuses"),
    Setting("retry.statuses", (429, 500, 502, 503, 504), _statuses, "statuses that are retried"),
    Setting("retry.backoff", 0.5, _number(0), "first retry waits about this many seconds"),
    Setting("retry.backoff_max", 60.0, _number(0), "no back-off waits longer than this"),
    Setting("retry.retry_after_max", 300.0, _number(0),
            "a Retry-After header is honoured up to this many seconds"),
    Setting("outputs", (), _outputs, 'item outputs, e.g. [{type: jsonl, path: "out/{spider}.jsonl"}]'),
    Setting("pipelines", (), _pipelines,
            "pipeline classes run in order before the outputs: dotted paths or {class: ..., options}"),
    Setting("schedules", (), _schedules, "recurring crawls for `python -m scraper schedule`"),
    Setting("schedule_dir", ".scraper/schedule", _string,
            "where `schedule` keeps its run history and each run's log and summary "
            "(relative to the working directory)"),
    Setting("schedule_keep_runs", 100, _integer(1),
            "runs kept per schedule in the history, with their logs; older ones are deleted"),
    Setting("schedule_kill_grace", 60.0, _number(0),
            "seconds a scheduled run gets to stop gracefully after SIGTERM (run_timeout, "
            "scheduler stop) before it is killed"),
    Setting("metrics_port", None, _port,
            "serve Prometheus metrics of scheduled runs on this port (0: any free port)"),
    Setting("metrics_host", "127.0.0.1", _string,
            "address the metrics endpoint listens on (0.0.0.0: every interface)"),
    Setting("backend", None, _backend,
            "share the crawl through Redis: redis://HOST:PORT/DB (rediss:// for TLS); null: this process"),
    Setting("seen_ttl", None, _number(0, optional=True, strict=True),
            "seconds after which a seen page may be fetched again (job dirs and Redis)"),
    Setting("lease_seconds", 60.0, _number(0, strict=True),
            "a request handed to a worker is leased this long (renewed while in flight); a dead "
            "process's leases go back to the queue when they expire"),
    Setting("heartbeat_interval", 15.0, _number(0, strict=True),
            "seconds between lease renewals and cluster stats updates"),
    Setting("poll_interval", 0.5, _number(0, strict=True),
            "with a shared backend, an idle process looks for work this often (backing off to 5 s)"),
    Setting("redis_retry_window", 30.0, _number(0),
            "seconds to keep retrying (with back-off) a Redis that does not answer before failing"),
    Setting("shutdown_timeout", 30.0, _number(0),
            "after a stop (Ctrl-C, SIGTERM, a limit), seconds in-flight requests get to finish"),
    Setting("log_level", "INFO", _log_level, "DEBUG, INFO, WARNING or ERROR"),
    Setting("progress_interval", 10.0, _number(0, strict=True),
            "seconds between progress lines in the log when stderr is not a terminal"),
]}

_GROUPS = {name.split(".", 1)[0] for name in SCHEMA if "." in name}


class Settings(Mapping[str, Any]):
    """The merged, validated settings of one crawl: a read-only mapping of dotted keys."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"unknown setting {key!r}{_suggest(key)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings({self._values!r})"


def _suggest(key: str) -> str:
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


def check_layer(layer: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Flatten and validate one layer; ConfigError names the key, value and source."""
    out = {}
    for key, value in flatten(layer, source).items():
        setting = SCHEMA.get(key)
        if setting is None:
            raise ConfigError(f"{source}: unknown setting {key!r}{_suggest(key)}")
        try:
            out[key] = setting.check(value)
        except _Invalid as e:
            raise ConfigError(f"{source}: {key} must be {e}, got {value!r}") from None
    return out


def merge_settings(*layers: tuple[str, Mapping[str, Any] | None]) -> Settings:
    """Defaults, then each ``(source, layer)`` in order, later layers winning."""
    values = {name: copy.deepcopy(s.default) for name, s in SCHEMA.items()}
    for source, layer in layers:
        if layer:
            values.update(check_layer(layer, source))
    return Settings(values)


def parse_cli_settings(pairs: list[str], flag: str = "-s") -> dict[str, Any]:
    """``KEY=VALUE`` strings from the command line, values read as YAML."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair}: expected KEY=VALUE")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


@dataclass(frozen=True)
class ConfigFile:
    """A loaded config.yaml: its settings layer and the directory paths are relative to."""

    path: Path | None
    base_dir: Path
    settings: dict[str, Any]

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "defaults"


def load_config(path: str | Path | None, cwd: Path | None = None) -> ConfigFile:
    """Read ``path`` (an error if missing), or ./config.yaml if present, else defaults."""
    cwd = cwd or Path.cwd()
    explicit = path is not None
    file = Path(path) if path is not None else cwd / "config.yaml"
    if not explicit and not file.is_file():
        return ConfigFile(None, cwd, {})
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {file}: not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {file}: cannot be read ({e.__class__.__name__}: {e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {file}:{where}: invalid YAML ({problem})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file}: expected a mapping of settings, got {type(data).__name__}")
    check_layer(data, str(file))  # fail early, naming the file
    return ConfigFile(file, file.resolve().parent, data)
