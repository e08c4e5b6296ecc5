"""Assembling one crawl from its parts: config file, spider, settings layers, spider
arguments, pipelines and outputs, every one validated before anything starts.

``prepare`` raises ConfigError / SpiderNotFound / SpiderError (usage errors, exit 2)
and returns a ``Crawl`` whose ``run`` does the work. The CLI, the demo and the
tests all go through here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigFile, Settings, load_config, merge_settings
from .engine import Engine
from .exceptions import ConfigError, SpiderError
from .loader import find_spiders, load_spider
from .http import host_key
from .job import Job
from .outputs import Output, check_output, open_output, output_path
from .pipelines import PipelineChain, build_pipelines
from .spider import Spider
from .stats import Stats
from .storage import Backend, Entry
from .storage.redis import RedisBackend, check_url
from .storage.redis import reset as reset_keys
from .storage.sqlite import SQLiteBackend

__all__ = ["Crawl", "build_crawl", "check_crawl", "crawl_settings", "list_spiders", "prepare",
           "push", "reset", "retry_failed"]

log = logging.getLogger(__name__)


@dataclass
class Crawl:
    """A crawl ready to run: the spider instance, its settings and its item chain."""

    spider: Spider
    settings: Settings
    pipelines: PipelineChain
    backend: Backend | None = None
    job: Job | None = None
    keep_alive: bool = False
    engine: Engine | None = field(default=None, init=False)

    def run(self, on_progress: Callable[[dict[str, Any]], None] | None = None,
            progress_interval: float | None = None) -> Stats:
        self.engine = Engine(self.spider, self.settings, self.pipelines, backend=self.backend,
                             job=self.job, keep_alive=self.keep_alive, on_progress=on_progress,
                             progress_interval=progress_interval)
        try:
            return self.engine.run()
        finally:
            if self.backend is not None:
                self.backend.close()

    def stop(self, reason: str = "interrupted") -> None:
        if self.engine is not None:
            self.engine.stop(reason)


def list_spiders(config_path: str | Path | None = None) -> list[str]:
    """Names of every spider found through the config's ``spiders_path``."""
    config = load_config(config_path)
    settings = merge_settings((config.source, config.settings))
    return list(find_spiders(settings["spiders_path"], config.base_dir))


def prepare(name: str, *, config_path: str | Path | None = None,
            settings: Mapping[str, Any] | None = None,
            schedule_settings: Mapping[str, Any] | None = None,
            spider_args: Mapping[str, str] | None = None,
            outputs: Sequence[Mapping[str, Any]] = (),
            job_dir: str | Path | None = None, force_resume: bool = False,
            keep_alive: bool = False) -> Crawl:
    """Find the spider ``name`` through the config and validate everything a crawl needs."""
    config: ConfigFile = load_config(config_path)
    base = merge_settings((config.source, config.settings), ("schedule settings", schedule_settings),
                          ("-s", settings))
    cls = load_spider(name, base["spiders_path"], config.base_dir)
    return build_crawl(cls, config=config, settings=settings, schedule_settings=schedule_settings,
                       spider_args=spider_args, outputs=outputs, job_dir=job_dir,
                       force_resume=force_resume, keep_alive=keep_alive)


def crawl_settings(cls: type[Spider], *, config: ConfigFile | None = None,
                   settings: Mapping[str, Any] | None = None,
                   schedule_settings: Mapping[str, Any] | None = None,
                   schedule_source: str = "schedule settings") -> Settings:
    """The merged settings of a crawl of ``cls``: defaults, config file, the spider's
    custom_settings, a schedule's settings, ``-s`` (later wins). Checks the class too."""
    name = cls.name
    _check_spider_class(cls)
    custom = getattr(cls, "custom_settings", None) or {}
    if not isinstance(custom, Mapping):
        raise SpiderError(f"spider {name}: custom_settings must be a mapping")
    file_layer = (config.source, config.settings) if config else ("defaults", None)
    return merge_settings(file_layer,
                          (f"spider {name} custom_settings", custom),
                          (schedule_source, schedule_settings),
                          ("-s", settings))


def check_crawl(cls: type[Spider], *, config: ConfigFile | None = None,
                schedule_settings: Mapping[str, Any] | None = None,
                schedule_source: str = "schedule settings",
                spider_args: Mapping[str, str] | None = None) -> Settings:
    """Validate, without opening outputs or a job dir, what ``build_crawl`` would for a crawl
    that another process will run (a scheduled run): settings, spider arguments,
    pipelines, outputs. Raises what ``build_crawl`` raises; returns the merged settings."""
    merged = crawl_settings(cls, config=config, schedule_settings=schedule_settings,
                            schedule_source=schedule_source)
    _new_spider(cls, spider_args)
    build_pipelines(merged["pipelines"])
    for spec in merged["outputs"]:
        check_output(spec, cls.name)
    return merged


def _new_spider(cls: type[Spider], spider_args: Mapping[str, str] | None) -> Spider:
    try:
        return cls(**dict(spider_args or {}))
    except Exception as e:
        raise SpiderError(f"spider {cls.name}: __init__ failed: {type(e).__name__}: {e}") from None


def build_crawl(cls: type[Spider], *, config: ConfigFile | None = None,
                settings: Mapping[str, Any] | None = None,
                schedule_settings: Mapping[str, Any] | None = None,
                spider_args: Mapping[str, str] | None = None,
                outputs: Sequence[Mapping[str, Any]] = (),
                pipelines: Sequence[Any] = (),
                job_dir: str | Path | None = None, force_resume: bool = False,
                keep_alive: bool = False) -> Crawl:
    """A crawl of the spider class ``cls`` (settings layered over ``config``), not yet started.

    ``pipelines`` are extra pipeline instances run after the configured ones. With
    ``job_dir`` the crawl is persistent: it resumes what that job dir holds. With the
    ``backend`` setting (a Redis URL) it joins the crawl shared by every process that
    uses that backend and spider.
    """
    name = cls.name
    merged = crawl_settings(cls, config=config, settings=settings,
                            schedule_settings=schedule_settings)
    spider = _new_spider(cls, spider_args)
    chain = build_pipelines(merged["pipelines"]) + list(pipelines)
    backend: Any = None
    job: Job | None = None
    opened: list[Output] = []
    specs = list(merged["outputs"]) + list(outputs)
    redis_url = merged["backend"]
    if redis_url and job_dir is not None:
        raise ConfigError("--job-dir and --backend: use one (a Redis backend is already "
                          "persistent and shared)")
    if redis_url:
        check_url(redis_url)
    for spec in specs:
        check_output(spec, name, shared=bool(redis_url))
    try:
        if job_dir is not None:
            backend = SQLiteBackend(job_dir, lease_seconds=merged["lease_seconds"],
                                    seen_ttl=merged["seen_ttl"])
            job = Job(backend, name, force=force_resume)
        elif redis_url:
            backend = RedisBackend(redis_url, name, lease_seconds=merged["lease_seconds"],
                                   seen_ttl=merged["seen_ttl"],
                                   retry_window=merged["redis_retry_window"])
        for spec in specs:
            resume_at = job.output_position(output_path(spec, name)) if job else None
            opened.append(open_output(spec, name, resume_at=resume_at,
                                      stream=getattr(backend, "add_item", None)))
    except BaseException:
        for o in opened:
            o.close()
        if backend is not None:
            backend.close()
        raise
    crawl = Crawl(spider, merged, PipelineChain(chain, opened), backend, job)
    crawl.keep_alive = keep_alive
    return crawl


def _shared_backend(name: str, config_path: str | Path | None, url: str | None) -> Any:
    config = load_config(config_path)
    base = merge_settings((config.source, config.settings), ("--backend", {"backend": url} if url else None))
    load_spider(name, base["spiders_path"], config.base_dir)
    if not base["backend"]:
        raise ConfigError("no backend: give --backend redis://HOST:PORT/DB or set backend: in "
                          "config.yaml")
    return base


def push(name: str, urls: Sequence[str], *, config_path: str | Path | None = None,
         backend_url: str | None = None) -> tuple[int, int]:
    """Add start URLs to a shared crawl (through its seen-set); returns (added, already seen)."""
    from .http import Request

    base = _shared_backend(name, config_path, backend_url)
    requests = []
    for url in urls:
        try:
            requests.append(Request(url))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"push: {e}") from None
    backend = RedisBackend(base["backend"], name, seen_ttl=base["seen_ttl"],
                           retry_window=base["redis_retry_window"])
    try:
        fresh = backend.seen.add_many([r.fingerprint for r in requests])
        entries = [Entry(r.host, json.dumps(r.to_dict()), r.priority)
                   for r, new in zip(requests, fresh) if new]
        with backend.transaction():
            backend.frontier.push(entries)
        return len(entries), len(requests) - len(entries)
    finally:
        backend.close()


def reset(name: str, *, config_path: str | Path | None = None,
          backend_url: str | None = None) -> int:
    """Delete every Redis key of ``name``'s shared crawl; returns how many."""
    base = _shared_backend(name, config_path, backend_url)
    return reset_keys(base["backend"], name)


def retry_failed(name: str, job_dir: str | Path, config_path: str | Path | None = None) -> int:
    """Put a job's dead letters back in its frontier; returns how many."""
    config = load_config(config_path)
    base = merge_settings((config.source, config.settings))
    load_spider(name, base["spiders_path"], config.base_dir)
    if not (Path(job_dir) / "job.sqlite").is_file():
        raise ConfigError(f"--job-dir {job_dir}: no job there")
    backend = SQLiteBackend(job_dir)
    try:
        Job(backend, name)
        dead = backend.dead_letters()
        entries = []
        for _, data, _ in dead:
            d = json.loads(data)
            entries.append(Entry(host_key(d["url"]), data, int(d.get("priority", 0))))
        with backend.transaction():
            backend.frontier.push(entries)
            backend.remove_dead([row[0] for row in dead])
        return len(dead)
    finally:
        backend.close()


def _check_spider_class(cls: type[Spider]) -> None:
    name = cls.name
    for attr in ("start_urls", "allowed_domains", "handle_statuses"):
        value = getattr(cls, attr, None)
        if value is not None and (isinstance(value, str) or not isinstance(value, list | tuple)):
            raise SpiderError(f"spider {name}: {attr} must be a list, got {value!r}")
    for i, url in enumerate(getattr(cls, "start_urls", None) or ()):
        if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
            raise SpiderError(f"spider {name}: start_urls[{i}] {url!r} is not an absolute "
                              "http(s) URL")
    for d in getattr(cls, "allowed_domains", None) or ():
        if not isinstance(d, str) or "/" in d or not d.strip():
            raise SpiderError(f"spider {name}: allowed_domains entry {d!r} must be a host name "
                              "such as 'example.com'")
