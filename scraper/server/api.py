"""The Scrapyd-compatible JSON API of ``serve``, and what Scrapyd users would expect next.

Scrapyd's endpoints, with its formats (python-scrapyd-api and scrapyd-client scripts
work unchanged): ``daemonstatus.json``, ``listprojects.json`` (one project),
``listspiders.json``, ``listjobs.json``, ``listversions.json`` (none: the project runs
from its directory), ``schedule.json`` (POST: ``spider``, ``setting=K=V`` repeated,
``jobid``, ``priority``, every other field a spider argument), ``cancel.json`` (POST:
``job``; ``signal=KILL`` kills at once), ``logs/PROJECT/SPIDER/JOB.log`` and ``items/PROJECT/SPIDER/JOB.jl``.

Ours: ``jobs/JOB/stats.json`` (live counters and their series), ``jobs/JOB/summary.json``,
``listschedules.json``, ``runnow.json``, ``pause.json``, ``resume.json`` (POST:
``schedule``), ``deadletters.json`` and ``retryfailed.json`` (POST: ``spider``).

Every answer is JSON with ``status`` "ok" or "error"; an error's ``message`` names the
parameter or value at fault. Deploying eggs (``addversion.json`` ...) is refused plainly.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..exceptions import ScraperError
from .jobs import Job, Project, live_stats, summary

__all__ = ["error", "routes"]

Endpoint = Callable[[Request], Awaitable[Response]]

#: Fields of schedule.json that are not spider arguments.
_SCHEDULE_FIELDS = frozenset({"project", "spider", "setting", "jobid", "priority", "_version"})


def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message}, status_code=status)


def ok(**values: Any) -> JSONResponse:
    return JSONResponse({"node_name": socket.gethostname(), "status": "ok", **values})


def project_of(request: Request) -> Project:
    project: Project = request.app.state.project
    return project


def _endpoint(fn: Callable[[Request, Project], Awaitable[Response]]) -> Endpoint:
    """An endpoint whose ScraperError (a bad parameter, a refused job) is a JSON error
    naming the endpoint and the culprit."""
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request, project_of(request))
        except ScraperError as e:
            return error(f"{request.url.path.lstrip('/')}: {' '.join(str(e).split())}")
    return endpoint


async def _params(request: Request) -> dict[str, list[str]]:
    """Query string and form fields (a POST may use both, as some Scrapyd clients do)."""
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    if request.method == "POST":
        form = await request.form()
        for key, field in form.multi_items():
            if isinstance(field, str):  # a file upload is no parameter of ours
                out.setdefault(key, []).append(field)
    return out


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def _time(t: float | None) -> str | None:
    """Scrapyd's time format: local time, microseconds."""
    return None if t is None else str(datetime.fromtimestamp(t))


def job_urls(project: Project, job: Job) -> dict[str, str]:
    base = f"{project.name}/{job.spider}/{job.id}"
    return {"log_url": f"/logs/{base}.log", "items_url": f"/items/{base}.jl"}


def scrapyd_job(project: Project, job: Job) -> dict[str, Any]:
    """A listjobs.json entry: Scrapyd's keys, then ours."""
    if job.state == "pending":
        return {"project": project.name, "spider": job.spider, "id": job.id,
                "settings": dict(job.settings), "args": dict(job.args),
                "priority": job.priority}
    out: dict[str, Any] = {"project": project.name, "spider": job.spider, "id": job.id}
    if job.state == "running":
        out["pid"] = job.pid
    out["start_time"] = _time(job.started)
    if job.state == "finished":
        out["end_time"] = _time(job.finished)
    out.update(job_urls(project, job))
    out.update({"status": job.status, "schedule": job.schedule, "trigger": job.trigger,
                "pages": job.pages, "items": job.items, "errors": job.errors,
                "reason": job.reason})
    return out


# -- Scrapyd's endpoints -----------------------------------------------------------
async def daemonstatus(request: Request, project: Project) -> Response:
    jobs = await project.jobs()
    return ok(pending=len(jobs.pending), running=len(jobs.running),
              finished=len(jobs.finished))


async def listprojects(request: Request, project: Project) -> Response:
    return ok(projects=[project.name])


async def listversions(request: Request, project: Project) -> Response:
    project.check_project(_one(await _params(request), "project"))
    return ok(versions=[])


async def listspiders(request: Request, project: Project) -> Response:
    project.check_project(_one(await _params(request), "project"))
    return ok(spiders=await run_in_threadpool(project.spiders))


async def listjobs(request: Request, project: Project) -> Response:
    params = await _params(request)
    project.check_project(_one(params, "project"))
    jobs = await project.jobs(_one(params, "spider"))
    return ok(pending=[scrapyd_job(project, j) for j in jobs.pending],
              running=[scrapyd_job(project, j) for j in jobs.running],
              finished=[scrapyd_job(project, j) for j in jobs.finished])


async def schedule(request: Request, project: Project) -> Response:
    params = await _params(request)
    project.check_project(_one(params, "project"))
    args = {k: v[-1] for k, v in params.items() if k not in _SCHEDULE_FIELDS}
    job = await run_in_threadpool(project.job_request, _one(params, "spider"),
                                  params.get("setting", []), args, _one(params, "jobid"),
                                  _one(params, "priority"))
    await project.ask(project.scheduler.submit, job)
    return ok(jobid=job.id)


async def cancel(request: Request, project: Project) -> Response:
    params = await _params(request)
    project.check_project(_one(params, "project"))
    job_id = _one(params, "job")
    if not job_id:
        raise _Missing("job is required (the job's id)")
    job = await project.job(job_id)
    prevstate = await project.ask(project.scheduler.cancel, job.id)
    if prevstate == "running" and (_one(params, "signal") or "").upper() in ("KILL", "SIGKILL", "9"):
        await project.ask(project.scheduler.cancel, job.id)  # a second cancel kills
    return ok(prevstate=prevstate)


async def _file(request: Request, project: Project, what: str) -> Response:
    p = request.path_params
    project.check_project(p["project"])
    job = await project.job(p["job"], p["spider"])
    path = job.log_path if what == "log" else job.items_path
    if path is None or not Path(path).is_file():
        return error(f"job {job.id}: no {what} file (yet)", 404)
    media = "text/plain; charset=utf-8" if what == "log" else "application/x-ndjson"
    return FileResponse(path, media_type=media)


async def log_file(request: Request, project: Project) -> Response:
    return await _file(request, project, "log")


async def items_file(request: Request, project: Project) -> Response:
    return await _file(request, project, "items")


async def not_supported(request: Request, project: Project) -> Response:
    return error(f"{request.url.path.lstrip('/')}: not supported: this server runs the project "
                 f"{project.name!r} from its directory (deploy by updating that directory and "
                 "restarting `serve`)")


# -- ours ------------------------------------------------------------------------------
async def job_stats(request: Request, project: Project) -> Response:
    job = await project.job(request.path_params["job"])
    series = await run_in_threadpool(live_stats, job)
    latest = series[-1] if series else None
    return ok(id=job.id, spider=job.spider, state=job.state, job_status=job.status,
              stopping=job.stopping, latest=latest, series=series)


async def job_summary(request: Request, project: Project) -> Response:
    job = await project.job(request.path_params["job"])
    data = await run_in_threadpool(summary, job)
    if data is None:
        return error(f"job {job.id}: no summary (yet: a run writes it when it ends)", 404)
    return JSONResponse(data)


async def listschedules(request: Request, project: Project) -> Response:
    state = await project.state()
    return ok(schedules=[{"name": s.entry.name, "spider": s.entry.spider, "when": s.entry.spec,
                          "next_run": _time(s.next_run), "paused": s.paused, "queued": s.queued}
                         for s in state.schedules])


async def _schedule_name(request: Request) -> str:
    name = _one(await _params(request), "schedule")
    if not name:
        raise _Missing("schedule is required (the schedule's name)")
    return name


async def runnow(request: Request, project: Project) -> Response:
    name = await _schedule_name(request)
    return ok(jobid=await project.ask(project.scheduler.run_now, name))


async def pause(request: Request, project: Project) -> Response:
    await project.ask(project.scheduler.pause, await _schedule_name(request), True)
    return ok()


async def resume(request: Request, project: Project) -> Response:
    await project.ask(project.scheduler.pause, await _schedule_name(request), False)
    return ok()


async def _spider_param(request: Request) -> str:
    spider = _one(await _params(request), "spider")
    if not spider:
        raise _Missing("spider is required (the spider's name)")
    return spider


async def deadletters(request: Request, project: Project) -> Response:
    spider = await _spider_param(request)
    total, rows = await run_in_threadpool(project.dead_letters, spider)
    return ok(spider=spider, total=total,
              deadletters=[{"method": r.method, "url": r.url, "reason": r.reason} for r in rows])


async def retryfailed(request: Request, project: Project) -> Response:
    spider = await _spider_param(request)
    return ok(spider=spider, requeued=await run_in_threadpool(project.retry_failed, spider))


class _Missing(ScraperError):
    """A required parameter that is not there."""


def routes() -> list[Route]:
    get, post = ["GET"], ["POST"]
    table: list[tuple[str, Callable[[Request, Project], Awaitable[Response]], list[str]]] = [
        ("/daemonstatus.json", daemonstatus, get),
        ("/listprojects.json", listprojects, get),
        ("/listversions.json", listversions, get),
        ("/listspiders.json", listspiders, get),
        ("/listjobs.json", listjobs, get),
        ("/schedule.json", schedule, post),
        ("/cancel.json", cancel, post),
        ("/logs/{project}/{spider}/{job}.log", log_file, get),
        ("/items/{project}/{spider}/{job}.jl", items_file, get),
        ("/jobs/{job}/stats.json", job_stats, get),
        ("/jobs/{job}/summary.json", job_summary, get),
        ("/listschedules.json", listschedules, get),
        ("/runnow.json", runnow, post),
        ("/pause.json", pause, post),
        ("/resume.json", resume, post),
        ("/deadletters.json", deadletters, get),
        ("/retryfailed.json", retryfailed, post),
    ]
    out = [Route(path, _endpoint(fn), methods=methods) for path, fn, methods in table]
    for path in ("/addversion.json", "/delversion.json", "/delproject.json"):
        out.append(Route(path, _endpoint(not_supported), methods=["GET", "POST"]))
    return out
