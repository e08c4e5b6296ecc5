"""Schedule entries: config.yaml's ``schedules`` parsed and validated, and their fire times.

An entry names a spider and when it runs, ``cron`` (five fields, in the wall-clock
time of ``timezone`` or of the machine) or ``every`` (a duration such as "90s",
"15m", "6h", "1d", "1h30m"), and how its runs behave: ``overlap``, ``misfire``,
``run_timeout``, ``settings``, ``args``, ``job_dir`` and ``seen_ttl``.
``load_schedules`` checks everything (the spider exists, the settings merge as
they will for the run, the cron expression fires) so that a bad entry is a
one-line ConfigError at start, never a surprise at fire time.

``due`` decides, from the last fire time the history keeps, whether a run falls
due now and whether it is a late one (a misfire). The process that acts on it is
``scheduler.Scheduler``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from ..config import ConfigFile, Settings, load_config, resolve_settings
from ..exceptions import ConfigError, SpiderNotFound
from ..loader import find_spiders

__all__ = ["ENTRY_KEYS", "Due", "ScheduleEntry", "SchedulePlan", "due", "format_duration",
           "load_schedules", "mask_settings", "next_due", "parse_duration", "upcoming"]

#: Checks a run's spider class, settings and arguments as ``run`` will, raising what it
#: raises (injected by the caller: the schedules package does not build crawls).
CrawlCheck = Callable[..., Any]

#: Every key a schedule entry may have, with what it means (used in error messages).
ENTRY_KEYS: dict[str, str] = {
    "spider": "the spider's name (required)",
    "name": "the schedule's name in logs and history (default: the spider's name)",
    "cron": 'five cron fields, e.g. "0 */6 * * *" (or every)',
    "every": 'a duration such as "90s", "15m", "6h", "1d" (or cron)',
    "timezone": "the time zone of cron times (default: the machine's)",
    "settings": "settings for this schedule's runs (above custom_settings, below -s)",
    "args": "spider arguments, as with -a",
    "overlap": "skip (default) or queue: when the spider's previous run is still going",
    "misfire": "run-once (default) or skip: a run that fell due while the scheduler was down",
    "run_timeout": "a duration: a run still going after it is stopped",
    "job_dir": "a persistent job dir: each run resumes it (an incremental crawl)",
    "seen_ttl": "with job_dir: pages seen longer ago than this are fetched again",
}
OVERLAP = ("skip", "queue")
MISFIRE = ("run-once", "skip")

#: Settings of the scheduler itself, which a schedule's ``settings`` cannot change.
SCHEDULER_SETTINGS = frozenset({"schedules", "schedule_dir", "schedule_keep_runs",
                                "schedule_kill_grace", "metrics_port", "metrics_host",
                                "spiders_path"})

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MAX_STEPS = 1000  # fire times counted one by one before saying "at least"


# -- durations -----------------------------------------------------------------
def parse_duration(value: Any, what: str) -> float:
    """Seconds from a number (seconds) or a string of s/m/h/d parts ("90s", "1h30m", "1.5d")."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        parts = _DURATION_RE.findall(text)
        if parts and _DURATION_RE.sub("", text).strip() == "":
            seconds = sum(float(n) * _UNITS[u.lower()] for n, u in parts)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f'{what} must be a duration such as "90s", "15m", "6h", "1d" or '
                          f"a number of seconds > 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human duration: 90 → "1m30s", 86400 → "1d", 0.5 → "0.5s"."""
    if seconds < 60 and round(seconds, 1) != int(seconds):
        return f"{round(seconds, 1):g}s"
    rest = int(round(seconds))
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, rest = divmod(rest, size)
        if n:
            out += f"{n}{unit}"
    return out or "0s"


# -- entries -------------------------------------------------------------------
@dataclass(frozen=True)
class ScheduleEntry:
    """One validated schedule: which spider, when, and how its runs behave."""

    name: str
    spider: str
    cron: str | None = None
    every: float | None = None
    timezone: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    args: Mapping[str, str] = field(default_factory=dict)
    overlap: str = "skip"
    misfire: str = "run-once"
    run_timeout: float | None = None
    job_dir: str | None = None
    seen_ttl: float | None = None

    @property
    def spec(self) -> str:
        """When it fires, in words; a change of it resets the misfire bookkeeping."""
        if self.cron is not None:
            return f"cron {self.cron!r}" + (f" ({self.timezone})" if self.timezone else "")
        return f"every {format_duration(self.every or 0)}"

    def run_settings(self) -> dict[str, Any]:
        """The settings layer a run of this schedule gets (``seen_ttl`` included)."""
        out = dict(self.settings)
        if self.seen_ttl is not None:
            out["seen_ttl"] = self.seen_ttl
        return out

    def shown_settings(self) -> dict[str, Any]:
        """``run_settings`` as a log may show them: secrets masked (see ``mask_settings``)."""
        return mask_settings(self.run_settings())

    def next_after(self, t: float, anchor: float | None = None) -> float:
        """The first fire time after ``t``; an ``every`` schedule's fire times are
        ``anchor`` (default ``t``) plus whole intervals."""
        if self.cron is not None:
            return _cron_next(self.cron, self._zone(), t)
        assert self.every is not None
        anchor = t if anchor is None else anchor
        return anchor + (math.floor((t - anchor) / self.every) + 1) * self.every

    def _zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None


@dataclass(frozen=True)
class SchedulePlan:
    """The validated schedules of a config file and the scheduler's own settings."""

    config: ConfigFile
    settings: Settings
    entries: tuple[ScheduleEntry, ...]

    @property
    def schedule_dir(self) -> Path:
        return Path(self.settings.schedule.dir).resolve()


def load_schedules(config_path: str | Path | None, check: CrawlCheck) -> SchedulePlan:
    """Read and validate every schedule of the config; ConfigError/SpiderNotFound/SpiderError
    name the entry and the culprit in one line."""
    config = load_config(config_path)
    settings = resolve_settings(config)
    raw = settings.schedule.entries
    if not raw:
        raise ConfigError(f"{config.source}: no schedules to run (add a `schedules:` list, "
                          'e.g. [{spider: books, every: "6h"}])')
    spiders = find_spiders(settings.crawl.spiders_path, config.base_dir)
    entries: list[ScheduleEntry] = []
    names: dict[str, int] = {}
    job_dirs: dict[Path, str] = {}
    for i, item in enumerate(raw):
        entry = _entry(item, f"{config.source}: schedules[{i}]", config, spiders, check)
        if entry.name in names:
            raise ConfigError(f"{config.source}: schedules[{i}]: the name {entry.name!r} is taken "
                              f"by schedules[{names[entry.name]}]; give each schedule of a spider "
                              "its own `name`")
        names[entry.name] = i
        if entry.job_dir is not None:
            key = Path(entry.job_dir).resolve()
            if key in job_dirs:
                raise ConfigError(f"{config.source}: schedules[{i}] ({entry.name}): job_dir "
                                  f"{entry.job_dir} is also the job dir of {job_dirs[key]!r}")
            job_dirs[key] = entry.name
        entries.append(entry)
    return SchedulePlan(config, settings, tuple(entries))


def _entry(item: Mapping[str, Any], where: str, config: ConfigFile,
           spiders: Mapping[str, Any], check_crawl: CrawlCheck) -> ScheduleEntry:
    _known_keys(item, where)
    spider, name = _names(item, where, spiders)
    where = f"{where} ({name})"
    cron, every, timezone = _timing(item, where)
    overlap = _choice(item, "overlap", "skip", OVERLAP, where)
    misfire = _choice(item, "misfire", "run-once", MISFIRE, where)
    run_timeout, job_dir, seen_ttl = _run_limits(item, where)
    entry = ScheduleEntry(name=name, spider=spider, cron=cron, every=every, timezone=timezone,
                          settings=_run_settings(item, where), args=_args(item, where),
                          overlap=overlap, misfire=misfire, run_timeout=run_timeout,
                          job_dir=job_dir, seen_ttl=seen_ttl)
    # the same layering, spider arguments, pipelines and outputs checks as `run`
    check_crawl(spiders[spider], config=config, schedule_settings=entry.run_settings(),
                schedule_source=f"{where} settings", spider_args=entry.args)
    return entry


def _known_keys(item: Mapping[str, Any], where: str) -> None:
    for key in item:
        if key not in ENTRY_KEYS:
            close = difflib.get_close_matches(str(key), list(ENTRY_KEYS), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}?" if close else "known: " + ", ".join(ENTRY_KEYS)
            raise ConfigError(f"{where}: unknown key {key!r} ({hint})")


def _names(item: Mapping[str, Any], where: str, spiders: Mapping[str, Any]) -> tuple[str, str]:
    """The entry's spider (which must exist) and its name (default: the spider's)."""
    spider = item.get("spider")
    if not isinstance(spider, str) or not spider:
        raise ConfigError(f"{where}: `spider` (the spider's name) is required, got {spider!r}")
    if spider not in spiders:
        known = ", ".join(sorted(spiders)) or "none found"
        raise SpiderNotFound(f"{where}: no spider named {spider!r} (known: {known})")
    name = item.get("name", spider)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"{where}: the schedule's name (default: its spider's) must be "
                          f"letters, digits, '.', '_' or '-', got {name!r}; give it a `name`")
    return spider, name


def _timing(item: Mapping[str, Any], where: str) -> tuple[str | None, float | None, str | None]:
    """(cron, every, timezone): exactly one of cron or every; a timezone for cron only."""
    if ("cron" in item) == ("every" in item):
        raise ConfigError(f'{where}: give exactly one of cron (e.g. "0 */6 * * *") or every '
                          '(e.g. "6h")')
    timezone = item.get("timezone")
    if timezone is not None:
        if "cron" not in item:
            raise ConfigError(f"{where}: timezone applies to cron schedules only")
        if not _is_zone(timezone):
            raise ConfigError(f"{where}: timezone must be an IANA time zone such as "
                              f"'Europe/Paris' or 'UTC', got {timezone!r}")
    cron = _cron(item["cron"], timezone, where) if "cron" in item else None
    every = parse_duration(item["every"], f"{where}: every") if "every" in item else None
    return cron, every, timezone


def _choice(item: Mapping[str, Any], key: str, default: str, allowed: Iterable[str],
            where: str) -> str:
    value = item.get(key, default)
    if value not in allowed:
        raise ConfigError(f"{where}: {key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _run_limits(item: Mapping[str, Any], where: str
                ) -> tuple[float | None, str | None, float | None]:
    """(run_timeout, job_dir, seen_ttl); a seen_ttl needs a job_dir."""
    run_timeout = item.get("run_timeout")
    if run_timeout is not None:
        run_timeout = parse_duration(run_timeout, f"{where}: run_timeout")
    job_dir = item.get("job_dir")
    if job_dir is not None and (not isinstance(job_dir, str) or not job_dir.strip()):
        raise ConfigError(f"{where}: job_dir must be a directory path, got {job_dir!r}")
    seen_ttl = item.get("seen_ttl")
    if seen_ttl is not None:
        seen_ttl = parse_duration(seen_ttl, f"{where}: seen_ttl")
        if job_dir is None:
            raise ConfigError(f"{where}: seen_ttl needs a job_dir (without one, every run "
                              "starts with a fresh seen-set anyway)")
    return run_timeout, job_dir, seen_ttl


def _args(item: Mapping[str, Any], where: str) -> dict[str, str]:
    """Spider arguments, as the command line would give them: strings."""
    args = item.get("args") or {}
    if not isinstance(args, Mapping) or not all(
            isinstance(k, str) and k.isidentifier() and isinstance(v, str | int | float)
            for k, v in args.items()):
        raise ConfigError(f"{where}: args must be a mapping of identifiers to strings, "
                          f"e.g. {{category: books}}, got {args!r}")
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in args.items()}


def _run_settings(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The entry's own settings layer: run settings only, passable to the run as JSON."""
    settings = item.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where}: settings must be a mapping of settings, got {settings!r}")
    for key in settings:
        if key in SCHEDULER_SETTINGS:
            raise ConfigError(f"{where}: settings: {key} is a setting of the scheduler, not of a "
                              "run; set it at the top level of the config file")
    try:
        json.dumps(settings, default=str)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: settings cannot be passed to the run: {settings!r}") from None
    return dict(settings)


# -- secrets -------------------------------------------------------------------
_URL_PASSWORD = re.compile(r"(?<=://)([^/@:]*):([^/@]*)@")


def _mask_urls(value: Any) -> Any:
    """A URL (or a mapping of URLs) with the password of its user:password@ part masked."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:***@", value)
    if isinstance(value, Mapping):
        return {k: _mask_urls(v) for k, v in value.items()}
    return value


def _mask_headers(value: Any) -> Any:
    """Every header value masked: which of them carry a token is not ours to guess."""
    if isinstance(value, Mapping):
        return {k: _mask_headers(v) if isinstance(v, Mapping) else "***" for k, v in value.items()}
    return value


def mask_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as logs may show them: the http_auth password, the passwords in proxy and
    backend URLs, and header values (``headers``, ``headers_for``) replaced by ``***``."""
    out = dict(settings)
    for key, value in settings.items():
        if key == "http_auth" and isinstance(value, Mapping) and "password" in value:
            out[key] = {**value, "password": "***"}
        elif key in ("headers", "headers_for"):
            out[key] = _mask_headers(value)
        elif key in ("proxy", "backend"):
            out[key] = _mask_urls(value)
    return out


def _is_zone(name: Any) -> bool:
    try:
        return isinstance(name, str) and bool(name) and ZoneInfo(name) is not None
    except (ZoneInfoNotFoundError, ValueError):
        return False


def _cron(given: Any, timezone: str | None, where: str) -> str:
    if not isinstance(given, str) or not (len(given.split()) == 5
                                          or given.strip() in _CRON_ALIASES):
        raise ConfigError(f"{where}: cron must be five fields (minute hour day-of-month month "
                          f'day-of-week) such as "0 */6 * * *", got {given!r}')
    expr = given.strip()
    try:
        croniter(expr)
        # an expression such as "0 0 31 2 *" is well-formed but never fires
        _cron_next(expr, ZoneInfo(timezone) if timezone else None, datetime.now().timestamp())
    except (CroniterError, ValueError, KeyError) as e:
        raise ConfigError(f"{where}: cron {expr!r} is not a valid cron expression "
                          f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return expr


# -- cron in wall-clock time ---------------------------------------------------
# croniter works on naive wall-clock times here; each is turned into an instant
# with fold=0. So a wall-clock time fires at most once even when a DST change
# repeats it, and one that a DST change skips fires at the equivalent instant
# (02:30 on the night clocks jump from 02:00 to 03:00 fires at 03:30).
def _wall(t: float, zone: ZoneInfo | None) -> datetime:
    if zone is None:
        return datetime.fromtimestamp(t)
    return datetime.fromtimestamp(t, zone).replace(tzinfo=None)


def _instant(wall: datetime, zone: ZoneInfo | None) -> float:
    return wall.timestamp() if zone is None else wall.replace(tzinfo=zone).timestamp()


def _cron_next(expr: str, zone: ZoneInfo | None, t: float) -> float:
    it = croniter(expr, _wall(t, zone))
    while True:
        nxt = _instant(it.get_next(datetime), zone)
        if nxt > t:  # in a repeated (fall-back) hour the wall clock runs behind
            return nxt


def _cron_latest(expr: str, zone: ZoneInfo | None, now: float) -> float:
    """The last fire time at or before ``now``."""
    it = croniter(expr, _wall(now, zone))
    while True:
        candidate = _instant(it.get_prev(datetime), zone)
        if candidate <= now:
            break
    nxt = _cron_next(expr, zone, candidate)
    return nxt if nxt <= now else candidate


# -- what falls due ------------------------------------------------------------
@dataclass(frozen=True)
class Due:
    """What ``due`` decided for one schedule at one instant."""

    fire_time: float | None  # the fire time to run now; None: no run now
    trigger: str             # "first", "schedule" or "misfire"
    missed: int              # fire times that passed without a run being started for them
    last: float              # the last fire time handled, to remember


def next_due(entry: ScheduleEntry, last: float | None, now: float) -> float:
    """When ``entry`` next falls due, given the last fire time handled (None: never)."""
    if last is None:
        return now if entry.every is not None else entry.next_after(now)
    if entry.every is not None:
        return last + entry.every
    return entry.next_after(last)


def due(entry: ScheduleEntry, last: float | None, now: float, misfire_grace: float) -> Due | None:
    """Does ``entry`` fall due at ``now``? None when nothing changed.

    A schedule never seen before: an ``every`` one runs at once, a cron one starts
    counting from now. Otherwise the latest fire time in (last, now] runs if it is
    no later than the grace (``misfire_grace``, at most half the gap to the next
    fire time); an older one is a misfire: run once now (``misfire: run-once``)
    or not (``skip``). Several fire times in (last, now] never make several runs.
    """
    if last is None:
        if entry.every is not None:
            return Due(now, "first", 0, now)
        return Due(None, "first", 0, now)
    if last > now:  # the clock went back: count from now rather than wait for it
        return Due(None, "schedule", 0, now)
    if entry.every is not None:
        if now < last + entry.every:
            return None
        count = math.floor((now - last) / entry.every)
        latest = last + count * entry.every
    else:
        first = entry.next_after(last)
        if first > now:
            return None
        latest = _cron_latest(entry.cron or "", entry._zone(), now)
        count, t = 1, first
        while t < latest and count < _MAX_STEPS:
            t = entry.next_after(t)
            count += 1
    gap = entry.next_after(latest) - latest
    on_time = now - latest <= min(misfire_grace, gap / 2)
    missed = count - 1 if on_time else count
    if on_time:
        return Due(latest, "schedule", missed, latest)
    if entry.misfire == "run-once":
        return Due(latest, "misfire", missed - 1, latest)
    return Due(None, "misfire", missed, latest)


def upcoming(entry: ScheduleEntry, last: float | None, now: float, count: int,
             misfire_grace: float = 60.0) -> list[tuple[float, str]]:
    """The next ``count`` runs a scheduler started at ``now`` would make: (time, note)."""
    out: list[tuple[float, str]] = []
    d = due(entry, last, now, misfire_grace)
    if d is not None:
        if d.fire_time is not None:
            note = {"first": "first run of this schedule",
                    "misfire": f"missed at {_clock(d.fire_time)}; misfire: run-once"}.get(d.trigger, "")
            out.append((now, note))
        last = d.last
    t = next_due(entry, last, now)
    while len(out) < count:
        if t > now:
            out.append((t, ""))
        t = entry.next_after(t, anchor=last if entry.every is not None else None)
    return out[:count]


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
