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


def test_non_ascii_and_number_cookies_go_out_as_utf8(site):
    # issue 12: "café" went out as latin-1, "日本" raised UnicodeEncodeError, and
    # cookies={"n": 10} failed inside requests with an AttributeError
    site.route("/a", page())
    site.route("/b", page())

    class S(Spider):
        name = "c"

        def start_requests(self):
            yield Request(site.url + "/a", cookies={"w": "café", "j": "日本"})
            yield Request(site.url + "/b", cookies={"n": 10, "f": 1.5})

        def parse(self, response):
            yield {}

    stats, items = crawl(S)
    assert len(items) == 2 and not stats.errors
    wire = {h.path: h.headers["cookie"].encode("latin-1").decode("utf-8") for h in site.hits}
    assert "w=café" in wire["/a"] and "j=日本" in wire["/a"]
    assert "n=10" in wire["/b"] and "f=1.5" in wire["/b"]


def test_bad_cookie_values_are_refused_where_the_request_is_made():
    with pytest.raises(TypeError, match="cookie 'x' must be a string or a number, got list"):
        Request("http://127.0.0.1/", cookies={"x": [1]})
    with pytest.raises(TypeError, match="cookie 'b' must be a string or a number, got bool"):
        Request("http://127.0.0.1/", cookies={"b": True})
    with pytest.raises(TypeError, match="mapping"):
        Request("http://127.0.0.1/", cookies=[("a", "b")])


def test_a_host_cannot_lock_the_crawler_out_with_cookies(site):
    # issue 12: 90 cookies of 4 KB made every later request fail with 431. The jar keeps
    # what browsers keep and one request's Cookie header stays under 8 KB.
    from scraper.fetch.cookies import MAX_HEADER_BYTES

    many = [f"c{i}={'v' * 4000}; Path=/" for i in range(90)]
    site.route("/set", lambda hit: _multi_cookie_reply(many))
    for k in range(3):  # 210 cookies in all, 70 per answer (http.client reads 100 headers)
        site.route(f"/many/{k}", _multi_cookie_reply([f"m{k * 70 + i}=x; Path=/"
                                                      for i in range(70)]))
    site.route("/huge", _multi_cookie_reply([f"big={'v' * 5000}; Path=/"]
                                            + [f"h{i}={'w' * 3900}; Path=/" for i in range(3)]))

    def after(hit):
        size = len(hit.headers.get("cookie") or "")
        return Reply(page(), status=431 if size > MAX_HEADER_BYTES else 200)
    for i in range(5):
        site.route(f"/after/{i}", after)

    class S(Spider):
        name = "jar"

        def start_requests(self):
            yield Request(site.url + "/set", callback=self.more)

        def more(self, response):
            yield Request(site.url + "/many/0", callback=self.more1)

        def more1(self, response):
            yield Request(site.url + "/many/1", callback=self.more2)

        def more2(self, response):
            yield Request(site.url + "/many/2", callback=self.huge)

        def huge(self, response):
            yield Request(site.url + "/huge", callback=self.go)

        def go(self, response):
            for i in range(5):
                yield Request(f"{site.url}/after/{i}")

        def parse(self, response):
            yield {"url": response.url}

    stats, items = crawl(S, {"workers": 2})
    assert len(items) == 5 and stats.statuses[431] == 0
    sent = [h.headers.get("cookie") or "" for h in site.hits if h.path.startswith("/after/")]
    assert all(0 < len(c) <= MAX_HEADER_BYTES for c in sent)
    assert all("big=" not in c for c in sent)  # over 4 KB: never kept
    # the newest cookies were kept, the oldest (the 4 KB ones) dropped first
    assert all("m209=x" in c and "c0=" not in c for c in sent)
    # 180 small cookies and three of 3.9 KB: the header is cut to whole cookies
    assert all(c.count("=" + "w" * 3900) in (1, 2) for c in sent)


def test_cookie_header_is_cut_to_whole_cookies():
    from scraper.fetch.cookies import cap_cookie_header

    assert cap_cookie_header("a=1; b=2; c=3", limit=8) == "a=1; b=2"
    assert cap_cookie_header("a=1; b=2", limit=100) == "a=1; b=2"
    assert cap_cookie_header("abcdef=1", limit=3) == ""


def _multi_cookie_reply(cookies):
    return Reply(page(), repeated=[("Set-Cookie", c) for c in cookies])
