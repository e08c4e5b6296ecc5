"""The optional storage concerns, each run against every backend that declares it (the
others declare it absent: None). Same tests for every implementation."""

from __future__ import annotations

import pytest

from scraper.storage import Entry

OPTIONAL = ("robots", "counters", "items", "job", "dead")
DECLARED = {"memory": set(), "sqlite": {"job", "dead"},
            "redis": {"robots", "counters", "items", "dead"},
            "redis-cluster": {"robots", "counters", "items", "dead"}}


def _with(concern):
    """Run a test on every backend that declares ``concern``."""
    kinds = [k for k, declared in DECLARED.items() if concern in declared]
    return pytest.mark.parametrize("backend", kinds, indirect=True)


def _concern(backend, name):
    value = getattr(backend, name)
    assert value is not None
    return value


def test_each_backend_declares_its_concerns(backend, request):
    kind = request.node.callspec.params["backend"]
    assert {n for n in OPTIONAL if getattr(backend, n) is not None} == DECLARED[kind]
    assert backend.frontier is not None and backend.seen is not None and backend.hosts is not None


@_with("robots")
def test_robots_cache_claim_once_put_get(backend):
    robots = _concern(backend, "robots")
    assert robots.get("http://h:80") is None
    assert robots.claim("http://h:80", 5.0) is True
    assert robots.claim("http://h:80", 5.0) is False  # another process is fetching it
    with backend.transaction():
        robots.put("http://h:80", 200, "User-agent: *\nDisallow: /x\n")
        robots.put("http://g:80", None, "")
    assert robots.get("http://h:80") == (200, "User-agent: *\nDisallow: /x\n")
    assert robots.get("http://g:80") == (None, "")


@_with("counters")
def test_shared_counters_add_up(backend):
    counters = _concern(backend, "counters")
    with backend.transaction():
        counters.add({"pages": 3, "errors:timeout": 1})
    with backend.transaction():
        counters.add({"pages": 2})
    assert counters.totals() == {"pages": 5, "errors:timeout": 1}


@_with("items")
def test_item_stream_commits_with_the_transaction(backend):
    items = _concern(backend, "items")
    with pytest.raises(RuntimeError):
        with backend.transaction():
            items.add('{"n": 0}')
            raise RuntimeError("crash before the commit")
    with backend.transaction():
        items.add('{"n": 1}')
        items.add('{"n": 2}')
    client = backend._c.client  # the stream is read by users with XRANGE
    assert [e[1][b"item"] for e in client.xrange(backend.prefix + "items")] == [b'{"n": 1}',
                                                                              b'{"n": 2}']


@_with("job")
def test_job_state_meta_and_positions(backend):
    job = _concern(backend, "job")
    assert job.get_meta("spider") is None and job.output_positions() == {}
    with backend.transaction():
        job.set_meta("spider", "books")
        job.set_meta("stats", {"pages": 3})
        job.save_output_positions({"/out/a.jsonl": 120})
    with backend.transaction():
        job.save_output_positions({"/out/a.jsonl": 240, "/out/b.csv": 7})
    assert job.get_meta("stats") == {"pages": 3}
    assert job.output_positions() == {"/out/a.jsonl": 240, "/out/b.csv": 7}
    assert job.location


@_with("dead")
def test_dead_letters_kept_in_order_and_removed(backend):
    dead = _concern(backend, "dead")
    with backend.transaction():
        dead.add([('{"url":"http://h/a"}', "timeout"), ('{"url":"http://h/b"}', "http-500")])
    rows = dead.list()
    assert [(d, r) for _, d, r in rows] == [('{"url":"http://h/a"}', "timeout"),
                                           ('{"url":"http://h/b"}', "http-500")]
    dead.remove([rows[0][0]])
    assert [d for _, d, _ in dead.list()] == ['{"url":"http://h/b"}']


def test_clear_deletes_everything_of_the_crawl(backend):
    with backend.transaction():
        backend.frontier.push([Entry("h", "a"), Entry("h", "b")])
        backend.seen.add(b"z" * 16)
    assert backend.clear() >= 3
    assert backend.frontier.pending() == 0 and len(backend.seen) == 0
