"""``serve``: the Scrapyd-compatible JSON API through real HTTP against a real ``serve``
process (port 0, readiness from its log line), running real crawls of a local site;
python-scrapyd-api driving it; the API token off loopback; cross-site POSTs refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT, Reply, Site, page, run_cli, write_project

pytestmark = pytest.mark.timeout(120)

SHOP = '''
from scraper import Request, Spider

class Shop(Spider):
    name = "shop"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        for href in response.css("a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_page)

    def parse_page(self, response):
        yield {"url": response.url, "title": response.css("title::text").get()}
'''

SLOW = '''
from scraper import Request, Spider

class Slow(Spider):
    """An endless chain of slow pages: runs until it is cancelled."""
    name = "slow"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/slow/0")

    def parse(self, response):
        yield {"url": response.url}
        n = int(response.url.rsplit("/", 1)[1])
        yield Request(f"{self.base_url}/slow/{n + 1}")
'''

FLAKY = '''
from scraper import Request, Spider

class Flaky(Spider):
    name = "flaky"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/broken")

    def parse(self, response):
        yield {"url": response.url}
'''

TOKEN = "s3cret-token-0123456789"


class Serve:
    """A ``python -m scraper serve`` process; ``url`` once it logged that it serves."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        full_env.pop("SCRAPER_API_TOKEN", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "scraper", "serve", "--port", "0",
                                      *args], cwd=cwd, env=full_env, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self.url = ""
        ready = threading.Event()

        def drain() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                if "serving on http://" in line and not self.url:
                    self.url = line.split("serving on ", 1)[1].split()[0].rstrip("/")
                    ready.set()
            ready.set()

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        if not ready.wait(60) or not self.url:
            self.stop()
            raise AssertionError("serve did not start:\n" + "".join(self.lines))

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=30, **kw)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)
        finally:
            self._drain.join(10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()


def wait_for(what: Callable[[], Any], message: str, timeout: float = 45) -> Any:
    """``what()`` once it is truthy (polled), else fail naming ``message``."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.1)


class _SlowSite(Site):
    def answer(self, hit: Any) -> Reply | None:
        if hit.path.startswith("/slow/"):
            return Reply(page(title="slow"), delay=0.15)
        return super().answer(hit)


def make_project(tmp: Path, site_url: str, extra: str = "") -> Path:
    config = f"""
spiders_path: spiders
obey_robots: false
workers: 2
schedules:
  - spider: shop
    cron: "0 0 1 1 *"
    args: {{base_url: "{site_url}"}}
  - spider: flaky
    cron: "0 0 1 1 *"
    job_dir: jobs/flaky
    args: {{base_url: "{site_url}"}}
    settings: {{retry: {{attempts: 1, backoff: 0.01}}}}
{extra}"""
    return write_project(tmp, {"shop": SHOP, "slow": SLOW, "flaky": FLAKY}, config)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = _SlowSite()
    links = [f"/p/{i}" for i in range(1, 6)]
    s.route("/", page(*links, title="home"))
    for i in range(1, 6):
        s.route(f"/p/{i}", page(title=f"page {i}"))
    s.route("/broken", "down", status=500)
    yield s
    s.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[Serve]:
    project = make_project(tmp_path_factory.mktemp("served"), site.url)
    server = Serve(project)
    yield server
    assert server.stop() == 0, "".join(server.lines)


def finished(server: Serve, job: str) -> dict[str, Any] | None:
    jobs = server.get("/listjobs.json").json()
    return next((j for j in jobs["finished"] if j["id"] == job), None)


def schedule(server: Serve, spider: str, **data: Any) -> str:
    r = server.post("/schedule.json", data={"spider": spider, **data})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok", body
    return str(body["jobid"])


# -- Scrapyd's endpoints -------------------------------------------------------------
def test_status_projects_spiders_and_versions(served: Serve) -> None:
    status = served.get("/daemonstatus.json").json()
    assert status["status"] == "ok" and {"pending", "running", "finished", "node_name"} <= set(status)
    projects = served.get("/listprojects.json").json()["projects"]
    assert len(projects) == 1
    assert served.get("/listspiders.json", params={"project": projects[0]}).json()["spiders"] == [
        "flaky", "shop", "slow"]
    assert served.get("/listversions.json").json()["versions"] == []
    r = served.post("/addversion.json", data={"project": projects[0]})
    assert r.json()["status"] == "error" and "not supported" in r.json()["message"]


def test_a_scheduled_job_runs_with_its_settings_and_arguments_and_leaves_its_files(
        served: Serve, site: Site) -> None:
    job = schedule(served, "shop", setting=["max_pages=3", "workers=1"], base_url=site.url,
                   jobid="shop-job-1")
    assert job == "shop-job-1"
    done = wait_for(lambda: finished(served, job), "the job to finish")
    assert done["spider"] == "shop" and done["status"] == "ok" and done["pages"] == 3
    assert done["start_time"] <= done["end_time"] and "pid" not in done
    log = served.get(done["log_url"])
    assert log.status_code == 200 and "--- shop: max_pages ---" in log.text
    items = [json.loads(line) for line in served.get(done["items_url"]).text.splitlines()]
    assert len(items) == done["items"] == 2 and items[0]["title"].startswith("page")
    summary = served.get(f"/jobs/{job}/summary.json").json()
    assert summary["pages"] == 3 and summary["reason"] == "max_pages"
    stats = served.get(f"/jobs/{job}/stats.json").json()
    assert stats["state"] == "finished" and stats["latest"]["final"] is True
    assert stats["latest"]["pages"] == 3 and stats["series"]


def test_a_running_job_shows_live_stats_and_is_cancelled_gracefully(served: Serve,
                                                                     site: Site) -> None:
    job = schedule(served, "slow", base_url=site.url)

    def running() -> dict[str, Any] | None:
        jobs = served.get("/listjobs.json", params={"spider": "slow"}).json()
        return next((j for j in jobs["running"] if j["id"] == job), None)

    entry = wait_for(running, "the job to run")
    assert entry["pid"] > 0 and entry["start_time"] and entry["log_url"].endswith(f"/{job}.log")
    first = wait_for(lambda: (served.get(f"/jobs/{job}/stats.json").json()["latest"] or {})
                     .get("pages"), "live stats")
    wait_for(lambda: served.get(f"/jobs/{job}/stats.json").json()["latest"]["pages"] > first,
             "the live page count to move")
    r = served.post("/cancel.json", data={"job": job})
    assert r.json() == {"node_name": r.json()["node_name"], "status": "ok", "prevstate": "running"}
    done = wait_for(lambda: finished(served, job), "the cancelled job to end")
    assert done["status"] == "cancelled" and done["reason"] == "interrupted"
    assert done["pages"] >= 2  # a graceful stop: its summary was written
    # nothing left to cancel: Scrapyd answers prevstate null
    assert served.post("/cancel.json", data={"job": job}).json()["prevstate"] is None


@pytest.mark.parametrize("method, path, data, culprit", [
    ("post", "/schedule.json", {}, "spider is required"),
    ("post", "/schedule.json", {"spider": "nope"}, "spider 'nope' not found (known: flaky, shop, slow)"),
    ("post", "/schedule.json", {"spider": "shop", "setting": "max_pages=0"}, "max_pages must be"),
    ("post", "/schedule.json", {"spider": "shop", "setting": "DOWNLOAD_DELAY=2"},
     "unknown setting 'DOWNLOAD_DELAY' (did you mean 'delay'?"),
    ("post", "/schedule.json", {"spider": "shop", "setting": "nokey"}, "setting nokey: expected KEY=VALUE"),
    ("post", "/schedule.json", {"spider": "shop", "setting": "schedule_dir=x"},
     "setting schedule_dir: a setting of the server"),
    ("post", "/schedule.json", {"spider": "shop", "priority": "high"}, "priority 'high': must be a number"),
    ("post", "/schedule.json", {"spider": "shop", "jobid": "../x"}, "jobid '../x'"),
    ("post", "/schedule.json", {"spider": "shop", "jobid": "shop-job-1"}, "jobid 'shop-job-1' is taken"),
    ("post", "/schedule.json", {"spider": "shop", "project": "other"}, "project 'other' not found"),
    ("post", "/cancel.json", {}, "job is required"),
    ("post", "/cancel.json", {"job": "nosuchjob"}, "job 'nosuchjob': no such job"),
    ("get", "/listjobs.json", {"project": "other"}, "project 'other' not found"),
    ("get", "/logs/x/shop/nosuchjob.log", {}, "project 'x' not found"),
    ("get", "/jobs/nosuchjob/stats.json", {}, "job 'nosuchjob': no such job"),
    ("post", "/pause.json", {"schedule": "nope"}, "no schedule named 'nope' (known: shop, flaky)"),
    ("post", "/runnow.json", {}, "schedule is required"),
    ("get", "/deadletters.json", {"spider": "shop"}, "spider 'shop' keeps no dead letters"),
    ("get", "/schedule.json", {}, "schedule.json: method GET not allowed (use POST)"),
])
def test_bad_parameters_are_a_scrapyd_error_naming_the_culprit(served: Serve, method: str,
                                                              path: str, data: dict[str, str],
                                                              culprit: str) -> None:
    if "jobid" in data and data["jobid"] == "shop-job-1":  # taken by the test above, or now
        served.post("/schedule.json", data={"spider": "shop", "jobid": "shop-job-1",
                                            "setting": "max_pages=1"})
    r = (served.post(path, data=data) if method == "post" else served.get(path, params=data))
    body = r.json()
    assert r.status_code >= 400 and body["status"] == "error", body
    assert culprit in body["message"], body["message"]
    assert body["message"].startswith(path.lstrip("/").split("/")[0]), body["message"]


def test_schedules_run_now_pause_and_resume(served: Serve) -> None:
    assert served.post("/pause.json", data={"schedule": "shop"}).json()["status"] == "ok"
    schedules = {s["name"]: s for s in served.get("/listschedules.json").json()["schedules"]}
    assert schedules["shop"]["paused"] and not schedules["flaky"]["paused"]
    assert served.post("/resume.json", data={"schedule": "shop"}).json()["status"] == "ok"
    schedules = {s["name"]: s for s in served.get("/listschedules.json").json()["schedules"]}
    assert not schedules["shop"]["paused"] and schedules["shop"]["next_run"]
    job = served.post("/runnow.json", data={"schedule": "shop"}).json()["jobid"]
    done = wait_for(lambda: finished(served, job), "the run to finish")
    assert done["schedule"] == "shop" and done["trigger"] == "manual" and done["status"] == "ok"


def test_dead_letters_are_listed_and_retried(served: Serve) -> None:
    job = served.post("/runnow.json", data={"schedule": "flaky"}).json()["jobid"]
    wait_for(lambda: finished(served, job), "the flaky run to finish")
    dead = served.get("/deadletters.json", params={"spider": "flaky"}).json()
    assert dead["total"] == 1 and dead["deadletters"][0]["url"].endswith("/broken")
    assert "500" in dead["deadletters"][0]["reason"]
    assert served.post("/retryfailed.json", data={"spider": "flaky"}).json()["requeued"] == 1
    assert served.get("/deadletters.json", params={"spider": "flaky"}).json()["total"] == 0


def test_metrics_are_served(served: Serve) -> None:
    r = served.get("/metrics")
    assert r.status_code == 200 and "scraper_schedule_runs_total" in r.text


# -- who may ask -------------------------------------------------------------------------
def test_cross_site_posts_and_foreign_hosts_are_refused(served: Serve) -> None:
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/x"},
                    {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        r = served.post("/schedule.json", data={"spider": "shop"}, headers=headers)
        assert r.status_code == 403 and "cross-site request refused" in r.json()["message"]
    same = served.url.split("//", 1)[1]
    r = served.post("/pause.json", data={"schedule": "shop"},
                    headers={"Origin": served.url, "Referer": served.url + "/"})
    assert r.json()["status"] == "ok", same
    served.post("/resume.json", data={"schedule": "shop"})
    # a DNS name rebound to 127.0.0.1 does not reach a loopback server without a token
    r = served.get("/listjobs.json", headers={"Host": "evil.example"})
    assert r.status_code == 403 and "Host 'evil.example' refused" in r.json()["message"]


def test_python_scrapyd_api_drives_it(served: Serve, site: Site) -> None:
    from scrapyd_api import ScrapydAPI

    api = ScrapydAPI(served.url)
    project = api.list_projects()[0]
    assert "slow" in api.list_spiders(project)
    job = api.schedule(project, "slow", settings={"workers": 1}, base_url=site.url)
    wait_for(lambda: any(j["id"] == job for j in api.list_jobs(project)["running"]),
             "the job to be listed as running")
    assert api.job_status(project, job) == "running"
    assert api.cancel(project, job) == "running"
    wait_for(lambda: any(j["id"] == job for j in api.list_jobs(project)["finished"]),
             "the job to be listed as finished")


def test_off_loopback_needs_a_token(tmp_path: Path, site: Site) -> None:
    project = make_project(tmp_path, site.url)
    r = run_cli("serve", "--host", "0.0.0.0", "--port", "0", cwd=project,
                env={"SCRAPER_API_TOKEN": ""})
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--host 0.0.0.0: listening off loopback needs an api_token" in r.stderr
    server = Serve(project, "--host", "0.0.0.0", env={"SCRAPER_API_TOKEN": TOKEN})
    try:
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        r = requests.get(url + "/listjobs.json", timeout=30)
        assert r.status_code == 401 and r.json()["status"] == "error"
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        assert requests.get(url + "/", timeout=30).status_code == 401
        bad = requests.get(url + "/listjobs.json", timeout=30,
                           headers={"Authorization": "Bearer wrong-token-0123456789"})
        assert bad.status_code == 401
        bearer = requests.get(url + "/listjobs.json", timeout=30,
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and bearer.json()["status"] == "ok"
        basic = requests.get(url + "/daemonstatus.json", timeout=30, auth=("anyone", TOKEN))
        assert basic.status_code == 200 and basic.json()["status"] == "ok"
        from scrapyd_api import ScrapydAPI

        api = ScrapydAPI(url, auth=("scrapyd", TOKEN))
        assert api.list_spiders(api.list_projects()[0]) == ["flaky", "shop", "slow"]
    finally:
        assert server.stop() == 0


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path, served: Serve, site: Site) -> None:
    project = make_project(tmp_path, site.url)
    port = served.url.rsplit(":", 1)[1]
    r = run_cli("serve", "--port", port, cwd=project)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in r.stderr


def test_pauses_are_kept_in_the_history(tmp_path: Path, site: Site) -> None:
    from scraper.crawl.runner import check_crawl
    from scraper.schedules.entries import load_schedules
    from scraper.schedules.supervisor import Scheduler

    project = make_project(tmp_path, site.url)
    cwd = os.getcwd()
    os.chdir(project)
    try:
        s = Scheduler(load_schedules(project / "config.yaml", check_crawl))
        s.open()
        s.pause("flaky")
        s.close()
        again = Scheduler(load_schedules(project / "config.yaml", check_crawl))
        again.open()
        assert [x.entry.name for x in again.state().schedules if x.paused] == ["flaky"]
        again.pause("flaky", False)
        again.close()
    finally:
        os.chdir(cwd)
