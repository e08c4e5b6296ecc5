"""Item outputs: JSON lines, JSON array, CSV and SQLite, opened through ``open_output``
and written by real crawls through the command line (``-o``/``-O``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import logging
import sqlite3
from pathlib import Path

import pytest

from scraper import ConfigError
from scraper.outputs import open_output, output_type

from .conftest import run_cli, write_project


def write_all(spec: dict, items: list[dict], spider: str = "books") -> None:
    out = open_output(spec, spider)
    for item in items:
        out.write(item)
    out.close()


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def rows(db: Path, table: str) -> list[dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        # without the output's own row number column
        return [{k: r[k] for k in r.keys() if k != "_scraper_id"}
                for r in con.execute(f'SELECT * FROM "{table}" ORDER BY _scraper_id')]
    finally:
        con.close()


def columns(db: Path, table: str) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[1] for r in con.execute(f'PRAGMA table_info("{table}")') if r[1] != "_scraper_id"]
    finally:
        con.close()


# -- type from the path --------------------------------------------------------
@pytest.mark.parametrize("path, kind", [
    ("a.jsonl", "jsonl"), ("a.jl", "jsonl"), ("a.ndjson", "jsonl"), ("a.json", "json"),
    ("A.CSV", "csv"), ("a.db", "sqlite"), ("a.sqlite", "sqlite"), ("a.sqlite3", "sqlite"),
    ("-", "jsonl"), ("dir.v2/a.csv", "csv"),
])
def test_output_type_from_extension(path, kind):
    assert output_type({"path": path}) == kind


def test_explicit_type_wins_over_extension():
    assert output_type({"path": "a.txt", "type": "jsonl"}) == "jsonl"
    assert output_type({"path": "a.data", "type": "db"}) == "sqlite"


@pytest.mark.parametrize("spec", [{"path": "out.txt"}, {"path": "out"}, {"path": "a.csv", "type": "xml"}])
def test_unknown_type_is_a_config_error_naming_the_path(spec):
    with pytest.raises(ConfigError, match=spec["path"].replace(".", r"\.")):
        open_output(spec, "books")


# -- jsonl -------------------------------------------------------------------------
def test_jsonl_one_object_per_line_utf8(tmp_path):
    path = tmp_path / "out.jsonl"
    write_all({"path": str(path)}, [{"t": "é ✓"}, {"n": 1, "l": [1, {"a": None}]}])
    assert path.read_text(encoding="utf-8") == '{"t": "é ✓"}\n{"n": 1, "l": [1, {"a": null}]}\n'


def test_jsonl_appends_by_default_and_overwrites_when_asked(tmp_path):
    path = tmp_path / "out.jsonl"
    write_all({"path": str(path)}, [{"run": 1}])
    write_all({"path": str(path)}, [{"run": 2}])
    assert jsonl(path) == [{"run": 1}, {"run": 2}]
    write_all({"path": str(path), "overwrite": True}, [{"run": 3}])
    assert jsonl(path) == [{"run": 3}]


def test_jsonl_serialises_dates_decimals_sets_bytes_and_dataclasses(tmp_path):
    @dataclasses.dataclass
    class Point:
        x: int

    path = tmp_path / "out.jsonl"
    write_all({"path": str(path)}, [{"d": dt.date(2024, 1, 2), "p": decimal.Decimal("1.10"),
                                     "s": {3}, "t": (1, 2), "b": b"hi", "pt": Point(1)}])
    assert jsonl(path) == [{"d": "2024-01-02", "p": "1.10", "s": [3], "t": [1, 2], "b": "hi",
                            "pt": {"x": 1}}]


def test_overwrite_truncates_when_opened_even_with_no_items(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"old": 1}\n')
    write_all({"path": str(path), "overwrite": True}, [])
    assert path.read_text() == ""


def test_missing_parent_directories_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "out.jsonl"
    write_all({"path": str(path)}, [{"x": 1}])
    assert jsonl(path) == [{"x": 1}]


def test_spider_placeholder_is_replaced(tmp_path):
    write_all({"path": str(tmp_path / "out" / "{spider}.jsonl")}, [{"x": 1}], spider="books")
    assert jsonl(tmp_path / "out" / "books.jsonl") == [{"x": 1}]


def test_unknown_placeholder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="placeholder"):
        open_output({"path": str(tmp_path / "{name}.jsonl")}, "books")


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "db"])
def test_path_under_a_regular_file_is_a_config_error(tmp_path, kind):
    (tmp_path / "afile").write_text("x")
    path = str(tmp_path / "afile" / f"out.{kind}")
    with pytest.raises(ConfigError, match="cannot open") as info:
        open_output({"path": path}, "books")
    assert path in str(info.value)


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "db"])
def test_path_that_is_a_directory_is_a_config_error(tmp_path, kind):
    d = tmp_path / f"out.{kind}"
    d.mkdir()
    with pytest.raises(ConfigError, match="directory"):
        open_output({"path": str(d)}, "books")


def test_stdout_output_writes_json_lines(capsys):
    write_all({"path": "-"}, [{"a": "é"}, {"b": [1]}])
    assert capsys.readouterr().out == '{"a": "é"}\n{"b": [1]}\n'


# -- json array ------------------------------------------------------------------
def test_json_is_a_valid_array(tmp_path):
    path = tmp_path / "out.json"
    write_all({"path": str(path)}, [{"a": 1}, {"b": "é"}])
    assert json.loads(path.read_text(encoding="utf-8")) == [{"a": 1}, {"b": "é"}]


def test_json_with_no_items_is_an_empty_array(tmp_path):
    path = tmp_path / "out.json"
    write_all({"path": str(path)}, [])
    assert json.loads(path.read_text()) == []


@pytest.mark.parametrize("first, second", [([{"a": 1}], [{"a": 2}, {"a": 3}]), ([], [{"a": 2}]),
                                           ([{"a": 1}], []), ([], [])])
def test_json_appending_keeps_one_valid_array(tmp_path, first, second):
    path = tmp_path / "out.json"
    write_all({"path": str(path)}, first)
    write_all({"path": str(path)}, second)
    assert json.loads(path.read_text()) == first + second


def test_json_appends_to_a_compact_array_written_elsewhere(tmp_path):
    path = tmp_path / "out.json"
    path.write_text('[{"a":1}]  \n')
    write_all({"path": str(path)}, [{"a": 2}])
    assert json.loads(path.read_text()) == [{"a": 1}, {"a": 2}]
    path.write_text("[]")
    write_all({"path": str(path)}, [{"a": 3}])
    assert json.loads(path.read_text()) == [{"a": 3}]


def test_json_appends_to_an_array_left_unterminated_by_a_killed_run(tmp_path):
    path = tmp_path / "out.json"
    path.write_text('[\n{"a": 1},\n{"a": 2}')
    write_all({"path": str(path)}, [{"a": 3}])
    assert json.loads(path.read_text()) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_json_overwrite_starts_a_new_array(tmp_path):
    path = tmp_path / "out.json"
    write_all({"path": str(path)}, [{"a": 1}])
    write_all({"path": str(path), "overwrite": True}, [{"a": 2}])
    assert json.loads(path.read_text()) == [{"a": 2}]


def test_json_refuses_to_append_to_something_that_is_not_an_array(tmp_path):
    path = tmp_path / "out.json"
    path.write_text('{"not": "an array"}')
    with pytest.raises(ConfigError, match="not a JSON array"):
        open_output({"path": str(path)}, "books")
    assert path.read_text() == '{"not": "an array"}'
    write_all({"path": str(path), "overwrite": True}, [{"a": 1}])
    assert json.loads(path.read_text()) == [{"a": 1}]


# -- csv --------------------------------------------------------------------------
def read_csv(path: Path) -> list[list[str]]:
    import csv
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_csv_header_comes_from_the_first_item(tmp_path):
    path = tmp_path / "out.csv"
    write_all({"path": str(path)}, [{"title": "A", "price": 1.5}, {"price": 2, "title": "B"}])
    assert read_csv(path) == [["title", "price"], ["A", "1.5"], ["B", "2"]]


def test_csv_missing_keys_are_empty_cells(tmp_path):
    path = tmp_path / "out.csv"
    write_all({"path": str(path)}, [{"a": 1, "b": 2}, {"a": 3}, {"b": None, "a": 4}])
    assert read_csv(path) == [["a", "b"], ["1", "2"], ["3", ""], ["4", ""]]


def test_csv_later_new_keys_are_dropped_with_one_warning_each(tmp_path, caplog):
    path = tmp_path / "out.csv"
    with caplog.at_level(logging.WARNING, logger="scraper.outputs"):
        write_all({"path": str(path)}, [{"a": 1}, {"a": 2, "extra": "x"}, {"a": 3, "extra": "y"},
                                        {"a": 4, "other": 0}])
    assert read_csv(path) == [["a"], ["1"], ["2"], ["3"], ["4"]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "'extra'" in warnings[0] and "'other'" in warnings[1]
    assert all(str(path) in w for w in warnings)


def test_csv_lists_and_dicts_are_json(tmp_path):
    path = tmp_path / "out.csv"
    write_all({"path": str(path)}, [{"tags": ["a", "é"], "info": {"n": 1}, "s": 'say "hi", ok\nbye'}])
    header, row = read_csv(path)
    assert json.loads(row[0]) == ["a", "é"] and json.loads(row[1]) == {"n": 1}
    assert row[2] == 'say "hi", ok\nbye'


def test_csv_appending_keeps_the_existing_header(tmp_path, caplog):
    path = tmp_path / "out.csv"
    write_all({"path": str(path)}, [{"a": 1, "b": 2}])
    with caplog.at_level(logging.WARNING, logger="scraper.outputs"):
        write_all({"path": str(path)}, [{"b": 3, "c": 4, "a": 5}])
    assert read_csv(path) == [["a", "b"], ["1", "2"], ["5", "3"]]
    assert any("'c'" in r.getMessage() for r in caplog.records)


def test_csv_appending_to_an_empty_file_writes_a_header(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("")
    write_all({"path": str(path)}, [{"a": 1}])
    assert read_csv(path) == [["a"], ["1"]]


def test_csv_overwrite_takes_the_header_from_the_new_first_item(tmp_path):
    path = tmp_path / "out.csv"
    write_all({"path": str(path)}, [{"a": 1}])
    write_all({"path": str(path), "overwrite": True}, [{"z": 9}])
    assert read_csv(path) == [["z"], ["9"]]


def test_csv_fields_fix_the_columns_even_without_items(tmp_path):
    path = tmp_path / "out.csv"
    write_all({"path": str(path), "fields": ["title", "url"]}, [])
    assert read_csv(path) == [["title", "url"]]
    write_all({"path": str(path), "fields": ["title", "url"]}, [{"url": "u", "x": 1}])
    assert read_csv(path) == [["title", "url"], ["", "u"]]


def test_csv_fields_must_be_a_list_of_names(tmp_path):
    with pytest.raises(ConfigError, match="fields"):
        open_output({"path": str(tmp_path / "o.csv"), "fields": "title,url"}, "books")


def test_csv_scalar_values_are_written_without_json_quotes(tmp_path):
    path = tmp_path / "out.csv"
    write_all({"path": str(path)}, [{"when": dt.date(2024, 1, 2), "price": decimal.Decimal("1.10")}])
    assert read_csv(path)[1] == ["2024-01-02", "1.10"]


def test_csv_cells_a_spreadsheet_would_run_are_escaped_by_default(tmp_path):
    # issue 12: a page's '=HYPERLINK(...)' was written verbatim and ran when opened
    path = tmp_path / "out.csv"
    cells = {"a": "=HYPERLINK(\"http://x\")", "b": "+1", "c": "-2+3", "d": "@SUM(A1)",
             "e": "\tx", "f": "plain", "g": -5, "h": 1.5}
    write_all({"path": str(path)}, [cells])
    assert read_csv(path)[1] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2+3", "'@SUM(A1)",
                                 "'\tx", "plain", "-5", "1.5"]
    raw = tmp_path / "raw.csv"
    write_all({"path": str(raw), "csv_formula_escape": False}, [cells])
    assert read_csv(raw)[1][:4] == ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)"]


def test_unknown_keys_in_an_output_entry_are_errors(tmp_path):
    # issue 12: `feilds:` was ignored silently
    project = write_project(tmp_path, {}, config="outputs:\n  - {path: o.csv, feilds: [a]}\n")
    r = run_cli("list", cwd=project)
    assert r.returncode == 2
    assert "unknown key 'feilds'" in r.stderr and "did you mean 'fields'?" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


# -- sqlite -------------------------------------------------------------------------
def test_sqlite_a_table_named_after_the_spider(tmp_path):
    db = tmp_path / "out.db"
    write_all({"path": str(db)}, [{"t": "a"}], spider="books")
    write_all({"path": str(db)}, [{"u": "b"}], spider="news")
    assert [r["t"] for r in rows(db, "books")] == ["a"]
    assert [r["u"] for r in rows(db, "news")] == ["b"]
    assert "t" not in columns(db, "news")


def test_sqlite_new_keys_add_columns(tmp_path):
    db = tmp_path / "out.db"
    write_all({"path": str(db)}, [{"a": 1}, {"a": 2, "b": "x"}, {"c": 3.5}])
    assert columns(db, "books") == ["a", "b", "c"]
    assert [(r["a"], r["b"], r["c"]) for r in rows(db, "books")] == [(1, None, None), (2, "x", None),
                                                                      (None, None, 3.5)]


def test_sqlite_lists_and_dicts_are_json_text(tmp_path):
    db = tmp_path / "out.db"
    write_all({"path": str(db)}, [{"tags": ["a", "é"], "info": {"n": [1]}, "flag": True, "raw": b"\x00"}])
    (row,) = rows(db, "books")
    assert json.loads(row["tags"]) == ["a", "é"] and json.loads(row["info"]) == {"n": [1]}
    assert row["flag"] == 1 and row["raw"] == b"\x00"
    con = sqlite3.connect(db)
    assert con.execute("SELECT typeof(tags), json_extract(info, '$.n[0]') FROM books").fetchone() == ("text", 1)
    con.close()


def test_sqlite_appends_and_overwrite_replaces_only_that_spiders_table(tmp_path):
    db = tmp_path / "out.db"
    write_all({"path": str(db)}, [{"n": 1}], spider="books")
    write_all({"path": str(db)}, [{"n": 2}], spider="books")
    write_all({"path": str(db)}, [{"m": 1}], spider="news")
    assert [r["n"] for r in rows(db, "books")] == [1, 2]
    write_all({"path": str(db), "overwrite": True}, [{"z": 3}], spider="books")
    assert rows(db, "books") == [{"z": 3}]
    assert [r["m"] for r in rows(db, "news")] == [1]


def test_sqlite_odd_key_and_spider_names_are_quoted(tmp_path):
    db = tmp_path / "out.db"
    write_all({"path": str(db)}, [{'we"ird key': 1, "select": 2}], spider="my-spider")
    assert rows(db, "my-spider")[0] == {'we"ird key': 1, "select": 2}


def test_sqlite_an_existing_non_database_file_is_a_config_error(tmp_path):
    db = tmp_path / "out.db"
    db.write_text("this is not a database, it is long enough to have a header " * 4)
    with pytest.raises(ConfigError, match="SQLite"):
        open_output({"path": str(db)}, "books")


def test_sqlite_accepts_an_item_with_its_own_id_key(tmp_path):
    db = tmp_path / "out.db"
    write_all({"path": str(db)}, [{"_id": "5f2b9c", "t": "a"}, {"_id": "5f2b9d", "t": "b"}])
    assert [r["t"] for r in rows(db, "books")] == ["a", "b"]


def test_sqlite_keys_differing_only_in_case_do_not_abort(tmp_path):
    db = tmp_path / "out.db"
    write_all({"path": str(db)}, [{"title": "a"}, {"Title": "b"}])
    assert len(rows(db, "books")) == 2


def test_sqlite_scalar_values_are_stored_without_json_quotes(tmp_path):
    db = tmp_path / "out.db"
    write_all({"path": str(db)}, [{"when": dt.date(2024, 1, 2), "price": decimal.Decimal("1.10")}])
    (row,) = rows(db, "books")
    assert (row["when"], row["price"]) == ("2024-01-02", "1.10")


# -- through the command line -----------------------------------------------------------
SPIDER = '''
from scraper import Request, Spider


class ItemsSpider(Spider):
    name = "items"
    base_url = "http://127.0.0.1:1/"
    run = "1"

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        for li in response.css("li"):
            name = li.css("::text").get()
            item = {"run": self.run, "name": name, "tags": li.attrib.get("data-tags", "").split(),
                    "info": {"len": len(name)}}
            if li.attrib.get("class") == "extra":
                item["extra"] = "yes"
            yield item
'''

LIST = "<html><body><ul><li data-tags='a b'>one</li><li class='extra'>two</li></ul></body></html>"


@pytest.fixture
def project(tmp_path, site):
    site.route("/", LIST)
    return write_project(tmp_path, {"items": SPIDER}, "obey_robots: false\nworkers: 2\n")


def run(project: Path, site, *args: str):
    return run_cli("run", "items", "-a", f"base_url={site.url}", *args, cwd=project)


def expected(run_id: str) -> list[dict]:
    return [{"run": run_id, "name": "one", "tags": ["a", "b"], "info": {"len": 3}},
            {"run": run_id, "name": "two", "tags": [], "info": {"len": 3}, "extra": "yes"}]


def test_cli_jsonl_appends_with_o_and_overwrites_with_capital_o(project, site):
    assert run(project, site, "-o", "out.jsonl").returncode == 0
    assert run(project, site, "-o", "out.jsonl", "-a", "run=2").returncode == 0
    assert jsonl(project / "out.jsonl") == expected("1") + expected("2")
    p = run(project, site, "-O", "out.jsonl", "-a", "run=3")
    assert p.returncode == 0, p.stderr
    assert jsonl(project / "out.jsonl") == expected("3")


def test_cli_json_stays_a_valid_array_after_a_second_run(project, site):
    assert run(project, site, "-o", "out.json").returncode == 0
    assert json.loads((project / "out.json").read_text()) == expected("1")
    assert run(project, site, "-o", "out.json", "-a", "run=2").returncode == 0
    assert json.loads((project / "out.json").read_text()) == expected("1") + expected("2")


def test_cli_csv_header_json_cells_dropped_key_warning_and_append(project, site):
    p = run(project, site, "-o", "out.csv")
    assert p.returncode == 0, p.stderr
    assert "'extra'" in p.stderr and "WARNING" in p.stderr
    p = run(project, site, "-o", "out.csv", "-a", "run=2")
    assert p.returncode == 0, p.stderr
    table = read_csv(project / "out.csv")
    assert table[0] == ["run", "name", "tags", "info"]
    assert [r[:2] for r in table[1:]] == [["1", "one"], ["1", "two"], ["2", "one"], ["2", "two"]]
    assert json.loads(table[1][2]) == ["a", "b"] and json.loads(table[1][3]) == {"len": 3}


def test_cli_sqlite_table_per_spider_with_added_columns(project, site):
    assert run(project, site, "-o", "out.db").returncode == 0
    assert run(project, site, "-o", "out.db", "-a", "run=2").returncode == 0
    got = rows(project / "out.db", "items")
    assert [(r["run"], r["name"], r["extra"]) for r in got] == [
        ("1", "one", None), ("1", "two", "yes"), ("2", "one", None), ("2", "two", "yes")]
    assert json.loads(got[0]["tags"]) == ["a", "b"] and json.loads(got[0]["info"]) == {"len": 3}


def test_cli_several_outputs_at_once_with_the_spider_placeholder(project, site):
    p = run(project, site, "-o", "out/{spider}.jsonl", "-o", "out/{spider}.csv")
    assert p.returncode == 0, p.stderr
    assert jsonl(project / "out" / "items.jsonl") == expected("1")
    assert len(read_csv(project / "out" / "items.csv")) == 3


def test_cli_dash_writes_json_lines_and_nothing_else_to_stdout(project, site):
    p = run(project, site, "-o", "-")
    assert p.returncode == 0, p.stderr
    assert [json.loads(line) for line in p.stdout.splitlines()] == expected("1")
    assert "items" in p.stderr  # the summary went to stderr
    assert not list(project.glob("-*"))


def test_cli_unwritable_output_is_exit_2_with_one_line(project, site):
    (project / "afile").write_text("x")
    p = run(project, site, "-o", "afile/out.jsonl")
    assert p.returncode == 2
    assert p.stdout == ""
    assert len(p.stderr.splitlines()) == 1 and "afile/out.jsonl" in p.stderr
    assert "Traceback" not in p.stderr
    assert not site.hits  # nothing was fetched


def test_cli_unknown_extension_is_exit_2_with_one_line(project, site):
    p = run(project, site, "-o", "out.xml")
    assert p.returncode == 2
    assert p.stdout == ""
    assert len(p.stderr.splitlines()) == 1 and "out.xml" in p.stderr
    assert not (project / "out.xml").exists()
    assert not site.hits


@pytest.mark.parametrize("bad", [["-O", "bad.xml"], ["--summary", "keep.jsonl/s.json"]],
                         ids=["bad-second-output", "bad-summary-path"])
def test_cli_usage_error_leaves_an_overwrite_target_untouched(project, site, bad):
    keep = project / "keep.jsonl"
    keep.write_text('{"keep": 1}\n')
    p = run(project, site, "-O", "keep.jsonl", *bad)
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1
    assert keep.read_text() == '{"keep": 1}\n'
