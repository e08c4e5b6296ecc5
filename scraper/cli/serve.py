"""``serve``: the schedules of config.yaml (as ``schedule`` runs them, same history) plus
an HTTP server beside them: a web dashboard, a Scrapyd-compatible JSON API and
Prometheus metrics."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..exceptions import ConfigError
from .console import setup_logging
from .signals import SIGNALS

__all__ = ["add_parsers"]

#: The environment variable that sets (and overrides) the ``api_token`` setting.
TOKEN_ENV = "SCRAPER_API_TOKEN"


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "serve", help="run the schedules with a web dashboard and a Scrapyd-compatible API",
        description="Run the crawls that config.yaml's `schedules` lists (as `schedule` does, "
                    "same history) and an HTTP server beside them: the dashboard at /, "
                    "Scrapyd's JSON API (schedule.json, listjobs.json, cancel.json, ...), "
                    "each job's log and items, and Prometheus metrics at /metrics. It listens "
                    "on 127.0.0.1 unless told otherwise; another address needs an api_token "
                    f"(setting, or ${TOKEN_ENV}), which every request must then carry "
                    "(Bearer, or the HTTP basic auth password). SIGTERM/Ctrl-C: as schedule.")
    p.set_defaults(handler=serve_command)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; 0.0.0.0: every interface, "
                        "needs an api_token)")
    p.add_argument("--port", type=int, default=6800,
                   help="port to listen on (default: 6800, Scrapyd's; 0: any free port)")
    p.add_argument("--config", metavar="PATH",
                   help="config file (default: ./config.yaml if present)")


def serve_command(args: argparse.Namespace) -> int:
    from ..config import load_config, resolve_settings
    from ..crawl.runner import check_crawl
    from ..schedules.entries import SchedulePlan, load_schedules
    from ..server.service import ControlServer

    config = load_config(args.config)
    settings = resolve_settings(config)
    # no schedules is fine here: jobs then come from the API and the dashboard
    plan = (load_schedules(args.config, check_crawl) if settings.schedule.entries
            else SchedulePlan(config, settings, ()))
    token = os.environ.get(TOKEN_ENV) or plan.settings.schedule.api_token
    if token is not None and (len(token) < 16 or any(c.isspace() for c in token)):
        raise ConfigError(f"${TOKEN_ENV}: must be at least 16 characters without spaces")
    server = ControlServer(plan, args.host, args.port, token)
    setup_logging(plan.settings.crawl.log_level)
    server.open()
    SIGNALS.attach(server.scheduler.stop, "starting no more runs; stopping the running ones "
                                          "gracefully (again to kill them at once)",
                   again=lambda: server.scheduler.stop(force=True),
                   again_message="killing the running runs")
    try:
        return server.run()
    finally:
        SIGNALS.detach()
