"""The command line, run as ``python -m scraper`` in a subprocess, in a user project made
in tmp_path whose spiders crawl the ``site`` fixture (its URL passed with ``-a base_url=``)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Reply, Site, page, run_cli, write_project

SHOP = '''
from scraper import Request, Spider


class ShopSpider(Spider):
    name = "shop"
    base_url = "http://127.0.0.1:9/"
    tag = "none"

    def start_requests(self):
        yield Request(self.base_url)

    def parse(self, response):
        yield {"url": response.url, "tag": self.tag}
        yield from response.follow_all(response.links())
'''

LIMITED = '''
from spiders.shop import ShopSpider


class LimitedSpider(ShopSpider):
    name = "limited"
    custom_settings = {"max_pages": 3}
'''

CONFIG = """\
obey_robots: false
workers: 2
retry:
  backoff: 0.01
"""

SUMMARY_KEYS = {"spider", "reason", "pages", "items", "errors", "statuses", "started", "finished",
                "duration_s"}


# -- helpers -------------------------------------------------------------------
@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the spiders ``shop`` and ``limited`` (max_pages 3) and CONFIG."""
    return write_project(tmp_path, {"shop": SHOP, "limited": LIMITED}, CONFIG)


@pytest.fixture
def shop_site(site: Site) -> Site:
    """/ links to /p0../p9 and to a missing page: 11 pages of 200, one 404."""
    site.route("/", page(*[f"/p{i}" for i in range(10)], "/missing"))
    for i in range(10):
        site.route(f"/p{i}", page())
    return site


def endless_site(site: Site, delay: float) -> Site:
    """/n?k=K links to /n?k=2K and /n?k=2K+1, each page answered after ``delay`` seconds."""
    def route(hit: Any) -> Reply:
        k = int(hit.path.split("=", 1)[1])
        return Reply(page(f"/n?k={2 * k}", f"/n?k={2 * k + 1}"), delay=delay)
    site.route("/n", route)
    return site


def summary_line(stderr: str, key: str) -> str:
    m = re.search(rf"^{key}\s+(\S+)", stderr, re.M)
    assert m, f"no {key!r} line in the summary:\n{stderr}"
    return m.group(1)


def assert_usage_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr naming every word."""
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def start_cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "scraper", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.05)


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- list ----------------------------------------------------------------------
def test_list_prints_spider_names_only(project):
    result = run_cli("list", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "limited\nshop\n"


def test_list_with_config_reads_spiders_path_relative_to_that_file(tmp_path):
    write_project(tmp_path / "proj", {"shop": SHOP}, "spiders_path: spiders\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_cli("list", "--config", str(tmp_path / "proj" / "config.yaml"), cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "shop\n"


def test_project_spiders_are_not_shadowed_by_another_spiders_package(tmp_path):
    # run_cli puts the framework's repository, which has its own `spiders` package, on
    # PYTHONPATH; the project's spiders/ directory has no __init__.py
    project = write_project(tmp_path, {"mine": SHOP.replace('"shop"', '"mine"')}, CONFIG)
    assert not (project / "spiders" / "__init__.py").exists()
    result = run_cli("list", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "mine\n"


# -- run -----------------------------------------------------------------------
def test_run_exits_0_with_the_summary_on_stderr(project, shop_site):
    result = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert summary_line(result.stderr, "pages") == "12"
    assert summary_line(result.stderr, "items") == "11"
    assert "--- shop: finished ---" in result.stderr


def test_summary_json_has_the_promised_keys_and_counts(project, shop_site):
    result = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", "--summary", "summary.json",
                     cwd=project)
    assert result.returncode == 0, result.stderr
    summary = json.loads((project / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["spider"] == "shop"
    assert summary["reason"] == "finished"
    assert summary["pages"] == 12 and summary["items"] == 11
    assert summary["errors"] == {"http-404": 1}
    assert summary["statuses"] == {"200": 11, "404": 1}
    assert summary["started"] <= summary["finished"]
    assert isinstance(summary["duration_s"], int | float) and summary["duration_s"] >= 0


def test_summary_path_directories_are_created_like_output_directories(project, shop_site):
    result = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", "-o", "out/items.jsonl",
                     "--summary", "reports/summary.json", cwd=project)
    assert result.returncode == 0, result.stderr
    assert json.loads((project / "reports" / "summary.json").read_text())["items"] == 11


def test_dash_a_sets_a_spider_attribute(project, shop_site):
    result = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", "-a", "tag=blue",
                     "-o", "out.jsonl", cwd=project)
    assert result.returncode == 0, result.stderr
    items = jsonl(project / "out.jsonl")
    assert len(items) == 11
    assert {i["tag"] for i in items} == {"blue"}


def test_dash_o_dash_writes_json_lines_to_stdout_and_nothing_else(project, shop_site):
    result = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", "-o", "-", cwd=project)
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(i["url"] for i in items) == sorted(
        [shop_site.url + "/"] + [f"{shop_site.url}/p{i}" for i in range(10)])


def test_dash_o_appends_and_dash_capital_o_overwrites(project, shop_site):
    args = ["run", "shop", "-a", f"base_url={shop_site.url}/"]
    for flag, expected in (("-o", 11), ("-o", 22), ("-O", 11)):
        result = run_cli(*args, flag, "out.jsonl", cwd=project)
        assert result.returncode == 0, result.stderr
        assert len(jsonl(project / "out.jsonl")) == expected, flag


@pytest.mark.parametrize("spider,extra,pages", [
    ("shop", [], 5),                          # config.yaml
    ("limited", [], 3),                       # custom_settings beats config.yaml
    ("limited", ["-s", "max_pages=2"], 2),    # -s beats custom_settings
], ids=["config", "custom_settings", "dash-s"])
def test_settings_precedence(project, shop_site, spider, extra, pages):
    (project / "config.yaml").write_text(CONFIG + "max_pages: 5\n")
    result = run_cli("run", spider, "-a", f"base_url={shop_site.url}/", *extra,
                     "--summary", "s.json", cwd=project)
    assert result.returncode == 0, result.stderr
    summary = json.loads((project / "s.json").read_text())
    assert (summary["reason"], summary["pages"]) == ("max_pages", pages)


def test_failed_pages_are_counted_not_fatal(project):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    result = run_cli("run", "shop", "-a", f"base_url=http://127.0.0.1:{port}/", "--summary", "s.json",
                     cwd=project)
    assert result.returncode == 0, result.stderr
    summary = json.loads((project / "s.json").read_text())
    assert (summary["reason"], summary["pages"], summary["errors"]) == ("finished", 0, {"connection": 1})


def test_a_crawl_aborted_by_an_error_exits_1(tmp_path, shop_site):
    (tmp_path / "broken_pipes.py").write_text(
        "class Explodes:\n"
        "    def open(self, spider):\n"
        "        raise RuntimeError('cannot open the database')\n"
        "    def process(self, item, spider):\n"
        "        return item\n")
    project = write_project(tmp_path, {"shop": SHOP}, CONFIG + "pipelines: [broken_pipes.Explodes]\n")
    result = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", cwd=project)
    assert result.returncode == 1, result.stderr
    assert "cannot open the database" in result.stderr


# -- usage errors: exit 2, one line on stderr, nothing on stdout ---------------------------
def test_unknown_spider(project):
    assert_usage_error(run_cli("run", "nope", cwd=project), "nope")


def test_unknown_command(project):
    assert_usage_error(run_cli("frobnicate", cwd=project), "frobnicate")


@pytest.mark.parametrize("setting,words", [
    ("wrokers=4", ["wrokers", "workers"]),
    ("retry.attemps=5", ["retry.attemps", "retry.attempts"]),
], ids=["top-level", "nested"])
def test_unknown_dash_s_key_names_the_nearest_valid_key(project, setting, words):
    assert_usage_error(run_cli("run", "shop", "-s", setting, cwd=project), *words)


@pytest.mark.parametrize("setting,words", [
    ("workers=many", ["workers", "many"]),
    ("workers=0", ["workers", "0"]),
    ("obey_robots=perhaps", ["obey_robots", "perhaps"]),
    ("timeout=-1", ["timeout", "-1"]),
])
def test_bad_dash_s_value_names_the_setting_and_value(project, setting, words):
    assert_usage_error(run_cli("run", "shop", "-s", setting, cwd=project), *words)


def test_dash_s_without_equals(project):
    assert_usage_error(run_cli("run", "shop", "-s", "workers", cwd=project), "workers")


def test_dash_a_without_equals(project):
    assert_usage_error(run_cli("run", "shop", "-a", "tag", cwd=project), "tag")


def test_missing_config_file(project):
    assert_usage_error(run_cli("run", "shop", "--config", "nowhere.yaml", cwd=project), "nowhere.yaml")


def test_invalid_yaml_config(project):
    (project / "config.yaml").write_text("workers: [1, 2\nobey_robots: false\n")
    assert_usage_error(run_cli("run", "shop", cwd=project), "config.yaml")


def test_unknown_setting_in_config_yaml(project):
    (project / "config.yaml").write_text(CONFIG + "wrokers: 4\n")
    assert_usage_error(run_cli("run", "shop", cwd=project), "config.yaml", "wrokers", "workers")


def test_bad_custom_settings_in_a_spider(tmp_path):
    bad = SHOP.replace('    tag = "none"', '    tag = "none"\n    custom_settings = {"workers": 0}')
    project = write_project(tmp_path, {"shop": bad}, CONFIG)
    assert_usage_error(run_cli("run", "shop", cwd=project), "shop", "workers")


def test_pipeline_that_does_not_import(project):
    (project / "config.yaml").write_text(CONFIG + "pipelines: [no_such_module.Pipe]\n")
    assert_usage_error(run_cli("run", "shop", cwd=project), "no_such_module")


def test_pipeline_constructor_rejecting_its_options(project):
    (project / "shop_pipes.py").write_text(
        "class Tag:\n"
        "    def __init__(self, field='tag'):\n"
        "        self.field = field\n"
        "    def process(self, item, spider):\n"
        "        return item\n")
    (project / "config.yaml").write_text(CONFIG + "pipelines: [{class: shop_pipes.Tag, colour: red}]\n")
    assert_usage_error(run_cli("run", "shop", cwd=project), "shop_pipes.Tag", "colour")


def test_output_that_cannot_be_opened(project):
    (project / "afile").write_text("not a directory")
    assert_usage_error(run_cli("run", "shop", "-o", "afile/out.jsonl", cwd=project), "afile")


@pytest.mark.parametrize("bad", [["-O", "afile/out.jsonl"], ["--summary", "adir"]],
                         ids=["second-output", "summary"])
def test_a_usage_error_does_not_truncate_an_overwritten_output(project, bad):
    (project / "afile").write_text("not a directory")
    (project / "adir").mkdir()
    (project / "good.jsonl").write_text('{"kept": true}\n')
    result = run_cli("run", "shop", "-O", "good.jsonl", *bad, cwd=project)
    assert_usage_error(result, bad[1].split("/")[0])
    assert (project / "good.jsonl").read_text() == '{"kept": true}\n'


def test_spider_with_invalid_start_urls(tmp_path):
    bad = SHOP.replace('    tag = "none"', '    tag = "none"\n    start_urls = ["example.com/"]')
    project = write_project(tmp_path, {"shop": bad}, CONFIG)
    assert_usage_error(run_cli("run", "shop", cwd=project), "start_urls", "example.com/")


@pytest.mark.parametrize("command", [["run", "shop"], ["list"]], ids=["run", "list"])
def test_spider_module_that_fails_to_import(tmp_path, command):
    project = write_project(tmp_path, {"shop": SHOP, "broken": "import no_such_module_xyz\n"}, CONFIG)
    assert_usage_error(run_cli(*command, cwd=project), "broken", "no_such_module_xyz")


def test_spider_module_with_a_syntax_error(tmp_path):
    project = write_project(tmp_path, {"shop": SHOP, "broken": "def oops(:\n"}, CONFIG)
    assert_usage_error(run_cli("run", "shop", cwd=project), "broken", "SyntaxError")


def test_spider_module_raising_a_multi_line_error_is_still_one_line(tmp_path):
    project = write_project(tmp_path, {
        "shop": SHOP, "broken": "raise RuntimeError('first line\\nsecond line')\n"}, CONFIG)
    assert_usage_error(run_cli("run", "shop", cwd=project), "broken", "first line")


def test_summary_path_that_cannot_be_written(project):
    (project / "adir").mkdir()
    assert_usage_error(run_cli("run", "shop", "--summary", "adir", cwd=project), "adir")


# -- signals -------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_crawl_gracefully(project, site, sig):
    endless_site(site, delay=0.2)
    proc = start_cli("run", "shop", "-a", f"base_url={site.url}/n?k=1", "-o", "out.jsonl",
                     "--summary", "s.json", "-s", "shutdown_timeout=5", cwd=project)
    try:
        wait_for(lambda: len(site.hits) >= 6)
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 4
    assert "--- shop: interrupted ---" in err
    summary = json.loads((project / "s.json").read_text())
    assert summary["reason"] == "interrupted"
    items = jsonl(project / "out.jsonl")
    assert len(items) == summary["items"] >= 5
    assert summary_line(err, "items") == str(summary["items"])


def test_a_second_sigint_exits_at_once_with_130(project, site):
    endless_site(site, delay=8)
    proc = start_cli("run", "shop", "-a", f"base_url={site.url}/n?k=1",
                     "-s", "shutdown_timeout=30", cwd=project)
    try:
        wait_for(lambda: len(site.hits) >= 1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 4  # did not wait for the 8 s page in flight


# -- demo ----------------------------------------------------------------------------
def test_demo_crawls_the_bundled_site(tmp_path):
    result = run_cli("demo", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert summary_line(result.stderr, "items") == "200"
    assert "--- books: finished ---" in result.stderr
    assert result.stdout == ""


def run_on_a_terminal(project: Path, *args: str) -> tuple[int, str]:
    """``python -m scraper ARGS`` with standard error on a pseudo-terminal: its exit
    status and everything it wrote there."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "scraper", *args], cwd=project, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break  # the child closed the terminal
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=30)
    os.close(master)
    return p.returncode, b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_live_progress_line(project, site):
    site.route("/", page(*[f"/p{i}" for i in range(20)]))
    for i in range(20):
        site.route(f"/p{i}", Reply(page(), delay=0.1))
    code, text = run_on_a_terminal(project, "run", "shop", "-a", f"base_url={site.url}/")
    assert code == 0
    assert "\r\x1b[Kpages " in text and "pages/s | queued" in text and "in flight" in text
    assert "--- shop: finished ---" in text


def test_without_a_terminal_progress_is_a_periodic_log_line(project, site):
    site.route("/", page(*[f"/p{i}" for i in range(10)]))
    for i in range(10):
        site.route(f"/p{i}", Reply(page(), delay=0.15))
    r = run_cli("run", "shop", "-a", f"base_url={site.url}/", "-s", "progress_interval=0.2",
                cwd=project)
    assert r.returncode == 0
    lines = [line for line in r.stderr.splitlines() if "progress: pages" in line]
    assert lines and " INFO " in lines[0] and "\r" not in r.stderr
    assert r.stdout == ""


# -- issue 12: what a new user could not see ----------------------------------
def test_each_final_failure_is_logged_at_info_and_listed_in_the_summary(project, shop_site):
    result = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", "-o", "out.jsonl",
                     "--summary", "s.json", cwd=project)
    assert result.returncode == 0, result.stderr
    missing = f"{shop_site.url}/missing"
    assert f"failed: {missing} (http-404, HTTP 404)" in result.stderr
    summary = json.loads((project / "s.json").read_text())
    assert summary["errors"] == {"http-404": 1}
    assert summary["failures"] == {"http-404": [{"url": missing, "status": 404}]}


def test_items_with_nowhere_to_go_are_reported_once(project, shop_site):
    result = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("items are discarded: no output is configured") == 1
    kept = run_cli("run", "shop", "-a", f"base_url={shop_site.url}/", "-o", "o.jsonl", cwd=project)
    assert "items are discarded" not in kept.stderr


def test_log_lines_do_not_garble_the_live_progress_line(project, site):
    # slow pages keep the live line on screen; failures are logged (INFO) while it is
    links = [f"/p{i}" for i in range(8)] + [f"/gone{i}" for i in range(8)]
    site.route("/", page(*links))
    for i in range(8):
        site.route(f"/p{i}", Reply(page(), delay=0.3))
        site.route(f"/gone{i}", Reply("gone", status=404, delay=0.3))
    code, text = run_on_a_terminal(project, "run", "shop", "-a", f"base_url={site.url}/")
    text = text.replace("\r\n", "\n")
    assert code == 0
    # what a terminal shows of each line is what follows its last carriage return
    shown = [line.rsplit("\r", 1)[-1] for line in text.split("\n")]
    failed = [line for line in shown if "failed: " in line]
    assert len(failed) == 8, text
    for line in failed:
        assert line.startswith("\x1b[K") and "pages/s" not in line, repr(line)
    assert any(line.startswith("\x1b[Kpages ") for line in shown), text
