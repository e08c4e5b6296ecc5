"""The web dashboard of ``serve``: server-rendered pages (Jinja2) that htmx keeps live.

``/`` shows the running jobs (pages, items, errors, pages per second; refreshed every
second), the schedules (next run, paused; run now, pause, resume), a form to start any
spider, the finished runs and the dead letters (retry). ``/jobs/JOB`` shows one job:
its live counters, a chart of pages/s and errors over time, its log's tail and its
first items, and a cancel button while it runs.

Each section is a fragment under ``/ui/`` that the page polls; the buttons POST to
``/ui/...`` actions, which answer with a one-line message and an htmx ``refresh``
event (or, without JavaScript, a redirect back). The actions go through the same
scheduler calls as the JSON API.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from ..exceptions import ScraperError
from ..schedules.entries import format_duration
from ..version import __version__
from .chart import chart_svg, rates
from .jobs import Job, Project, first_items, live_stats, log_tail, recent_stats

__all__ = ["routes"]

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
FINISHED_SHOWN = 25


def _clock(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def _ago(t: float | None, now: float | None = None) -> str:
    """"in 4m30s" / "now" / "2m ago"."""
    if t is None:
        return "-"
    delta = t - (time.time() if now is None else now)
    if abs(delta) < 1:
        return "now"
    text = format_duration(abs(delta) if abs(delta) < 60 else round(abs(delta)))
    return f"in {text}" if delta > 0 else f"{text} ago"


def _duration(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(max(round(seconds, 1), 0.1))


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


TEMPLATES.env.filters.update(clock=_clock, ago=_ago, duration=_duration, num=_num)
TEMPLATES.env.globals.update(version=__version__)


def _figures(job: Job) -> dict[str, Any]:
    """A running job's live counters, from the last lines of its stats file."""
    recent = recent_stats(job)
    if not recent:
        return {"pages": 0, "items": 0, "errors": 0, "rate": 0.0, "queued": None,
                "in_flight": None, "elapsed": time.time() - (job.started or time.time())}
    last = recent[-1]
    return {"pages": last.get("pages"), "items": last.get("items"),
            "errors": last.get("errors"), "rate": rates(recent)[-1],
            "queued": last.get("queued"), "in_flight": last.get("in_flight"),
            "elapsed": last.get("elapsed")}


def _project(request: Request) -> Project:
    project: Project = request.app.state.project
    return project


def _render(request: Request, name: str, **context: Any) -> Response:
    return TEMPLATES.TemplateResponse(request, name, {"project": _project(request), **context})


# -- sections (each a fragment the page polls) -----------------------------------------
async def _running_context(project: Project) -> dict[str, Any]:
    jobs = await project.jobs(finished_limit=0)
    running = [(j, await run_in_threadpool(_figures, j)) for j in jobs.running]
    return {"running": running, "pending": jobs.pending}


async def _schedules_context(project: Project) -> dict[str, Any]:
    state = await project.state()
    return {"schedules": state.schedules, "now": state.taken_at, "stopping": state.stopping}


async def _finished_context(project: Project) -> dict[str, Any]:
    return {"finished": (await project.jobs(finished_limit=FINISHED_SHOWN)).finished}


def _dead_letters(project: Project) -> list[dict[str, Any]]:
    out = []
    for spider, where in project.dead_letter_spiders():
        try:
            total, rows = project.dead_letters(spider, limit=5)
            out.append({"spider": spider, "where": where, "total": total, "rows": rows,
                        "problem": None})
        except ScraperError as e:  # a job dir in use by its run, a backend unreachable
            out.append({"spider": spider, "where": where, "total": None, "rows": [],
                        "problem": str(e)})
    return out


async def index(request: Request) -> Response:
    project = _project(request)
    context = {**await _running_context(project), **await _schedules_context(project),
               **await _finished_context(project),
               "deadletters": await run_in_threadpool(_dead_letters, project),
               "spiders": await run_in_threadpool(project.spiders)}
    return _render(request, "index.html", **context)


async def running_section(request: Request) -> Response:
    return _render(request, "_running.html", **await _running_context(_project(request)))


async def schedules_section(request: Request) -> Response:
    return _render(request, "_schedules.html", **await _schedules_context(_project(request)))


async def finished_section(request: Request) -> Response:
    return _render(request, "_finished.html", **await _finished_context(_project(request)))


async def deadletters_section(request: Request) -> Response:
    project = _project(request)
    return _render(request, "_deadletters.html",
                   deadletters=await run_in_threadpool(_dead_letters, project))


# -- one job -----------------------------------------------------------------------------
async def _job_context(request: Request) -> dict[str, Any]:
    project = _project(request)
    job = await project.job(request.path_params["job"])
    series = await run_in_threadpool(live_stats, job)
    figures = await run_in_threadpool(_figures, job) if job.state == "running" else None
    return {"job": job, "series": series, "chart": chart_svg(series), "figures": figures,
            "log": await run_in_threadpool(log_tail, job),
            "items": await run_in_threadpool(first_items, job)}


async def job_page(request: Request) -> Response:
    try:
        context = await _job_context(request)
    except ScraperError as e:
        return _render(request, "missing.html", message=str(e))
    return _render(request, "job.html", **context)


async def job_live(request: Request) -> Response:
    try:
        context = await _job_context(request)
    except ScraperError as e:
        return _render(request, "missing.html", message=str(e))
    return _render(request, "_job_live.html", **context)


# -- actions -----------------------------------------------------------------------------
Action = Callable[[Request, Project], Awaitable[str]]


def _action(fn: Action) -> Callable[[Request], Awaitable[Response]]:
    """An action: its message (or its error's) as a flash for htmx, which then refreshes
    the sections; without htmx, a redirect back to the page."""
    async def endpoint(request: Request) -> Response:
        project = _project(request)
        try:
            message, ok = await fn(request, project), True
        except ScraperError as e:
            message, ok = " ".join(str(e).split()), False
        if request.headers.get("hx-request") != "true":
            return RedirectResponse(_back(request), status_code=303)
        response = _render(request, "_flash.html", message=message, ok=ok)
        response.headers["HX-Trigger"] = "refresh"
        return response
    return endpoint


def _back(request: Request) -> str:
    job = request.path_params.get("job")
    return f"/jobs/{job}" if job and request.url.path.endswith("/cancel") else "/"


async def run_schedule(request: Request, project: Project) -> str:
    name = request.path_params["name"]
    job = await project.ask(project.scheduler.run_now, name)
    return f"schedule {name}: run started (job {job})"


async def pause_schedule(request: Request, project: Project) -> str:
    name = request.path_params["name"]
    await project.ask(project.scheduler.pause, name, True)
    return f"schedule {name} paused: its fire times pass without a run until resumed"


async def resume_schedule(request: Request, project: Project) -> str:
    name = request.path_params["name"]
    await project.ask(project.scheduler.pause, name, False)
    return f"schedule {name} resumed"


async def cancel_job(request: Request, project: Project) -> str:
    job = await project.job(request.path_params["job"])
    prev = await project.ask(project.scheduler.cancel, job.id)
    if prev is None:
        return f"job {job.id} had already ended"
    if job.stopping:
        return f"job {job.id} killed"
    return f"job {job.id} cancelled: stopping gracefully"


async def run_spider(request: Request, project: Project) -> str:
    form = await request.form()
    spider = form.get("spider")
    job = await run_in_threadpool(project.job_request, spider if isinstance(spider, str) else None,
                                  [], {}, None, None)
    await project.ask(project.scheduler.submit, job)
    return f"job {job.id} of spider {job.spider} started"


async def retry_dead_letters(request: Request, project: Project) -> str:
    spider = request.path_params["spider"]
    n = await run_in_threadpool(project.retry_failed, spider)
    return f"{n} failed request(s) of {spider} put back in its queue: its next run fetches them"


def routes() -> list[Route]:
    post = ["POST"]
    return [
        Route("/", index),
        Route("/ui/running", running_section),
        Route("/ui/schedules", schedules_section),
        Route("/ui/finished", finished_section),
        Route("/ui/deadletters", deadletters_section),
        Route("/jobs/{job}", job_page),
        Route("/ui/jobs/{job}/live", job_live),
        Route("/ui/schedules/{name}/run", _action(run_schedule), methods=post),
        Route("/ui/schedules/{name}/pause", _action(pause_schedule), methods=post),
        Route("/ui/schedules/{name}/resume", _action(resume_schedule), methods=post),
        Route("/ui/jobs/{job}/cancel", _action(cancel_job), methods=post),
        Route("/ui/run", _action(run_spider), methods=post),
        Route("/ui/deadletters/{spider}/retry", _action(retry_dead_letters), methods=post),
    ]
