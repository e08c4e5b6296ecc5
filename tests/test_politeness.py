"""Per-host politeness: delay per host without slowing other hosts, per-host limits,
back-off of a whole host after 429/503, randomised delay and the adaptive throttle."""

import time

import pytest

from scraper import Request, Spider

from .conftest import Reply, Site, crawl, page


@pytest.fixture
def other_site():
    s = Site()
    yield s
    s.close()


def _spider(urls):
    class S(Spider):
        name = "polite"

        def start_requests(self):
            for u in urls:
                yield Request(u)

        def parse(self, response):
            yield {"url": response.url, "t": time.monotonic()}
    return S


def _gaps(site, prefix="/p"):
    times = sorted(h.at for h in site.hits if h.path.startswith(prefix))
    return [b - a for a, b in zip(times, times[1:])]


def _assert_spaced(times, delay, count):
    """``count`` sends (pages; robots.txt is not paced), each at least ``delay`` after
    the one before."""
    assert len(times) == count, len(times)
    times = sorted(times)
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= delay - 1e-3, min(gaps)


def test_delay_spaces_requests_to_one_host_whatever_the_workers(site, other_site, sends):
    for i in range(50):
        site.route(f"/p{i}", page())
        other_site.route(f"/p{i}", page())
    urls = [f"{site.url}/p{i}" for i in range(50)] + [f"{other_site.url}/p{i}" for i in range(50)]
    t0 = time.monotonic()
    stats, items = crawl(_spider(urls), {"delay": 0.2, "workers": 16})
    took = time.monotonic() - t0
    assert len(items) == 100
    # 49 gaps of 0.2 s on each host, the two hosts in parallel: ~10 s, not 20 s or 10/16 s
    assert 9.5 <= took < 18, took
    assert len(sends) == 2
    for times in sends.values():
        _assert_spaced(times, 0.2, 50)
    assert site.max_in_flight == 1


def test_delay_runs_from_the_send_not_the_lease():
    # a request leased at t=0 that waited 50 ms in the task queue and went out at 0.05:
    # the next one may not be leased until 0.05 + delay, not 0 + delay
    from scraper.config.loading import resolve_settings
    from scraper.fetch.politeness import Politeness
    from scraper.storage.memory import MemoryHostState

    settings = resolve_settings(cli={"delay": 0.2})
    p = Politeness(MemoryHostState(), settings.politeness)
    assert p.take("h", 1, now=100.0)
    p.finished("h", 1, latency=0.01, status=200, sent_at=100.05)
    assert not p.take("h", 2, now=100.2)
    assert not p.take("h", 2, now=100.249)
    assert p.take("h", 2, now=100.25)
    # a request never sent (refused) frees its slot without moving the host's time
    p.finished("h", 2)
    assert p.take("h", 3, now=100.45)


def test_a_slow_host_does_not_slow_another(site, other_site, sends):
    site.route("/robots.txt", "User-agent: *\nCrawl-delay: 0.2\n", content_type="text/plain")
    for i in range(50):
        site.route(f"/p{i}", page())
        other_site.route(f"/p{i}", page())
    urls = [f"{site.url}/p{i}" for i in range(50)] + [f"{other_site.url}/p{i}" for i in range(50)]
    t0 = time.monotonic()
    stats, items = crawl(_spider(urls), {"workers": 16, "obey_robots": True})
    by_host = {}
    for item in items:
        by_host.setdefault(item["url"].rsplit("/", 1)[0], []).append(item["t"] - t0)
    assert max(by_host[other_site.url]) < 2.0       # not held back by the delayed host
    assert max(by_host[site.url]) >= 9.5             # 49 gaps of 0.2 s
    _assert_spaced(sends[site.url], 0.2, 50)


def test_per_host_workers_bounds_concurrency_per_host(site, other_site):
    for i in range(12):
        site.route(f"/p{i}", Reply(page(), delay=0.2))
        other_site.route(f"/p{i}", Reply(page(), delay=0.2))
    urls = [f"{site.url}/p{i}" for i in range(12)] + [f"{other_site.url}/p{i}" for i in range(12)]
    stats, items = crawl(_spider(urls), {"workers": 8, "per_host_workers": 2})
    assert len(items) == 24
    assert site.max_in_flight == 2 and other_site.max_in_flight == 2


def test_429_with_retry_after_backs_off_the_whole_host(site, sends):
    calls = {"n": 0}

    def limited(hit):
        calls["n"] += 1
        if calls["n"] == 1:
            return Reply("slow down", status=429, headers={"Retry-After": "1"})
        return Reply(page())
    site.route("/p0", limited)
    for i in range(1, 6):
        site.route(f"/p{i}", page())
    urls = [f"{site.url}/p{i}" for i in range(6)]
    stats, items = crawl(_spider(urls), {"workers": 4, "per_host_workers": 1})
    assert len(items) == 6 and stats.retries == 1
    assert site.hits[0].path == "/p0"
    # no request at all went to the host for the Retry-After second
    times = sorted(sends[site.url])
    assert times[1] - times[0] >= 1.0 - 1e-3


def test_503_backs_off_host_for_every_worker(site, sends):
    answers = iter([503])
    site.route("/p0", lambda hit: Reply("busy", status=next(answers, 200)))
    for i in range(1, 4):
        site.route(f"/p{i}", Reply(page(), delay=0.05))
    urls = [f"{site.url}/p{i}" for i in range(4)]
    stats, items = crawl(_spider(urls), {"workers": 4, "per_host_workers": 1,
                                         "retry.backoff": 0.5})
    assert len(items) == 4
    times = sorted(sends[site.url])
    assert all(t - times[0] >= 0.5 - 1e-3 for t in times[1:])


def test_randomize_delay_varies_the_gaps(site, sends):
    for i in range(12):
        site.route(f"/p{i}", page())
    crawl(_spider([f"{site.url}/p{i}" for i in range(12)]),
          {"delay": 0.1, "randomize_delay": True})
    _assert_spaced(sends[site.url], 0.05, 12)  # 0.5x to 1.5x the delay
    times = sorted(sends[site.url])
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) - min(gaps) > 0.02


def test_autothrottle_lowers_concurrency_toward_target(site):
    for i in range(30):
        site.route(f"/p{i}", Reply(page(), delay=0.1))
    urls = [f"{site.url}/p{i}" for i in range(30)]
    stats, items = crawl(_spider(urls), {"workers": 8, "per_host_workers": 8,
                                         "autothrottle": True, "autothrottle_target": 1.0})
    assert len(items) == 30
    assert site.max_in_flight <= 2
