"""Assembling one crawl from its parts: config file, spider, settings layers, spider
arguments, backend, pipelines and outputs, every one validated before anything starts.

``prepare`` raises ConfigError / SpiderNotFound / SpiderError (usage errors, exit 2)
or a StorageError (the backend cannot be used) and returns a ``Crawl`` whose ``run``
does the work. The CLI, the demo and the tests all go through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigFile, Settings, load_config, resolve_settings
from ..exceptions import ConfigError, SpiderError
from ..fetch.cassette import CASSETTE_FILE, CassetteMode
from ..items import item_validator
from ..loader import find_spiders, load_spider
from ..outputs import Output, check_output, open_output, output_path
from ..spider import Spider
from ..storage import Backend, BackendOptions, open_backend, scheme_of
from .engine import Engine, FetcherFactory
from .job import Job
from .middleware import build_middlewares
from .pipelines import PipelineChain, build_pipelines
from .stats import Stats

__all__ = ["Crawl", "backend_url", "build_crawl", "check_crawl", "crawl_settings",
           "list_spiders", "open_crawl_backend", "prepare"]

log = logging.getLogger(__name__)


@dataclass
class Crawl:
    """A crawl ready to run: the spider instance, its settings and its item chain."""

    spider: Spider
    settings: Settings
    pipelines: PipelineChain
    backend: Backend
    job: Job | None = None
    keep_alive: bool = False
    middlewares: list[Any] = field(default_factory=list)
    cassette: CassetteMode | None = None  # --record DIR / --replay DIR
    # wraps the engine's fetcher factory (``scraper.testing`` notes the requests made)
    wrap_fetchers: Callable[[FetcherFactory], FetcherFactory] | None = None
    engine: Engine | None = field(default=None, init=False)
    stopped: str | None = field(default=None, init=False)  # stop() before run() made the engine

    def run(self, on_progress: Callable[[dict[str, Any]], None] | None = None,
            progress_interval: float | None = None) -> Stats:
        try:
            self.engine = Engine(self.spider, self.settings, self.pipelines, backend=self.backend,
                                 job=self.job, keep_alive=self.keep_alive, on_progress=on_progress,
                                 progress_interval=progress_interval, middlewares=self.middlewares,
                                 cassette=self.cassette, wrap_fetchers=self.wrap_fetchers)
            if self.stopped is not None:  # a signal during start-up: the crawl ends at once
                self.engine.stop(self.stopped)
            return self.engine.run()
        finally:
            self.backend.close()

    def stop(self, reason: str = "interrupted") -> None:
        if self.engine is not None:
            self.engine.stop(reason)
        else:
            self.stopped = reason


def list_spiders(config_path: str | Path | None = None) -> list[str]:
    """Names of every spider found through the config's ``spiders_path``."""
    config = load_config(config_path)
    settings = resolve_settings(config)
    return list(find_spiders(settings.crawl.spiders_path, config.base_dir))


def prepare(name: str, *, config_path: str | Path | None = None,
            settings: Mapping[str, Any] | None = None,
            schedule_settings: Mapping[str, Any] | None = None,
            spider_args: Mapping[str, str] | None = None,
            outputs: Sequence[Mapping[str, Any]] = (),
            job_dir: str | Path | None = None, force_resume: bool = False,
            keep_alive: bool = False, cassette: CassetteMode | None = None) -> Crawl:
    """Find the spider ``name`` through the config and validate everything a crawl needs."""
    config: ConfigFile = load_config(config_path)
    base = resolve_settings(config, schedule=("schedule settings", schedule_settings), cli=settings)
    cls = load_spider(name, base.crawl.spiders_path, config.base_dir)
    return build_crawl(cls, config=config, settings=settings, schedule_settings=schedule_settings,
                       spider_args=spider_args, outputs=outputs, job_dir=job_dir,
                       force_resume=force_resume, keep_alive=keep_alive, cassette=cassette)


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
    return resolve_settings(config, custom=(f"spider {name} custom_settings", custom),
                            schedule=(schedule_source, schedule_settings), cli=settings)


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
    build_pipelines(merged.export.pipelines)
    url = backend_url(merged, None)
    scheme_of(url)
    for spec in merged.export.outputs:
        check_output(spec, cls.name, stream=not url.startswith(("memory:", "sqlite:")))
    return merged


def _new_spider(cls: type[Spider], spider_args: Mapping[str, str] | None) -> Spider:
    try:
        spider = cls(**dict(spider_args or {}))
    except Exception as e:
        raise SpiderError(f"spider {cls.name}: __init__ failed: {type(e).__name__}: {e}") from None
    if spider_args:
        _check_spider_attrs(spider, cls.name)  # -a start_urls=... replaced the class's list
    return spider


def backend_url(settings: Settings, job_dir: str | Path | None) -> str:
    """The URL of the crawl's backend: ``--job-dir DIR`` is ``sqlite://DIR``, else the
    ``backend`` setting, else this process's memory."""
    url = settings.backend.url
    if job_dir is not None:
        if url:
            raise ConfigError("--job-dir and --backend: use one (a Redis backend is already "
                              "persistent and shared)")
        return f"sqlite://{job_dir}"
    return url or "memory://"


def open_crawl_backend(url: str, spider: str, settings: Settings, *, lock: bool = True) -> Backend:
    """Open the backend at ``url`` with the crawl's backend settings."""
    b = settings.backend
    return open_backend(url, BackendOptions(spider=spider, lease_seconds=b.lease_seconds,
                                            seen_ttl=b.seen_ttl,
                                            retry_window=b.redis_retry_window, lock=lock))


def build_crawl(cls: type[Spider], *, config: ConfigFile | None = None,
                settings: Mapping[str, Any] | None = None,
                schedule_settings: Mapping[str, Any] | None = None,
                spider_args: Mapping[str, str] | None = None,
                outputs: Sequence[Mapping[str, Any]] = (),
                pipelines: Sequence[Any] = (),
                job_dir: str | Path | None = None, force_resume: bool = False,
                keep_alive: bool = False, cassette: CassetteMode | None = None) -> Crawl:
    """A crawl of the spider class ``cls`` (settings layered over ``config``), not yet started.

    ``pipelines`` are extra pipeline instances run after the configured ones. With
    ``job_dir`` the crawl is persistent: it resumes what that job dir holds. With the
    ``backend`` setting (a Redis URL) it joins the crawl shared by every process that
    uses that backend and spider. With ``cassette`` its exchanges are recorded in, or
    served from, a cassette (``fetch.cassette``).
    """
    name = cls.name
    if cassette is not None and cassette.replay and not (cassette.dir / CASSETTE_FILE).is_file():
        raise ConfigError(f"--replay {cassette.dir}: no cassette there (record one with "
                          f"--record {cassette.dir})")
    merged = crawl_settings(cls, config=config, settings=settings,
                            schedule_settings=schedule_settings)
    spider = _new_spider(cls, spider_args)
    chain = build_pipelines(merged.export.pipelines) + list(pipelines)
    middlewares = build_middlewares(merged.crawl.middlewares)
    url = backend_url(merged, job_dir)
    scheme_of(url)  # an unknown scheme is an error before anything is opened
    specs = list(merged.export.outputs) + list(outputs)
    for spec in specs:
        check_output(spec, name, stream=True)
    backend = open_crawl_backend(url, name, merged)
    opened: list[Output] = []
    try:
        job = Job(backend.job, name, force=force_resume) if backend.job is not None else None
        mark = job.mark if job else None
        resume = [job.output_position(output_path(spec, name)) if job else None for spec in specs]
        for spec, at in zip(specs, resume):  # all checked before any file is touched
            check_output(spec, name, stream=backend.items is not None, job=mark, resume_at=at)
        for spec, at in zip(specs, resume):
            opened.append(open_output(spec, name, resume_at=at, stream=backend.items, job=mark))
    except BaseException:
        for o in opened:
            o.close()
        backend.close()
        raise
    crawl = Crawl(spider, merged, PipelineChain(chain, opened), backend, job,
                  middlewares=middlewares, cassette=cassette)
    crawl.keep_alive = keep_alive
    return crawl


def _check_spider_class(cls: type[Spider]) -> None:
    _check_spider_attrs(cls, cls.name)


def _check_spider_attrs(spider: type[Spider] | Spider, name: str) -> None:
    cls = spider
    for attr in ("start_urls", "allowed_domains", "handle_statuses"):
        value = getattr(cls, attr, None)
        if value is not None and (isinstance(value, str) or not isinstance(value, list | tuple)):
            raise SpiderError(f"spider {name}: {attr} must be a list, got {value!r}")
    for i, url in enumerate(getattr(cls, "start_urls", None) or ()):
        if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
            raise SpiderError(f"spider {name}: start_urls[{i}] {url!r} is not an absolute "
                              "http(s) URL")
    for d in getattr(cls, "allowed_domains", None) or ():
        if not isinstance(d, str) or not d.strip() or any(c in d for c in "/:?# "):
            raise SpiderError(f"spider {name}: allowed_domains entry {d!r} must be a host name "
                              "such as 'example.com', without a scheme, port or path")
    _check_item_class(cls, name)


def _check_item_class(spider: type[Spider] | Spider, name: str) -> None:
    item_class = getattr(spider, "item_class", None)
    if item_class is not None:
        try:
            item_validator(item_class)
        except TypeError as e:
            raise SpiderError(f"spider {name}: {e}") from None
