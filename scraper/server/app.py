"""The web application of ``serve`` (Starlette): the Scrapyd-compatible API (``api``),
the dashboard (``dashboard``), its static files, and ``/metrics`` (the scheduler's
Prometheus registry), all behind ``auth.Guard``."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import api, dashboard
from .auth import Guard
from .jobs import Project

__all__ = ["build_app"]

STATIC = Path(__file__).parent / "static"


def build_app(project: Project, token: str | None) -> Starlette:
    """The application for ``project``; ``token``: the API token every request needs."""
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(project.scheduler.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    routes = [*api.routes(), *dashboard.routes(), Route("/metrics", metrics),
              Mount("/static", StaticFiles(directory=str(STATIC)), name="static")]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, token=token)],
                    exception_handlers={HTTPException: _http_error})
    app.state.project = project
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (404, 405) as Scrapyd-style JSON naming the path."""
    assert isinstance(exc, HTTPException)
    path = request.url.path.lstrip("/") or "/"
    if exc.status_code == 405:
        allowed = exc.headers.get("Allow", "") if exc.headers else ""
        message = f"{path}: method {request.method} not allowed (use {allowed or 'another'})"
    elif exc.status_code == 404:
        message = f"{path}: no such endpoint or page"
    else:
        message = f"{path}: {exc.detail}"
    return JSONResponse({"status": "error", "message": message}, status_code=exc.status_code,
                        headers=exc.headers)
