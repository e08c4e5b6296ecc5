"""How redirects are followed, black-box through real local servers: the cases of
Scrapy's redirect middleware tests, ported (inputs and expected results, not code).

Sources, in scrapy/scrapy:
  tests/test_downloadermiddleware_redirect.py  (TestRedirectMiddleware, test_redirect_schemes)
  tests/utils/bases/redirect.py                (TestRedirectBase)
  tests/utils/redirect.py                      (REDIRECT_SCHEME_CASES)

Scrapy's hosts become local servers: another port of 127.0.0.1 is another origin of the
same host, ``localhost`` another host, and one server answering http and https on one
port (``both_schemes``) a change of scheme alone. Where we differ on purpose, the case
says so.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from scraper import Request

from ..conftest import Reply, Site, page
from ..test_redirects import both_schemes, hit, make_cert, redirect, run, wire

SAFE, COOKIE, AUTH = {"a": "B"}, {"cookie": "a=b"}, {"authorization": "Bearer 123456"}


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


@pytest.fixture
def other() -> Any:
    s = Site()
    yield s
    s.close()


@pytest.fixture
def proxy() -> Any:
    """A Site acting as a forward proxy: routes are absolute URIs; a CONNECT (https
    through it) is recorded and refused, which is all these cases need to see."""
    s = Site()
    s.handler_class.do_CONNECT = s.handler_class._serve  # type: ignore[attr-defined]
    yield s
    s.close()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


def tls(cert: tuple[Path, Path]) -> dict[str, Any]:
    return {"ca_bundle": str(cert[0])}


# -- methods and bodies ------------------------------------------------------------------------
@dataclass
class MethodCase:
    source: str  # the Scrapy test it comes from
    method: str
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    want_method: str = ""  # empty: the same method
    body_kept: bool = False
    kept: tuple[str, ...] = ()    # headers the next hop still sends
    dropped: tuple[str, ...] = ()  # headers it does not


_TEXT = {"Content-Type": "text/plain", "Content-Length": "4"}
_BODY9 = {"Content-Type": "text/plain", "Content-Length": "9"}
_CONTENT = {"Content-Type": "application/json", "Content-Length": "100", "Content-Encoding": "gzip",
            "Content-Language": "en", "Content-Location": "http://www.example.com/original",
            "X-Custom": "foo"}

METHOD_CASES = [
    # TestRedirectMiddleware.test_redirect_307_308_preserve_method
    *(MethodCase("test_redirect_307_308_preserve_method", m, s) for s in (307, 308)
      for m in ("GET", "POST", "HEAD")),
    # TestRedirectMiddleware.test_method_becomes_get (and TestRedirectBase.test_post, 302)
    *(MethodCase("test_method_becomes_get", "POST", s, b"test", _TEXT, "GET",
                 dropped=("content-type", "content-length")) for s in (301, 302, 303)),
    # TestRedirectMiddleware.test_method_not_converted_on_301_302
    *(MethodCase("test_method_not_converted_on_301_302", m, s, b"test-body", _BODY9,
                 body_kept=True, kept=("content-type", "content-length"))
      for s in (301, 302) for m in ("PUT", "DELETE")),
    # TestRedirectMiddleware.test_method_converted_on_303
    *(MethodCase("test_method_converted_on_303", m, 303, want_method="GET") for m in ("PUT", "DELETE")),
    # TestRedirectMiddleware.test_get_method_body_preserved_on_303
    MethodCase("test_get_method_body_preserved_on_303", "GET", 303, b"test-body", _BODY9,
               body_kept=True, kept=("content-type", "content-length")),
    # TestRedirectMiddleware.test_redirect_strips_content_headers
    MethodCase("test_redirect_strips_content_headers", "POST", 303, b"foo", _CONTENT, "GET",
               kept=("x-custom",), dropped=("content-type", "content-length", "content-encoding",
                                            "content-language", "content-location")),
    # TestRedirectMiddleware.test_redirect_302_head
    MethodCase("test_redirect_302_head", "HEAD", 302),
]


@pytest.mark.parametrize("case", METHOD_CASES,
                         ids=[f"{c.source}-{c.method}-{c.status}" for c in METHOD_CASES])
def test_method_and_body_on_redirect(site, case):
    site.handler_class.do_DELETE = site.handler_class._serve  # type: ignore[attr-defined]
    site.route(f"/{case.status}", redirect(site.url + "/redirected", case.status))
    site.route("/redirected", page())
    stats, items, failures = run(Request(site.url + f"/{case.status}", method=case.method,
                                         data=case.body, headers=case.headers))
    assert failures == [] and [i["url"] for i in items] == [site.url + "/redirected"]
    sent, got = hit(site, f"/{case.status}"), hit(site, "/redirected")
    assert got.method == (case.want_method or case.method)
    assert got.body == (sent.body if case.body_kept else b"")
    for name in case.kept:
        assert got.headers[name] == sent.headers[name]
    assert not set(case.dropped) & set(got.headers)


@pytest.mark.parametrize("status", [307, 308])
def test_cross_origin_maintain_body(site, other, status):
    # TestRedirectMiddleware.test_cross_origin_maintain_body: a 307/308 to another origin
    # keeps method, body and content headers
    site.route("/start", redirect(other.url + "/attacker", status))
    other.route("/attacker", page())
    run(Request(site.url + "/start", method="POST", data=b"secret",
                headers={"Content-Type": "application/json"}))
    got = hit(other, "/attacker")
    assert (got.method, got.body) == ("POST", b"secret")
    assert got.headers["content-type"] == "application/json" and got.headers["content-length"] == "6"


@pytest.mark.parametrize("status", [302, 307])
def test_no_location_is_not_followed(site, status):
    # TestRedirectMiddleware.test_no_location, and the end of
    # test_redirect_307_308_preserve_method: a 3xx without Location is an answer, not a
    # redirect. Scrapy hands it on; ours is not 2xx, so it reaches the errback.
    site.route("/no-location", Reply(b"", status=status))
    stats, items, failures = run(Request(site.url + "/no-location"))
    assert [f.kind for f in failures] == [f"http-{status}"] and items == []
    assert len(site.hits) == 1


def test_statuses_the_spider_handles_are_not_followed(site):
    # TestRedirectMiddleware.test_spider_handling (handle_httpstatus_list = [404, 301,
    # 302]) and test_request_meta_handling (meta handle_httpstatus_list): our names are
    # handle_statuses, on the spider or in meta. (meta handle_httpstatus_all: no such key.)
    site.route("/301", redirect(site.url + "/redirected", 301))
    site.route("/302", redirect(site.url + "/redirected", 302))
    stats, items, failures = run(Request(site.url + "/301"),
                                 Request(site.url + "/302", meta={"handle_statuses": [302]}),
                                 handle_statuses=[404, 301])
    assert sorted(i["status"] for i in items) == [301, 302]
    assert site.count("/redirected") == 0


# -- the Location header ------------------------------------------------------------------------
def test_latin1_location(site):
    # TestRedirectMiddleware.test_latin1_location: the bytes are sent back as they came
    site.route("/first", wire("/ação".encode("latin1")))
    site.route("/a%E7%E3o", page())
    stats, items, failures = run(Request(site.url + "/first"))
    assert [i["url"] for i in items] == [site.url + "/a%E7%E3o"]


def test_utf8_location(site):
    # TestRedirectMiddleware.test_utf8_location
    site.route("/first", wire("/ação".encode()))
    site.route("/a%C3%A7%C3%A3o", page())
    stats, items, failures = run(Request(site.url + "/first"))
    assert [i["url"] for i in items] == [site.url + "/a%C3%A7%C3%A3o"]


def test_redirect_302_relative(site, other):
    # TestRedirectMiddleware.test_redirect_302_relative: "///i8n.example2.com/302" from
    # http://www.example.com/302 is http://i8n.example2.com/302, and HEAD stays HEAD
    site.route("/302", redirect(f"///localhost:{other.port}/302"))
    other.route("/302", page())
    stats, items, failures = run(Request(site.url + "/302", method="HEAD"))
    assert [i["url"] for i in items] == [f"http://localhost:{other.port}/302"]
    assert hit(other, "/302").method == "HEAD"


@pytest.mark.parametrize(("start", "location", "final"), [
    # TestRedirectMiddleware.test_redirect_keeps_fragment
    ("/301#frag", "/redirected", "/redirected#frag"),
    # TestRedirectMiddleware.test_redirect_target_has_fragment
    ("/302#original", "/redirected#target", "/redirected#target"),
])
def test_fragments(site, start, location, final):
    site.route(start.split("#")[0], redirect(site.url + location))
    site.route("/redirected", page())
    stats, items, failures = run(Request(site.url + start))
    assert [i["url"] for i in items] == [site.url + final]


# tests/utils/redirect.py REDIRECT_SCHEME_CASES, run by test_redirect_schemes: "example.com"
# is one server answering both schemes on one port
HTTP_SCHEMES = ("http", "https")
NON_HTTP_SCHEMES = ("data", "file", "ftp", "s3", "foo")
SCHEME_CASES = [
    # http/https → http/https redirects
    *((src, f"{dst}://example.com/b", f"{dst}://example.com/b")
      for src in HTTP_SCHEMES for dst in HTTP_SCHEMES),
    # http/https → data/file/ftp/s3/foo does not redirect
    *((src, f"{dst}://example.com/b", None) for src in HTTP_SCHEMES for dst in NON_HTTP_SCHEMES),
    # http/https → relative redirects
    *((src, location, f"{src}://example.com/b") for src in HTTP_SCHEMES
      for location in ("//example.com/b", "/b")),
]


@pytest.mark.parametrize(("scheme", "location", "target"), SCHEME_CASES)
def test_redirect_schemes(site, cert, scheme, location, target):
    both_schemes(site, *cert)
    here = f"127.0.0.1:{site.port}"
    site.route("/a", redirect(location.replace("example.com", here), 301))
    site.route("/b", page())
    stats, items, failures = run(Request(f"{scheme}://{here}/a"), settings=tls(cert))
    if target is None:
        # Scrapy hands the 301 on unfollowed; ours reaches the errback, with the 301
        assert items == [] and [(f.kind, f.response.status) for f in failures] == [("bad-redirect", 301)]
        assert site.count("/b") == 0
    else:
        assert failures == []
        assert [i["url"] for i in items] == [target.replace("example.com", here)]


# -- credentials and cookies across origins ---------------------------------------------------
@pytest.mark.parametrize(("scheme", "to", "expected"), [
    # TestRedirectBase.test_cross_origin_header_dropping, in its order. "Redirects to the
    # same origin (same scheme, same domain, same port) keep all headers", for https...
    ("https", "same", {**SAFE, **COOKIE, **AUTH}),
    # ... "also when the scheme is http"
    ("http", "same", {**SAFE, **COOKIE, **AUTH}),
    # (an explicit default port, https://example.com:443: tests/test_redirects.py, no
    # test server can listen on 443)
    # "A port change drops the Authorization header ... but keeps the Cookie header"
    ("https", "port", {**SAFE, **COOKIE}),
    # "A domain change drops both the Authorization and the Cookie header"
    ("https", "host", SAFE),
    # "A scheme upgrade (http → https) drops the Authorization header ... but keeps the
    # Cookie header"
    ("http", "scheme", {**SAFE, **COOKIE}),
    # "A scheme downgrade (https → http) drops the Authorization header ... and the
    # Cookie header"
    ("https", "scheme", SAFE),
])
def test_cross_origin_header_dropping(site, other, cert, scheme, to, expected):
    both_schemes(site, *cert)
    both_schemes(other, *cert)
    flipped = "https" if scheme == "http" else "http"
    target = {"same": f"{scheme}://127.0.0.1:{site.port}/b",
              "port": f"{scheme}://127.0.0.1:{other.port}/b",
              "host": f"{scheme}://localhost:{site.port}/b",
              "scheme": f"{flipped}://127.0.0.1:{site.port}/b"}[to]
    site.route("/a", redirect(target))
    site.route("/b", page())
    other.route("/b", page())
    run(Request(f"{scheme}://127.0.0.1:{site.port}/a",
                headers={"A": "B", "Cookie": "a=b", "Authorization": "Bearer 123456"}),
        settings=tls(cert))
    got = hit(other if to == "port" else site, "/b").headers
    assert {k: got[k] for k in ("a", "cookie", "authorization") if k in got} == expected


# -- proxies -----------------------------------------------------------------------------------
# TestRedirectBase.test_meta_proxy_*: a proxy given in meta, with credentials, stays for
# every hop and its Proxy-Authorization goes to it each time ("a:" is user a, no password)
@pytest.mark.parametrize("location", [
    "http://example.com/b",  # test_meta_proxy_http_absolute
    "/b",                    # test_meta_proxy_http_relative
])
def test_meta_proxy_http(proxy, location):
    proxy.route("http://example.com/a", redirect(location))
    proxy.route("http://example.com/b", page())
    stats, items, failures = run(Request("http://example.com/a", meta={
        "proxy": f"http://a:@127.0.0.1:{proxy.port}"}))
    assert [i["url"] for i in items] == ["http://example.com/b"]
    for path in ("http://example.com/a", "http://example.com/b"):
        assert hit(proxy, path).headers["proxy-authorization"] == basic("a")


def test_meta_proxy_http_to_https(proxy):
    # TestRedirectBase.test_meta_proxy_http_to_https: the https hop still goes through
    # the meta proxy, with its credentials (on the CONNECT)
    proxy.route("http://example.com/a", redirect("https://example.com/b"))
    proxy.route("example.com:443", Reply("no tunnels here", status=403))
    stats, items, failures = run(Request("http://example.com/a", meta={
        "proxy": f"http://a:@127.0.0.1:{proxy.port}"}), settings={"retry.attempts": 1})
    assert len(failures) == 1  # the test proxy refuses to tunnel
    connect = hit(proxy, "example.com:443")
    assert connect.method == "CONNECT" and connect.headers["proxy-authorization"] == basic("a")


# TestRedirectBase.test_system_proxy_*: Scrapy's proxies from the environment, per scheme,
# are our `proxy` setting {http: ..., https: ...}: chosen again for each hop by its scheme
@pytest.mark.parametrize("location", [
    "http://example.com/b",  # test_system_proxy_http_absolute
    "/b",                    # test_system_proxy_http_relative
])
def test_system_proxy_http(proxy, location):
    proxy.route("http://example.com/a", redirect(location))
    proxy.route("http://example.com/b", page())
    stats, items, failures = run(Request("http://example.com/a"), settings={
        "proxy": {"http": f"http://a:@127.0.0.1:{proxy.port}"}})
    assert [i["url"] for i in items] == ["http://example.com/b"]
    for path in ("http://example.com/a", "http://example.com/b"):
        assert hit(proxy, path).headers["proxy-authorization"] == basic("a")


def test_system_proxy_proxied_http_to_proxied_https(proxy, other):
    # the https hop goes to the https proxy with its own credentials (b:), not a's
    proxy_b = other
    proxy_b.handler_class.do_CONNECT = proxy_b.handler_class._serve  # type: ignore[attr-defined]
    proxy.route("http://example.com/a", redirect("https://example.com/b"))
    proxy_b.route("example.com:443", Reply("no tunnels here", status=403))
    run(Request("http://example.com/a"), settings={"retry.attempts": 1, "proxy": {
        "http": f"http://a:@127.0.0.1:{proxy.port}", "https": f"http://b:@127.0.0.1:{proxy_b.port}"}})
    assert hit(proxy, "http://example.com/a").headers["proxy-authorization"] == basic("a")
    assert hit(proxy_b, "example.com:443").headers["proxy-authorization"] == basic("b")
    assert [h.path for h in proxy.hits] == ["http://example.com/a"]


def test_system_proxy_proxied_http_to_unproxied_https(proxy, site, cert):
    # no https proxy: the https hop goes straight to the server, and the http proxy's
    # credentials do not go with it
    https = both_schemes(site, *cert)
    proxy.route(f"{site.url}/a", redirect(f"{https}/b"))
    site.route("/b", page())
    stats, items, failures = run(Request(f"{site.url}/a"), settings={
        **tls(cert), "proxy": {"http": f"http://a:@127.0.0.1:{proxy.port}"}})
    assert [i["url"] for i in items] == [f"{https}/b"]
    assert hit(proxy, f"{site.url}/a").headers["proxy-authorization"] == basic("a")
    assert "proxy-authorization" not in hit(site, "/b").headers


def test_system_proxy_unproxied_http_to_proxied_https(proxy, site):
    proxy.route("example.com:443", Reply("no tunnels here", status=403))
    site.route("/a", redirect("https://example.com/b"))
    run(Request(f"{site.url}/a"), settings={"retry.attempts": 1, "proxy": {
        "https": f"http://b:@127.0.0.1:{proxy.port}"}})
    assert "proxy-authorization" not in hit(site, "/a").headers
    assert hit(proxy, "example.com:443").headers["proxy-authorization"] == basic("b")
