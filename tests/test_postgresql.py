"""The PostgreSQL output against a real server (``tests/pgserver.py``) and real crawls of
local sites through the command line: items land whole in JSONB and in typed columns;
an item the server would refuse is a bad item, written nowhere; upsert on a key; every
item exactly once after SIGKILL at random instants and resumes with --job-dir; bad
URLs, tables, fields, a missing psycopg and an unreachable server are one line, exit 2,
before anything is touched, and never show the password."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import queue
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

if not os.environ.get("CI"):  # under CI a missing psycopg is a failure, not a skip
    pytest.importorskip("psycopg", reason="pip install 'scraper[postgresql]'")
import psycopg  # noqa: E402

from .conftest import ROOT, Reply, Site, page, run_cli, write_project
from .pgserver import PostgresServer, pg_server  # noqa: F401  # the session fixture

pytestmark = pytest.mark.timeout(120)

CONFIG = "obey_robots: false\nworkers: 4\nshutdown_timeout: 5\nretry:\n  attempts: 1\n"

SHOP = r'''
import logging
from scraper import Request, Spider

class Shop(Spider):
    name = "shop"
    base_url = ""
    version = "1"
    twice = ""  # -a twice=1: every page yields its item twice (the second one wins a key)

    def opened(self):
        logging.getLogger("shop").warning("shop opened")  # the first line on stderr

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        n = int(response.url.rsplit("p", 1)[-1]) if "/p" in response.url else 0
        item = {"url": response.url, "title": response.xpath("string(//title)").get(),
                "price": f"{n}.50", "n": n, "ok": n % 2 == 0, "seen": "2025-03-02T10:00:00+00:00",
                "tags": ["a", n], "version": self.version, "nested": {"deep": [1, {"x": None}]}}
        if self.twice:
            yield {**item, "version": "first"}
        yield item
        if n == 3:
            yield {**item, "url": item["url"] + "#bad", "title": "nul \x00 here"}  # text: NUL
            yield {**item, "url": item["url"] + "#bad2", "price": "abc"}  # numeric: not one
        yield from response.follow_all(response.links())
'''

FIELDS = "{title: text, price: numeric, n: integer, ok: boolean, seen: timestamptz, tags: jsonb}"


@pytest.fixture
def pg(pg_server: PostgresServer, request: pytest.FixtureRequest) -> str:  # noqa: F811
    """A fresh database for each test."""
    return pg_server.database("t_" + request.node.name.lower()[:50].replace("[", "_")
                              .replace("]", "").replace("-", "_"))


@pytest.fixture
def shop(site: Site) -> Site:
    site.route("/", page(*[f"/p{i}" for i in range(1, 9)], title="home"))
    for i in range(1, 9):
        site.route(f"/p{i}", page("/", title=f"p{i}"))
    return site


def _rows(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as db:
        return db.execute(sql, args or None).fetchall()  # type: ignore[arg-type]


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def test_items_land_whole_in_jsonb_and_in_typed_columns(shop, pg, tmp_path):
    project = write_project(tmp_path, {"shop": SHOP}, CONFIG + (
        f"outputs:\n  - {{path: '{pg}?table=Items', fields: {FIELDS}}}\n"))
    r = run_cli("run", "shop", "-a", f"base_url={shop.url}", "-o", "out.jsonl",
                "--summary", "s.json", cwd=project)
    assert r.returncode == 0, r.stderr
    summary = json.loads((project / "s.json").read_text())
    assert summary["items"] == 9 and summary["errors"] == {"bad-item": 2}
    assert "field 'title' does not fit" not in r.stderr
    assert "holds a NUL character, which PostgreSQL text cannot" in r.stderr
    assert "field 'price' does not fit its column" in r.stderr
    types = dict(_rows(pg, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                           "WHERE attrelid = 'items'::regclass AND attnum > 0"))
    assert types == {"_scraper_id": "bigint", "item": "jsonb", "title": "text",
                     "price": "numeric", "n": "integer", "ok": "boolean",
                     "seen": "timestamp with time zone", "tags": "jsonb"}
    rows = _rows(pg, "SELECT item, title, price, n, ok, seen, tags FROM items "
                     "WHERE item->>'url' LIKE '%/p3' ")
    item, title, price, n, ok, seen, tags = rows[0]
    assert item["nested"] == {"deep": [1, {"x": None}]} and item["version"] == "1"
    assert (title, price, n, ok, tags) == ("p3", decimal.Decimal("3.50"), 3, False, ["a", 3])
    assert seen.isoformat() == "2025-03-02T10:00:00+00:00"
    # the same items as the other output: the bad ones in neither
    jsonl = sorted(json.loads(x)["url"] for x in (project / "out.jsonl").read_text().splitlines())
    assert sorted(r[0] for r in _rows(pg, "SELECT item->>'url' FROM items")) == jsonl
    assert len(jsonl) == 9 and not any("#bad" in u for u in jsonl)
    assert [r[0] for r in _rows(pg, "SELECT _scraper_id FROM items ORDER BY 1")] == list(range(1, 10))


def test_upsert_on_a_key_replaces_rows_and_keeps_their_ids(shop, pg, tmp_path):
    project = write_project(tmp_path, {"shop": SHOP}, CONFIG + (
        f"outputs:\n  - {{path: '{pg}', table: shop_items, key: url, fields: {{n: bigint}}}}\n"))
    r = run_cli("run", "shop", "-a", f"base_url={shop.url}", "-a", "twice=1", cwd=project)
    assert r.returncode == 0, r.stderr
    first = dict(_rows(pg, "SELECT url, _scraper_id FROM shop_items"))
    # each page's two items: one row, the second one's; /p3#bad2 fits (price is not typed
    # here), /p3#bad does not: JSONB cannot hold a NUL either
    assert len(first) == 10 and not any(u.endswith("#bad") for u in first)
    assert {v for (v,) in _rows(pg, "SELECT item->>'version' FROM shop_items")} == {"1"}
    r = run_cli("run", "shop", "-a", f"base_url={shop.url}", "-a", "version=2", cwd=project)
    assert r.returncode == 0, r.stderr
    rows = _rows(pg, "SELECT url, _scraper_id, item->>'version', n FROM shop_items")
    assert len(rows) == 10
    assert {url: i for url, i, _, _ in rows} == first  # updated in place
    assert {v for _, _, v, _ in rows} == {"2"}
    assert {url.rsplit("/", 1)[-1]: n for url, _, _, n in rows}["p7"] == 7


# -- exactly once across kill -9 -------------------------------------------------------
CATALOG = '''
import logging
from scraper import Request, Spider

class Catalog(Spider):
    name = "catalog"
    base_url = ""

    def opened(self):
        logging.getLogger("catalog").warning("catalog opened")

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        yield {"url": response.url, "title": response.xpath("string(//title)").get()}
        yield from response.follow_all(response.links())
'''


@pytest.fixture
def catalog(site: Site) -> Site:
    sections = [f"/s{i}" for i in range(8)]
    site.route("/", page(*sections, title="home"))
    for s in sections:
        kids = [f"{s}/p{j}" for j in range(8)]
        site.route(s, Reply(page(*kids, "/", title=s), delay=0.02))
        for k in kids:  # slow enough that a crawl lasts a second or two: time to kill it
            site.route(k, Reply(page("/", s, title=k), delay=0.05))
    return site


def test_every_item_exactly_once_after_sigkill_at_random_instants(catalog, pg, tmp_path):
    project = write_project(tmp_path, {"catalog": CATALOG}, CONFIG)
    cmd = [sys.executable, "-m", "scraper", "run", "catalog", "-a", f"base_url={catalog.url}",
           "--job-dir", "job", "-o", "out.jsonl", "-o", f"{pg}?table=catalog&key=url",
           "-o", f"{pg}?table=plain"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(18)
    kills = 0
    for _ in range(4):
        p = subprocess.Popen(cmd, cwd=project, env=env, stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True)
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda p=p, lines=lines: [lines.put(x) for x in p.stderr],
                                  daemon=True)
        reader.start()
        while "catalog opened" not in lines.get(timeout=60):  # started: now kill it at random
            pass
        time.sleep(rng.uniform(0.05, 1.0))
        ended = p.poll() is not None
        if not ended:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        reader.join(10)
        p.stderr.close()
        if ended:
            break
    final = run_cli(*cmd[3:], cwd=project, env=env)
    assert final.returncode == 0, final.stderr
    assert kills >= 2
    expected = sorted([catalog.url + "/"] + [f"{catalog.url}/s{i}" for i in range(8)] + [
        f"{catalog.url}/s{i}/p{j}" for i in range(8) for j in range(8)])
    jsonl = [json.loads(x)["url"] for x in (project / "out.jsonl").read_text().splitlines()]
    assert sorted(jsonl) == expected
    for table in ("catalog", "plain"):
        urls = [r[0] for r in _rows(pg, f"SELECT item->>'url' FROM {table}")]
        assert sorted(urls) == expected, f"{table}: not every item exactly once"
    assert f"items     {len(expected)}" in final.stderr


# -- errors ----------------------------------------------------------------------------
def test_a_password_is_never_shown_nor_recorded(shop, pg, tmp_path):
    project = write_project(tmp_path, {"shop": SHOP}, CONFIG)
    secret = pg.replace("postgres@", "postgres:s3cr3t-pw@")  # trust auth: any password does
    r = run_cli("run", "shop", "-a", f"base_url={shop.url}", "-o", f"{secret}?table=t1",
                "--job-dir", "job", "-s", "log_level=DEBUG", cwd=project)
    assert r.returncode == 0, r.stderr
    assert "s3cr3t" not in r.stderr
    assert len(_rows(pg, "SELECT 1 FROM t1")) == 10  # /p3#bad (NUL) is not one
    assert b"s3cr3t" not in (project / "job" / "job.sqlite").read_bytes()
    with sqlite3.connect(project / "job" / "job.sqlite") as db:
        db.execute("SELECT 1")
    bad = secret.replace(f":{pg.rsplit(':', 1)[1].split('/')[0]}/", ":1/")  # nothing listens
    err = _one_line(run_cli("run", "shop", "-a", f"base_url={shop.url}", "-o", bad, cwd=project))
    assert "cannot connect" in err and "postgres@127.0.0.1:1/" in err and "s3cr3t" not in err


def test_bad_outputs_are_one_line_before_anything_is_touched(shop, pg, tmp_path):
    from scraper.exceptions import ConfigError
    from scraper.outputs import check_output, open_output

    with psycopg.connect(pg) as db:
        db.execute("CREATE TABLE theirs (id int)")
    port = pg.rsplit(":", 1)[1].split("/")[0]
    cases = {  # what check_output finds without a server, then what opening finds
        f"{pg}?table=bad-name": "bad table name 'bad-name'",
        f"{pg}?table=a.b.c": "bad table name 'a.b.c'",
        f"{pg}?table=_scraper_jobs": "is the output's own",
        pg.replace(port, "port"): "bad port (a number from 1 to 65535)",
        pg.replace(port, "99999"): "bad port",
        f"{pg}?table=theirs": "table 'theirs' exists and was not made by this output",
        f"{pg}?table=t&nonsense=1": "cannot connect (invalid URI query parameter",
    }
    for url, message in cases.items():
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_output({"path": url}, "shop")
            open_output({"path": url}, "shop").close()
    for spec, message in (({"fields": {"price": "money"}}, "unknown column type 'money'"),
                          ({"fields": {"item": "text"}}, "names a column of the output's own"),
                          ({"fields": "price"}, "fields must be a mapping"),
                          ({"key": 3}, "key must be the name of an item field")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            check_output({"path": pg, **spec}, "shop")
    # through the command line: one line, exit 2, and -O has not touched its file
    project = write_project(tmp_path, {"shop": SHOP}, CONFIG + (
        f"outputs:\n  - {{path: '{pg}', fields: {{price: money}}}}\n"))
    (project / "keep.jsonl").write_text('{"kept": 1}\n')
    err = _one_line(run_cli("run", "shop", "-a", f"base_url={shop.url}", "-O", "keep.jsonl",
                            cwd=project))
    assert "field 'price': unknown column type 'money'" in err
    assert (project / "keep.jsonl").read_text() == '{"kept": 1}\n'


def test_another_jobs_table_is_refused(shop, pg, tmp_path):
    from scraper.exceptions import ConfigError
    from scraper.outputs import JobMark, check_output

    project = write_project(tmp_path, {"shop": SHOP}, CONFIG)
    out = f"{pg}?table=owned"
    r = run_cli("run", "shop", "-a", f"base_url={shop.url}", "--job-dir", "job1", "-o", out,
                cwd=project)
    assert r.returncode == 0, r.stderr
    (claim,) = _rows(pg, 'SELECT job_dir FROM _scraper_jobs WHERE "table" = %s', "owned")
    assert claim[0] == str(project / "job1")
    other = JobMark("another-job", str(project / "job2"))
    with pytest.raises(ConfigError, match="holds items of another job .* use -O to start it"):
        check_output({"path": out}, "shop", job=other)
    check_output({"path": out, "overwrite": True}, "shop", job=other)  # -O: started afresh


def test_without_psycopg_the_error_names_the_extra(shop, tmp_path):
    project = write_project(tmp_path, {"shop": SHOP}, CONFIG)
    blocked = tmp_path / "blocked"
    (blocked / "psycopg").mkdir(parents=True)
    (blocked / "psycopg" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'psycopg'\")\n")
    r = run_cli("run", "shop", "-a", f"base_url={shop.url}", "-o",
                "postgresql://u@127.0.0.1:5432/db?table=items", cwd=project,
                env={"PYTHONPATH": f"{blocked}{os.pathsep}{ROOT}"})
    err = _one_line(r)
    assert "pip install 'scraper[postgresql]'" in err


def test_the_output_alone_keeps_its_position_and_cuts_back(pg):
    """In-process: position is the last committed id; a resume deletes the rows above it."""
    from scraper.outputs import open_output

    spec = {"path": f"{pg}?table=direct", "fields": {"n": "integer"}}
    out = open_output(spec, "x")
    for i in range(10):
        out.write({"n": i})
    assert len(_rows(pg, "SELECT 1 FROM direct")) == 0  # buffered
    assert out.position() == 10
    for i in range(10, 15):
        out.write({"n": i})
    out.flush()
    out.close()
    again = open_output(spec, "x", resume_at=10)
    assert sorted(n for (n,) in _rows(pg, "SELECT n FROM direct")) == list(range(10))
    again.write({"n": 99})
    assert again.position() > 10
    again.close()


def test_values_the_server_would_refuse_are_bad_items_before_anything_is_sent(pg):
    from scraper.exceptions import BadItem
    from scraper.outputs import open_output

    fields = {"i": "integer", "b": "bigint", "x": "numeric", "f": "float", "ok": "bool",
              "d": "date", "ts": "timestamp", "tz": "timestamptz", "j": "jsonb", "t": "text"}
    out = open_output({"path": f"{pg}?table=typed", "fields": fields}, "x")
    good = {"i": "42", "b": 2**62, "x": 1.5, "f": "2.5", "ok": "yes", "d": "2025-03-02",
            "ts": "2025-03-02T10:00:00", "tz": "2025-03-02T10:00:00Z", "j": {"a": [1]},
            "t": 7, "extra": "only in item"}
    out.write(good)
    bad = [({"i": 2**31}, "out of range for a 32-bit integer"), ({"i": 1.5}, "not a whole"),
           ({"i": True}, "a boolean is not an integer"), ({"x": "1e200000"}, "numeric range"),
           ({"x": decimal.Decimal("NaN")}, "not a finite number"), ({"ok": "maybe"}, "not true or false"),
           ({"d": "March"}, "'d' does not fit"), ({"tz": 3}, "is not a timestamp"),
           ({"j": {"a": float("inf")}}, "cannot be written as JSON"),
           ({"t": "caf\ud800"}, "not valid Unicode"), ({"t": "a\x00b"}, "NUL character"),
           ({"other": "x\x00"}, "the item holds a NUL"), ({"f": 10**400}, "'f' does not fit")]
    for item, message in bad:
        with pytest.raises(BadItem, match=re.escape(message)):
            out.encode(item)
    out.encode({"other": "a backslash then u0000: \\u0000"})  # not a NUL: fine
    out.close()
    (row,) = _rows(pg, "SELECT i, b, x, f, ok, d, ts, tz, j, t, item->>'extra' FROM typed")
    assert row[:6] == (42, 2**62, decimal.Decimal("1.5"), 2.5, True, dt.date(2025, 3, 2))
    assert row[6] == dt.datetime(2025, 3, 2, 10) and row[7].utcoffset() is not None
    assert row[8:] == ({"a": [1]}, "7", "only in item")
