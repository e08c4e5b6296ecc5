"""Request: construction, encoding of params/data/json, replace, persistence; fingerprint
and host_key."""

from __future__ import annotations

import json

import pytest

from scraper import Request, Spider
from scraper.http import canonical_url, fingerprint, host_key, url_problem


class Books(Spider):
    name = "books"

    def parse_book(self, response):
        pass

    def on_error(self, failure):
        pass


# -- constructor ---------------------------------------------------------------
def test_defaults():
    r = Request("http://example.com/")
    assert r.url == "http://example.com/"
    assert r.callback is None and r.errback is None
    assert r.method == "GET"
    assert r.headers is None and r.cookies is None and r.cb_kwargs is None
    assert r.body is None
    assert r.meta == {}
    assert r.priority == 0 and r.dont_filter is False
    assert r.depth == 0 and r.attempt == 0


def test_meta_default_is_a_fresh_dict_per_request():
    a, b = Request("http://example.com/a"), Request("http://example.com/b")
    a.meta["x"] = 1
    assert b.meta == {}


def test_given_meta_is_kept():
    meta = {"page": 3}
    assert Request("http://example.com/", meta=meta).meta == {"page": 3}


def test_method_is_upper_cased():
    assert Request("http://example.com/", method="post").method == "POST"
    assert Request("http://example.com/", method="Put").method == "PUT"
    assert Request("http://example.com/", method="get").method == "GET"


def test_callback_and_options_are_stored():
    spider = Books()
    r = Request("http://example.com/", spider.parse_book, errback=spider.on_error,
                priority=5, dont_filter=True, cb_kwargs={"n": 1}, cookies={"c": "v"},
                headers={"X-A": "1"})
    assert r.callback == spider.parse_book and r.errback == spider.on_error
    assert r.priority == 5 and r.dont_filter is True
    assert r.cb_kwargs == {"n": 1} and r.cookies == {"c": "v"} and r.headers == {"X-A": "1"}


def test_params_are_url_encoded_into_the_query():
    r = Request("http://example.com/search", params={"q": "a b&c", "page": 2})
    assert r.url == "http://example.com/search?q=a+b%26c&page=2"


def test_params_are_appended_to_an_existing_query_and_keep_the_fragment():
    r = Request("http://example.com/s?z=1#top", params={"a": 1})
    assert r.url == "http://example.com/s?z=1&a=1#top"


def test_params_sequence_values_repeat_the_key():
    r = Request("http://example.com/s", params={"tag": ["x", "y"]})
    assert r.url == "http://example.com/s?tag=x&tag=y"


def test_empty_params_leave_the_url_alone():
    assert Request("http://example.com/s?z=1", params={}).url == "http://example.com/s?z=1"


def test_data_dict_is_form_encoded_with_content_type():
    r = Request("http://example.com/", method="POST", data={"a": "1 2", "b": ["x", "y"]})
    assert r.body == b"a=1+2&b=x&b=y"
    assert r.headers == {"Content-Type": "application/x-www-form-urlencoded"}


def test_data_str_is_utf8_encoded_without_a_content_type():
    r = Request("http://example.com/", method="POST", data="héllo")
    assert r.body == "héllo".encode()
    assert not r.headers


def test_data_bytes_are_kept_as_is():
    r = Request("http://example.com/", method="POST", data=b"\x00\xff")
    assert r.body == b"\x00\xff"


def test_data_bytearray_becomes_bytes():
    r = Request("http://example.com/", method="POST", data=bytearray(b"ab"))
    assert r.body == b"ab" and type(r.body) is bytes


def test_json_is_compact_with_content_type():
    r = Request("http://example.com/", method="POST", json={"a": [1, 2], "b": "é"})
    assert json.loads(r.body) == {"a": [1, 2], "b": "é"}
    assert b" " not in r.body
    assert r.headers == {"Content-Type": "application/json"}


@pytest.mark.parametrize("value, body", [({}, b"{}"), ([], b"[]"), (0, b"0"), (False, b"false")])
def test_falsy_json_values_are_still_sent(value, body):
    assert Request("http://example.com/", method="POST", json=value).body == body


def test_explicit_content_type_is_not_overridden_whatever_its_case():
    r = Request("http://example.com/", method="POST", json={"a": 1},
                headers={"content-type": "application/vnd.api+json"})
    assert r.headers == {"content-type": "application/vnd.api+json"}


def test_encoding_a_body_does_not_mutate_the_callers_headers():
    headers = {"X-A": "1"}
    r = Request("http://example.com/", method="POST", data={"a": "1"}, headers=headers)
    assert headers == {"X-A": "1"}
    assert r.headers == {"X-A": "1", "Content-Type": "application/x-www-form-urlencoded"}


def test_scheme_is_lower_cased_and_whitespace_stripped():
    assert Request("HTTPS://example.com/x").url == "https://example.com/x"
    assert Request("  http://example.com/x\n").url == "http://example.com/x"


@pytest.mark.parametrize("url", ["example.com/x", "/relative", "page.html", "ftp://example.com/f",
                                 "mailto:a@example.com", "", "   ", "javascript:void(0)",
                                 "file:///etc/passwd", "http:/example.com"])
def test_non_http_urls_raise_value_error_naming_the_url(url):
    with pytest.raises(ValueError, match="absolute http") as info:
        Request(url)
    assert repr(url) in str(info.value)


@pytest.mark.parametrize("url", [None, b"http://example.com/", 42, ["http://example.com/"]])
def test_non_string_urls_raise_type_error_naming_the_type(url):
    with pytest.raises(TypeError, match=type(url).__name__) as info:
        Request(url)  # type: ignore[arg-type]
    assert "must be a str" in str(info.value)


def test_repr_shows_method_and_url():
    assert repr(Request("http://example.com/x", method="post")) == "<POST http://example.com/x>"


# -- replace -------------------------------------------------------------------
def test_replace_changes_only_what_is_given():
    spider = Books()
    r = Request("http://example.com/a", spider.parse_book, priority=3, meta={"k": 1},
                headers={"X": "1"}, cb_kwargs={"n": 2}, dont_filter=True, errback="on_error")
    r.depth = 4
    new = r.replace(url="http://example.com/b")
    assert new is not r
    assert new.url == "http://example.com/b"
    assert (new.callback, new.errback) == (spider.parse_book, "on_error")
    assert (new.priority, new.meta, new.headers, new.cb_kwargs) == (3, {"k": 1}, {"X": "1"}, {"n": 2})
    assert new.dont_filter is True and new.depth == 4
    assert r.url == "http://example.com/a"


def test_replace_copies_meta_so_the_copy_can_change_independently():
    r = Request("http://example.com/", meta={"k": 1})
    new = r.replace()
    new.meta["k"] = 2
    assert r.meta == {"k": 1}


def test_replace_keeps_the_body_unless_data_or_json_is_given():
    r = Request("http://example.com/", method="POST", data=b"one")
    assert r.replace(priority=1).body == b"one"
    assert r.replace(data=b"two").body == b"two"
    assert json.loads(r.replace(json={"x": 1}).body) == {"x": 1}


def test_replace_gives_a_new_fingerprint_for_a_new_url():
    r = Request("http://example.com/a")
    fp = r.fingerprint
    assert r.replace(url="http://example.com/b").fingerprint != fp
    assert r.replace(priority=9).fingerprint == fp


def test_replace_validates_the_new_url():
    with pytest.raises(ValueError):
        Request("http://example.com/").replace(url="/nope")


def test_replace_method_is_upper_cased():
    assert Request("http://example.com/").replace(method="post").method == "POST"


# -- persistence ---------------------------------------------------------------
def test_to_dict_of_a_plain_get_is_minimal():
    assert Request("http://example.com/").to_dict() == {"url": "http://example.com/"}


def test_to_dict_stores_callbacks_by_method_name():
    spider = Books()
    d = Request("http://example.com/", spider.parse_book, errback=spider.on_error).to_dict()
    assert d["callback"] == "parse_book" and d["errback"] == "on_error"


def test_to_dict_keeps_callback_names_given_as_strings():
    d = Request("http://example.com/", "parse_book").to_dict()
    assert d["callback"] == "parse_book"


def test_round_trip_through_json_keeps_every_field():
    spider = Books()
    r = Request("http://example.com/p?b=2&a=1", spider.parse_book, method="POST",
                headers={"X-A": "1"}, data={"q": "x"}, cookies={"sid": "abc"},
                meta={"page": 2, "tags": ["a", "b"], "nested": {"k": None}},
                cb_kwargs={"n": 1}, priority=-3, dont_filter=True, errback=spider.on_error)
    r.depth = 2
    r.attempt = 1
    back = Request.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.url == r.url and back.method == "POST"
    assert back.headers == r.headers and back.body == r.body
    assert back.cookies == {"sid": "abc"} and back.cb_kwargs == {"n": 1}
    assert back.meta == r.meta
    assert back.callback == "parse_book" and back.errback == "on_error"
    assert (back.priority, back.dont_filter, back.depth, back.attempt) == (-3, True, 2, 1)
    assert back.fingerprint == r.fingerprint


def test_round_trip_keeps_a_binary_body_byte_for_byte():
    body = bytes(range(256))
    r = Request("http://example.com/", method="PUT", data=body)
    back = Request.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.body == body


def test_round_trip_keeps_an_empty_body_distinct_from_none():
    r = Request("http://example.com/", method="POST", data=b"")
    back = Request.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.body == b""
    assert Request.from_dict(Request("http://example.com/").to_dict()).body is None


def test_from_dict_does_not_add_params_twice():
    r = Request("http://example.com/s", params={"a": 1})
    assert Request.from_dict(r.to_dict()).url == "http://example.com/s?a=1"


@pytest.mark.parametrize("field", ["meta", "cb_kwargs"])
def test_non_json_meta_or_cb_kwargs_is_a_value_error_saying_so(field):
    r = Request("http://example.com/x", **{field: {"when": {1, 2}}})
    with pytest.raises(ValueError) as info:
        r.to_dict()
    msg = str(info.value)
    assert "http://example.com/x" in msg
    assert "JSON-serialisable" in msg and "meta" in msg and "cb_kwargs" in msg
    assert "set" in msg  # the offending type


def test_non_json_meta_error_is_not_a_type_error():
    r = Request("http://example.com/x", meta={"obj": object()})
    with pytest.raises(ValueError) as info:
        r.to_dict()
    assert not isinstance(info.value, TypeError)
    assert info.value.__cause__ is None and info.value.__suppress_context__


# -- fingerprint ---------------------------------------------------------------
def fp(url: str, method: str = "GET", **kw) -> bytes:
    return Request(url, method=method, **kw).fingerprint


def test_fingerprint_is_16_bytes_and_stable():
    a = fp("http://example.com/x")
    assert isinstance(a, bytes) and len(a) == 16
    assert a == fp("http://example.com/x")
    assert a == fingerprint("GET", "http://example.com/x")


def test_fingerprint_ignores_the_fragment():
    assert fp("http://example.com/x#a") == fp("http://example.com/x#b") == fp("http://example.com/x")


def test_fingerprint_ignores_query_order():
    assert fp("http://example.com/x?b=2&a=1") == fp("http://example.com/x?a=1&b=2")


def test_fingerprint_ignores_host_case_and_escape_spelling():
    assert fp("http://EXAMPLE.com/x") == fp("http://example.com/x")
    assert fp("http://example.com/%7Euser") == fp("http://example.com/~user")


def test_fingerprint_ignores_meta_headers_callback_and_priority():
    assert fp("http://example.com/x") == fp("http://example.com/x", meta={"a": 1},
                                            headers={"X": "1"}, priority=9, cb_kwargs={"n": 1})


def test_fingerprint_differs_by_method():
    assert fp("http://example.com/x") != fp("http://example.com/x", "POST")
    assert fp("http://example.com/x", "HEAD") != fp("http://example.com/x")


def test_fingerprint_differs_by_body():
    a = fp("http://example.com/x", "POST", data=b"a=1")
    assert a != fp("http://example.com/x", "POST", data=b"a=2")
    assert a != fp("http://example.com/x", "POST")


def test_fingerprint_differs_by_path_query_scheme_and_port():
    base = fp("http://example.com/x?a=1")
    for other in ("http://example.com/y?a=1", "http://example.com/x?a=2", "https://example.com/x?a=1",
                  "http://example.com:8080/x?a=1", "http://example.com/x?a=1&a=2"):
        assert fp(other) != base, other


def test_fingerprint_body_cannot_be_confused_with_url():
    # the separator between URL and body must not let one bleed into the other
    assert fingerprint("POST", "http://example.com/a", b"b") != fingerprint("POST", "http://example.com/a b")


def test_fingerprint_is_computed_once():
    r = Request("http://example.com/x")
    assert r.fingerprint is r.fingerprint


def test_canonical_url_removes_fragment_and_sorts_query():
    assert canonical_url("http://example.com/p?b=2&a=1#frag") == "http://example.com/p?a=1&b=2"


# -- host_key -------------------------------------------------------------------
@pytest.mark.parametrize("url, key", [
    ("http://example.com/x", "http://example.com:80"),
    ("https://example.com/x", "https://example.com:443"),
    ("http://example.com:80/x", "http://example.com:80"),
    ("http://example.com:8080/x", "http://example.com:8080"),
    ("https://example.com:80/x", "https://example.com:80"),
    ("HTTP://Example.COM/x", "http://example.com:80"),
    ("http://user:pw@example.com:81/x", "http://example.com:81"),
    ("http://127.0.0.1:5000/a?b#c", "http://127.0.0.1:5000"),
])
def test_host_key(url, key):
    assert host_key(url) == key


def test_host_key_separates_schemes_and_ports_but_not_paths():
    assert host_key("http://example.com/") != host_key("https://example.com/")
    assert host_key("http://example.com/") != host_key("http://example.com:8080/")
    assert host_key("http://example.com/a") == host_key("http://example.com:80/b?c")


def test_request_host_is_the_host_key():
    r = Request("https://Sub.Example.com/path")
    assert r.host == "https://sub.example.com:443"


# -- malformed URLs (issue 12: a malformed URL never ends a crawl) ------------------
MALFORMED = [
    "http://[example.org/x",         # an unclosed IPv6 bracket: urlsplit's "Invalid IPv6 URL"
    "http://example.org]/x",
    "http://[example.org]/x",        # brackets around something that is not an IP address
    "http://host:notaport/",
    "http://host:65536/",
    "http://host:-1/",
    "http://host:80:80/",
    "http:///x",                     # no host
    "http://",
    "https://?q=1",
    "http://exa mple.com/",          # characters no host name may have
    "http://exa<mple.com/",
    "http://ex%41mple.com/",
    "http://.example.com/",          # an empty first label: requests refuses it too
    "http://example.com/\ud800",     # a lone surrogate cannot be sent
]


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_urls_raise_value_error_naming_the_url(url):
    with pytest.raises(ValueError) as info:
        Request(url)
    assert repr(url) in str(info.value) and "malformed" in str(info.value)
    assert url_problem(url) is not None


@pytest.mark.parametrize("url", [
    "http://example.com", "http://example.com/", "https://example.com/a?b=c#d",
    "http://example.com:0/", "http://example.com:65535/", "http://example.com:08080/",
    "http://example.com:/x",                      # an empty port means the default one
    "http://[::1]/", "http://[2001:db8::7]:8080/p", "http://user:pass@example.com:81/",
    "http://my_host.example.com/", "http://example.com./", "http://127.0.0.1:5000/a",
    "http://bücher.example/straße?q=ü", "HTTPS://EXAMPLE.com/X", "http://example.com/a b",
    "http://example.com?q", "http://example.com#f",
])
def test_well_formed_urls_are_accepted(url):
    assert url_problem(url.replace("HTTPS", "https")) is None
    Request(url)


def test_what_request_accepts_can_be_canonicalised_and_prepared_by_requests():
    # the coordinator fingerprints every request and requests prepares it: nothing the
    # constructor lets through may make either raise (generated hosts, ports and paths)
    import requests

    hosts = ["example.com", "EXAMPLE.com", "127.0.0.1", "[::1]", "[example.org", "a b",
             "exa[mple.org", "bücher.de", "", "u:p@h.example", "h.example.", "_x.example",
             ".x.example", "x..y", "%41.example", "[v1.x]", "h\\x"]
    ports = ["", ":", ":80", ":65535", ":65536", ":x", ":-1", ":1:2", ":٣"]
    rests = ["", "/", "/p?q=1#f", "/é?q=é", "/a b", "?q", "#f", "/%zz", "/\x00"]
    accepted = 0
    for host in hosts:
        for port in ports:
            for rest in rests:
                url = f"http://{host}{port}{rest}"
                try:
                    r = Request(url)
                except ValueError:
                    assert url_problem(url) is not None
                    continue
                accepted += 1
                r.fingerprint, r.host  # noqa: B018 -- must not raise
                requests.Request("GET", r.url).prepare()
    assert accepted > 100


def test_a_request_made_unchecked_keeps_a_malformed_url_for_admission_to_count():
    r = Request.unchecked("http://[example.org/x", "parse_book", priority=3)
    assert (r.url, r.callback, r.priority) == ("http://[example.org/x", "parse_book", 3)
    assert Request.unchecked("http://example.com/ok").url == "http://example.com/ok"
    with pytest.raises(TypeError):
        Request.unchecked(None)  # type: ignore[arg-type]


def test_a_stored_request_with_a_url_that_no_longer_passes_still_decodes():
    # stored by an older version that accepted it: it fails as a fetch, not as the crawl
    r = Request.from_dict({"url": "http:///x", "callback": "parse_book"})
    assert r.url == "http:///x" and r.callback == "parse_book"


def test_the_common_url_shape_is_accepted_without_parsing(monkeypatch):
    # not a timing test: the plain shape must never reach the parsing path
    import scraper.http as http

    parsed = []
    real = http.urlsplit
    monkeypatch.setattr(http, "urlsplit", lambda *a, **k: parsed.append(a) or real(*a, **k))
    for url in ("http://example.com/a/b.html", "https://www.example.co.uk:8443/?q=1",
                "http://127.0.0.1:54321/x#y", "http://example.com"):
        Request(url)
    assert parsed == []
    Request("http://[::1]:8080/")  # an unusual shape is parsed (and so is checked)
    assert parsed
