"""Backends are opened by URL scheme through the registry: a backend of one's own,
registered under its own scheme, runs a real crawl without touching the engine."""

from __future__ import annotations

import pytest

from scraper import Request, Spider
from scraper.exceptions import StorageUnusable
from scraper.storage import MemoryBackend, mask_url, open_backend, register, schemes
from scraper.storage.registry import BackendOptions

from .conftest import crawl, page, run_cli, write_project


class CountingBackend(MemoryBackend):
    """A memory backend that counts its transactions: proof that the crawl used it."""

    url = "counting://"
    opened: list[CountingBackend] = []

    def __init__(self, url: str, options: BackendOptions) -> None:
        super().__init__(options.lease_seconds)
        self.transactions = 0
        self.spider = options.spider
        CountingBackend.opened.append(self)

    def transaction(self):  # type: ignore[override]
        self.transactions += 1
        return super().transaction()


def test_a_registered_backend_runs_a_real_crawl(site):
    register("counting", CountingBackend)
    site.route("/", page("/a", "/b"))
    site.route("/a", page("/b"))
    site.route("/b", page("/"))

    class S(Spider):
        name = "reg"
        start_urls = [site.url + "/"]

        def parse(self, response):
            yield {"url": response.url}
            yield from response.follow_all(response.links())

    CountingBackend.opened.clear()
    stats, items = crawl(S, {"backend": "counting://anything"})
    assert sorted(i["url"] for i in items) == [site.url + "/", site.url + "/a", site.url + "/b"]
    assert stats.pages == 3
    [backend] = CountingBackend.opened
    assert backend.spider == "reg" and backend.transactions >= 3
    assert "counting" in schemes()


def test_an_unknown_scheme_names_the_url_and_the_known_ones():
    with pytest.raises(StorageUnusable, match=r"nosuch://x: unknown backend \(known schemes: .*memory"):
        open_backend("nosuch://x", BackendOptions(spider="s"))


def test_unknown_backend_on_the_command_line_is_one_line_exit_2(tmp_path):
    project = write_project(tmp_path, {"s": "from scraper import Spider\n\nclass S(Spider):\n"
                                            "    name = 's'\n    start_urls = ['http://127.0.0.1:9/']\n"})
    r = run_cli("run", "s", "--backend", "nosuch://u:secret@h/0", cwd=project)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "unknown backend" in r.stderr and "secret" not in r.stderr


def test_passwords_are_masked_in_urls():
    assert mask_url("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert mask_url("redis://user:pw@h/0") == "redis://user:***@h/0"
    assert mask_url("redis://h:6379/0") == "redis://h:6379/0"


def test_an_entry_point_backend_is_found(monkeypatch):
    import scraper.storage.registry as registry

    class EP:
        name = "viaep"
        value = "scraper.storage.memory:open_memory"

    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: [EP] if group == "scraper.backends" else [])
    backend = open_backend("viaep://", BackendOptions(spider="s"))
    assert isinstance(backend, MemoryBackend)


def test_request_round_trips_through_its_one_encoding():
    from scraper.http import decode_request, encode_request

    r = Request("http://h/x?b=1&a=2", "parse_item", method="POST", data={"k": "v"},
                meta={"m": 1}, cb_kwargs={"n": 2}, priority=3, dont_filter=True)
    r.depth, r.attempt = 2, 1
    back = decode_request(encode_request(r))
    assert (back.url, back.method, back.body, back.meta, back.cb_kwargs, back.priority,
            back.dont_filter, back.depth, back.attempt, back.callback) == (
        r.url, "POST", b"k=v", {"m": 1}, {"n": 2}, 3, True, 2, 1, "parse_item")
