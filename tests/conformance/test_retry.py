"""Retries, against Scrapy's RetryMiddleware tests, run black-box: a real crawl of a local
server, counting what the server received.

Source: Scrapy, tests/test_downloadermiddleware_retry.py (classes TestRetry and
TestMaxRetryTimes). Scrapy's ``RETRY_TIMES``/``max_retry_times`` count *retries*;
our ``retry.attempts`` counts *tries* (retries + 1); the ``max_retry_times`` and
``dont_retry`` meta keys keep Scrapy's meaning.

DEVIATIONS (on purpose):
- test_priority_adjust: a retried request keeps its priority. It waits in the
  frontier with a not-before time (the back-off) instead, so it cannot starve
  other requests and lowering its priority would only delay it further.
- test_503's stats keys (``retry/count``, ``retry/max_reached``...): the summary
  counts ``retries`` and, per final failure, its kind (``http-503``) and
  ``dead_letters``.
- test_give_up_log_level_*, RETRY_EXCEPTIONS: no such settings; what is retried is
  fixed (timeouts, connection errors, ``retry.statuses``).
"""

from __future__ import annotations

from scraper import Request, Spider

from ..conftest import Reply, Site, crawl, page


def _spider(*requests):
    class S(Spider):
        name = "retry"

        def start_requests(self):
            yield from requests

        def parse(self, response):
            yield {"url": response.url, "status": response.status}

        def failed(self, failure):
            yield {"failed": failure.request.url, "kind": failure.kind}
    return S


def _run(*requests, **settings):
    base = {"retry.backoff": 0.01, "retry.backoff_max": 0.02, "timeout": [2, 0.3]}
    return crawl(_spider(*requests), {**base, **settings})


def _slow(site: Site, path: str) -> None:
    site.route(path, Reply(page(), delay=1.0))  # longer than the read timeout: a timeout


def _request(site: Site, path: str, **meta) -> Request:
    return Request(site.url + path, errback="failed", meta=meta or None)


# Scrapy: TestRetry.test_404
def test_404_is_not_retried(site):
    stats, items = _run(_request(site, "/404"))
    assert site.count("/404") == 1
    assert items == [{"failed": site.url + "/404", "kind": "http-404"}]


# Scrapy: TestRetry.test_503 (max_retry_times 2: three tries, then given up)
def test_503_is_retried_then_given_up(site):
    site.route("/503", Reply("busy", status=503))
    stats, items = _run(_request(site, "/503"), **{"retry.attempts": 3})
    assert site.count("/503") == 3
    assert stats.retries == 2 and stats.dead == 1
    assert items == [{"failed": site.url + "/503", "kind": "http-503"}]


# Scrapy: TestRetry.test_dont_retry (True: no retry; False: retried)
def test_dont_retry_meta(site):
    site.route("/a", Reply("busy", status=503))
    site.route("/b", Reply("busy", status=503))
    _run(_request(site, "/a", dont_retry=True), _request(site, "/b", dont_retry=False),
         **{"retry.attempts": 2})
    assert site.count("/a") == 1
    assert site.count("/b") == 2


# Scrapy: TestRetry.test_dont_retry_exc
def test_dont_retry_meta_on_an_exception(site):
    _slow(site, "/slow")
    stats, items = _run(_request(site, "/slow", dont_retry=True))
    assert site.count("/slow") == 1
    assert items == [{"failed": site.url + "/slow", "kind": "timeout"}]


# Scrapy: TestRetry.test_twistederrors (timeouts, refused and lost connections are
# retried, then given up)
def test_network_errors_are_retried_then_given_up(site):
    _slow(site, "/timeout")

    def lost(hit):
        hit.handler.close_connection = True  # hang up without an answer
        return None
    site.route("/lost", lost)
    refused = Site()
    refused_url = refused.url
    refused.close()
    stats, items = _run(_request(site, "/timeout"), _request(site, "/lost"),
                        Request(refused_url + "/x", errback="failed"), **{"retry.attempts": 3})
    assert site.count("/timeout") == 3 and site.count("/lost") == 3
    assert stats.retries == 3 * 2
    kinds = sorted(i["kind"] for i in items)
    assert kinds == ["connection", "connection", "timeout"]


# Scrapy: TestMaxRetryTimes.test_with_settings_zero (RETRY_TIMES 0: tried once)
def test_no_retries_from_the_settings(site):
    _slow(site, "/x")
    _run(_request(site, "/x"), **{"retry.attempts": 1})
    assert site.count("/x") == 1


# Scrapy: TestMaxRetryTimes.test_with_metakey_zero
def test_max_retry_times_zero_in_meta(site):
    _slow(site, "/x")
    _run(_request(site, "/x", max_retry_times=0), **{"retry.attempts": 3})
    assert site.count("/x") == 1


# Scrapy: TestMaxRetryTimes.test_with_metakey_greater / test_with_metakey_lesser /
# test_without_metakey
def test_max_retry_times_in_meta_wins_over_the_settings_either_way(site):
    for path in ("/more", "/fewer", "/default"):
        _slow(site, path)
    _run(_request(site, "/more", max_retry_times=3), _request(site, "/fewer", max_retry_times=1),
         _request(site, "/default"), **{"retry.attempts": 3})
    assert site.count("/more") == 4
    assert site.count("/fewer") == 2
    assert site.count("/default") == 3


# Scrapy: TestMaxRetryTimes.test_with_dont_retry (dont_retry beats max_retry_times)
def test_dont_retry_beats_max_retry_times(site):
    _slow(site, "/x")
    _run(_request(site, "/x", max_retry_times=4, dont_retry=True))
    assert site.count("/x") == 1
