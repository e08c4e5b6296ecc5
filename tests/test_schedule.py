"""Scheduled crawls: schedule entries and their checks, fire times (cron computed from fixed
instants, never by waiting), and a real scheduler running real child processes against a
local site with short `every` intervals: history rows, overlap, misfire, run_timeout,
graceful and forced stops (through the CLI, with real signals), metrics over HTTP, and
the settings layer a schedule hands to its runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from scraper.exceptions import ConfigError, SpiderNotFound
from scraper.crawl.runner import check_crawl
from scraper.schedules.history import History
from scraper.schedules.entries import (ScheduleEntry, due, format_duration, load_schedules,
                              parse_duration, upcoming)
from scraper.schedules.supervisor import Scheduler

from .conftest import ROOT, Reply, page, run_cli, write_project

SPIDERS = {
    "shop": '''
from scraper import Request, Spider

class Shop(Spider):
    name = "shop"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield from response.follow_all(response.links(), callback=self.parse_item)

    def parse_item(self, response):
        yield {"url": response.url}
''',
    "slow": '''
from scraper import Request, Spider

class Slow(Spider):
    name = "slow"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/slow")

    def parse(self, response):
        yield {"url": response.url}
''',
    # ignores SIGTERM once crawling, so only SIGKILL ends it
    "stubborn": '''
import signal
from scraper import Request, Spider

class Stubborn(Spider):
    name = "stubborn"
    base_url = ""

    def opened(self):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def start_requests(self):
        yield Request(self.base_url + "/slow")

    def parse(self, response):
        yield {"url": response.url}
''',
    "other": '''
from scraper import Request, Spider

class Other(Spider):
    name = "other"
    base_url = ""
    custom_settings = {"max_pages": 5}

    def start_requests(self):
        for i in range(5):
            yield Request(f"{self.base_url}/o{i}")

    def parse(self, response):
        yield {"url": response.url}
''',
}


@pytest.fixture
def shop(site):
    site.route("/", page("/a", "/b", "/missing"))
    site.route("/a", page("/"))
    site.route("/b", page("/"))
    for i in range(5):
        site.route(f"/o{i}", page())
    return site


def _project(tmp_path: Path, site: Any, schedules: list[dict[str, Any]], **settings: Any) -> Path:
    for s in schedules:
        s.setdefault("args", {"base_url": site.url})
    config = {"obey_robots": False, "workers": 2, "retry": {"attempts": 1},
              "shutdown_timeout": 1, "schedule_dir": "sched", "schedules": schedules, **settings}
    return write_project(tmp_path, SPIDERS, yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    """Scheduled runs use the working directory, as from a shell; children find scraper."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return tmp_path


class Running:
    """A Scheduler running in a thread of the test (its runs are real child processes)."""

    def __init__(self, project: Path, **kw: Any) -> None:
        kw = {"tick": 0.05, "misfire_grace": 0.5, "kill_grace": 5.0, **kw}
        self.scheduler = Scheduler(load_schedules(project / "config.yaml", check_crawl), **kw)
        self.history_path = self.scheduler.dir / "history.sqlite"
        self.rc: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.rc = self.scheduler.run()
        except BaseException as e:  # surfaced by stop()/rows()
            self.error = e

    def rows(self) -> list[Any]:
        if self.error:
            raise self.error
        if not self.history_path.is_file():
            return []
        h = History(self.history_path, readonly=True)
        try:
            return list(reversed(h.runs()))  # oldest first
        finally:
            h.close()

    def wait(self, predicate: Any, timeout: float = 20.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows()
            if predicate(rows):
                return rows
            time.sleep(0.05)
        raise AssertionError(f"timed out; history: {[(r.id, r.schedule, r.status) for r in self.rows()]}")

    def stop(self, force: bool = False, timeout: float = 20.0) -> int | None:
        self.scheduler.stop(force=force)
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the scheduler did not stop"
        if self.error:
            raise self.error
        return self.rc


def _ended(rows: list[Any], status: str = "ok") -> list[Any]:
    return [r for r in rows if r.status == status]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


# -- durations, fire times, what falls due ----------------------------------------
@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("6h", 21600),
                                           ("1d", 86400), ("1h30m", 5400), ("1.5h", 5400),
                                           (45, 45), (0.5, 0.5), (" 2M ", 120)])
def test_durations(text, seconds):
    assert parse_duration(text, "every") == seconds


@pytest.mark.parametrize("bad", ["", "10", "10x", "s", "0s", "-5m", "1h junk", 0, -1, True, None,
                                 [1]])
def test_bad_durations_are_errors_naming_the_value(bad):
    with pytest.raises(ConfigError, match=r"every must be a duration .*got"):
        parse_duration(bad, "every")


def test_format_duration():
    assert [format_duration(s) for s in (90, 5400, 86400, 0.5, 3661)] == [
        "1m30s", "1h30m", "1d", "0.5s", "1h1m1s"]


def _utc(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def _fire_times(entry: ScheduleEntry, base: float, n: int) -> list[float]:
    out, t = [], base
    for _ in range(n):
        t = entry.next_after(t)
        out.append(t)
    return out


def test_cron_fire_times_from_a_fixed_instant():
    every_6h = ScheduleEntry(name="b", spider="b", cron="0 */6 * * *", timezone="UTC")
    assert _fire_times(every_6h, _utc(2024, 1, 1, 1, 0), 4) == [
        _utc(2024, 1, 1, 6), _utc(2024, 1, 1, 12), _utc(2024, 1, 1, 18), _utc(2024, 1, 2, 0)]
    # exactly on a fire time: the next one
    assert every_6h.next_after(_utc(2024, 1, 1, 6)) == _utc(2024, 1, 1, 12)
    # weekdays only, office hours, every 30 minutes: Friday evening → Monday morning
    office = ScheduleEntry(name="o", spider="o", cron="*/30 9-17 * * mon-fri", timezone="UTC")
    assert _fire_times(office, _utc(2024, 1, 5, 17, 10), 3) == [  # 2024-01-05 is a Friday
        _utc(2024, 1, 5, 17, 30), _utc(2024, 1, 8, 9, 0), _utc(2024, 1, 8, 9, 30)]
    monthly = ScheduleEntry(name="m", spider="m", cron="@monthly", timezone="UTC")
    assert _fire_times(monthly, _utc(2024, 1, 15), 2) == [_utc(2024, 2, 1), _utc(2024, 3, 1)]


def test_cron_times_are_wall_clock_times_of_the_zone_and_fire_once_across_dst():
    paris = ZoneInfo("Europe/Paris")
    nightly = ScheduleEntry(name="n", spider="n", cron="30 2 * * *", timezone="Europe/Paris")

    def local(t: float) -> str:
        return datetime.fromtimestamp(t, paris).strftime("%m-%d %H:%M %z")

    # spring forward (2024-03-31 02:00 → 03:00): 02:30 does not exist; runs at 03:30, once
    base = datetime(2024, 3, 30, 3, 0, tzinfo=paris).timestamp()
    assert [local(t) for t in _fire_times(nightly, base, 3)] == [
        "03-31 03:30 +0200", "04-01 02:30 +0200", "04-02 02:30 +0200"]
    # fall back (2024-10-27 03:00 → 02:00): 02:30 happens twice; one run, not two
    base = datetime(2024, 10, 26, 3, 0, tzinfo=paris).timestamp()
    assert [local(t) for t in _fire_times(nightly, base, 3)] == [
        "10-27 02:30 +0200", "10-28 02:30 +0100", "10-29 02:30 +0100"]
    # the same expression in UTC: base is 01:00 UTC, so 02:30 UTC that same day
    utc = ScheduleEntry(name="u", spider="u", cron="30 2 * * *", timezone="UTC")
    assert utc.next_after(base) == _utc(2024, 10, 26, 2, 30)


def test_every_counts_from_the_last_fire_time():
    e = ScheduleEntry(name="e", spider="e", every=600)
    assert due(e, None, 1000.0, 60) is not None and due(e, None, 1000.0, 60).trigger == "first"
    assert due(e, 1000.0, 1599.0, 60) is None
    on_time = due(e, 1000.0, 1600.2, 60)
    assert (on_time.fire_time, on_time.trigger, on_time.missed) == (1600.0, "schedule", 0)
    assert [t for t, _ in upcoming(e, 1600.0, 1700.0, 3)] == [2200.0, 2800.0, 3400.0]


def test_misfire_run_once_or_skip():
    run_once = ScheduleEntry(name="r", spider="r", every=600)
    skip = ScheduleEntry(name="s", spider="s", every=600, misfire="skip")
    # down from 1000 to 3000: fire times 1600, 2200, 2800 passed; the last by 200 s > grace
    d = due(run_once, 1000.0, 3000.0, 60)
    assert (d.fire_time, d.trigger, d.missed, d.last) == (2800.0, "misfire", 2, 2800.0)
    d = due(skip, 1000.0, 3000.0, 60)
    assert (d.fire_time, d.trigger, d.missed, d.last) == (None, "misfire", 3, 2800.0)
    # noticed within the grace: on time (earlier ones missed, never run twice)
    d = due(skip, 1000.0, 2830.0, 60)
    assert (d.fire_time, d.trigger, d.missed) == (2800.0, "schedule", 2)
    # the grace is at most half the interval
    short = ScheduleEntry(name="t", spider="t", every=10, misfire="skip")
    assert due(short, 0.0, 16.0, 60).fire_time is None
    assert due(short, 0.0, 14.0, 60).fire_time == 10.0
    # cron: down over two fire times
    cron = ScheduleEntry(name="c", spider="c", cron="0 * * * *", timezone="UTC")
    d = due(cron, _utc(2024, 1, 1, 0, 0), _utc(2024, 1, 1, 2, 20), 60)
    assert (d.fire_time, d.trigger, d.missed) == (_utc(2024, 1, 1, 2), "misfire", 1)
    # a cron schedule seen for the first time starts counting: nothing runs
    d = due(cron, None, _utc(2024, 1, 1, 2, 20), 60)
    assert d.fire_time is None and d.last == _utc(2024, 1, 1, 2, 20)


# -- checks up front ------------------------------------------------------------
def _check(tmp_path: Path, entry: dict[str, Any], **settings: Any) -> None:
    config = {"schedules": [entry], **settings}
    write_project(tmp_path, SPIDERS, yaml.safe_dump(config))
    load_schedules(tmp_path / "config.yaml", check_crawl)


@pytest.mark.parametrize("entry, message", [
    ({"spider": "shop", "evry": "1h"}, r"schedules\[0\]: unknown key 'evry' \(did you mean 'every'\?\)"),
    ({"spider": "shop", "every": "1h", "overlaps": "queue"}, r"did you mean 'overlap'"),
    ({"every": "1h"}, r"`spider` .* is required"),
    ({"spider": "shop"}, r"exactly one of cron .* or every"),
    ({"spider": "shop", "cron": "0 * * * *", "every": "1h"}, r"exactly one of cron"),
    ({"spider": "shop", "cron": "61 * * * *"}, r"\(shop\): cron '61 \* \* \* \*' is not a valid"),
    ({"spider": "shop", "cron": "0 0 31 2 *"}, r"not a valid cron expression"),
    ({"spider": "shop", "cron": "* * * *"}, r"cron must be five fields"),
    ({"spider": "shop", "cron": "0 * * * * 0"}, r"cron must be five fields"),
    ({"spider": "shop", "every": "10x"}, r"\(shop\): every must be a duration"),
    ({"spider": "shop", "every": "1h", "overlap": "wait"}, r"overlap must be one of skip, queue"),
    ({"spider": "shop", "every": "1h", "misfire": "run"}, r"misfire must be one of run-once, skip"),
    ({"spider": "shop", "every": "1h", "run_timeout": "soon"}, r"run_timeout must be a duration"),
    ({"spider": "shop", "every": "1h", "timezone": "UTC"}, r"timezone applies to cron"),
    ({"spider": "shop", "cron": "0 * * * *", "timezone": "Mars/Base"}, r"IANA time zone"),
    ({"spider": "shop", "every": "1h", "seen_ttl": "1d"}, r"seen_ttl needs a job_dir"),
    ({"spider": "shop", "every": "1h", "settings": {"workers": 0}},
     r"schedules\[0\] \(shop\) settings: workers must be an integer >= 1, got 0"),
    ({"spider": "shop", "every": "1h", "settings": {"wrokers": 4}},
     r"unknown setting 'wrokers' \(did you mean 'workers'\?\)"),
    ({"spider": "shop", "every": "1h", "settings": {"metrics_port": 9100}},
     r"metrics_port is a setting of the scheduler"),
    ({"spider": "shop", "every": "1h", "settings": {"outputs": ["out/items.xml"]}},
     r"output out/items.xml: unknown type"),
    ({"spider": "shop", "every": "1h", "settings": {"pipelines": ["nowhere.Pipe"]}},
     r"pipeline 'nowhere.Pipe'"),
    ({"spider": "shop", "every": "1h", "args": {"base-url": "x"}}, r"args must be a mapping"),
    ({"spider": "shop", "every": "1h", "name": "a b"}, r"name .* must be letters"),
])
def test_bad_schedule_entries_are_config_errors(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message):
        _check(tmp_path, entry)


def test_unknown_spider_names_the_known_ones(tmp_path):
    with pytest.raises(SpiderNotFound, match=r"schedules\[0\]: no spider named 'shp' \(known: "
                                             r"other, shop, slow, stubborn\)"):
        _check(tmp_path, {"spider": "shp", "every": "1h"})


def test_two_schedules_of_a_spider_need_names_and_distinct_job_dirs(tmp_path):
    write_project(tmp_path, SPIDERS, yaml.safe_dump({"schedules": [
        {"spider": "shop", "every": "1h"}, {"spider": "shop", "cron": "0 3 * * *"}]}))
    with pytest.raises(ConfigError, match=r"schedules\[1\]: the name 'shop' is taken by "
                                          r"schedules\[0\]"):
        load_schedules(tmp_path / "config.yaml", check_crawl)
    write_project(tmp_path, SPIDERS, yaml.safe_dump({"schedules": [
        {"spider": "shop", "every": "1h", "job_dir": "jobs/shop"},
        {"spider": "shop", "name": "nightly", "cron": "0 3 * * *", "job_dir": "jobs/shop/"}]}))
    with pytest.raises(ConfigError, match=r"\(nightly\): job_dir jobs/shop/ is also the job dir "
                                          r"of 'shop'"):
        load_schedules(tmp_path / "config.yaml", check_crawl)
    write_project(tmp_path, SPIDERS, yaml.safe_dump({"schedules": []}))
    with pytest.raises(ConfigError, match=r"no schedules to run"):
        load_schedules(tmp_path / "config.yaml", check_crawl)


def test_a_valid_plan(tmp_path):
    write_project(tmp_path, SPIDERS, yaml.safe_dump({"schedules": [
        {"spider": "shop", "every": "90s", "settings": {"max_pages": 50}, "run_timeout": "10m",
         "overlap": "queue", "args": {"base_url": "http://127.0.0.1:1", "n": 3}},
        {"spider": "shop", "name": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Paris",
         "misfire": "skip"}], "metrics_port": 0}))
    plan = load_schedules(tmp_path / "config.yaml", check_crawl)
    a, b = plan.entries
    assert (a.name, a.every, a.overlap, a.misfire, a.run_timeout) == ("shop", 90, "queue",
                                                                      "run-once", 600)
    assert a.args == {"base_url": "http://127.0.0.1:1", "n": "3"}
    assert (b.name, b.cron, b.timezone, b.misfire, b.spec) == (
        "nightly", "0 3 * * *", "Europe/Paris", "skip", "cron '0 3 * * *' (Europe/Paris)")
    assert plan.settings["metrics_port"] == 0


def test_cli_errors_are_one_line_exit_2(tmp_path):
    write_project(tmp_path, SPIDERS, yaml.safe_dump({"schedules": [
        {"spider": "shop", "every": "1h"}, {"spider": "slow", "cron": "0 25 * * *"}]}))
    for args in (("schedule",), ("schedule", "--dry-run")):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.count("\n") == 1, r.stderr
        assert re.match(r"scraper: error: .*config.yaml: schedules\[1\] \(slow\): cron "
                        r"'0 25 \* \* \*' is not a valid cron expression", r.stderr)
    assert not (tmp_path / ".scraper").exists()  # nothing started, nothing created


def test_dry_run_prints_next_fire_times(tmp_path):
    write_project(tmp_path, SPIDERS, yaml.safe_dump({"schedules": [
        {"spider": "shop", "cron": "0 0 1 1 *", "timezone": "UTC", "run_timeout": "2h"},
        {"spider": "slow", "every": "90s"}]}))
    before = time.time()
    r = run_cli("schedule", "--dry-run", "--count", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("shop: spider shop, cron '0 0 1 1 *' (UTC) (overlap skip, misfire "
                        "run-once, run_timeout 2h)")
    year = datetime.fromtimestamp(before, timezone.utc).year
    times = [datetime.strptime(line.strip(), "%Y-%m-%d %H:%M:%S %z").timestamp()
             for line in lines[1:4]]
    assert times == [_utc(year + k, 1, 1) for k in (1, 2, 3)]
    assert lines[4] == "slow: spider slow, every 1m30s (overlap skip, misfire run-once)"
    assert lines[5] == "  now  (first run of this schedule)"
    second = datetime.strptime(lines[6].strip(), "%Y-%m-%d %H:%M:%S %z").timestamp()
    assert before + 89 <= second <= time.time() + 91
    assert len(lines) == 8
    assert not (tmp_path / ".scraper").exists()


# -- the scheduler running real runs ---------------------------------------------
def test_runs_are_child_processes_recorded_in_the_history(shop, tmp_path, project_dir):
    project = _project(tmp_path, shop, [{"spider": "shop", "every": "1s"}],
                       schedule_keep_runs=2)
    s = Running(project)
    s.wait(lambda rows: shop.count("/") >= 3 and all(r.status == "ok" for r in rows))
    assert s.stop() == 0
    rows = s.rows()
    ok = _ended(rows)
    # three runs or more ran; only the newest two are kept, with their run dirs
    assert len(ok) == 2 and ok[0].id >= 2
    run_dirs = sorted((project / "sched" / "runs" / "shop").iterdir())
    assert [Path(r.log_path).parent for r in ok] == run_dirs
    for r in ok:
        assert (r.schedule, r.spider, r.exit_status, r.reason) == ("shop", "shop", 0, "finished")
        summary = json.loads(Path(r.summary_path).read_text())
        assert summary["spider"] == "shop" and summary["reason"] == "finished"
        # /, /a, /b and /missing (a 404): 4 responses, 2 items, 1 error
        assert (r.pages, r.items, r.errors) == (summary["pages"], summary["items"], 1) == (4, 2, 1)
        assert r.started < r.finished and r.pid and not _alive(r.pid)
        log_text = Path(r.log_path).read_text()
        assert f"# run {r.id} of schedule shop" in log_text and "--- shop: finished ---" in log_text
    # every run starts with a fresh seen-set: each one fetched every page again
    assert shop.count("/") == shop.count("/a") == shop.count("/missing") >= 3

    table = run_cli("runs", cwd=project)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "SCHEDULE", "SPIDER", "STARTED", "DURATION", "STATUS",
                                "EXIT", "REASON", "PAGES", "ITEMS", "ERRORS", "LOG"]
    newest = lines[1].split()
    assert newest[0] == str(ok[-1].id) and newest[1:3] == ["shop", "shop"]
    assert newest[6:12] == ["ok", "0", "finished", "4", "2", "1"]
    assert newest[12] == str(Path(ok[-1].log_path).relative_to(project))
    assert len(lines) == 1 + len(rows)
    limited = run_cli("runs", "shop", "--limit", "1", cwd=project)
    assert limited.stdout.splitlines()[1:] == lines[1:2]
    unknown = run_cli("runs", "nope", cwd=project)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "runs nope: no schedule or spider of that name" in unknown.stderr


def test_overlap_skip(site, tmp_path, project_dir):
    site.route("/slow", Reply(page(), delay=2.0))
    project = _project(tmp_path, site, [{"spider": "slow", "every": "1s"}])
    s = Running(project)
    s.wait(lambda rows: len(_ended(rows)) >= 1 and len(_ended(rows, "skipped")) >= 2)
    s.stop()
    rows = s.rows()
    runs = [r for r in rows if r.status != "skipped"]
    skipped = _ended(rows, "skipped")
    assert site.max_in_flight == 1  # never two runs of the spider at once
    for a, b in zip(runs, runs[1:]):
        assert b.started >= a.finished
    for sk in skipped:
        assert sk.reason == "overlap" and sk.log_path is None
        owner = next(r for r in runs if r.started <= sk.started <= (r.finished or time.time()))
        assert sk.note == f"run {owner.id} of spider slow still running"


def test_overlap_queue_runs_right_after(site, tmp_path, project_dir):
    site.route("/slow", Reply(page(), delay=1.2))
    project = _project(tmp_path, site, [{"spider": "slow", "every": "1s", "overlap": "queue"}])
    s = Running(project)
    rows = s.wait(lambda rows: len(_ended(rows)) >= 2)
    s.stop()
    first, second = _ended(rows)[:2]
    assert (first.trigger, second.trigger) == ("first", "queued")
    assert 0 <= second.started - first.finished < 0.5  # started as soon as the spider was free
    assert site.max_in_flight == 1
    # fire times that came while one run was queued already were skipped, not stacked
    assert all(r.note == "a run is already queued" for r in _ended(rows, "skipped"))


def test_misfire_run_once_and_skip_after_downtime(shop, tmp_path, project_dir):
    project = _project(tmp_path, shop, [
        {"spider": "shop", "every": "4s"},
        {"spider": "other", "every": "4s", "misfire": "skip"}])
    s = Running(project)
    rows = s.wait(lambda rows: len(_ended(rows)) == 2)
    s.stop()
    h = History(project / "sched" / "history.sqlite", readonly=True)
    last = {e: h.last_fire(e, "every 4s") for e in ("shop", "other")}
    h.close()
    assert all(r.trigger == "first" for r in rows)
    # down while the next fire time (last + 4 s) passes, and longer than the grace after it
    time.sleep(max(0.0, max(last.values()) + 4 + 1.0 - time.time()))
    s = Running(project)
    rows = s.wait(lambda rows: len(_ended(rows)) == 3)
    time.sleep(0.3)
    s.stop()
    assert min(last.values()) + 8 > time.time(), "too slow: the next fire time came"
    rows = s.rows()
    assert [(r.schedule, r.trigger, r.status) for r in rows[2:]] == [("shop", "misfire", "ok")]
    h = History(project / "sched" / "history.sqlite", readonly=True)
    # the skipped schedule counts on from the fire time it skipped
    assert h.last_fire("other", "every 4s") == last["other"] + 4
    h.close()


def test_run_timeout_stops_gracefully(site, tmp_path, project_dir):
    site.route("/slow", Reply(page(), delay=30))
    project = _project(tmp_path, site, [{"spider": "slow", "every": "1h", "run_timeout": "3s",
                                         "settings": {"shutdown_timeout": 0.3}}])
    s = Running(project)
    rows = s.wait(lambda rows: len(_ended(rows, "timeout")) == 1)
    s.stop()
    r = rows[0]
    assert (r.status, r.exit_status, r.reason) == ("timeout", 0, "interrupted")
    assert 3.0 <= r.finished - r.started < 8
    assert json.loads(Path(r.summary_path).read_text())["reason"] == "interrupted"


def test_run_timeout_kills_a_run_that_ignores_sigterm(site, tmp_path, project_dir):
    site.route("/slow", Reply(page(), delay=30))
    # run_timeout leaves the run time to reach opened() (where it starts ignoring SIGTERM)
    # even on a loaded machine, where a child's start-up alone can take a few seconds
    project = _project(tmp_path, site, [{"spider": "stubborn", "every": "1h",
                                         "run_timeout": "4s"}])
    s = Running(project, kill_grace=1.0)
    rows = s.wait(lambda rows: len(_ended(rows, "timeout")) == 1)
    s.stop()
    r = rows[0]
    assert (r.status, r.exit_status, r.reason, r.pages) == ("timeout", -9, None, None)
    assert "killed by SIGKILL" in r.note and "no summary" in r.note
    assert 5.0 <= r.finished - r.started < 15  # run_timeout, then kill_grace, then SIGKILL
    assert not _alive(r.pid)


def _start_cli_scheduler(project: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "scraper", "schedule"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_rows(project: Path, predicate: Any, proc: subprocess.Popen[str],
               timeout: float = 20) -> list[Any]:
    path = project / "sched" / "history.sqlite"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if path.is_file():
            h = History(path, readonly=True)
            rows = list(reversed(h.runs()))
            h.close()
            if predicate(rows):
                return rows
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(proc.communicate())


def test_sigterm_stops_the_scheduler_and_its_runs_gracefully(site, tmp_path):
    site.route("/slow", Reply(page(), delay=30))
    project = _project(tmp_path, site, [{"spider": "slow", "every": "1s",
                                         "settings": {"shutdown_timeout": 0.3}}],
                       schedule_kill_grace=20)
    p = _start_cli_scheduler(project)
    rows = _wait_rows(project, lambda rows: rows and site.count("/slow") == 1, p)
    child = rows[0].pid
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert time.monotonic() - t0 < 8
    assert "SIGTERM: starting no more runs" in err and "scheduler stopped" in err
    h = History(project / "sched" / "history.sqlite", readonly=True)
    rows = h.runs()
    h.close()
    # skipped fire times while it ran, but one run only, stopped gracefully by the scheduler
    runs = [r for r in rows if r.status != "skipped"]
    assert len(runs) == 1
    assert (runs[0].status, runs[0].exit_status, runs[0].reason) == ("stopped", 0, "interrupted")
    assert not _alive(child)
    assert out == ""


def test_second_signal_kills_the_runs_at_once(site, tmp_path):
    site.route("/slow", Reply(page(), delay=30))
    project = _project(tmp_path, site, [{"spider": "stubborn", "every": "1h"}],
                       schedule_kill_grace=60)
    p = _start_cli_scheduler(project)
    rows = _wait_rows(project, lambda rows: rows and site.count("/slow") == 1, p)
    p.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert p.poll() is None  # the run ignores SIGTERM: the scheduler waits for it
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 130, err
    assert time.monotonic() - t0 < 3
    h = History(project / "sched" / "history.sqlite", readonly=True)
    (run,) = h.runs()
    h.close()
    assert (run.status, run.exit_status) == ("stopped", -9)
    assert not _alive(rows[0].pid)


def test_metrics_endpoint(shop, tmp_path, project_dir):
    site = shop
    site.route("/slow", Reply(page(), delay=30))
    project = _project(tmp_path, site, [
        {"spider": "shop", "every": "1h"},
        {"spider": "slow", "every": "1h", "run_timeout": "0.5s",
         "settings": {"shutdown_timeout": 0.1}}], metrics_port=0)
    before = time.time()
    s = Running(project)
    s.wait(lambda rows: len(_ended(rows)) == 1 and len(_ended(rows, "timeout")) == 1)
    port = s.scheduler.metrics_port
    assert port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    s.stop()
    metrics = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            metrics[key] = float(value)
    assert metrics['scraper_schedule_runs_total{outcome="ok",schedule="shop",spider="shop"}'] == 1
    assert metrics['scraper_schedule_runs_total{outcome="timeout",schedule="slow",spider="slow"}'] == 1
    assert metrics['scraper_schedule_runs_total{outcome="failed",schedule="shop",spider="shop"}'] == 0
    assert metrics['scraper_schedule_pages_total{spider="shop"}'] == 4
    assert metrics['scraper_schedule_items_total{spider="shop"}'] == 2
    assert metrics['scraper_schedule_errors_total{spider="shop"}'] == 1
    assert metrics['scraper_schedule_running{spider="shop"}'] == 0
    assert before < metrics['scraper_schedule_last_success_timestamp_seconds{spider="shop"}'] < time.time()
    assert 'scraper_schedule_last_success_timestamp_seconds{spider="slow"}' not in metrics
    assert metrics['scraper_schedule_next_fire_timestamp_seconds{schedule="shop"}'] > before + 3500


def test_metrics_port_in_use_is_a_config_error(shop, tmp_path, project_dir):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        project = _project(tmp_path, shop, [{"spider": "shop", "every": "1h"}], metrics_port=port)
        with pytest.raises(ConfigError, match=rf"metrics_port {port}: cannot listen on "
                                              rf"127.0.0.1:{port}"):
            Scheduler(load_schedules(project / "config.yaml", check_crawl)).run()
    assert shop.count("/") == 0  # nothing ran


def test_one_scheduler_per_schedule_dir(shop, tmp_path, project_dir):
    project = _project(tmp_path, shop, [{"spider": "shop", "every": "1h"}])
    s = Running(project)
    s.wait(lambda rows: len(rows) == 1)
    other = Scheduler(load_schedules(project / "config.yaml", check_crawl))
    with pytest.raises(ConfigError, match=r"schedule_dir .*sched: another scheduler \(pid "
                                          rf"{os.getpid()}\) is running there"):
        other.run()
    s.stop()


def test_a_run_left_by_a_dead_scheduler_is_recorded_as_lost(site, tmp_path):
    site.route("/slow", Reply(page(), delay=30))
    project = _project(tmp_path, site, [{"spider": "slow", "every": "1h"}])
    p = _start_cli_scheduler(project)
    rows = _wait_rows(project, lambda rows: rows and site.count("/slow") == 1, p)
    p.kill()
    p.communicate()
    orphan = rows[0].pid
    try:
        r = _start_cli_scheduler(project)
        time.sleep(1.5)
        r.send_signal(signal.SIGTERM)
        r.communicate(timeout=20)
        h = History(project / "sched" / "history.sqlite", readonly=True)
        lost = h.get(rows[0].id)
        h.close()
        assert lost.status == "lost" and f"pid {orphan}" in lost.note
    finally:
        if _alive(orphan):
            os.killpg(orphan, signal.SIGKILL)


# -- what a run gets from its schedule ----------------------------------------------
def test_schedule_settings_sit_between_custom_settings_and_dash_s(shop, tmp_path):
    write_project(tmp_path, SPIDERS, "obey_robots: false\n")
    base = ("run", "other", "-a", f"base_url={shop.url}", "--summary", "s.json")
    for extra, pages in (((), 5),  # custom_settings: max_pages 5
                         (("--schedule-settings", '{"max_pages": 2}'), 2),
                         (("--schedule-settings", '{"max_pages": 2}', "-s", "max_pages=3"), 3)):
        r = run_cli(*base, *extra, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert json.loads((tmp_path / "s.json").read_text())["pages"] == pages
    r = run_cli(*base, "--schedule-settings", '{"max_pages": 0}', cwd=tmp_path)
    assert r.returncode == 2 and "schedule settings: max_pages must be" in r.stderr
    r = run_cli(*base, "--schedule-settings", "[1]", cwd=tmp_path)
    assert r.returncode == 2 and "--schedule-settings [1]: expected a JSON object" in r.stderr


def test_the_command_of_a_run(shop, tmp_path, project_dir):
    project = _project(tmp_path, shop, [{"spider": "shop", "every": "1h", "job_dir": "jobs/shop",
                                         "seen_ttl": "2h", "settings": {"max_pages": 9}}])
    s = Scheduler(load_schedules(project / "config.yaml", check_crawl), python="py")
    cmd = s.command(s.entries[0], Path("run/S.json"))
    # the settings ({"max_pages": 9, "seen_ttl": 7200.0}) go through a private file, not argv
    assert cmd == ["py", "-m", "scraper", "run", "shop", "--summary", "run/S.json",
                   "--config", str(project / "config.yaml"),
                   "--schedule-settings", "@run/settings.json",
                   "-a", f"base_url={shop.url}", "--job-dir", "jobs/shop"]
    assert s.entries[0].run_settings() == {"max_pages": 9, "seen_ttl": 7200.0}
    s.close()


def test_job_dir_runs_resume_and_count_their_own_pages(shop, tmp_path, project_dir):
    project = _project(tmp_path, shop, [{"spider": "shop", "every": "1s", "job_dir": "jobs/shop"}])
    s = Running(project)
    rows = s.wait(lambda rows: len(_ended(rows)) >= 2)
    s.stop()
    first, second = _ended(rows)[:2]
    assert (project / "jobs" / "shop" / "job.sqlite").is_file()
    assert (first.pages, first.crawl_pages) == (4, 4)
    # the job had finished: the next run resumes it and finds nothing new to fetch
    assert second.pages == 0 and second.crawl_pages == 4
    assert shop.count("/") == 1



def test_incremental_crawl_revisits_pages_after_seen_ttl(shop, tmp_path, project_dir):
    # seen_ttl leaves room for a slow machine: the second run must start within it
    project = _project(tmp_path, shop, [{"spider": "shop", "every": "1s", "job_dir": "jobs/shop",
                                         "seen_ttl": "6s"}])
    listing = [page("/a", "/b", "/missing"), page("/a", "/b", "/missing", "/c")]
    shop.route("/", lambda hit: Reply(listing[min(shop.count("/"), 2) - 1]))  # /c appears
    shop.route("/c", page())
    s = Running(project)
    rows = s.wait(lambda rows: shop.count("/a") >= 2, timeout=25)
    s.stop()
    ok = _ended(rows)
    # each run starts again from the start page, so a new page is found by the next run...
    assert (ok[0].pages, ok[0].items) == (4, 2)
    assert (ok[1].pages, ok[1].items) == (2, 1)  # the start page and the new /c only
    # ...while a page already fetched is fetched again only once seen_ttl has passed
    hits = {path: [h.at for h in shop.hits if h.path == path] for path in ("/", "/a", "/c")}
    assert hits["/a"][1] - hits["/a"][0] >= 6.0
    runs_between = [t for t in hits["/"] if hits["/a"][0] < t < hits["/a"][1] - 0.1]
    assert len(runs_between) >= 1  # runs within seen_ttl did not fetch /a
    assert len(hits["/c"]) == 1 or hits["/c"][1] - hits["/c"][0] >= 6.0


# -- a schedule's secrets, and runs stopped as they start (issue 13) ---------------------
def test_a_schedules_secrets_stay_off_the_command_line_and_out_of_the_log(site, tmp_path,
                                                                         project_dir):
    import base64
    import stat

    site.route("/slow", Reply(page(), delay=30))
    project = _project(tmp_path, site, [{"spider": "slow", "every": "1h", "settings": {
        "http_auth": {"username": "bot", "password": "s3cret-pw", "domains": ["127.0.0.1"]},
        "headers": {"X-Api-Key": "k3y-123"}, "shutdown_timeout": 0.3}}])
    s = Running(project)
    rows = s.wait(lambda rows: rows and site.count("/slow") == 1)
    try:
        # what `ps` shows of the run: not the password, not the header
        cmdline = Path(f"/proc/{rows[0].pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "--schedule-settings @" in cmdline
        assert "s3cret-pw" not in cmdline and "k3y-123" not in cmdline
        # the run got them (through a file it deleted once read)
        hit = next(h for h in site.hits if h.path == "/slow")
        assert hit.headers["authorization"] == "Basic " + base64.b64encode(b"bot:s3cret-pw").decode()
        assert hit.headers["x-api-key"] == "k3y-123"
        assert not (Path(rows[0].log_path).parent / "settings.json").exists()
    finally:
        s.stop()
    log = Path(rows[0].log_path)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert "s3cret-pw" not in text and "k3y-123" not in text
    assert '"password": "***"' in text and '"X-Api-Key": "***"' in text  # masked, yet shown
    assert "Traceback" not in text


def test_a_run_stopped_as_it_starts_stops_gracefully(site, tmp_path, project_dir):
    site.route("/slow", Reply(page(), delay=30))
    project = _project(tmp_path, site, [{"spider": "slow", "every": "1h",
                                         "settings": {"shutdown_timeout": 0.3}}])
    s = Running(project)
    s.wait(lambda rows: rows and rows[0].pid)  # its process just started: stop it now
    s.stop()
    (run,) = s.rows()
    # its SIGTERM came while its interpreter was starting: held, then a graceful stop
    assert (run.status, run.exit_status, run.reason) == ("stopped", 0, "interrupted"), run.note
    assert "Traceback" not in Path(run.log_path).read_text()
