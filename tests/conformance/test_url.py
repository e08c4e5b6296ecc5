"""URLs as browsers, w3lib and Scrapy make them, black-box through the public API:
``Response.follow()``/``urljoin()``/``links()``/``follow_all()``, ``Request`` (what it
accepts, and its fingerprint), ``canonical_url``, and real crawls for what reaches the
server.

Cases are ported (inputs and expected results, not code) from:
  scrapy/w3lib  tests/test_url.py: SAFE_URL_URL_CASES, SAFE_URL_ENCODING_CASES,
                TestUrl.test_safe_url_string*, TestCanonicalizeUrl.*
  scrapy/scrapy tests/utils/bases/http_response.py (TestResponseBase: urljoin, follow*),
                tests/test_http_response_text.py (TestTextResponse: test_urljoin_with_base_url,
                test_follow_selector, test_follow_whitespace_selector, test_follow_encoding),
                tests/utils/bases/http_request.py (test_url_quoting, test_url_encoding*),
                tests/test_utils_request.py (TestFingerprint)
Each case names its source. Where we deliberately differ, the case is in a DEVIATIONS
table with what we do and why.
"""

from __future__ import annotations

import html as htmllib
from pathlib import Path

import pytest

from scraper import Request, Response, Spider
from scraper.http import canonical_url

from ..conftest import Reply, Site, crawl

BASE = "http://base.example/dir/page.html"

# w3lib tests/test_url.py: the character classes its generated cases are built from
ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = ALPHA + "0123456789"
C0_CONTROL_OR_SPACE = "".join(map(chr, range(0x21)))
TAB_OR_NEWLINE = "\t\n\r"
USERINFO_SAFE = ALNUM + "-_.!~*'()" + "&+$,"
USERNAME_TO_ENCODE = "".join(chr(v) for v in range(0x80) if chr(v) not in C0_CONTROL_OR_SPACE
                             and chr(v) not in USERINFO_SAFE and chr(v) not in ":/?#\\[]")
PASSWORD_TO_ENCODE = USERNAME_TO_ENCODE + ":"
PATH_SAFE = ALNUM + "-_.!~*'()" + ":@&=+$," + "/" + ";"
QUERY_SAFE = ALNUM + "-_.!~*'()" + ":@&=+$," + "/" + ";" + "?"
SPECIAL_QUERY_SAFE = QUERY_SAFE.replace("'", "")
# w3lib's *_TO_ENCODE sets include "%", which w3lib >= its git HEAD escapes when it does not
# start an escape; the w3lib we use (and browsers) keep it: see DEVIATIONS
PATH_TO_ENCODE = "".join(chr(v) for v in range(0x80) if chr(v) not in C0_CONTROL_OR_SPACE
                         and chr(v) not in PATH_SAFE and chr(v) not in "?#\\%")
SPECIAL_QUERY_TO_ENCODE = "".join(chr(v) for v in range(0x80) if chr(v) not in C0_CONTROL_OR_SPACE
                                  and chr(v) not in SPECIAL_QUERY_SAFE and chr(v) not in "#%")


def escaped(chars: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in chars)


def page(body: bytes | str = b"<html></html>", encoding: str = "utf-8", url: str = BASE) -> Response:
    if isinstance(body, str):  # what the encoding lacks, written as HTML writes it: &#NNNN;
        body = body.encode(encoding, "xmlcharrefreplace")
    return Response(url, 200, {"Content-Type": f"text/html; charset={encoding}"}, body, Request(url))


def followed(href: str, encoding: str = "utf-8") -> str | type[ValueError]:
    """The URL ``follow(href)`` requests from a page in ``encoding``, or ValueError."""
    try:
        return page(encoding=encoding).follow(href).url
    except ValueError:
        return ValueError


def linked(href: str, encoding: str = "utf-8") -> tuple[list[str], set[str]]:
    """What ``links()`` makes of one ``<a href>``, and the malformed URLs it skipped."""
    r = page(f'<html><body><a href="{htmllib.escape(href)}">x</a></body></html>', encoding)
    return r.links(), set(r.bad_urls)


# -- w3lib safe_url_string: follow() and links() escape as it does -------------------------
SAFE_URL_CASES: list[tuple[str, str | type[ValueError]]] = [
    # w3lib SAFE_URL_URL_CASES: leading and trailing C0 control or space are removed
    *((f"{c}https://example.com{c}", "https://example.com")
      for c in C0_CONTROL_OR_SPACE if c not in TAB_OR_NEWLINE),
    # w3lib SAFE_URL_URL_CASES: every ASCII tab or newline is removed
    ("".join(f"{TAB_OR_NEWLINE}{c}" for c in "https://ab:ab@example.com:12/ab?ab#ab"),
     "https://ab:ab@example.com:12/ab?ab#ab"),
    # w3lib SAFE_URL_URL_CASES: authority
    ("https://a@example.com", "https://a@example.com"),
    ("https://a:@example.com", "https://a:@example.com"),
    ("https://:a@example.com", "https://:a@example.com"),
    ("https://a:a@example.com", "https://a:a@example.com"),
    ("https://a%3A@example.com", "https://a%3A@example.com"),
    (f"https://{USERINFO_SAFE}:{USERINFO_SAFE}@example.com",
     f"https://{USERINFO_SAFE}:{USERINFO_SAFE}@example.com"),
    (f"https://{USERNAME_TO_ENCODE}:{PASSWORD_TO_ENCODE}@example.com",
     f"https://{escaped(USERNAME_TO_ENCODE)}:{escaped(PASSWORD_TO_ENCODE)}@example.com"),
    ("https://@\\example.com", ValueError),
    ("https://evil.com\\@good.com/", "https://evil.com/@good.com/"),
    ("https://good.com\\@evil.com/", "https://good.com/@evil.com/"),
    ("https://\x80:\x80@example.com", "https://%C2%80:%C2%80@example.com"),
    # w3lib SAFE_URL_URL_CASES: host
    ("https://example.com", "https://example.com"),
    ("https://\x80.example", ValueError),
    ("https://%80.example", ValueError),
    (f"https://{'a' * 64}.example", f"https://{'a' * 64}.example"),
    (f"https://{'a' * 63}.{'a' * 63}.{'a' * 63}.{'a' * 54}.example",
     f"https://{'a' * 63}.{'a' * 63}.{'a' * 63}.{'a' * 54}.example"),
    ("https://ñ.example", "https://xn--ida.example"),
    ("http://192.168.0.0", "http://192.168.0.0"),
    ("http://[2a01:5cc0:1:2::4]", "http://[2a01:5cc0:1:2::4]"),
    ("http://[2a01:5cc0:1:2:3:4]", ValueError),
    ("https://[2402:4e00:40:40::2:3b6]:443", "https://[2402:4e00:40:40::2:3b6]:443"),
    ("http://[::1]", "http://[::1]"),
    ("http://[::1]:8080/path?q=1", "http://[::1]:8080/path?q=1"),
    ("http://[v6a.ip]", "http://v6a.ip"),
    ("http://user@[192.0.2.146]/Path?Query", ValueError),
    ("http://user@[important.com:8000]/Path?Query", ValueError),
    ("http://user@[0439:23af::2309::fae7:1234]/Path?Query", ValueError),
    ("http://user@]v6a.ip[/Path", ValueError),
    ("http://prefix.[v6a.ip]", ValueError),
    ("http://[::1].suffix/", ValueError),
    ("http://prefix.[::1]:a", ValueError),
    ("http://[v6a.ip", ValueError),
    ("http://v6a.ip]", ValueError),
    ("https://example\uff1a80.com", ValueError),   # invalid after NFKC normalisation
    ("https://example\uff03.com", ValueError),
    ("https://evil.com\uff3c.example.com", ValueError),
    ("https://examplｅ.com", "https://example.com"),  # changed by NFKC normalisation
    # w3lib SAFE_URL_URL_CASES: port
    ("https://example.com:", "https://example.com:"),
    ("https://example.com:1", "https://example.com:1"),
    ("https://example.com:443", "https://example.com:443"),
    ("https://example.com:bad_port", ValueError),
    ("https://example.com:-1", ValueError),
    ("https://example.com:66000", ValueError),
    # w3lib SAFE_URL_URL_CASES: path ("\" is "/" before the query, escaped after it)
    ("https://example.com/", "https://example.com/"),
    ("https://example.com\\a", "https://example.com/a"),
    ("https://example.com/a\\b", "https://example.com/a/b"),
    ("https://example.com\\a?b\\c", "https://example.com/a?b%5Cc"),
    ("https://example.com\\a?b\\c#d\\e", "https://example.com/a?b%5Cc#d%5Ce"),
    (f"https://example.com/{PATH_SAFE}", f"https://example.com/{PATH_SAFE}"),
    (f"https://example.com/{PATH_TO_ENCODE}", f"https://example.com/{escaped(PATH_TO_ENCODE)}"),
    ("https://example.com/ñ", "https://example.com/%C3%B1"),
    ("https://example.com/ñ%C3%B1", "https://example.com/%C3%B1%C3%B1"),
    ("https://example.com/%3F", "https://example.com/%3F"),
    ("https://example.com/%23", "https://example.com/%23"),
    # w3lib SAFE_URL_URL_CASES: query and fragment
    ("https://example.com/?", "https://example.com/?"),
    (f"https://example.com/?{SPECIAL_QUERY_SAFE}", f"https://example.com/?{SPECIAL_QUERY_SAFE}"),
    (f"https://example.com?{SPECIAL_QUERY_TO_ENCODE}",
     f"https://example.com/?{escaped(SPECIAL_QUERY_TO_ENCODE)}"),
    ("https://example.com?ñ", "https://example.com/?%C3%B1"),
    ("https://example.com?ñ%C3%B1", "https://example.com/?%C3%B1%C3%B1"),
    ("https://example.com#", "https://example.com#"),
    ("https://example.com/?#", "https://example.com/?#"),
    ("https://example.com#ñ", "https://example.com#%C3%B1"),
    ("https://ñ:ñ@ñ.example:1/ñ?ñ#ñ",
     "https://%C3%B1:%C3%B1@xn--ida.example:1/%C3%B1?%C3%B1#%C3%B1"),
    # w3lib SAFE_URL_URL_CASES: "[" and "]" outside the authority are ordinary characters
    ("https://example.com/[x]", "https://example.com/%5Bx%5D"),
    ("http://example.com/search?tags[]=a", "http://example.com/search?tags%5B%5D=a"),
    ("http://[::1]:8080/p?q=[1]", "http://[::1]:8080/p?q=%5B1%5D"),
    # w3lib TestUrl.test_safe_url_string
    ("http://www.example.org/", "http://www.example.org/"),
    ("/ecommerce/oggetto/Te \xf2/tea-strainer/1273",
     "http://base.example/ecommerce/oggetto/Te%20%C3%B2/tea-strainer/1273"),
    ("http://www.example.com/test?p(29)url(http://www.another.net/page)",
     "http://www.example.com/test?p(29)url(http://www.another.net/page)"),
    ("http://www.example.com/Brochures_&_Paint_Cards&PageSize=200",
     "http://www.example.com/Brochures_&_Paint_Cards&PageSize=200"),
    ("http://www.example.com/£", "http://www.example.com/%C2%A3"),
    # w3lib TestUrl.test_safe_url_string_remove_ascii_tab_and_newlines
    ("http://example.com/test\n.html", "http://example.com/test.html"),
    ("http://example.com/test\r\n.html\t", "http://example.com/test.html"),
    ("http://example.com/test\a\n.html", "http://example.com/test%07.html"),
    # w3lib TestUrl.test_safe_url_string_quote_path
    ('http://google.com/"hello"', "http://google.com/%22hello%22"),
    # w3lib TestUrl.test_safe_url_string_with_query and test_safe_url_string_misc
    ("http://www.example.com/£?unit=µ", "http://www.example.com/%C2%A3?unit=%C2%B5"),
    ("http://www.example.com/£?unit=%C2%B5", "http://www.example.com/%C2%A3?unit=%C2%B5"),
    ("http://www.example.com/%C2%A3?unit=µ", "http://www.example.com/%C2%A3?unit=%C2%B5"),
    # w3lib TestUrl.test_safe_url_idna
    ("http://www.färgbolaget.nu/färgbolaget", "http://www.xn--frgbolaget-q5a.nu/f%C3%A4rgbolaget"),
    ("http://www.räksmörgås.se/?räksmörgås=yes",
     "http://www.xn--rksmrgs-5wao1o.se/?r%C3%A4ksm%C3%B6rg%C3%A5s=yes"),
    ("http://www.예비교사.com", "http://www.xn--9d0bm53a3xbzui.com"),
    ("http://www.bücher.de/?q=bücher", "http://www.xn--bcher-kva.de/?q=b%C3%BCcher"),
    ("http://はじめよう.みんな/?query=サ&maxResults=5",
     "http://xn--p8j9a0d9c9a.xn--q9jyb4c/?query=%E3%82%B5&maxResults=5"),
    ("http://кто.рф/index.php?domain=Что",
     "http://xn--j1ail.xn--p1ai/index.php?domain=%D0%A7%D1%82%D0%BE"),
    ("http://nic.شبكة", "http://nic.xn--ngbc5azd"),
    ("https://www2.xn--0kwr83e.在线", "https://www2.xn--0kwr83e.xn--3ds443g"),
    # w3lib TestUrl.test_safe_url_idna_encoding_failure: a label too long for IDNA is
    # kept (requests refuses it when fetching: a bad-url failure then)
    (f"http://www.{'éxamplé' * 11}.com/résumé?q=résumé",
     f"http://www.{'éxamplé' * 11}.com/r%C3%A9sum%C3%A9?q=r%C3%A9sum%C3%A9"),
    # w3lib TestUrl.test_safe_url_port_number
    ("http://www.example.com:80/résumé?q=résumé",
     "http://www.example.com:80/r%C3%A9sum%C3%A9?q=r%C3%A9sum%C3%A9"),
    ("http://www.example.com:/résumé?q=résumé",
     "http://www.example.com/r%C3%A9sum%C3%A9?q=r%C3%A9sum%C3%A9"),
    # w3lib TestUrl.test_safe_url_string_preserve_nonfragment_hash
    ("http://www.example.com/path/to/%23/foo/bar#frag",
     "http://www.example.com/path/to/%23/foo/bar#frag"),
    ("http://www.example.com/path/to/%23/foo/bar?url=http%3A%2F%2Fwww.example.com%2Fpath%2Fto"
     "%2F%23%2Fbar%2Ffoo", "http://www.example.com/path/to/%23/foo/bar?url=http%3A%2F%2Fwww."
     "example.com%2Fpath%2Fto%2F%23%2Fbar%2Ffoo"),
    # w3lib TestUrl.test_safe_url_string_encode_idna_domain_with_port / _with_username...
    ("http://新华网.中国:80", "http://xn--xkrr14bows.xn--fiqs8s:80"),
    ("http://Åsa:abc123@➡.ws:81/admin", "http://%C3%85sa:abc123@xn--hgi.ws:81/admin"),
    ("http://japão:não@️i❤️.ws:8000/", "http://jap%C3%A3o:n%C3%A3o@xn--i-7iq.ws:8000/"),
]


@pytest.mark.parametrize("href, expected", SAFE_URL_CASES)
def test_follow_escapes_as_safe_url_string(href, expected):
    assert followed(href) == expected


@pytest.mark.parametrize("href, expected", [c for c in SAFE_URL_CASES
                                            if not any(ch in c[0] for ch in "\x00\x0b\x0c")])
def test_links_escape_as_safe_url_string_and_skip_what_it_refuses(href, expected):
    # the same cases through an <a href> (characters an HTML attribute cannot carry aside)
    links, bad = linked(href)
    if expected is ValueError:
        assert links == [] and len(bad) == 1
    else:
        assert links == [expected.split("#", 1)[0]] and not bad


# -- w3lib SAFE_URL_ENCODING_CASES and TestUrl: the query goes in the page's encoding -------
ENCODING_CASES = [
    # w3lib SAFE_URL_ENCODING_CASES
    ("utf-8", "https://example.com/©", "https://example.com/%C2%A9"),
    ("iso-8859-1", "https://example.com/©", "https://example.com/%C2%A9"),  # paths: UTF-8
    ("iso-8859-1", "https://example.com?©", "https://example.com/?%A9"),
    ("iso-8859-1", "http://example.com?©", "http://example.com/?%A9"),
    # w3lib TestUrl.test_safe_url_string: page encoding does not affect the path
    ("latin-1", "http://www.example.com/£", "http://www.example.com/%C2%A3"),
    # w3lib TestUrl.test_safe_url_string_with_query
    ("utf-8", "http://www.example.com/£?unit=µ", "http://www.example.com/%C2%A3?unit=%C2%B5"),
    ("latin-1", "http://www.example.com/£?unit=µ", "http://www.example.com/%C2%A3?unit=%B5"),
    # w3lib TestUrl.test_safe_url_string_bytes_input: page-encoded bytes, UTF-8 path
    ("latin-1", "http://www.example.com/\xa3?unit=\xb5", "http://www.example.com/%C2%A3?unit=%B5"),
    # w3lib TestCanonicalizeUrl.test_canonicalize_url_unicode_query_string (the page
    # encoding given as canonicalize_url's encoding=)
    ("latin-1", "http://www.example.com/résumé?q=résumé",
     "http://www.example.com/r%C3%A9sum%C3%A9?q=r%E9sum%E9"),
    ("cp1251", "http://www.example.com/résumé?country=Россия",
     "http://www.example.com/r%C3%A9sum%C3%A9?country=%D0%EE%F1%F1%E8%FF"),
    # Scrapy TestTextResponse.test_follow_encoding
    ("utf-8", "foo?привет", "http://base.example/dir/foo?%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82"),
    ("cp1251", "foo?привет", "http://base.example/dir/foo?%EF%F0%E8%E2%E5%F2"),
    # Scrapy tests/utils/bases/http_request.py test_url_encoding_query_latin1
    ("latin-1", "http://www.scrapy.org/price/µ?currency=£",
     "http://www.scrapy.org/price/%C2%B5?currency=%A3"),
]


@pytest.mark.parametrize("encoding, href, expected", ENCODING_CASES)
def test_the_query_is_encoded_in_the_page_encoding(encoding, href, expected):
    r = page(f'<html><body><a href="{href}">x</a></body></html>', encoding)
    assert r.follow(href).url == expected
    assert r.follow(r.css("a")[0]).url == expected
    assert r.urljoin(href) == expected
    assert r.links() == [expected]
    # the fingerprint sees the escaped URL: a page-encoded query stays distinct from UTF-8's
    assert canonical_url(expected) == canonical_url(canonical_url(expected))


# -- w3lib TestCanonicalizeUrl: the fingerprint's canonical form ---------------------------
CANONICAL_CASES = [
    ("http://www.example.com/", "http://www.example.com/"),                       # test_canonicalize_url
    ("http://www.example.com", "http://www.example.com/"),                        # test_append_missing_path
    ("http://www.example.com/do?a=1&b=2&c=3", "http://www.example.com/do?a=1&b=2&c=3"),  # test_typical_usage
    ("http://www.example.com/do?c=1&b=2&a=3", "http://www.example.com/do?a=3&b=2&c=1"),
    ("http://www.example.com/do?&a=1", "http://www.example.com/do?a=1"),
    ("http://www.example.com:8888/do?a=1&b=2&c=3", "http://www.example.com:8888/do?a=1&b=2&c=3"),  # test_port_number
    ("http://www.example.com:/do?a=1&b=2&c=3", "http://www.example.com/do?a=1&b=2&c=3"),
    ("http://www.example.com/do?c=3&b=5&b=2&a=50", "http://www.example.com/do?a=50&b=2&b=5&c=3"),  # test_sorting
    ("http://www.example.com/do?b=&a=2", "http://www.example.com/do?a=2&b="),     # test_keep_blank_values
    ("http://www.example.com/do?b=&c&a=2", "http://www.example.com/do?a=2&b=&c="),
    ("http://www.example.com/do?1750,4", "http://www.example.com/do?1750%2C4="),
    ("http://www.example.com/do?q=a space&a=1", "http://www.example.com/do?a=1&q=a+space"),  # test_spaces
    ("http://www.example.com/do?q=a+space&a=1", "http://www.example.com/do?a=1&q=a+space"),
    ("http://www.example.com/do?q=a%20space&a=1", "http://www.example.com/do?a=1&q=a+space"),
    ("http://www.example.com/résumé", "http://www.example.com/r%C3%A9sum%C3%A9"),  # test_..._unicode_path
    ("http://www.example.com/résumé?q=résumé",                                     # ..._unicode_query_string
     "http://www.example.com/r%C3%A9sum%C3%A9?q=r%C3%A9sum%C3%A9"),
    ("http://exa\tmple.com/a\r\nb?q=a\tb", "http://example.com/ab?q=ab"),        # ..._remove_ascii_tab_and_newlines
    ("http://www.example.com/r%c3%a9sum%c3%a9", "http://www.example.com/r%C3%A9sum%C3%A9"),  # test_normalize_percent_encoding_in_paths
    ("http://www.example.com/a%a3do", "http://www.example.com/a%A3do"),
    ("http://www.example.com/a%a3do?q=r%c3%a9sum%c3%a9", "http://www.example.com/a%A3do?q=r%C3%A9sum%C3%A9"),
    ("http://www.example.com/a%a3do?q=r%e9sum%e9", "http://www.example.com/a%A3do?q=r%E9sum%E9"),
    ("https://example.com/a%23b%2cc#bash", "https://example.com/a%23b,c"),
    ("http://www.example.com/do?k=b%a3", "http://www.example.com/do?k=b%A3"),    # ..._in_query_arguments
    ("http://www.example.com/do?k=r%c3%a9sum%c3%a9", "http://www.example.com/do?k=r%C3%A9sum%C3%A9"),
    ("http://www.example.com/a do?a=1", "http://www.example.com/a%20do?a=1"),    # test_non_ascii_percent_encoding_in_paths
    ("http://www.example.com/a %20do?a=1", "http://www.example.com/a%20%20do?a=1"),
    ("http://www.example.com/a do£.html?a=1", "http://www.example.com/a%20do%C2%A3.html?a=1"),
    ("http://www.example.com/do?price=£500&a=5&z=3",                               # ..._in_query_arguments
     "http://www.example.com/do?a=5&price=%C2%A3500&z=3"),
    ("http://user:pass@www.example.com:81/do?now=1", "http://user:pass@www.example.com:81/do?now=1"),  # test_urls_with_auth_and_ports
    ("http://user:pass@www.example.com/do?a=1#frag", "http://user:pass@www.example.com/do?a=1"),  # test_remove_fragments
    ("http://[::1]/do?a=1#frag", "http://[::1]/do?a=1"),                          # test_remove_fragments_ipv6_host
    ("http://www.simplybedrooms.com/White-Bedroom-Furniture/Bedroom-Mirror:-Josephine-Cheval-Mirror.html",
     "http://www.simplybedrooms.com/White-Bedroom-Furniture/Bedroom-Mirror:-Josephine-Cheval-Mirror.html"),
    ("http://www.example.com/caf%E9-con-leche.htm", "http://www.example.com/caf%E9-con-leche.htm"),  # test_safe_characters_unicode
    ("http://www.EXAMPLE.com/", "http://www.example.com/"),                       # test_domains_are_case_insensitive
    ("http://www.bücher.de?q=bücher", "http://www.xn--bcher-kva.de/?q=b%C3%BCcher"),  # test_canonicalize_idns
    ("http://はじめよう.みんな/?query=サ&maxResults=5",
     "http://xn--p8j9a0d9c9a.xn--q9jyb4c/?maxResults=5&query=%E3%82%B5"),
    ("http://www.bücher.de:8080/?q=bücher", "http://www.xn--bcher-kva.de:8080/?q=b%C3%BCcher"),
    ("http://user@例え.jp/path", "http://user@xn--r8jz45g.jp/path"),             # ..._idns_with_userinfo
    ("http://user:pass@例え.jp:8080/p", "http://user:pass@xn--r8jz45g.jp:8080/p"),
    ("http://foo.com/AC%2FDC+rocks%3f/?yeah=1", "http://foo.com/AC%2FDC+rocks%3F/?yeah=1"),  # test_quoted_slash_and_question_sign
    ("http://foo.com/AC%2FDC/", "http://foo.com/AC%2FDC/"),
    ("http://www.example.com/dir;x/a%7Eb", "http://www.example.com/dir;x/a~b"),  # ..._non_final_segment_semicolon
    ("http://www.example.com/path/to/%23/foo/bar#frag", "http://www.example.com/path/to/%23/foo/bar"),  # test_preserve_nonfragment_hash
    (" https://example.com ", "https://example.com/"),                            # test_strip_spaces
]


@pytest.mark.parametrize("url, expected", CANONICAL_CASES)
def test_canonical_url_and_fingerprint(url, expected):
    assert canonical_url(url) == expected
    assert canonical_url(expected) == expected  # w3lib test_canonicalize_url_idempotence
    # equivalent URLs are one request to the de-duplication
    assert Request(url).fingerprint == Request(expected).fingerprint


# -- Scrapy tests/test_utils_request.py TestFingerprint ------------------------------------
def fp(url: str, **kw) -> bytes:
    return Request(url, **kw).fingerprint


def test_fingerprint_equivalences_of_scrapy():
    # test_query_string_key_order
    assert fp("http://www.example.com/query?id=111&cat=222") == fp(
        "http://www.example.com/query?cat=222&id=111")
    # test_query_string_key_without_value
    assert fp("http://www.example.com/hnnoticiaj1.aspx?78132,199") != fp(
        "http://www.example.com/hnnoticiaj1.aspx?78160,199")
    # test_header / test_headers: headers are not part of the fingerprint
    assert fp("http://www.example.com/members/offers.html") == fp(
        "http://www.example.com/members/offers.html", headers={"SESSIONID": "somehash"})
    assert fp("http://www.example.com/") == fp("http://www.example.com/",
                                                headers={"Accept-Language": "en"})
    # test_fragment
    assert fp("http://www.example.com/test.html") == fp("http://www.example.com/test.html#fragment")
    # test_method_and_body
    get = fp("http://www.example.com")
    post = fp("http://www.example.com", method="POST")
    post_body = fp("http://www.example.com", method="POST", data=b"request body")
    assert len({get, post, post_body}) == 3
    # test_request_replace
    r1 = Request("http://www.example.com")
    assert r1.fingerprint != r1.replace(url="http://www.example.com/other").fingerprint
    # test_part_separation
    assert fp("http://www.example.com/foo") != fp("http://www.example.com/f", data=b"oo")


def test_fingerprint_known_hash_classes_of_scrapy():
    # TestFingerprint.known_hashes: which requests share a fingerprint (the bytes differ:
    # ours is not Scrapy's hash), default options only
    requests = {
        "http": fp("http://example.org"),
        "https": fp("https://example.org"),
        "?a": fp("https://example.org?a"),
        "?a=b": fp("https://example.org?a=b"),
        "?a=b&a": fp("https://example.org?a=b&a"),
        "?a=b&a=c": fp("https://example.org?a=b&a=c"),
        "POST": fp("https://example.org", method="POST"),
        "body": fp("https://example.org", data=b"a"),
        "POST body": fp("https://example.org", method="POST", data=b"a"),
        "/ab": fp("https://example.org/ab"),
        "/a body b": fp("https://example.org/a", data=b"b"),
    }
    assert len(set(requests.values())) == len(requests)
    assert fp("https://example.org#a", headers={"A": "B"}) == requests["https"]


# -- Scrapy Response.urljoin / follow / follow_all ------------------------------------------
def test_urljoin_of_scrapy():
    # TestResponseBase.test_urljoin
    assert page(url="http://www.example.com").urljoin("/test") == "http://www.example.com/test"
    # TestTextResponse.test_urljoin_with_base_url
    for base, href, expected in [('<base href="https://example.net">', "/test", "https://example.net/test"),
                                 ('<base href="/elsewhere">', "test", "http://www.example.com/test"),
                                 ('<base href="/elsewhere/">', "test",
                                  "http://www.example.com/elsewhere/test")]:
        body = f"<html><body>{base}</body></html>"
        assert page(body, url="http://www.example.com").urljoin(href) == expected


def test_follow_and_follow_all_of_scrapy():
    r = page(url="http://example.com/index")
    # TestResponseBase.test_follow_url_absolute / _relative / _whitespace_url
    assert r.follow("http://foo.example.com").url == "http://foo.example.com"
    assert r.follow("foo").url == "http://example.com/foo"
    assert r.follow("foo ").url == "http://example.com/foo"
    # test_follow_all_absolute / _relative / _whitespace / _empty
    absolute = ["http://example.org", "http://www.example.org", "http://example.com",
                "http://www.example.com"]
    assert [q.url for q in r.follow_all(absolute)] == absolute
    assert [q.url for q in r.follow_all(["foo ", "bar ", "foo/bar ", "bar/foo "])] == [
        "http://example.com/foo", "http://example.com/bar", "http://example.com/foo/bar",
        "http://example.com/bar/foo"]
    assert r.follow_all([]) == []


def test_follow_selector_of_scrapy():
    # TestTextResponse.test_follow_selector, on Scrapy's linkextractor.html
    body = (Path(__file__).parent / "data" / "linkextractor.html").read_bytes()
    r = page(body, url="http://example.com/index")
    urls = ["http://example.com/sample2.html", "http://example.com/sample3.html",
            "http://example.com/sample3.html", "http://example.com/sample3.html",
            "http://example.com/sample3.html#foo", "http://www.google.com/something",
            "http://example.com/innertag.html", "http://example.com/page%204.html"]
    assert [r.follow(a).url for a in r.css("a")] == urls
    assert [r.follow(a).url for a in r.xpath("//a/@href")] == urls
    # links(): the same, fragments removed, each once (plus the <area>)
    assert r.links() == ["http://example.com/sample1.html",
                         *dict.fromkeys(u.split("#")[0] for u in urls)]


def test_follow_whitespace_selector_of_scrapy():
    # TestTextResponse.test_follow_whitespace_selector
    r = page(b"""<html><body><a href=" foo\n">click me</a></body></html>""",
             url="http://example.com")
    assert r.follow(r.css("a")[0]).url == "http://example.com/foo"
    assert r.follow(r.css("a::attr(href)")[0]).url == "http://example.com/foo"
    assert r.links() == ["http://example.com/foo"]


# -- what reaches the server -----------------------------------------------------------------
def test_what_the_server_receives(site: Site):
    # the escaping above, end to end: Scrapy's Request URL tests (test_url_quoting,
    # test_url_encoding, test_url_encoding_query) for URLs a spider writes itself, which
    # requests escapes as UTF-8 on the wire; and page links escaped in the page's encoding
    latin1 = ('<html><head><meta charset="iso-8859-1"></head><body>'
              '<a href="/price/µ?currency=£">1</a><a href="/a b?q=a b">2</a>'
              '<a href="/s?q=&#1078;">3</a></body></html>').encode("latin-1")
    cp1251 = '<html><body><a href="/foo?привет">1</a></body></html>'.encode("cp1251")
    site.route("/latin1", Reply(latin1, content_type="text/html; charset=iso-8859-1"))
    site.route("/cp1251", Reply(cp1251, content_type="text/html; charset=windows-1251"))

    class S(Spider):
        name = "wire"

        def start_requests(self):
            yield Request(site.url + "/blank space")
            yield Request(site.url + "/price/£?unit=µ")
            yield Request(site.url + "/latin1", callback=self.follow_links)
            yield Request(site.url + "/cp1251", callback=self.follow_links)

        def follow_links(self, response):
            yield from response.follow_all(response.links())

        def parse(self, response):
            pass

    stats, _ = crawl(S)
    assert stats.reason == "finished"
    assert set(site.paths()) >= {
        "/blank%20space", "/price/%C2%A3?unit=%C2%B5",            # Scrapy's expectations
        "/price/%C2%B5?currency=%A3", "/a%20b?q=a%20b",           # latin-1 page
        "/s?q=%26%231078%3B",                                     # WHATWG: not in latin-1
        "/foo?%EF%F0%E8%E2%E5%F2",                                # cp1251 page
    }


# -- deliberate deviations ---------------------------------------------------------------------
DEVIATIONS = [
    # w3lib SAFE_URL_URL_CASES "https://.example" -> kept: a host whose first label is empty
    # is refused by requests ("URL has an invalid label"), so it is a bad URL here
    ("https://.example", ValueError),
    # w3lib TestUrl.test_safe_url_idna_encoding_failure "missing DNS label": the same
    ("http://.éxamplé.com/résumé?q=résumé", ValueError),
    # w3lib SAFE_URL_URL_CASES "https://example.com?a" -> "https://example.com/?a": an ASCII
    # URL with nothing to escape is not rewritten (the fast path); the empty path is sent
    # as "/" by requests and canonicalised the same, so nothing else differs
    ("https://example.com?a=b", "https://example.com?a=b"),
    # w3lib SAFE_URL_URL_CASES "http://192.168.0.256" -> ValueError: a host that looks
    # like an IPv4 address is not checked here; the fetch fails (DNS) and is counted
    ("http://192.168.0.256", "http://192.168.0.256"),
    # w3lib (its git HEAD) escapes a "%" that starts no escape; the w3lib release we use and
    # browsers (WHATWG) keep it
    ("https://example.com/a%zz b", "https://example.com/a%zz%20b"),
    # w3lib TestUrl.test_safe_url_string_user_and_pass_percentage_encoded: userinfo of an
    # ASCII URL with nothing to escape is kept as written
    ("http://%26user:%26pass@host", "http://%26user:%26pass@host"),
]


@pytest.mark.parametrize("href, ours", DEVIATIONS)
def test_deliberate_deviations(href, ours):
    assert followed(href) == ours


def test_deviation_unencodable_query_characters_are_character_references():
    # w3lib TestCanonicalizeUrl.test_canonicalize_url_unicode_query_string_wrong_encoding
    # falls back to UTF-8 (currency=%E2%82%AC) for what the page encoding cannot encode;
    # browsers (WHATWG URL, "percent-encode after encoding") send an HTML character
    # reference, and so do we: U+0416 is not in windows-1252 (what latin-1 pages are read as)
    r = page('<html><body><a href="/x?country=&#1046;">x</a></body></html>', "latin-1")
    assert r.links() == ["http://base.example/x?country=%26%231046%3B"]


def test_deviation_a_fragment_takes_the_page_encoding():
    # w3lib SAFE_URL_ENCODING_CASES ("iso-8859-1", "https://example.com#©") expects UTF-8
    # and w3lib itself fails it (KNOWN_SAFE_URL_STRING_ENCODING_ISSUES): we inherit that.
    # Harmless: a fragment is never sent, and links() and fingerprints drop it.
    assert followed("https://example.com/#©", "iso-8859-1") == "https://example.com/#%A9"
    assert linked("https://example.com/#©", "iso-8859-1")[0] == ["https://example.com/"]


def test_deviation_request_keeps_the_url_as_given():
    # Scrapy's Request escapes its URL when it is made (tests/utils/bases/http_request.py
    # test_url_quoting: "blank space" -> "blank%20space"); ours keeps it (as Scrapy's
    # meta verbatim_url) and escapes where the page's encoding is known (Response) and on
    # the wire (requests), where test_what_the_server_receives shows the same bytes
    assert Request("http://www.scrapy.org/blank space").url == "http://www.scrapy.org/blank space"
    assert Request("http://www.scrapy.org/blank space").fingerprint == Request(
        "http://www.scrapy.org/blank%20space").fingerprint
