"""Prometheus metrics of a crawl (``run -s metrics_port=N``): scraped over HTTP from a real
crawl of a local site while it runs (a page that answers only when the test says so
keeps it going) and at its end, where they equal the summary; a port in use is a
one-line usage error; a config.yaml ``metrics_port`` (the scheduler's) is left alone."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scraper import Request, Spider
from scraper.crawl.metrics import HOSTS_SHOWN, CrawlMetrics, backing_off
from scraper.crawl.runner import build_crawl

from .conftest import ROOT, Reply, Site, page, run_cli, write_project

pytestmark = pytest.mark.timeout(90)

SHOP = '''
from scraper import Request, Spider

class Shop(Spider):
    name = "shop"
    base_url = ""
    busy_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")
        if self.busy_url:
            yield Request(self.busy_url)

    def parse(self, response):
        self.stats.inc("pages_parsed")
        yield {"url": response.url}
        yield from response.follow_all(response.links())
'''


def scrape(port: int) -> dict[str, float]:
    """``name{label="v",...}`` → value, labels sorted, of every sample at /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def wait_for(port: int, ready: Callable[[dict[str, float]], bool], what: str,
             timeout: float = 30) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(port)
        if ready(m):
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never showed {what}: {m}")
        time.sleep(0.05)


@pytest.fixture
def shop(site: Site) -> tuple[Site, threading.Event]:
    """/ links to four pages, a missing one and /slow, which answers once released."""
    release = threading.Event()

    def slow(hit: Any) -> Reply:
        release.wait(30)
        return Reply(page())

    site.route("/", page(*[f"/p{i}" for i in range(4)], "/missing", "/slow"))
    for i in range(4):
        site.route(f"/p{i}", page())
    site.route("/slow", slow)
    yield site, release
    release.set()


def test_a_running_crawl_serves_its_metrics(shop, tmp_path):
    site, release = shop
    busy = Site()  # another host, answering 429 with a long Retry-After: it backs off
    busy.route("/", Reply("busy", status=429, headers={"Retry-After": "120"}))
    project = write_project(tmp_path, {"shop": SHOP}, "obey_robots: false\nworkers: 4\n")
    p = subprocess.Popen(
        [sys.executable, "-m", "scraper", "run", "shop", "-a", f"base_url={site.url}",
         "-a", f"busy_url={busy.url}/", "-s", "metrics_port=0", "-s", "progress_interval=0.1",
         "-o", "out.jsonl"],
        cwd=project, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in p.stderr], daemon=True)
    reader.start()
    try:
        port = None
        while port is None:  # the readiness line
            line = lines.get(timeout=30)
            found = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", line)
            port = int(found.group(1)) if found else None
        spider = 'spider="shop"'
        m = wait_for(port, lambda m: (
            m.get(f"scraper_pages_total{{{spider}}}", 0) >= 6
            and m.get(f"scraper_requests_queued{{{spider}}}", 0) >= 1
            and any(k.startswith("scraper_host_backoff_seconds") for k in m)),
            "six pages, the busy host backing off and its retry queued")
        assert m[f'scraper_responses_total{{{spider},status="200"}}'] == 5
        assert m[f'scraper_responses_total{{{spider},status="404"}}'] == 1
        assert m[f'scraper_errors_total{{kind="http-404",{spider}}}'] == 1
        assert m[f"scraper_items_total{{{spider}}}"] == 5
        assert m[f"scraper_retries_total{{{spider}}}"] == 1
        assert m[f"scraper_response_bytes_total{{{spider}}}"] > 0
        assert m[f'scraper_custom_total{{name="pages_parsed",{spider}}}'] == 5
        assert m[f"scraper_requests_in_flight{{{spider}}}"] == 1  # /slow, held by the test
        left = m[f'scraper_host_backoff_seconds{{host="{busy.url}",{spider}}}']
        assert 60 < left <= 120
        assert 0 < time.time() - m[f"scraper_crawl_start_time_seconds{{{spider}}}"] < 120
        release.set()
        wait_for(port, lambda m: m[f"scraper_pages_total{{{spider}}}"] == 7
                 and m[f"scraper_requests_in_flight{{{spider}}}"] == 0, "/slow recorded")
        p.send_signal(signal.SIGINT)  # the busy host's retry would wait two minutes
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        reader.join(10)
        p.stderr.close()
        busy.close()


class Shop(Spider):
    name = "shop"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield {"url": response.url}
        yield from response.follow_all(response.links())


def test_at_the_end_the_metrics_are_the_summary(shop, tmp_path):
    site, release = shop
    c = build_crawl(Shop, settings={"obey_robots": False, "workers": 4},
                    spider_args={"base_url": site.url}, outputs=[{"path": str(tmp_path / "o.jsonl")}])
    metrics = CrawlMetrics("shop", lambda: c.engine)
    port = metrics.serve("127.0.0.1", 0)
    try:
        before = scrape(port)  # no engine yet: zeros, not an error
        assert before['scraper_pages_total{spider="shop"}'] == 0
        done: list[Any] = []
        t = threading.Thread(target=lambda: done.append(c.run(on_progress=metrics.observe)))
        t.start()
        wait_for(port, lambda m: m['scraper_requests_in_flight{spider="shop"}'] == 1
                 and m['scraper_pages_total{spider="shop"}'] == 6, "only /slow left")
        release.set()
        t.join(30)
        summary = done[0].summary()
        m = scrape(port)
    finally:
        metrics.close()
    assert m['scraper_pages_total{spider="shop"}'] == summary["pages"] == 7
    assert m['scraper_items_total{spider="shop"}'] == summary["items"] == 6
    assert m['scraper_requests_total{spider="shop"}'] == summary["requests"]
    assert m['scraper_response_bytes_total{spider="shop"}'] == summary["bytes"]
    for kind, n in summary["errors"].items():
        assert m[f'scraper_errors_total{{kind="{kind}",spider="shop"}}'] == n
    for status, n in summary["statuses"].items():
        assert m[f'scraper_responses_total{{spider="shop",status="{status}"}}'] == n
    assert m['scraper_requests_in_flight{spider="shop"}'] == 0
    assert m['scraper_requests_queued{spider="shop"}'] == 0  # the final snapshot
    names = {k.split("{", 1)[0] for k in m}
    assert all(n.startswith("scraper_") for n in names)
    assert {"scraper_pages_total", "scraper_items_total", "scraper_errors_total",
            "scraper_responses_total", "scraper_response_bytes_total", "scraper_retries_total",
            "scraper_requests_in_flight", "scraper_requests_queued"} <= names


def test_the_grafana_dashboard_asks_only_for_metrics_that_exist():
    import json

    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    asked = set(re.findall(r"\b(scraper_[a-z_]+)\b", json.dumps(dashboard)))
    metrics = CrawlMetrics("shop", lambda: None)
    port = metrics.serve("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    finally:
        metrics.close()
    names = set(re.findall(r"^# TYPE (scraper_\w+) ", text, re.M))
    names.add("scraper_crawl_start_time_seconds")  # once the crawl's engine exists
    from scraper.schedules.metrics import __doc__ as scheduler_doc

    names |= set(re.findall(r"scraper_schedule_[a-z_]+", scheduler_doc or ""))
    assert asked - {"scraper_crawls"} <= names, asked - names
    assert {"scraper_pages_total", "scraper_host_backoff_seconds"} <= asked


def test_backing_off_shows_only_hosts_held_now_the_longest_first():
    now = 1000.0
    held = {f"http://h{i}": now + i for i in range(-5, 40)}
    shown = backing_off(held, now)
    assert len(shown) == HOSTS_SHOWN
    assert shown[0] == ("http://h39", 39.0) and all(left > 0 for _, left in shown)


def test_a_port_in_use_is_one_line_and_config_metrics_port_is_the_schedulers(shop, tmp_path):
    site, release = shop
    release.set()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        project = write_project(tmp_path, {"shop": SHOP},
                                f"obey_robots: false\nmetrics_port: {busy_port}\n")
        r = run_cli("run", "shop", "-a", f"base_url={site.url}", "-s", f"metrics_port={busy_port}",
                    "-O", "out.jsonl", cwd=project)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
        assert f"metrics_port {busy_port}: cannot listen on 127.0.0.1:{busy_port}" in r.stderr
        assert not (project / "out.jsonl").exists()  # nothing touched
        # config.yaml's metrics_port is the scheduler's: a crawl beside it does not take it
        r = run_cli("run", "shop", "-a", f"base_url={site.url}", cwd=project)
        assert r.returncode == 0, r.stderr
        assert "metrics on" not in r.stderr
