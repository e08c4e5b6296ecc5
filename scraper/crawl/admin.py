"""Operations on a crawl's stored state, outside a running crawl: ``push`` start URLs,
``reset`` everything, list (``dead_letters``) and ``retry-failed`` dead letters. Each works on any backend that
has what it needs (a job dir or a Redis crawl) and says plainly when one has not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config import Settings, load_config, resolve_settings
from ..exceptions import ConfigError, NotSupported
from ..http import Request, decode_request, encode_request
from ..loader import load_spider
from ..storage import Backend, Entry
from .runner import backend_url, open_crawl_backend

__all__ = ["DeadLetter", "dead_letters", "push", "reset", "retry_failed"]


@contextmanager
def _backend(name: str, config_path: str | Path | None, url: str | None,
             job_dir: str | Path | None) -> Iterator[tuple[Settings, Backend]]:
    """The stored state of spider ``name``'s crawl: ``--job-dir``, else ``--backend``, else
    the config's ``backend``."""
    config = load_config(config_path)
    settings = resolve_settings(config, cli={"backend": url} if url else None)
    load_spider(name, settings.crawl.spiders_path, config.base_dir)
    if job_dir is not None and not (Path(job_dir) / "job.sqlite").is_file():
        raise ConfigError(f"--job-dir {job_dir}: no job there")
    location = backend_url(settings, job_dir)
    if location == "memory://":
        raise ConfigError("no backend: give --job-dir DIR or --backend redis://HOST:PORT/DB, or "
                          "set backend: in config.yaml")
    backend = open_crawl_backend(location, name, settings)
    try:
        if not backend.shared and backend.job is None:
            raise NotSupported("keeps nothing after its crawl ends", location=backend.url)
        yield settings, backend
    finally:
        backend.close()


def push(name: str, urls: Sequence[str], *, config_path: str | Path | None = None,
         backend_url: str | None = None, job_dir: str | Path | None = None) -> tuple[int, int]:
    """Add start URLs to a stored crawl (through its seen-set); returns (added, already seen)."""
    requests = []
    for url in urls:
        try:
            requests.append(Request(url))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"push: {e}") from None
    with _backend(name, config_path, backend_url, job_dir) as (_, backend):
        entries = [Entry(r.host, encode_request(r), r.priority) for r in requests]
        with backend.transaction():  # marks and pushes together: no URL seen but not queued
            added = backend.push_unseen(entries, [r.fingerprint for r in requests]).count(True)
        return added, len(requests) - added


def reset(name: str, *, config_path: str | Path | None = None,
          backend_url: str | None = None, job_dir: str | Path | None = None) -> int:
    """Delete everything stored for ``name``'s crawl; returns how many records."""
    with _backend(name, config_path, backend_url, job_dir) as (_, backend):
        return backend.clear()


@dataclass(frozen=True)
class DeadLetter:
    """A request that failed after its last retry, and why."""

    method: str
    url: str
    reason: str


def dead_letters(name: str, job_dir: str | Path | None = None,
                 config_path: str | Path | None = None, *, backend_url: str | None = None,
                 limit: int = 100) -> tuple[int, list[DeadLetter]]:
    """A crawl's dead letters: how many, and the oldest ``limit`` of them."""
    with _backend(name, config_path, backend_url, job_dir) as (_, backend):
        dead = backend.dead
        if dead is None:
            raise NotSupported("keeps no dead letters", location=backend.url)
        rows = dead.list()
        out = []
        for _, data, reason in rows[:limit]:
            r = decode_request(data)
            out.append(DeadLetter(r.method, r.url, reason))
        return len(rows), out


def retry_failed(name: str, job_dir: str | Path | None = None,
                 config_path: str | Path | None = None, *,
                 backend_url: str | None = None) -> int:
    """Put a crawl's dead letters back in its frontier; returns how many."""
    with _backend(name, config_path, backend_url, job_dir) as (_, backend):
        dead = backend.dead
        if dead is None:
            raise NotSupported("keeps no dead letters", location=backend.url)
        rows = dead.list()
        entries = []
        for _, data, _ in rows:
            r = decode_request(data)
            entries.append(Entry(r.host, data, r.priority))
        with backend.transaction():
            backend.frontier.push(entries)
            dead.remove([row[0] for row in rows])
        return len(rows)
