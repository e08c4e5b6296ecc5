"""Prometheus metrics of scheduled runs (prometheus-client), served over HTTP by the
scheduler when ``metrics_port`` is set.

Every metric lives in the scheduler's own registry (not the process-wide default),
so several schedulers in one process, as in tests, do not collide.

    scraper_schedule_runs_total{spider, schedule, outcome}   runs ended (or skipped), by outcome
    scraper_schedule_pages_total{spider}                     pages fetched by scheduled runs
    scraper_schedule_items_total{spider}                     items scraped by scheduled runs
    scraper_schedule_errors_total{spider}                    errors counted by scheduled runs
    scraper_schedule_last_success_timestamp_seconds{spider}  end of the spider's last ok run
    scraper_schedule_running{spider}                         runs going now
    scraper_schedule_next_fire_timestamp_seconds{schedule}   when the schedule next falls due
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from ..exceptions import ConfigError

__all__ = ["SchedulerMetrics"]

log = logging.getLogger(__name__)


class SchedulerMetrics:
    """The scheduler's metrics and, when started with a port, the endpoint serving them."""

    def __init__(self, spiders: Iterable[tuple[str, str]]) -> None:
        """``spiders``: the (spider, schedule) pairs, so their series exist from the start."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("scraper_schedule_runs", "Scheduled runs ended or skipped, by outcome",
                            ["spider", "schedule", "outcome"], registry=r)
        self.pages = Counter("scraper_schedule_pages", "Pages fetched by scheduled runs",
                             ["spider"], registry=r)
        self.items = Counter("scraper_schedule_items", "Items scraped by scheduled runs",
                             ["spider"], registry=r)
        self.errors = Counter("scraper_schedule_errors", "Errors counted by scheduled runs",
                              ["spider"], registry=r)
        self.last_success = Gauge("scraper_schedule_last_success_timestamp_seconds",
                                  "End time of the spider's last successful scheduled run",
                                  ["spider"], registry=r)
        self.running = Gauge("scraper_schedule_running", "Scheduled runs going now",
                             ["spider"], registry=r)
        self.next_fire = Gauge("scraper_schedule_next_fire_timestamp_seconds",
                               "When the schedule next falls due", ["schedule"], registry=r)
        for spider, schedule in spiders:
            for outcome in ("ok", "failed", "timeout"):
                self.runs.labels(spider, schedule, outcome)
            for metric in (self.pages, self.items, self.errors, self.running):
                metric.labels(spider)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def serve(self, host: str, port: int) -> int:
        """Serve ``/metrics`` on host:port (0: any free port); returns the port."""
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise ConfigError(f"metrics_port {port}: cannot listen on {host}:{port} "
                              f"({e.strerror or e})") from None
        self.port = int(self._server.server_address[1])
        return self.port

    def run_ended(self, spider: str, schedule: str, outcome: str, *, pages: int, items: int,
                  errors: int, finished: float) -> None:
        self.runs.labels(spider, schedule, outcome).inc()
        self.pages.labels(spider).inc(max(pages, 0))
        self.items.labels(spider).inc(max(items, 0))
        self.errors.labels(spider).inc(max(errors, 0))
        if outcome == "ok":
            self.last_success.labels(spider).set(finished)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
