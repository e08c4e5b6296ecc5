"""Prometheus metrics of one crawl (``run -s metrics_port=N``), served over HTTP while it
runs.

Nothing is counted twice and nothing is done per page: a collector reads the engine's
own counters (``Stats``), its in-flight count and the hosts politeness is backing off
at scrape time, in the HTTP server's thread. Reading them needs no lock: the engine's
coordinator thread is the only writer, a counter read is one attribute, and a copy of
a dict is atomic under the GIL. The queue length is the one figure that costs a
backend call, so it comes from the engine's progress snapshots (``observe``), taken
every ``progress_interval`` in the coordinator.

Every series carries the ``spider`` label; label values are bounded (error kinds,
status codes, filter reasons, the spider's own counter names, and at most
``HOSTS_SHOWN`` hosts: those backing off now, the longest first).

    scraper_pages_total                      responses recorded (as the summary's pages)
    scraper_items_total                      items written
    scraper_requests_total                   requests sent, retries included
    scraper_retries_total                    retries
    scraper_dead_letters_total               requests that failed after their last retry
    scraper_errors_total{kind}               errors by kind (timeout, http-404, bad-item...)
    scraper_responses_total{status}          final responses by status code
    scraper_response_bytes_total             bytes of response bodies
    scraper_filtered_total{reason}           requests and items filtered out, by reason
    scraper_custom_total{name}               the spider's own counters (stats.inc)
    scraper_requests_in_flight               requests handed to workers and not yet back
    scraper_requests_queued                  requests waiting in the frontier
    scraper_host_backoff_seconds{host}       seconds left of a host's back-off (429/503)
    scraper_crawl_start_time_seconds         when the crawl (the job, if resumed) began
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..exceptions import ConfigError
from .stats import Stats

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["HOSTS_SHOWN", "CrawlMetrics", "backing_off"]

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

#: At most this many hosts get a scraper_host_backoff_seconds series.
HOSTS_SHOWN = 20


def _copy(counter: Mapping[K, V]) -> dict[K, V]:
    """A copy of a dict the coordinator may be growing (atomic under the GIL; retried
    in case another interpreter makes it not so)."""
    for _ in range(5):
        try:
            return dict(counter)
        except RuntimeError:
            continue
    return {}


class CrawlMetrics(Collector):
    """The metrics of one crawl and, once ``serve``d, the endpoint serving them.

    ``engine`` returns the crawl's engine, or None before it exists (every counter is
    then 0)."""

    def __init__(self, spider: str, engine: Callable[[], Engine | None]) -> None:
        self.spider = spider
        self.engine = engine
        self.queued = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self._server: Any = None
        self.host = ""
        self.port: int | None = None

    # -- feeding -------------------------------------------------------------------
    def observe(self, snapshot: Mapping[str, Any]) -> None:
        """Take the queue length from an engine progress snapshot."""
        self.queued = int(snapshot.get("queued") or 0)

    def tee(self, then: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """An ``on_progress`` callback that observes each snapshot, then calls ``then``."""
        def on_progress(snapshot: dict[str, Any]) -> None:
            self.observe(snapshot)
            then(snapshot)
        return on_progress

    # -- the collector -------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        engine = self.engine()
        stats = engine.stats if engine is not None else None
        yield from self._counters(stats)
        yield from self._gauges(engine, stats)

    def _counters(self, s: Stats | None) -> Iterator[Metric]:
        spider = self.spider
        for name, doc, value in (
                ("pages", "Responses recorded (robots.txt and redirect hops not counted)",
                 s.pages if s else 0),
                ("items", "Items written to the outputs", s.items if s else 0),
                ("requests", "Requests sent, retries included", s.requests if s else 0),
                ("retries", "Requests retried", s.retries if s else 0),
                ("dead_letters", "Requests that failed after their last retry",
                 s.dead if s else 0),
                ("response_bytes", "Bytes of response bodies received", s.bytes if s else 0)):
            c = CounterMetricFamily(f"scraper_{name}", doc, labels=["spider"])
            c.add_metric([spider], value)
            yield c
        for name, doc, label, values in (
                ("errors", "Errors by kind (timeout, http-404, bad-item, ...)", "kind",
                 _copy(s.errors) if s else {}),
                ("responses", "Final responses by HTTP status code", "status",
                 _copy(s.statuses) if s else {}),
                ("filtered", "Requests and items filtered out, by reason", "reason",
                 _copy(s.filtered) if s else {}),
                ("custom", "The spider's own counters (self.stats.inc)", "name",
                 _copy(s.custom) if s else {})):
            c = CounterMetricFamily(f"scraper_{name}", doc, labels=["spider", label])
            for key, n in sorted(values.items(), key=lambda kv: str(kv[0])):
                c.add_metric([spider, str(key)], n)
            yield c

    def _gauges(self, engine: Engine | None, s: Stats | None) -> Iterator[Metric]:
        spider = self.spider
        g = GaugeMetricFamily("scraper_requests_in_flight",
                              "Requests handed to workers and not yet back", labels=["spider"])
        g.add_metric([spider], engine.dispatcher.in_flight if engine is not None else 0)
        yield g
        g = GaugeMetricFamily("scraper_requests_queued",
                              "Requests waiting in the frontier (as of the last progress "
                              "snapshot, every progress_interval)", labels=["spider"])
        g.add_metric([spider], self.queued)
        yield g
        g = GaugeMetricFamily("scraper_host_backoff_seconds",
                              f"Seconds left of a host's back-off after a 429/503 (the "
                              f"{HOSTS_SHOWN} longest)", labels=["spider", "host"])
        if engine is not None:
            for host, left in backing_off(engine.politeness.backoffs, time.time()):
                g.add_metric([spider, host], left)
        yield g
        if s is not None:
            g = GaugeMetricFamily("scraper_crawl_start_time_seconds",
                                  "When the crawl began (a resumed job: its first run)",
                                  labels=["spider"])
            g.add_metric([spider], float(s.first_started or s.started))
            yield g

    # -- the endpoint --------------------------------------------------------------
    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on host:port (0: any free port); returns the port.
        ConfigError when it cannot listen there."""
        try:
            self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise ConfigError(f"metrics_port {port}: cannot listen on {host}:{port} "
                              f"({e.strerror or e})") from None
        self.host = host
        self.port = int(self._server.server_address[1])
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def backing_off(backoffs: Mapping[str, float], now: float) -> list[tuple[str, float]]:
    """(host, seconds left) of the hosts backing off at ``now``, the longest first, at
    most HOSTS_SHOWN."""
    left = [(h, until - now) for h, until in _copy(backoffs).items() if until > now]
    left.sort(key=lambda hl: -hl[1])
    return left[:HOSTS_SHOWN]
