"""Redirects on the real web (issue 12), through real local servers: what a hop carries
to a new origin (credentials, cookies, proxy), how a ``Location`` header's bytes and
odd forms become the URL fetched, and that requests never reads a 3xx itself.

``both_schemes`` and ``run`` are shared with ``conformance/test_redirect.py``.
"""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from scraper import Request, Spider
from scraper.fetch.redirects import location_url, redirect_request
from scraper.response import Response

from .conftest import Hit, Reply, Site, crawl, page

BASIC_ANN = "Basic " + base64.b64encode(b"ann:secret").decode()


# -- helpers shared with the conformance cases -------------------------------------------
def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def both_schemes(site: Site, cert: Path, key: Path) -> str:
    """Make ``site`` answer https too, on its own port, and return that https URL: a
    redirect between ``site.url`` and it changes the scheme only (same host and port),
    which two servers could not show."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    plain = site.server.finish_request

    def finish_request(request: Any, client_address: Any) -> None:
        if request.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS handshake record
            with ctx.wrap_socket(request, server_side=True) as tls:
                plain(tls, client_address)
        else:
            plain(request, client_address)

    site.server.finish_request = finish_request  # type: ignore[method-assign]
    return f"https://127.0.0.1:{site.port}"


def redirect(to: str, status: int = 302) -> Reply:
    return Reply(b"", status=status, headers={"Location": to})


def wire(location: bytes, status: int = 302) -> Reply:
    """A redirect whose Location header is exactly these bytes on the wire (the test
    server writes header text as latin-1)."""
    return Reply(b"", status=status, headers={"Location": location.decode("latin-1")})


def run(*requests: Request, settings: dict[str, Any] | None = None,
        **spider_attrs: Any) -> tuple[Any, list[dict[str, Any]], list[Any]]:
    """Crawl ``requests``: (stats, one item per final response, failures)."""
    failures: list[Any] = []

    class S(Spider):
        name = "redirects"

        def start_requests(self):
            for r in requests:
                r.errback = "failed"
                yield r

        def parse(self, response):
            yield {"url": response.url, "status": response.status,
                   "history": [h.url for h in response.history]}

        def failed(self, failure):
            failures.append(failure)

    for k, v in spider_attrs.items():
        setattr(S, k, v)
    stats, items = crawl(S, settings)
    return stats, items, failures


def hit(site: Site, path: str) -> Hit:
    """The one request ``site`` got for ``path``."""
    hits = [h for h in site.hits if h.path == path]
    assert len(hits) == 1, (path, [h.path for h in site.hits])
    return hits[0]


@pytest.fixture
def other() -> Any:
    s = Site()
    yield s
    s.close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


# -- the Location header ---------------------------------------------------------------------
def test_latin1_location_bytes_are_followed_percent_encoded_as_sent(site):
    # issue 12: requests decoded the header as UTF-8 and raised UnicodeDecodeError
    site.route("/first", wire("/ação".encode("latin-1")))
    site.route("/a%E7%E3o", page())
    stats, items, failures = run(Request(site.url + "/first"))
    assert failures == [] and items[0]["url"] == site.url + "/a%E7%E3o"


def test_utf8_location_bytes_are_not_encoded_twice(site):
    # issue 12: the UTF-8 bytes went out as /a%C3%83%C2%A7%C3%83%C2%A3o
    site.route("/first", wire("/ação".encode()))
    site.route("/a%C3%A7%C3%A3o", page())
    stats, items, failures = run(Request(site.url + "/first"))
    assert failures == [] and items[0]["url"] == site.url + "/a%C3%A7%C3%A3o"


def test_location_with_spaces_and_a_query_is_made_safe(site):
    site.route("/first", wire("/a b?q=é d".encode()))
    site.route("/a%20b", page())
    stats, items, failures = run(Request(site.url + "/first"))
    assert items[0]["url"] == site.url + "/a%20b?q=%C3%A9%20d"
    assert hit(site, "/a%20b?q=%C3%A9%20d").method == "GET"


@pytest.mark.parametrize("location", ["///localhost:{port}/x", "\\\\localhost:{port}\\x",
                                      "////localhost:{port}/x", "http:\\\\localhost:{port}\\x"])
def test_slashes_and_backslashes_before_the_host_are_read_as_browsers_do(site, location):
    # WHATWG: for http(s) any run of / or \ introduces the host; urljoin read
    # "///localhost:P/x" as the path /localhost:P/x on the same host
    site.route("/first", redirect(location.format(port=site.port)))
    site.route("/x", page())
    stats, items, failures = run(Request(site.url + "/first"))
    assert failures == []
    assert items[0]["url"] == f"http://localhost:{site.port}/x"


def test_a_3xx_body_is_never_read(site):
    # requests read the whole body of a 3xx itself (to offer Response.next), past
    # max_response_size, until the deadline cut it; this one never ends, so the next hop
    # must come while the server is still writing it
    next_hop_came, answered = threading.Event(), threading.Event()
    waited: list[bool] = []

    def endless(h: Hit) -> None:
        h.handler.close_connection = True
        try:
            h.handler.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: /done\r\n"
                                  b"Content-Length: 100000000\r\n\r\n" + b"x" * 4096)
        finally:  # the client may hang up at once: that is the point
            waited.append(next_hop_came.wait(3))
            answered.set()

    def done(h: Hit) -> Reply:
        next_hop_came.set()
        return Reply(page())

    site.route("/endless", endless)
    site.route("/done", done)
    stats, items, failures = run(Request(site.url + "/endless"),
                                 settings={"timeout": 10, "retry.attempts": 1})
    assert failures == [] and items[0]["url"] == site.url + "/done"
    assert answered.wait(10) and waited == [True]


def test_a_malformed_target_fails_the_request_and_the_crawl_goes_on(site):
    site.route("/bad-port", redirect("http://127.0.0.1:99999/x"))
    site.route("/fine", page())
    stats, items, failures = run(Request(site.url + "/bad-port"), Request(site.url + "/fine"))
    assert [f.kind for f in failures] == ["bad-redirect"]
    assert failures[0].response.status == 302
    assert [i["url"] for i in items] == [site.url + "/fine"]


# what location_url makes of a Location value, against http://example.org/foo/bar: cases
# from the WHATWG URL tests (web-platform-tests url/resources/urltestdata.json, same
# input and base; the fragment is kept), the header bytes as http.client hands them over
WPT_BASE = "http://example.org/foo/bar"


@pytest.mark.parametrize(("value", "expected"), [
    ("http://example\t.\norg", "http://example.org/"),
    ("http:foo.com", "http://example.org/foo/foo.com"),
    ("\t   :foo.com   \n", "http://example.org/foo/:foo.com"),
    (" foo.com  ", "http://example.org/foo/foo.com"),
    ("http://f:21/ b ? d # e ", "http://f:21/%20b%20?%20d%20#%20e"),
    ("http://f:/c", "http://f/c"),
    ("", "http://example.org/foo/bar"),
    ("  \t", "http://example.org/foo/bar"),
    (":foo.com/", "http://example.org/foo/:foo.com/"),
    (":foo.com\\", "http://example.org/foo/:foo.com/"),
    ("/", "http://example.org/"),
    ("\\x", "http://example.org/x"),
    ("\\\\x\\hello", "http://x/hello"),
    ("http::@c:29", "http://example.org/foo/:@c:29"),
    ("http://foo.com/\\@", "http://foo.com//@"),
    ("http:/example.com/", "http://example.org/example.com/"),
    ("http:\\\\www.google.com\\foo", "http://www.google.com/foo"),
    ("http://example.com/foo/bar/../ton/../../a", "http://example.com/a"),
    ("http://example.com/foo/../../..", "http://example.com/"),
    ("#/", "http://example.org/foo/bar#/"),
])
def test_location_url_follows_the_whatwg_url_tests(value, expected):
    assert location_url(WPT_BASE, value) == expected


def test_location_url_encodes_an_idn_host_and_keeps_text_not_from_the_wire():
    utf8_on_the_wire = "http://bücher.example/ü".encode().decode("latin-1")
    assert location_url(WPT_BASE, utf8_on_the_wire) == "http://xn--bcher-kva.example/%C3%BC"
    # a header value with characters over U+00FF did not come from http.client: text
    assert location_url(WPT_BASE, "/日本") == "http://example.org/%E6%97%A5%E6%9C%AC"


def test_a_fragment_is_inherited_unless_the_location_has_one(site):
    # RFC 9110 10.2.2; never sent, so the server sees the same path either way
    site.route("/keep", redirect("/kept"))
    site.route("/own", redirect("/owned#theirs"))
    site.route("/kept", page())
    site.route("/owned", page())
    stats, items, failures = run(Request(site.url + "/keep#mine"), Request(site.url + "/own#mine"))
    assert sorted(i["url"] for i in items) == [site.url + "/kept#mine", site.url + "/owned#theirs"]


# -- credentials -----------------------------------------------------------------------------
def test_authorization_header_goes_to_its_origin_only(site, other):
    # same origin: kept; another port of the same host: a new origin, dropped; and it is
    # not given back when the chain returns to the first origin
    site.route("/a", redirect("/b"))
    site.route("/b", redirect(other.url + "/c"))
    other.route("/c", redirect(site.url + "/d"))
    site.route("/d", page())
    stats, items, failures = run(Request(site.url + "/a", headers={"Authorization": "Bearer t",
                                                                  "X-Keep": "1"}))
    assert items[0]["url"] == site.url + "/d"
    assert hit(site, "/b").headers["authorization"] == "Bearer t"
    assert "authorization" not in hit(other, "/c").headers
    assert "authorization" not in hit(site, "/d").headers
    assert hit(site, "/d").headers["x-keep"] == "1"


def test_meta_http_auth_goes_to_its_origin_only(site, other):
    site.route("/a", redirect("/b"))
    site.route("/b", redirect(other.url + "/c"))
    other.route("/c", page())
    stats, items, failures = run(Request(site.url + "/a", meta={"http_auth": ["ann", "secret"]}))
    assert items[0]["url"] == other.url + "/c"
    assert hit(site, "/a").headers["authorization"] == BASIC_ANN
    assert hit(site, "/b").headers["authorization"] == BASIC_ANN
    assert "authorization" not in hit(other, "/c").headers


def test_http_auth_setting_is_decided_for_each_hop(site, other):
    # the session-level credentials go to their domains only: a redirect to another host
    # does not carry them, a redirect back gets them again
    other_host = other.url.replace("127.0.0.1", "localhost")
    site.route("/a", redirect(other_host + "/b"))
    other.route("/b", redirect(site.url + "/c"))
    site.route("/c", page())
    stats, items, failures = run(
        Request(site.url + "/a"),
        settings={"http_auth": {"username": "ann", "password": "secret", "domains": ["127.0.0.1"]}})
    assert items[0]["url"] == site.url + "/c"
    assert hit(site, "/a").headers["authorization"] == BASIC_ANN
    assert "authorization" not in hit(other, "/b").headers
    assert hit(site, "/c").headers["authorization"] == BASIC_ANN


def test_proxy_authorization_header_goes_to_its_origin_only(site, other):
    # without a proxy (or inside an https tunnel) the header reaches the origin server
    site.route("/a", redirect("/b"))
    site.route("/b", redirect(other.url + "/c"))
    other.route("/c", page())
    run(Request(site.url + "/a", headers={"Proxy-Authorization": "Basic c2VjcmV0"}))
    assert hit(site, "/b").headers["proxy-authorization"] == "Basic c2VjcmV0"
    assert "proxy-authorization" not in hit(other, "/c").headers


def test_https_to_http_on_the_same_host_and_port_drops_credentials_and_cookies(site, cert):
    # a scheme change alone is a new origin; and cookies given by hand could be
    # secure-only, so they do not go down to http either
    https = both_schemes(site, *cert)
    sent = {"/s1": {"headers": {"Authorization": "Bearer t", "Cookie": "h=1"}},
            "/s2": {"cookies": {"c": "2"}},
            "/s3": {"meta": {"http_auth": ["ann", "secret"]}}}
    for i, path in enumerate(sent, 1):
        site.route(path, redirect(f"{site.url}/p{i}"))
        site.route(f"/p{i}", page())
    stats, items, failures = run(*(Request(https + path, **kw) for path, kw in sent.items()),
                                 settings={"ca_bundle": str(cert[0])})
    assert len(items) == 3 and failures == []
    assert hit(site, "/s1").headers["authorization"] == "Bearer t"
    assert hit(site, "/s1").headers["cookie"] == "h=1"
    assert hit(site, "/s2").headers["cookie"] == "c=2"
    assert hit(site, "/s3").headers["authorization"] == BASIC_ANN
    for i in (1, 2, 3):
        assert not {"authorization", "cookie"} & set(hit(site, f"/p{i}").headers)


def test_meta_proxy_and_its_credentials_stay_for_every_hop(site, other):
    # the proxy's credentials go to the proxy only; dropping the proxy would send the next
    # hop around it (Scrapy keeps meta["proxy"] too: see the conformance cases)
    proxy = site
    proxy.route("http://one.invalid/a", redirect("http://two.invalid/b"))
    proxy.route("http://two.invalid/b", page())
    stats, items, failures = run(Request("http://one.invalid/a", meta={
        "proxy": f"http://ann:secret@127.0.0.1:{proxy.port}"}, headers={"Authorization": "Bearer t"}))
    assert items[0]["url"] == "http://two.invalid/b"
    first, second = hit(proxy, "http://one.invalid/a"), hit(proxy, "http://two.invalid/b")
    assert first.headers["proxy-authorization"] == second.headers["proxy-authorization"] == BASIC_ANN
    assert first.headers["authorization"] == "Bearer t"
    assert "authorization" not in second.headers


# -- cookies ---------------------------------------------------------------------------------
def test_request_cookies_follow_to_the_same_host_only(site, other):
    # a port change keeps them (cookies are per host, not per port); another host does
    # not get them: per-request cookies= and a Cookie header alike
    other_host = other.url.replace("127.0.0.1", "localhost")
    for kind in ("kw", "header"):
        site.route(f"/{kind}/a", redirect(f"{other.url}/{kind}/b"))
        other.route(f"/{kind}/b", redirect(f"{other_host}/{kind}/c"))
        other.route(f"/{kind}/c", page())
    run(Request(site.url + "/kw/a", cookies={"c": "1"}),
        Request(site.url + "/header/a", headers={"Cookie": "h=2"}))
    for kind, cookie in (("kw", "c=1"), ("header", "h=2")):
        assert hit(site, f"/{kind}/a").headers["cookie"] == cookie
        assert hit(other, f"/{kind}/b").headers["cookie"] == cookie
        assert "cookie" not in hit(other, f"/{kind}/c").headers


def test_jar_cookies_set_by_a_redirect_are_scoped_by_the_jar(site, other):
    # the jar decides per hop: a cookie a 302 sets goes to the next hop on its host, not
    # to another host
    other_host = other.url.replace("127.0.0.1", "localhost")
    site.route("/login", Reply(b"", status=302, headers={"Location": "/home",
                                                         "Set-Cookie": "sid=abc; Path=/"}))
    site.route("/home", redirect(other_host + "/away"))
    other.route("/away", page())
    run(Request(site.url + "/login"))
    assert hit(site, "/home").headers["cookie"] == "sid=abc"
    assert "cookie" not in hit(other, "/away").headers


# -- methods ---------------------------------------------------------------------------------
def test_303_after_a_post_is_a_get_without_body_even_across_hosts(site, other):
    site.route("/form", redirect(other.url + "/thanks", 303))
    other.route("/thanks", page())
    run(Request(site.url + "/form", method="POST", data={"q": "1"},
                headers={"Content-Language": "fr", "X-Keep": "1"}))
    got = hit(other, "/thanks")
    assert got.method == "GET" and got.body == b""
    assert not {"content-type", "content-length", "content-language"} & set(got.headers)
    assert got.headers["x-keep"] == "1"


def test_303_keeps_head(site):
    site.route("/h", redirect("/t", 303))
    site.route("/t", page())
    run(Request(site.url + "/h", method="HEAD"))
    assert hit(site, "/t").method == "HEAD"


# -- the function itself, where a server cannot show it --------------------------------------
def _response(url: str, location: str, request: Request, status: int = 302) -> Response:
    return Response(url, status, {"Location": location}, b"", request)


@pytest.mark.parametrize("target", ["https://example.com:443/a", "https://example.com/a"])
def test_an_explicit_default_port_is_the_same_origin(target):
    # a server on port 443 is out of reach of a test: Scrapy's
    # TestRedirectBase.test_cross_origin_header_dropping (explicit and implicit port)
    request = Request("https://example.com/", headers={"Authorization": "Bearer t"},
                      meta={"http_auth": ["ann", "secret"]})
    nxt = redirect_request(_response(request.url, target, request), 10)
    assert nxt.headers == {"Authorization": "Bearer t"} and nxt.meta["http_auth"] == ["ann", "secret"]
