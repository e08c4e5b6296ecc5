"""Declared items, through real crawls of a local site: callbacks yielding dicts,
dataclasses, attrs and pydantic objects; outputs writing them as plain rows; pipelines
seeing the objects themselves (and working for all of them through ItemAdapter); a
spider's ``item_class`` checking dict items, with invalid ones counted and listed; and
custom counters (``self.stats.inc``) in the summary, across a resumed job too."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import decimal
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import pydantic
import pytest
from itemadapter import ItemAdapter

from scraper import DropItem, Request, Spider
from scraper.exceptions import SpiderError
from scraper.crawl.runner import build_crawl
from scraper.items import InvalidItem, dumps, is_item, item_to_dict, item_validator

from .conftest import ROOT, Collect, Reply, crawl, page, run_cli, write_project


# -- item types ---------------------------------------------------------------------
@dataclasses.dataclass
class Product:
    title: str
    price: float
    tags: list[str] = dataclasses.field(default_factory=list)
    seen: dt.date | None = None


@attrs.define
class AttrsProduct:
    title: str
    price: float
    _sku: str = "none"


class Maker(pydantic.BaseModel):
    name: str


class PydanticProduct(pydantic.BaseModel):
    title: str
    price: float
    maker: Maker | None = None
    cost: decimal.Decimal = decimal.Decimal("0")


class Positive(pydantic.BaseModel):
    price: float

    @pydantic.field_validator("price")
    @classmethod
    def positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be positive")
        return v


@dataclasses.dataclass
class Checked:
    price: float

    def __post_init__(self) -> None:
        if self.price < 0:
            raise ValueError("negative price")


def _shop(site, n: int = 6) -> None:
    """'/' links to /p/0 .. /p/{n-1}; each product page has a title and a price."""
    site.route("/", page(*[f"/p/{i}" for i in range(n)]))
    for i in range(n):
        site.route(f"/p/{i}", page(title=f"item {i}", extra=f'<span class="price">{i}.5</span>'))


class _ShopSpider(Spider):
    """Follows every product link of '/'; subclasses say what each product page yields."""

    name = "shop"

    def start_requests(self):
        yield Request(self.base + "/")

    def parse(self, response):
        yield from response.follow_all(response.links(), callback=self.parse_product)

    def parse_product(self, response):
        raise NotImplementedError


def _spider(site, product, **attrs_: Any) -> type[Spider]:
    """A shop spider whose parse_product is ``product(self, response, index)``."""
    def parse_product(self, response):
        return product(self, response, int(response.url.rsplit("/", 1)[1]))

    return type("Shop", (_ShopSpider,), {"base": site.url, "parse_product": parse_product,
                                         **attrs_})


def crawl_with(spider: type[Spider], *pipelines: Any, **kw: Any) -> tuple[Any, list[Any]]:
    """Like conftest's ``crawl``, with ``pipelines`` run before the collecting one."""
    collect = Collect()
    settings = {"obey_robots": False, "workers": 4, **kw.pop("settings", {})}
    stats = build_crawl(spider, settings=settings, pipelines=[*pipelines, collect], **kw).run()
    return stats, collect.items


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _title_price(response) -> tuple[str, str]:
    return response.css("title::text").get(), response.css("span.price::text").get()


# -- every item type reaches the outputs as a plain row --------------------------------
def test_dataclass_attrs_pydantic_and_dict_items_are_written_as_plain_rows(site, tmp_path):
    _shop(site, 4)

    def product(self, response, i):
        title, price = _title_price(response)
        kinds = [
            lambda: {"title": title, "price": float(price), "kind": "dict"},
            lambda: Product(title, float(price), ["a", "b"], dt.date(2024, 5, 1)),
            lambda: AttrsProduct(title, float(price), sku=f"sku{i}"),
            lambda: PydanticProduct(title=title, price=price, maker=Maker(name="acme"),
                                    cost=decimal.Decimal("1.10")),
        ]
        yield kinds[i]()

    out, table = tmp_path / "out.jsonl", tmp_path / "out.csv"
    stats, items = crawl(_spider(site, product),
                         outputs=[{"path": str(out)}, {"path": str(table)}])
    assert stats.items == 4 and not stats.errors
    # the pipeline saw the objects themselves, not dicts
    assert sorted(type(i).__name__ for i in items) == ["AttrsProduct", "Product",
                                                       "PydanticProduct", "dict"]
    rows = {r["title"]: r for r in _jsonl(out)}
    assert rows["item 0"] == {"title": "item 0", "price": 0.5, "kind": "dict"}
    assert rows["item 1"] == {"title": "item 1", "price": 1.5, "tags": ["a", "b"],
                              "seen": "2024-05-01"}
    assert rows["item 2"] == {"title": "item 2", "price": 2.5, "_sku": "sku2"}
    # pydantic coerced "3.5" to a float; the nested model is a nested object
    assert rows["item 3"] == {"title": "item 3", "price": 3.5, "maker": {"name": "acme"},
                              "cost": "1.10"}
    with open(table, newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert len(written) == 4
    by_title = {r["title"]: r for r in written}
    # columns come from the first item; a nested model in a cell is JSON text
    assert set(by_title) == {"item 0", "item 1", "item 2", "item 3"}
    assert all(r["price"] in {"0.5", "1.5", "2.5", "3.5"} for r in written)


def test_nested_items_in_a_dict_are_written_as_objects(site, tmp_path):
    _shop(site, 1)

    def product(self, response, i):
        yield {"product": Product("t", 1.0), "maker": Maker(name="m"),
               "more": [AttrsProduct("x", 2.0)]}

    out = tmp_path / "out.jsonl"
    stats, _ = crawl(_spider(site, product), outputs=[{"path": str(out)}])
    assert stats.items == 1
    assert _jsonl(out) == [{"product": {"title": "t", "price": 1.0, "tags": [], "seen": None},
                            "maker": {"name": "m"},
                            "more": [{"title": "x", "price": 2.0, "_sku": "none"}]}]


# -- pipelines get the object; ItemAdapter makes one pipeline fit every type ---------------
class Discount:
    """Written once for every item type: reads and writes through ItemAdapter."""

    def process(self, item: Any, spider: Any) -> Any:
        adapter = ItemAdapter(item)
        if adapter.get("price") is None:
            raise DropItem("no price")
        adapter["price"] = round(adapter["price"] * 0.5, 2)
        return item


@pytest.mark.parametrize("make", [
    lambda t, p: {"title": t, "price": p},
    lambda t, p: Product(t, p),
    lambda t, p: AttrsProduct(t, p),
    lambda t, p: PydanticProduct(title=t, price=p),
], ids=["dict", "dataclass", "attrs", "pydantic"])
def test_a_pipeline_written_with_itemadapter_works_for_every_item_type(site, tmp_path, make):
    _shop(site, 3)

    def product(self, response, i):
        title, price = _title_price(response)
        yield make(title, float(price))

    out = tmp_path / "out.jsonl"
    stats, items = crawl_with(_spider(site, product), Discount(), outputs=[{"path": str(out)}])
    assert stats.items == 3 and not stats.errors
    assert sorted(r["price"] for r in _jsonl(out)) == [0.25, 0.75, 1.25]
    assert all(type(i) is type(make("t", 1.0)) for i in items)  # the object, changed in place


def test_a_pipeline_returning_something_that_is_not_an_item_is_a_pipeline_error(site, tmp_path):
    _shop(site, 2)

    class Broken:
        def process(self, item, spider):
            return "done"

    def product(self, response, i):
        yield Product("t", 1.0)

    out = tmp_path / "out.jsonl"
    stats, items = crawl_with(_spider(site, product), Broken(), outputs=[{"path": str(out)}])
    assert stats.items == 0 and stats.errors["pipeline-error"] == 2
    assert out.read_text() == ""


def test_yielding_something_that_is_not_an_item_is_a_bad_output(site):
    _shop(site, 1)

    def product(self, response, i):
        yield Product("t", 1.0)
        yield "not an item"
        yield Product  # a class, not an instance

    stats, items = crawl(_spider(site, product))
    assert items == [Product("t", 1.0)]
    assert stats.errors["bad-output"] == 2


# -- item_class: dict items checked and made into the declared class -----------------------
def _mixed_dicts(self, response, i):
    """Pages 0-2 give good dicts (page 2 leaves out a field with a default); page 3 lacks
    the price, page 4 has an unknown key, page 5 a price that is no number."""
    title, price = _title_price(response)
    good = {"title": title, "price": price}
    yield [good, good, {"title": title, "price": price},
           {"title": title},
           {"title": title, "price": price, "colour": "red"},
           {"title": title, "price": "cheap"}][i]


def test_item_class_dataclass_checks_fields_and_makes_instances(site, tmp_path):
    _shop(site, 6)
    out = tmp_path / "out.jsonl"
    stats, items = crawl(_spider(site, _mixed_dicts, item_class=Product),
                         outputs=[{"path": str(out)}])
    # types are not checked for dataclasses: "cheap" passes
    assert stats.items == 4 and stats.errors["invalid-item"] == 2
    assert all(type(i) is Product for i in items)
    rows = sorted(_jsonl(out), key=lambda r: r["title"])
    assert rows[0] == {"title": "item 0", "price": "0.5", "tags": [], "seen": None}
    summary = stats.summary()
    assert summary["invalid_items"] == {
        "price: field required": {"count": 1, "url": site.url + "/p/3"},
        "colour: unknown field": {"count": 1, "url": site.url + "/p/4"},
    }
    assert summary["errors"]["invalid-item"] == 2


def test_item_class_pydantic_checks_and_coerces_types(site, tmp_path):
    _shop(site, 6)
    out = tmp_path / "out.jsonl"
    stats, items = crawl(_spider(site, _mixed_dicts, item_class=PydanticProduct),
                         outputs=[{"path": str(out)}])
    # pydantic ignores unknown keys unless the model forbids them: page 4 passes
    assert stats.items == 4 and stats.errors["invalid-item"] == 2
    assert all(type(i) is PydanticProduct for i in items)
    rows = _jsonl(out)
    assert all(type(r["price"]) is float for r in rows)  # "0.5" became 0.5
    assert "colour" not in {k for r in rows for k in r}
    invalid = stats.summary()["invalid_items"]
    assert invalid["price: Field required"] == {"count": 1, "url": site.url + "/p/3"}
    (problem, entry), = [(k, v) for k, v in invalid.items() if k != "price: Field required"]
    assert problem.startswith("price: Input should be a valid number")
    assert entry == {"count": 1, "url": site.url + "/p/5"}


def test_item_class_attrs_uses_init_names(site, tmp_path):
    _shop(site, 3)

    def product(self, response, i):
        title, price = _title_price(response)
        yield [{"title": title, "price": price, "sku": "s1"},  # _sku is set as sku=
               {"title": title, "price": price},
               {"title": title, "price": price, "_sku": "s3"}][i]

    out = tmp_path / "out.jsonl"
    stats, items = crawl(_spider(site, product, item_class=AttrsProduct),
                         outputs=[{"path": str(out)}])
    assert stats.items == 2 and stats.errors["invalid-item"] == 1
    assert sorted(r["_sku"] for r in _jsonl(out)) == ["none", "s1"]
    assert list(stats.invalid_items) == ["_sku: unknown field"]


def test_item_class_counts_each_problem_and_keeps_the_first_url(site, tmp_path, caplog):
    _shop(site, 8)

    def product(self, response, i):
        yield {"title": "t"}  # every page: price missing

    with caplog.at_level("WARNING", logger="scraper.crawl.record"):
        stats, items = crawl(_spider(site, product, item_class=Product),
                             settings={"workers": 1})
    assert items == [] and stats.items == 0 and stats.errors["invalid-item"] == 8
    entry = stats.invalid_items["price: field required"]
    assert entry == {"count": 8, "url": site.url + "/p/0"}
    # logged once, not once per item
    logged = [r for r in caplog.records if "price: field required" in r.getMessage()]
    assert len(logged) == 1 and site.url + "/p/0" in logged[0].getMessage()


def test_item_class_leaves_items_of_a_declared_type_alone(site):
    _shop(site, 2)

    def product(self, response, i):
        yield Product("t", 1.0) if i == 0 else AttrsProduct("a", 2.0)

    stats, items = crawl(_spider(site, product, item_class=PydanticProduct))
    assert stats.items == 2 and not stats.errors
    assert sorted(type(i).__name__ for i in items) == ["AttrsProduct", "Product"]


def test_validator_errors_of_the_class_itself_are_problems():
    check = item_validator(Checked)
    assert check({"price": 2.0}) == Checked(2.0)
    with pytest.raises(InvalidItem) as e:
        check({"price": -1.0})
    assert e.value.problems == ["Checked(): ValueError: negative price"]
    with pytest.raises(InvalidItem) as e:
        item_validator(Positive)({"price": -3})
    assert e.value.problems == ["price: Value error, must be positive"]


def test_distinct_problems_listed_are_bounded(site):
    # a validator whose message holds the value would otherwise grow the summary forever
    from scraper.crawl.stats import INVALID_KINDS_KEPT, OTHER_INVALID, Stats

    stats = Stats("s")
    for i in range(INVALID_KINDS_KEPT + 30):
        stats.invalid_item([f"price: bad value {i}"], f"http://x/{i}")
    assert len(stats.invalid_items) == INVALID_KINDS_KEPT + 1
    assert stats.invalid_items[OTHER_INVALID] == {"count": 30, "url": f"http://x/{INVALID_KINDS_KEPT}"}
    assert stats.errors["invalid-item"] == INVALID_KINDS_KEPT + 30


@pytest.mark.parametrize("bad, says", [
    ("Product", "must be a class"),
    (dict, "is not a dataclass, an attrs class or a pydantic"),
    (Product(title="t", price=1.0), "must be a class"),
])
def test_a_bad_item_class_is_a_spider_error_before_the_crawl(site, bad, says):
    spider = _spider(site, lambda *a: None, item_class=bad)
    with pytest.raises(SpiderError, match=f"spider shop: .*{says}"):
        build_crawl(spider)
    assert site.hits == []


def test_a_bad_item_class_is_one_line_and_exit_2_on_the_command_line(tmp_path):
    project = write_project(tmp_path, {"bad": '''
from scraper import Spider

class Bad(Spider):
    name = "bad"
    start_urls = ["http://127.0.0.1:9/"]
    item_class = "myproject.items.Product"

    def parse(self, response):
        yield {}
'''})
    r = run_cli("run", "bad", "-o", "out.jsonl", cwd=project)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "spider bad" in lines[0] and "item_class" in lines[0], r.stderr
    assert not (project / "out.jsonl").exists()


# -- is_item / item_to_dict -------------------------------------------------------------
def test_is_item_knows_every_item_type_and_nothing_else():
    for item in ({}, {"a": 1}, Product("t", 1.0), AttrsProduct("t", 1.0),
                 PydanticProduct(title="t", price=1.0)):
        assert is_item(item), item
    for other in (None, "s", b"b", 1, 1.5, [], (), (x for x in ()), Product, PydanticProduct,
                  object(), Request("http://x/")):
        assert not is_item(other), other


def test_item_to_dict_keeps_a_dict_itself_and_copies_the_rest():
    d = {"a": 1}
    assert item_to_dict(d) is d
    assert item_to_dict(AttrsProduct("t", 1.0)) == {"title": "t", "price": 1.0, "_sku": "none"}
    item = PydanticProduct(title="t", price=1, maker={"name": "m"})
    # nested items stay objects until written, then they are what ItemAdapter makes of them
    assert item_to_dict(item) == {"title": "t", "price": 1.0, "maker": Maker(name="m"),
                                  "cost": decimal.Decimal("0")}
    written = dumps(item_to_dict(item))
    assert written == dumps(ItemAdapter(item).asdict())
    assert json.loads(written) == {"title": "t", "price": 1.0, "maker": {"name": "m"}, "cost": "0"}


# -- custom counters ---------------------------------------------------------------------
COUNTING = '''
from scraper import Request, Spider

class Counting(Spider):
    name = "counting"
    base_url = ""

    def opened(self):
        self.stats.inc("opened")

    def start_requests(self):
        yield Request(self.base_url + "/")

    def parse(self, response):
        self.stats.inc("pages_seen")
        if "/s" in response.url:
            self.stats.inc("links_below_home", len(response.links()))
        yield {"url": response.url}
        yield from response.follow_all(response.links())

    def closed(self, reason):
        self.stats.inc("closed:" + reason)
'''

PIPELINE = '''
class CountInPipeline:
    def process(self, item, spider):
        spider.stats.inc("through_pipeline")
        return item
'''


@pytest.fixture
def tree(site):
    # "/" links to 4 sections, each to 5 pages: 25 pages; pages link back (duplicates)
    sections = [f"/s{i}" for i in range(4)]
    site.route("/", page(*sections))
    for s in sections:
        kids = [f"{s}/p{j}" for j in range(5)]
        site.route(s, page(*kids, "/"))
        for k in kids:
            site.route(k, Reply(page("/", s), delay=0.02))
    return site


def _counting_project(tmp_path: Path) -> Path:
    project = write_project(tmp_path, {"counting": COUNTING},
                            "workers: 4\nobey_robots: false\n"
                            "pipelines: [countpipe.CountInPipeline]\n")
    (project / "countpipe.py").write_text(PIPELINE)
    return project


def _run_args(site, *extra: str) -> list[str]:
    return ["run", "counting", "-a", f"base_url={site.url}", "-o", "out.jsonl", *extra]


def test_custom_counters_in_the_summary_and_its_json(tree, tmp_path):
    project = _counting_project(tmp_path)
    r = run_cli(*_run_args(tree, "--summary", "s.json"), cwd=project,
                env={"PYTHONPATH": f"{ROOT}{os.pathsep}{project}"})
    assert r.returncode == 0, r.stderr
    s = json.loads((project / "s.json").read_text())
    assert s["pages"] == 25 and s["items"] == 25
    # callbacks (worker threads), a pipeline, opened() and closed() (the coordinator)
    # links_below_home: 4 sections of 6 links, 20 pages of 2, counted with n=
    assert s["custom"] == {"opened": 1, "pages_seen": 25, "links_below_home": 64,
                           "through_pipeline": 25, "closed:finished": 1}
    assert s["invalid_items"] == {}
    line = next(x for x in r.stderr.splitlines() if x.startswith("custom"))
    assert "pages_seen 25" in line and "links_below_home 64" in line


def test_custom_counters_carry_on_across_a_resumed_job(tree, tmp_path):
    project = _counting_project(tmp_path)
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{project}"}
    first = run_cli(*_run_args(tree, "--job-dir", "job", "-s", "max_pages=8",
                               "--summary", "s1.json"), cwd=project, env=env)
    assert first.returncode == 0, first.stderr
    s1 = json.loads((project / "s1.json").read_text())
    assert s1["reason"] == "max_pages"
    assert s1["custom"]["pages_seen"] == s1["pages"] < 25
    second = run_cli(*_run_args(tree, "--job-dir", "job", "--summary", "s2.json"), cwd=project,
                     env=env)
    assert second.returncode == 0, second.stderr
    s2 = json.loads((project / "s2.json").read_text())
    assert s2["reason"] == "finished" and s2["pages"] == 25
    custom = s2["custom"]
    assert custom["pages_seen"] == 25 and custom["through_pipeline"] == 25
    assert custom["opened"] == 2 and custom["closed:max_pages"] == 1
    assert custom["closed:finished"] == 1


def test_custom_counters_are_exactly_once_across_a_hard_kill(tree, tmp_path):
    # the counts travel with their page's outcome and are saved in the same transaction
    # as its ack: a page fetched again after a kill is counted again only if it was not
    # counted before
    for s in (f"/s{i}" for i in range(4)):
        for j in range(5):
            tree.route(f"{s}/p{j}", Reply(page("/", s), delay=0.15))
    project = _counting_project(tmp_path)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{project}"}
    cmd = [sys.executable, "-m", "scraper", *_run_args(tree, "--job-dir", "job")]
    p = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    out = project / "out.jsonl"
    deadline = time.monotonic() + 30
    while p.poll() is None and time.monotonic() < deadline:
        # killed once some items are committed, while other pages are in flight
        if out.exists() and len(out.read_bytes().splitlines()) >= 8:
            break
        time.sleep(0.01)
    assert p.poll() is None, "the crawl ended before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    r = run_cli(*_run_args(tree, "--job-dir", "job", "--summary", "s.json"), cwd=project,
                env=env)
    assert r.returncode == 0, r.stderr
    s = json.loads((project / "s.json").read_text())
    assert s["pages"] == 25 and s["items"] == 25
    assert s["custom"]["pages_seen"] == 25 and s["custom"]["through_pipeline"] == 25
    assert len(_jsonl(out)) == 25


def test_stats_inc_checks_its_arguments(site):
    _shop(site, 1)

    def product(self, response, i):
        self.stats.inc("ok", 2)
        self.stats.inc("")

    stats, _ = crawl(_spider(site, product))
    assert stats.custom == {"ok": 2}
    assert stats.errors["callback"] == 1


def test_spider_stats_works_outside_a_crawl():
    # a callback called by hand (a unit test of a spider) may count too
    class S(Spider):
        name = "s"

    s = S()
    s.stats.inc("x")
    s.stats.inc("x", 2)
    assert s.stats.counts == {"x": 3}  # type: ignore[attr-defined]


def test_custom_counters_from_worker_threads_reach_the_stats_in_process(site):
    _shop(site, 6)

    def product(self, response, i):
        self.stats.inc("products")
        self.stats.inc("price_cents", int(float(_title_price(response)[1]) * 100))
        yield {"i": i}

    stats, _ = crawl_with(_spider(site, product), settings={"workers": 3})
    assert stats.custom == {"products": 6, "price_cents": sum(i * 100 + 50 for i in range(6))}
    assert stats.summary()["custom"] == {"price_cents": 1800, "products": 6}


def test_increments_in_a_worker_thread_wait_for_its_outcome():
    # the coordinator's Stats is never touched from a worker: the counts travel with the
    # outcome of the task that made them
    import threading

    from scraper.crawl.stats import Stats, WorkerCounters

    stats = Stats("s")
    taken: list[Any] = []

    def worker() -> None:
        counters = WorkerCounters.install()
        stats.inc("a")
        stats.inc("a", 2)
        stats.inc("b")
        taken.append(dict(stats.custom))  # still empty while the worker holds them
        taken.append(counters.take())
        taken.append(counters.take())     # nothing since

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert taken == [{}, {"a": 3, "b": 1}, None]
    stats.inc("c")  # this thread has no WorkerCounters: counted at once
    assert stats.custom == {"c": 1}
