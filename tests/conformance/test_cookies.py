"""Cookies as the crawler keeps and sends them, black-box through real local servers:
cases ported from Scrapy (github.com/scrapy/scrapy @ 11079cb,
tests/test_downloadermiddleware_cookies.py), each citing its test, plus RFC 6265
rules the brief of issue 12 names (expiry, secure, hosts).

Hosts: a Site on 127.0.0.1 and one reached as ``localhost`` are two hosts (cookies
ignore ports); names such as ``books.toscrape.com`` or ``foo.co.uk`` are served by
one Site acting as the crawl's HTTP proxy (it answers by absolute URL), so the jar
sees those names while every byte still crosses a real socket. What a host
received is read from its ``hits``.

Scrapy's cases that do not apply: ``meta["cookiejar"]`` (several jars) and
``dont_merge_cookies`` (this crawler has one jar and no such switch), cookies given
as lists of dicts with ``domain``/``path``/``secure`` (a Request's ``cookies`` is a
name -> value mapping), COOKIES_DEBUG logging, and the cases Scrapy itself marks
xfail for its Cookie header handling.

DEVIATIONS (what we do otherwise, and why):

1. test_merge_request_cookies: a Request's ``cookies`` go with that request (and
   its same-host redirects) only; they are not put in the crawl's jar, so a later
   request does not send them. The jar holds what servers set; a value given for
   one request does not silently ride on every later one (requests' semantics).
2. test_primitive_type_cookies, test_request_cookies_encoding: ``True`` and bytes
   names or values are refused with a TypeError where the Request is made (Scrapy
   sends ``a=True`` and decodes bytes): a bool is almost always a mistake, and
   ``str`` is the one text type of the API. Numbers are sent as Scrapy sends them.
3. test_server_set_cookie_domain_suffix_public_private: ``Domain=blogspot.com`` from
   ``foo.blogspot.com`` is kept and sent to ``bar.blogspot.com``: without a public
   suffix list, private suffixes are not known. Country-code second levels
   (``Domain=co.uk``) are refused, as Scrapy refuses them.
4. test_server_set_cookie_domain_public_period: the host ``co.uk`` itself cannot set
   ``Domain=co.uk`` (the same strict check as 3 refuses it; Scrapy keeps it as a
   host-only cookie). No crawl target is a public suffix.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from scraper import Request, Spider

from ..conftest import Reply, Site, crawl

SCRAPY = "scrapy tests/test_downloadermiddleware_cookies.py"


def set_cookies(*values: str, status: int = 200, location: str | None = None) -> Reply:
    headers = {"Location": location} if location else {}
    return Reply("ok", status=status, headers=headers, repeated=[("Set-Cookie", v) for v in values])


def cookie_of(site: Site, path: str) -> str | None:
    """The Cookie header ``path`` of ``site`` received (its one hit there)."""
    hits = [h for h in site.hits if h.path == path]
    assert len(hits) == 1, (path, [h.path for h in site.hits])
    return hits[0].headers.get("cookie")


def cookie_set(site: Site, path: str) -> set[str]:
    return set((cookie_of(site, path) or "").split("; ")) - {""}


def visit(requests: list[Request], settings: dict[str, Any] | None = None) -> list[str]:
    """Fetch ``requests`` strictly one after another (each once the previous one is
    answered), so every Set-Cookie is in the jar before the next request; returns the
    failure kinds."""
    pending = iter(requests)
    failures: list[str] = []

    class Visit(Spider):
        name = "cookies-conformance"

        def start_requests(self):
            yield from self._next()

        def parse(self, response):
            yield from self._next()

        def failed(self, failure):
            failures.append(failure.kind)
            yield from self._next()

        def _next(self):
            for r in pending:
                yield r.replace(dont_filter=True, errback=self.failed)
                return

    crawl(Visit, settings)
    return failures


@pytest.fixture
def other() -> Iterator[Site]:
    """A second host: a Site reached as ``localhost`` (127.0.0.1 is the first)."""
    s = Site()
    s.url = s.url.replace("127.0.0.1", "localhost")
    yield s
    s.close()


@pytest.fixture
def proxy() -> Iterator[Site]:
    """A Site as the crawl's HTTP proxy: routes are absolute URLs of any host name."""
    s = Site()
    yield s
    s.close()


def test_set_cookie_is_sent_back(site):
    # Scrapy TestCookiesMiddleware.test_basic
    site.route("/", set_cookies("C1=value1; path=/"))
    site.route("/sub1/", "ok")
    assert visit([Request(site.url + "/"), Request(site.url + "/sub1/")]) == []
    assert cookie_of(site, "/") is None
    assert cookie_of(site, "/sub1/") == "C1=value1"


def test_set_cookie_bytes_go_back_as_they_came(site):
    # Scrapy test_do_not_break_on_non_utf8_header: a latin-1 byte in Set-Cookie (and
    # in another header) breaks nothing; here also: the bytes come back unchanged, and
    # a UTF-8 value set by a server goes back as the same UTF-8 bytes
    site.route("/", Reply("ok", headers={"Other": "ignore\xa3me"},
                          repeated=[("Set-Cookie", "C1=in\xa3valid; path=/"),
                                    ("Set-Cookie", "w=" + "café".encode().decode("latin-1")
                                     + "; path=/")]))
    site.route("/sub1/", "ok")
    assert visit([Request(site.url + "/"), Request(site.url + "/sub1/")]) == []
    wire = (cookie_of(site, "/sub1/") or "").encode("latin-1")
    assert set(wire.split(b"; ")) == {b"C1=in\xa3valid", "w=café".encode()}


def test_cookies_are_scoped_by_path_and_domain(proxy):
    # Scrapy test_complex_cookies, the cookies set by the server (as its
    # _cookies_to_set_cookie_list helper turns them into Set-Cookie values)
    proxy.route("http://scrapytest.org/", set_cookies(
        "C1=value1; Path=/foo; Domain=scrapytest.org", "C2=value2; Path=/bar; Domain=scrapytest.org",
        "C3=value3; Path=/foo; Domain=scrapytest.org", "C4=value4; Path=/foo; Domain=scrapy.org"))
    for url in ("http://scrapytest.org/foo", "http://scrapytest.org/bar",
                "http://scrapytest.org/baz", "http://scrapy.org/foo"):
        proxy.route(url, "ok")
    urls = ["http://scrapytest.org/", "http://scrapytest.org/foo", "http://scrapytest.org/bar",
            "http://scrapytest.org/baz", "http://scrapy.org/foo"]
    assert visit([Request(u) for u in urls], {"proxy": proxy.url}) == []
    assert cookie_set(proxy, "http://scrapytest.org/foo") == {"C1=value1", "C3=value3"}
    assert cookie_of(proxy, "http://scrapytest.org/bar") == "C2=value2"
    assert cookie_of(proxy, "http://scrapytest.org/baz") is None
    # C4 named another domain than the one that set it: refused
    assert cookie_of(proxy, "http://scrapy.org/foo") is None


def test_request_cookies_are_merged_with_the_jar_not_stored(site):
    # Scrapy test_merge_request_cookies
    site.route("/", set_cookies("C1=value1; path=/"))
    site.route("/sub1/", "ok")
    site.route("/sub2/", "ok")
    assert visit([Request(site.url + "/", cookies={"galleta": "salada"}),
                  Request(site.url + "/sub1/"),
                  Request(site.url + "/sub2/", cookies={"galleta": "salada"})]) == []
    assert cookie_of(site, "/") == "galleta=salada"
    # DEVIATION 1: Scrapy sends "C1=value1; galleta=salada" here (it stored galleta)
    assert cookie_of(site, "/sub1/") == "C1=value1"
    # the jar's and the request's cookies in one header
    assert cookie_set(site, "/sub2/") == {"C1=value1", "galleta=salada"}


def test_request_cookie_values_on_the_wire(site):
    # Scrapy test_request_cookies_encoding ("á" as str) and test_primitive_type_cookies
    # (float, int, str): values go out as UTF-8, numbers as Python writes them
    cases = {"/enc": ({"a": "á"}, b"a=\xc3\xa1"), "/float": ({"a": 9.5}, b"a=9.5"),
             "/int": ({"a": 10}, b"a=10"), "/str": ({"a": "b"}, b"a=b")}
    for path in cases:
        site.route(path, "ok")
    assert visit([Request(site.url + p, cookies=c) for p, (c, _) in cases.items()]) == []
    for path, (_, wire) in cases.items():
        assert (cookie_of(site, path) or "").encode("latin-1") == wire, path


@pytest.mark.parametrize("cookies", [{"a": True}, {b"a": "á"}, {"a": "á".encode()},
                                     {"a": "á".encode("latin1")}, {b"a": "á".encode()}],
                         ids=["bool", "bytes-name", "utf8-bytes", "latin1-bytes", "both-bytes"])
def test_bool_and_bytes_cookies_are_refused(cookies):
    # DEVIATION 2: Scrapy test_primitive_type_cookies sends "a=True";
    # test_request_cookies_encoding decodes these bytes
    with pytest.raises(TypeError):
        Request("http://127.0.0.1/", cookies=cookies)


@pytest.mark.parametrize("status", [301, 302])
def test_cookies_given_by_hand_follow_redirects_to_the_same_host_only(site, other, status):
    # Scrapy test_cookie_redirect_same_domain(_forcing_get) and
    # test_cookie_redirect_different_domain(_forcing_get): cookies=...;
    # test_cookie_header_redirect_*: a Cookie header set by hand
    site.route("/same", set_cookies(status=status, location="/landing-same"))
    site.route("/same-header", set_cookies(status=status, location="/landing-same-header"))
    site.route("/away", set_cookies(status=status, location=other.url + "/landing-away"))
    site.route("/away-header", set_cookies(status=status, location=other.url + "/landing-away-header"))
    for path in ("/landing-same", "/landing-same-header"):
        site.route(path, "ok")
    for path in ("/landing-away", "/landing-away-header"):
        other.route(path, "ok")
    assert visit([Request(site.url + "/same", cookies={"a": "b"}),
                  Request(site.url + "/same-header", headers={"Cookie": "a=b"}),
                  Request(site.url + "/away", cookies={"a": "b"}),
                  Request(site.url + "/away-header", headers={"Cookie": "a=b"})]) == []
    for path in ("/same", "/same-header", "/away", "/away-header"):
        assert cookie_of(site, path) == "a=b", path
    assert cookie_of(site, "/landing-same") == "a=b"
    assert cookie_of(site, "/landing-same-header") == "a=b"
    assert cookie_of(other, "/landing-away") is None
    assert cookie_of(other, "/landing-away-header") is None


def test_a_hosts_cookie_is_not_sent_to_another_host(site, other):
    # Scrapy test_cookie_redirect_different_domain, for a cookie the server set
    site.route("/set", set_cookies("c=1; Path=/"))
    site.route("/again", "ok")
    other.route("/", "ok")
    assert visit([Request(site.url + "/set"), Request(other.url + "/"),
                  Request(site.url + "/again")]) == []
    assert cookie_of(other, "/") is None
    assert cookie_of(site, "/again") == "c=1"


# (setting URL, Domain attribute, URL asked next, whether the cookie is sent there)
DOMAIN_CASES = [
    # Scrapy test_server_set_cookie_domain_suffix_private
    ("http://books.toscrape.com/", "toscrape.com", "http://quotes.toscrape.com/", True),
    # Scrapy test_server_set_cookie_domain_suffix_public_period
    ("http://foo.co.uk/", "co.uk", "http://bar.co.uk/", False),
    # Scrapy test_server_set_cookie_domain_suffix_public_private: DEVIATION 3
    ("http://foo.blogspot.com/", "blogspot.com", "http://bar.blogspot.com/", True),
    # Scrapy test_server_set_cookie_domain_public_period: DEVIATION 4
    ("http://co.uk/", "co.uk", "http://co.uk/next", False),
    # Scrapy test_explicit_local_domain, the cookie set by the server
    ("http://example-host/", "example-host.local", "http://example-host/next", True),
    # Scrapy test_explicit_local_domain's xfail case: cookielib stores ".example-host"
    # and never sends it back; the jar sends it
    ("http://example-host2/", "example-host2", "http://example-host2/next", True),
]


def test_domain_attribute(proxy):
    for setter, domain, _, _ in DOMAIN_CASES:
        proxy.route(setter, set_cookies(f"a=b; Domain={domain}"))
    for _, _, asked, _ in DOMAIN_CASES:
        proxy.route(asked, "ok")
    assert visit([Request(u) for case in DOMAIN_CASES for u in (case[0], case[2])],
                 {"proxy": proxy.url}) == []
    for setter, domain, asked, sent in DOMAIN_CASES:
        assert cookie_of(proxy, asked) == ("a=b" if sent else None), (setter, domain)


def test_local_hosts(proxy):
    # Scrapy test_local_domain: a dotless host gets its request cookies; and (ours) a
    # dotless host's own cookies, host-only or Domain=itself, come back to it
    proxy.route("http://example-host/", set_cookies("own=1", "named=1; Domain=example-host"))
    proxy.route("http://example-host/next", "ok")
    assert visit([Request("http://example-host/", cookies={"currencyCookie": "USD"}),
                  Request("http://example-host/next")], {"proxy": proxy.url}) == []
    assert cookie_of(proxy, "http://example-host/") == "currencyCookie=USD"
    assert cookie_set(proxy, "http://example-host/next") == {"own=1", "named=1"}


def test_domain_naming_the_local_host(site, other):
    # Scrapy test_explicit_local_domain ("http://127.0.0.1/", "127.0.0.1"); and
    # Domain=localhost from localhost, the dotless case on a real host name
    site.route("/set", set_cookies("a=b; Domain=127.0.0.1"))
    site.route("/next", "ok")
    other.route("/set", set_cookies("c=d; Domain=localhost"))
    other.route("/next", "ok")
    assert visit([Request(site.url + "/set"), Request(site.url + "/next"),
                  Request(other.url + "/set"), Request(other.url + "/next")]) == []
    assert cookie_of(site, "/next") == "a=b"
    assert cookie_of(other, "/next") == "c=d"


def test_expired_cookies_are_removed(site):
    # RFC 6265 5.3 step 11 (a cookie that expires replaces and so removes the stored
    # one), 5.2.1 Expires in the past and 5.2.2 Max-Age=0
    site.route("/set", set_cookies("gone=1; Path=/", "gone2=1; Path=/", "kept=1; Path=/"))
    site.route("/expire", set_cookies("gone=x; Path=/; Max-Age=0",
                                      "gone2=x; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"))
    site.route("/after", "ok")
    assert visit([Request(site.url + p) for p in ("/set", "/expire", "/after")]) == []
    assert cookie_set(site, "/expire") == {"gone=1", "gone2=1", "kept=1"}
    assert cookie_of(site, "/after") == "kept=1"


# -- https: a Site behind TLS on another port of 127.0.0.1 (the same host for cookies)
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


@pytest.fixture
def tls_site(certificate: tuple[str, str]) -> Iterator[Site]:
    import ssl

    s = Site()
    s.server.shutdown()
    s.server.server_close()
    server = ThreadingHTTPServer(("127.0.0.1", 0), s.handler_class)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    s.server = server
    s.url = f"https://127.0.0.1:{server.server_address[1]}"
    yield s
    server.shutdown()
    server.server_close()


def test_secure_cookies_go_over_https_only(site, tls_site, certificate):
    # Scrapy _test_cookie_redirect_scheme_change, for cookies the server set:
    # test_cookie_redirect_secure_true_downgrade (https -> http: not sent) and
    # test_cookie_redirect_secure_true_upgrade (http -> https: sent); a cookie without
    # Secure goes both ways
    tls_site.route("/set", set_cookies("s=1; Secure; Path=/", "p=1; Path=/", status=301,
                                       location=site.url + "/down"))
    site.route("/down", "ok")
    site.route("/up", set_cookies(status=301, location=tls_site.url + "/landing"))
    tls_site.route("/landing", "ok")
    assert visit([Request(tls_site.url + "/set"), Request(site.url + "/up")],
                 {"ca_bundle": certificate[0]}) == []
    assert cookie_of(site, "/down") == "p=1"
    assert cookie_of(site, "/up") == "p=1"
    assert cookie_set(tls_site, "/landing") == {"s=1", "p=1"}


def test_cookies_given_by_hand_are_not_sent_from_https_down_to_http(site, tls_site, certificate):
    # Scrapy test_cookie_redirect_secure_undefined_downgrade (not sent after https ->
    # http) and test_cookie_redirect_secure_undefined_upgrade (sent after http -> https)
    tls_site.route("/down", set_cookies(status=301, location=site.url + "/landing"))
    site.route("/landing", "ok")
    site.route("/up", set_cookies(status=301, location=tls_site.url + "/landing"))
    tls_site.route("/landing", "ok")
    assert visit([Request(tls_site.url + "/down", cookies={"a": "b"}),
                  Request(site.url + "/up", cookies={"a": "b"})], {"ca_bundle": certificate[0]}) == []
    assert cookie_of(tls_site, "/down") == "a=b"
    assert cookie_of(site, "/landing") is None
    assert cookie_of(site, "/up") == "a=b"
    assert cookie_of(tls_site, "/landing") == "a=b"
