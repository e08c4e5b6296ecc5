"""Faults around persistent crawls, their outputs and their secrets, through the command
line against real local sites: items an output cannot write, an item key named rowid,
a deleted or damaged job.sqlite, stop signals while a run starts, and headers meant for
one host only."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from scraper.exceptions import ConfigError
from scraper.outputs import open_output

from ..conftest import ROOT, Reply, Site, page, run_cli, write_project

CONFIG = "obey_robots: false\nworkers: 2\nshutdown_timeout: 5\nretry:\n  attempts: 1\n"

SHOP = '''
import logging
from scraper import Request, Spider

class Shop(Spider):
    name = "shop"
    base_url = ""
    skus = ""  # -a skus=1: items have a key named rowid

    def opened(self):
        logging.getLogger("shop").warning("shop opened")  # a run's first line on stderr

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        item = {"url": response.url}
        if self.skus:
            item["rowid"] = "sku-" + response.url.rsplit("/", 1)[-1]
        yield item
        yield from response.follow_all(response.links())
'''

# each page yields two good items around five an output cannot write
BAD = r'''
from scraper import Request, Spider

class Bad(Spider):
    name = "bad"
    base_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield from response.follow_all(response.links())
        if response.url.endswith("/"):
            return
        url = response.url
        yield {"url": url, "n": 1}
        yield {"url": url, "bad\x00key": 1}                      # SQLite: NUL in a column name
        yield {"url": url, **{f"k{i}": i for i in range(2100)}}  # SQLite: over 2,000 columns
        yield {"url": url, ("a", "b"): 1}                        # a key that is not a string
        yield {"url": url, "text": "caf\ud800"}                   # not Unicode (a lone surrogate)
        loop = []
        loop.append(loop)
        yield {"url": url, "loop": loop}                         # JSON cannot encode it
        yield {"url": url, "n": 2}
'''

OUTPUTS = ("-o", "out.jsonl", "-o", "out.csv", "-o", "out.json", "-o", "out.db")


@pytest.fixture
def shop(site: Site) -> Site:
    site.route("/", page(*[f"/p{i}" for i in range(4)]))
    for i in range(4):
        site.route(f"/p{i}", page())
    return site


def _project(tmp_path: Path) -> Path:
    return write_project(tmp_path, {"shop": SHOP, "bad": BAD}, CONFIG)


def _items(project: Path, table: str) -> dict[str, list[Any]]:
    """Every output's items (their url), in order."""
    jsonl = [json.loads(x)["url"] for x in (project / "out.jsonl").read_text().splitlines()]
    csv_rows = (project / "out.csv").read_text().splitlines()[1:]
    array = [i["url"] for i in json.loads((project / "out.json").read_text())]
    con = sqlite3.connect(project / "out.db")
    try:
        db = [r[0] for r in con.execute(f'SELECT url FROM "{table}" ORDER BY _scraper_id')]
    finally:
        con.close()
    return {"jsonl": jsonl, "csv": [r.split(",")[0] for r in csv_rows], "json": array, "db": db}


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


# -- issue 13.4: an item an output cannot write ----------------------------------------
def test_bad_items_are_skipped_counted_and_written_nowhere(shop, tmp_path):
    project = _project(tmp_path)
    args = ("run", "bad", "-a", f"base_url={shop.url}", "--job-dir", "job", *OUTPUTS,
            "--summary", "s.json")
    r = run_cli(*args, cwd=project)
    assert r.returncode == 0, r.stderr
    summary = json.loads((project / "s.json").read_text())
    assert summary["reason"] == "finished" and summary["items"] == 8
    assert summary["errors"] == {"bad-item": 20}
    # each one logged with its page and why
    assert f"bad item from {shop.url}/p0 skipped: output out.db: key 'bad\\x00key' holds a NUL" \
        in r.stderr
    assert "more than SQLite's limit of 2000" in r.stderr
    assert "key ('a', 'b') is a tuple, not a string" in r.stderr
    assert "not valid Unicode" in r.stderr and "Circular reference" in r.stderr
    # the good items, each once, in every output: no output holds a piece of a bad one
    good = sorted(f"{shop.url}/p{i}" for i in range(4) for _ in range(2))
    for name, urls in _items(project, "bad").items():
        assert sorted(urls) == good, name
    assert "k0" not in (project / "out.jsonl").read_text()
    # the job is finished, not stuck on the pages that yielded them
    again = run_cli(*args, cwd=project)
    assert again.returncode == 0, again.stderr
    assert json.loads((project / "s.json").read_text())["reason"] == "finished"
    assert sorted(_items(project, "bad")["db"]) == good


# -- issue 13.5: an item key named rowid --------------------------------------------------
def test_an_item_key_named_rowid_is_a_column_like_any_other(tmp_path):
    db = str(tmp_path / "out.db")
    out = open_output({"path": db}, "shop")
    for n in (100, 200, 300):
        out.write({"rowid": n, "oid": "x", "n": n})
    committed = out.position()
    for n in (1, 2):  # written after the last commit a job recorded: a crash's leftovers
        out.write({"rowid": n, "n": n})
    out.close()
    assert committed == 3
    # a resumed job cuts the table back to its committed position, by our row numbers
    open_output({"path": db}, "shop", resume_at=committed).close()
    con = sqlite3.connect(db)
    assert con.execute("SELECT rowid, n FROM shop ORDER BY _scraper_id").fetchall() == [
        (100, 100), (200, 200), (300, 300)]
    con.close()


def test_a_rowid_key_through_a_stopped_and_resumed_job(shop, tmp_path):
    project = _project(tmp_path)
    args = ("run", "shop", "-a", f"base_url={shop.url}", "-a", "skus=1", "--job-dir", "job",
            "-o", "out.db")
    r = run_cli(*args, "-s", "max_pages=2", cwd=project)
    assert r.returncode == 0, r.stderr
    r = run_cli(*args, cwd=project)
    assert r.returncode == 0, r.stderr
    con = sqlite3.connect(project / "out.db")
    got = sorted(con.execute("SELECT rowid, url FROM shop"))
    con.close()
    assert got == sorted([("sku-", shop.url + "/")] +
                         [(f"sku-p{i}", f"{shop.url}/p{i}") for i in range(4)])


def test_tables_written_by_the_earlier_version_are_still_resumed(tmp_path):
    db = str(tmp_path / "old.db")
    con = sqlite3.connect(db)  # the old layout: user columns only, rows numbered by rowid
    con.execute('CREATE TABLE shop ("url", "n")')
    con.executemany("INSERT INTO shop VALUES (?, ?)", [("a", 1), ("b", 2), ("c", 3)])
    con.execute('CREATE TABLE hidden ("rowid", "oid", "_rowid_")')
    con.commit()
    con.close()
    out = open_output({"path": db}, "shop", resume_at=2)
    out.write({"url": "d", "rowid": 7})  # a user column rowid: numbered by oid from now on
    assert out.position() == 3
    out.close()
    con = sqlite3.connect(db)
    assert con.execute("SELECT url, rowid FROM shop ORDER BY oid").fetchall() == [
        ("a", None), ("b", None), ("d", 7)]
    con.close()
    with pytest.raises(ConfigError, match="table 'hidden' was written by an earlier version"):
        open_output({"path": db, "table": "hidden"}, "shop", resume_at=0)


# -- issue 13.6: a deleted or damaged job.sqlite ------------------------------------------
def _forget_job(project: Path) -> None:
    for f in (project / "job").glob("job.sqlite*"):
        f.unlink()


def test_outputs_of_a_job_whose_database_is_gone_are_refused(shop, tmp_path):
    project = _project(tmp_path)
    args = ("run", "shop", "-a", f"base_url={shop.url}", "--job-dir", "job", *OUTPUTS)
    assert run_cli(*args, cwd=project).returncode == 0
    before = {p.name: p.read_bytes() for p in project.glob("out.*")}
    hits = len(shop.hits)
    _forget_job(project)
    err = _one_line(run_cli(*args, cwd=project))
    assert "output out.jsonl: holds items of an earlier job in" in err
    assert "whose job.sqlite is gone" in err and "-O" in err and "--force-resume" in err
    for out in ("out.csv", "out.json", "out.db"):  # each output keeps its claim
        _forget_job(project)
        err = _one_line(run_cli(*args[:6], "-o", out, cwd=project))
        assert f"output {out}: holds items of an earlier job" in err
    assert {p.name: p.read_bytes() for p in project.glob("out.*")} == before
    assert len(shop.hits) == hits  # refused before anything was fetched
    # another job dir writing to them is refused as well
    err = _one_line(run_cli(*args[:4], "--job-dir", "other", "-o", "out.jsonl", cwd=project))
    assert "holds items of another job (job dir " in err
    # the way out the message names: --force-resume appends (the user asked for it)
    r = run_cli(*args, "--force-resume", cwd=project)
    assert r.returncode == 0, r.stderr
    assert all(len(urls) == 10 for urls in _items(project, "shop").values())
    # and -O starts an output afresh
    _forget_job(project)
    r = run_cli(*args[:6], "-O", "out.jsonl", cwd=project)
    assert r.returncode == 0, r.stderr
    assert len((project / "out.jsonl").read_text().splitlines()) == 5


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database " * 200)


def _truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _scribbled(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4096:] = bytes((i * 7 + 3) % 251 for i in range(len(data) - 4096))  # pages 2 on
    path.write_bytes(bytes(data))


def test_a_damaged_job_database_is_one_line_naming_the_file(shop, tmp_path):
    project = _project(tmp_path)
    args = ("run", "shop", "-a", f"base_url={shop.url}", "--job-dir", "job")
    # a job with a few pages queued, so its database has pages to damage
    r = run_cli(*args, "-s", "max_pages=1", cwd=project)
    assert r.returncode == 0, r.stderr
    assert (project / "job" / "job.sqlite").stat().st_size > 8192
    pristine = project / "pristine"
    shutil.copytree(project / "job", pristine)
    for damage in (_garbage, _truncated, _scribbled):
        shutil.rmtree(project / "job")
        shutil.copytree(pristine, project / "job")
        damage(project / "job" / "job.sqlite")
        err = _one_line(run_cli(*args, cwd=project))
        assert "job/job.sqlite: cannot be used as a job database" in err, (damage, err)


# -- issue 13.7: stop signals while a run starts --------------------------------------------
class Run:
    """``python -m scraper ARGS`` in ``project``, its stderr read line by line as it comes;
    ``held``: started as the scheduler starts its runs, with SIGINT and SIGTERM blocked
    until the run has its handlers."""

    def __init__(self, project: Path, *args: str, held: bool = False) -> None:
        self.project = project
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        stop = {signal.SIGINT, signal.SIGTERM}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, stop) if held else None
        try:
            self.proc = subprocess.Popen([sys.executable, "-m", "scraper", *args], cwd=project,
                                         env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True)
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def line(self, timeout: float = 30) -> str:
        """The next line on stderr that is not blank."""
        while True:
            line = self.lines.get(timeout=timeout)
            assert line is not None, "stderr closed: " + "".join(self.err)
            if line.strip():
                return line

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def ended(self) -> tuple[int, str, str | None]:
        """Exit status, all of stderr, and the summary's reason (None: no summary)."""
        rc = self.proc.wait(timeout=30)
        self.reader.join(timeout=30)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        err = "".join(self.err)
        summary = self.project / "s.json"
        reason = json.loads(summary.read_text())["reason"] if summary.exists() else None
        assert "Traceback" not in err, err
        return rc, err, reason


@pytest.fixture
def runs() -> Any:
    """Starts ``Run``s, and kills any still going when the test ends (a failed one)."""
    started: list[Run] = []

    def start(project: Path, *args: str, held: bool = False) -> Run:
        started.append(Run(project, *args, held=held))
        return started[-1]

    yield start
    for run in started:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
        run.reader.join(timeout=10)
        if run.proc.stderr is not None:
            run.proc.stderr.close()


@pytest.fixture
def slow_shop(shop: Site) -> Site:
    for i in range(4):
        shop.route(f"/p{i}", Reply(page(), delay=2))
    return shop


def test_sigterm_while_the_spider_loads_stops_the_crawl_before_it_fetches(shop, tmp_path, runs):
    project = _project(tmp_path)
    # the spider module says when it is being imported, and waits for the test: the
    # signal lands after the handlers are in and before the crawl's engine exists
    (project / "spiders" / "shop.py").write_text(
        "import pathlib, time\npathlib.Path('loading').touch()\nend = time.monotonic() + 30\n"
        "while not pathlib.Path('go').exists() and time.monotonic() < end:\n"
        "    time.sleep(0.01)\n" + SHOP)
    (project / "spiders" / "bad.py").unlink()
    run = runs(project, "run", "shop", "-a", f"base_url={shop.url}", "--summary", "s.json")
    deadline = time.monotonic() + 30
    while not (project / "loading").exists():
        assert time.monotonic() < deadline and run.proc.poll() is None, "the spider never loaded"
        time.sleep(0.01)
    run.signal()
    (project / "go").touch()
    rc, err, reason = run.ended()
    assert (rc, reason) == (0, "interrupted"), err
    assert shop.count("/") == 0


def test_sigterm_at_0_1_s_stops_a_run_started_as_the_scheduler_starts_them(slow_shop, tmp_path,
                                                                            runs):
    project = _project(tmp_path)
    run = runs(project, "run", "shop", "-a", f"base_url={slow_shop.url}", "--summary", "s.json",
               held=True)
    time.sleep(0.1)  # the point of the test: a signal in the run's first instants
    run.signal()
    rc, err, reason = run.ended()
    assert (rc, reason) == (0, "interrupted"), err


def test_sigterm_at_the_first_line_on_stderr_and_a_second_one(slow_shop, tmp_path, runs):
    project = _project(tmp_path)
    args = ("run", "shop", "-a", f"base_url={slow_shop.url}", "--summary", "s.json")
    run = runs(project, *args)
    assert "shop opened" in run.line()
    run.signal()
    rc, err, reason = run.ended()
    assert (rc, reason) == (0, "interrupted"), err
    (project / "s.json").unlink()
    seen = len(slow_shop.hits)
    run = runs(project, *args)
    deadline = time.monotonic() + 30
    while not any(h.path.startswith("/p") for h in slow_shop.hits[seen:]):  # one in flight
        assert time.monotonic() < deadline and run.proc.poll() is None, "no page requested"
        time.sleep(0.01)
    run.signal()
    while "SIGTERM: finishing requests in flight" not in run.line():
        pass
    run.signal()  # the in-flight pages take 2 s: this one comes while they are awaited
    rc, err, reason = run.ended()
    assert rc == 130 and reason is None, err


# -- issue 13.12: headers for one domain only ------------------------------------------------
HEADERS = '''
from scraper import Request, Spider

class Two(Spider):
    name = "two"
    base_url = ""
    other_url = ""

    def start_requests(self):
        yield Request(self.base_url + "/")
        yield Request(self.other_url + "/own", headers={"X-Token": "own"})

    def parse(self, response):
        yield from response.follow_all(response.links())
'''


def test_headers_for_reach_only_their_domain_robots_txt_included(site, tmp_path):
    other = Site()  # reached as localhost: another host name than 127.0.0.1
    try:
        other_url = f"http://localhost:{other.port}"
        site.route("/", page(other_url + "/b"))
        other.route("/b", page())
        other.route("/own", page())
        project = write_project(tmp_path, {"two": HEADERS}, (
            "workers: 2\nheaders: {X-Global: g}\n"
            "headers_for: {localhost: {X-Token: t0k3n, Accept-Language: fr}}\n"))
        r = run_cli("run", "two", "-a", f"base_url={site.url}", "-a", f"other_url={other_url}",
                    cwd=project)
        assert r.returncode == 0, r.stderr
        assert sorted(other.paths()) == ["/b", "/own", "/robots.txt"]
        assert sorted(site.paths()) == ["/", "/robots.txt"]
        for hit in other.hits:
            assert hit.headers["x-global"] == "g" and hit.headers["accept-language"] == "fr"
            assert hit.headers["x-token"] == ("own" if hit.path == "/own" else "t0k3n")
        for hit in site.hits:  # 127.0.0.1, its robots.txt included, gets the global ones only
            assert hit.headers["x-global"] == "g"
            assert "x-token" not in hit.headers and "accept-language" not in hit.headers
    finally:
        other.close()
    bad = write_project(tmp_path / "bad", {"two": HEADERS},
                        "headers_for: {'https://x.org': {A: b}}\n")
    err = _one_line(run_cli("run", "two", cwd=bad))
    assert "headers_for: 'https://x.org' must be a host name" in err
    # a setting that holds credentials is not repeated in its error
    (bad / "config.yaml").write_text("http_auth: {username: u, password: pa55word}\n")
    err = _one_line(run_cli("run", "two", cwd=bad))
    assert "http_auth must be null or {username" in err and "pa55word" not in err
