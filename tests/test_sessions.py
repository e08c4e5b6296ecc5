"""Sessions: one cookie jar shared by every worker, per-request cookies, HTTP auth sent
only to its domains, proxies (setting and per request), TLS verification, headers."""

import base64
import ssl
import subprocess
import threading
from http.server import ThreadingHTTPServer

import pytest

from scraper import Request, Spider

from .conftest import Reply, Site, crawl, page


def test_cookie_set_by_one_response_is_sent_by_every_worker(site):
    site.route("/login", Reply(page(), headers={"Set-Cookie": "sid=abc123; Path=/"}))
    seen = []

    def private(hit):
        seen.append(hit.headers.get("cookie"))
        ok = "sid=abc123" in (hit.headers.get("cookie") or "")
        return Reply(page(), status=200 if ok else 403)
    for i in range(24):
        site.route(f"/private/{i}", private)

    class S(Spider):
        name = "cookies"

        def start_requests(self):
            yield Request(site.url + "/login", callback=self.logged_in)

        def logged_in(self, response):
            for i in range(24):
                yield Request(f"{site.url}/private/{i}")

        def parse(self, response):
            yield {"url": response.url}

    stats, items = crawl(S, {"workers": 8})
    assert len(items) == 24, seen
    assert stats.statuses[403] == 0


def test_per_request_cookies_and_default_headers(site):
    site.route("/a", page())

    class S(Spider):
        name = "c"

        def start_requests(self):
            yield Request(site.url + "/a", cookies={"lang": "fr"}, headers={"X-One": "1"})

        def parse(self, response):
            yield {}

    crawl(S, {"headers": {"Accept-Language": "fr"}})
    h = site.hits[0].headers
    assert "lang=fr" in h["cookie"] and h["x-one"] == "1" and h["accept-language"] == "fr"
    assert h["user-agent"].startswith("scraper/")


def test_user_agent_setting_is_sent(site):
    site.route("/a", page())

    class S(Spider):
        name = "ua"
        start_urls = [site.url + "/a"]

        def parse(self, response):
            yield {}

    crawl(S, {"user_agent": "mybot/2.0"})
    assert site.hits[0].headers["user-agent"] == "mybot/2.0"


def test_http_auth_is_sent_only_to_its_domains(site):
    other = Site()
    try:
        def guarded(hit):
            expected = "Basic " + base64.b64encode(b"ann:secret").decode()
            return Reply(page(), status=200 if hit.headers.get("authorization") == expected else 401)
        site.route("/a", guarded)
        other.route("/b", page())
        other_url = other.url.replace("127.0.0.1", "localhost")

        class S(Spider):
            name = "auth"
            start_urls = [site.url + "/a", other_url + "/b"]

            def parse(self, response):
                yield {"url": response.url}

        stats, items = crawl(S, {"http_auth": {"username": "ann", "password": "secret",
                                               "domains": ["127.0.0.1"]}})
        assert len(items) == 2
        assert "authorization" not in other.hits[0].headers
    finally:
        other.close()


def test_proxy_setting_and_per_request_proxy(site):
    proxy = Site()
    try:
        proxy.route("http://shop.invalid/a", "via proxy a")
        proxy.route("http://shop.invalid/b", "via proxy b")
        site.route("/c", page())

        class S(Spider):
            name = "proxy"

            def start_requests(self):
                yield Request("http://shop.invalid/a")
                yield Request("http://shop.invalid/b", meta={"proxy": proxy.url})
                yield Request(site.url + "/c", meta={"proxy": None})

            def parse(self, response):
                yield {"url": response.url, "text": response.text}

        stats, items = crawl(S, {"proxy": proxy.url})
        texts = {i["url"]: i["text"] for i in items}
        assert texts["http://shop.invalid/a"] == "via proxy a"
        assert texts["http://shop.invalid/b"] == "via proxy b"
        assert {h.path for h in proxy.hits} >= {"http://shop.invalid/a", "http://shop.invalid/b"}
    finally:
        proxy.close()


@pytest.fixture
def tls_site(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    s = Site()
    s.server.shutdown()
    s.server.server_close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), s.handler_class)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    s.server = server
    s.url = f"https://127.0.0.1:{server.server_address[1]}"
    s.route("/a", page())
    s.cert = cert
    yield s
    server.shutdown()
    server.server_close()


def _one(url):
    errors = []

    class S(Spider):
        name = "tls"

        def start_requests(self):
            yield Request(url, errback=self.failed)

        def parse(self, response):
            yield {"status": response.status}

        def failed(self, failure):
            errors.append(failure.kind)
    return S, errors


def test_tls_is_verified_by_default(tls_site):
    S, errors = _one(tls_site.url + "/a")
    stats, items = crawl(S, {"retry.attempts": 1})
    assert items == [] and errors == ["tls"] and stats.errors["tls"] == 1


def test_tls_with_ca_bundle_or_verification_off(tls_site):
    S, errors = _one(tls_site.url + "/a")
    stats, items = crawl(S, {"ca_bundle": str(tls_site.cert)})
    assert items == [{"status": 200}]
    S, errors = _one(tls_site.url + "/a")
    stats, items = crawl(S, {"tls_verify": False})
    assert items == [{"status": 200}]
