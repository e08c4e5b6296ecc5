"""How a body's text encoding is chosen, black-box through a real local server:
cases ported from w3lib (tests/test_encoding.py) and Scrapy
(tests/test_http_response_text.py), plus the WHATWG/RFC rules of issue 12.

One crawl serves every case: each route answers its bytes with its Content-Type,
the spider yields what ``response.encoding``, ``response.text`` and
``response.json()`` made of them.
"""

from __future__ import annotations

import codecs
import json

import pytest

from scraper import Spider

from ..conftest import Reply, Site, crawl

NO_HEADER = None


def html(ct: str | None) -> str | None:
    return ct if ct is None or ";" in ct or "/" in ct else f"text/html; charset={ct}"


# (path, Content-Type (None: no header), body, expected codec name, expected text)
CASES: list[tuple[str, str | None, bytes, str, str | None]] = [
    # w3lib tests/test_encoding.py TestHtmlConversion.test_content_type_and_conversion
    ("/w3lib-utf8", html("utf-8"), b"\xc2\xa3", "utf-8", "\xa3"),
    ("/w3lib-latin1-is-cp1252", html("iso-8859-1"), b"\xa3", "cp1252", "\xa3"),
    ("/w3lib-empty-charset", "text/html; charset=", b"\xc2\xa3", "utf-8", "\xa3"),
    ("/w3lib-none", html("none"), b"\xc2\xa3", "utf-8", "\xa3"),
    ("/w3lib-gb2312", html("gb2312"), b"\xa8D", "gb18030", "\u2015"),
    ("/w3lib-gbk", html("gbk"), b"\xa8D", "gb18030", "\u2015"),
    ("/w3lib-big5", html("big5"), b"\xf9\xda", "big5hkscs", "\u6052"),
    # w3lib TestHtmlConversion.test_unicode_body (cp1251 declared)
    ("/w3lib-cp1251", html("cp1251"), "кириллический текст".encode("cp1251"), "cp1251",
     "кириллический текст"),
    # w3lib test_invalid_utf8_encoded_body_with_valid_utf8_BOM: the BOM is stripped
    ("/w3lib-bom-invalid", html("utf-8"), b"\xef\xbb\xbfWORD\xe3\xabWORD2", "utf-8",
     "WORD\ufffdWORD2"),
    ("/w3lib-bom-invalid-noheader", NO_HEADER, b"\xef\xbb\xbfWORD\xe3\xabWORD2", "utf-8",
     "WORD\ufffdWORD2"),
    # w3lib test_BOM: the BOM wins over the header
    ("/w3lib-bom-be", html("utf-8"), codecs.BOM_UTF16_BE + "hi".encode("utf-16-be"),
     "utf-16-be", "hi"),
    # w3lib test_utf16_32: the BOM decides the byte order; without one, big-endian
    ("/w3lib-utf16-le-bom", html("utf-16"), codecs.BOM_UTF16_LE + "hi".encode("utf-16-le"),
     "utf-16-le", "hi"),
    ("/w3lib-utf16-no-bom", html("utf-16"), "hi".encode("utf-16-be"), "utf-16-be", "hi"),
    ("/w3lib-utf32-no-bom", html("utf-32"), "hi".encode("utf-32-be"), "utf-32-be", "hi"),
    ("/w3lib-utf32-le-bom", NO_HEADER, codecs.BOM_UTF32_LE + "hi".encode("utf-32-le"),
     "utf-32-le", "hi"),
    # w3lib test_html_encoding: a meta declaration; the header and the BOM take precedence
    ("/w3lib-meta", NO_HEADER, b'blah < meta   http-equiv="Content-Type"\n content="text/html;'
     b' charset=iso-8859-1"> \xa3', "cp1252", None),
    ("/w3lib-meta-header-wins", html("utf-8"), b'<meta charset="iso-8859-1"> \xc2\xa3', "utf-8",
     None),
    # Scrapy tests/test_http_response_text.py test_encoding r8: BOM over a header charset
    ("/scrapy-bom-over-cp1251", html("cp1251"), codecs.BOM_UTF8 + b"\xc2\xa3", "utf-8", "\xa3"),
    # Scrapy test_declared_encoding_invalid: an unknown charset is ignored
    ("/scrapy-unknown-charset", html("UNKNOWN"), b"\xc2\xa3", "utf-8", "\xa3"),
    # Scrapy test_encoding r9: no usable declaration, not UTF-8 -> cp1252
    ("/scrapy-r9", "application/x-download; filename=dummy.txt", b"\x80", "cp1252", "€"),
    # Scrapy test_html5_meta_charset
    ("/scrapy-html5-meta", NO_HEADER, b'<html><head><meta charset="gb2312" /><title>Some page'
     b"</title><body>bla bla</body>", "gb18030", None),
    # Scrapy test_bom_is_removed_from_body
    ("/scrapy-bom-removed", NO_HEADER, b"\xef\xbb\xbfWORD", "utf-8", "WORD"),
    # issue 12: codecs that are not text encodings fall back to sniffing
    ("/junk-base64", html("base64"), b"<p>caf\xc3\xa9</p>", "utf-8", "<p>café</p>"),
    ("/junk-hex", html("hex"), b"<p>caf\xc3\xa9</p>", "utf-8", "<p>café</p>"),
    ("/junk-rot13", html("rot13"), b"<p>plain</p>", "utf-8", "<p>plain</p>"),
    ("/junk-zlib", html("zlib"), b"<p>plain</p>", "utf-8", "<p>plain</p>"),
    # issue 12: never EBCDIC, whatever a server declares
    ("/junk-ebcdic", html("cp037"), b"<p>plain</p>", "utf-8", "<p>plain</p>"),
    ("/junk-ebcdic-label", html("ebcdic-cp-us"), b"<p>plain</p>", "utf-8", "<p>plain</p>"),
    # WHATWG: a meta that says UTF-16 in an ASCII-compatible document means UTF-8
    ("/meta-utf16", NO_HEADER, b'<meta charset="utf-16"><p>caf\xc3\xa9', "utf-8", None),
]

FRENCH = ("<html><body><p>Les élèves étudient à l'école. Où sont-ils? Très bien, déjà été. "
          "Il était une fois une fête où l'on mangeait des crêpes.</p></body></html>") * 3


@pytest.fixture(scope="module")
def decoded() -> dict[str, dict[str, object]]:
    site = Site()
    try:
        for path, ct, body, _, _ in CASES:
            site.route(path, Reply(body, content_type=ct))
        # issue 12: undeclared Western text is windows-1252, not a tied cp1250/cp1257
        site.route("/undeclared-french", Reply(FRENCH.encode("cp1252"), content_type=NO_HEADER))
        site.route("/undeclared-cp1251", Reply(("<p>" + "Съешь же ещё этих мягких французских "
                                                "булок, да выпей чаю. " * 5 + "</p>")
                                               .encode("cp1251"), content_type="text/html"))
        # Scrapy test_json_response_wrong_charset and test_json_response_non_utf8
        site.route("/json-wrong-charset", Reply('{"message": "café"}'.encode(),
                                                content_type="application/json; charset=iso-8859-1"))
        site.route("/json-utf16", Reply('{"message": "café"}'.encode("utf-16"),
                                        content_type="application/json; charset=iso-8859-1"))
        site.route("/json-non-utf8", Reply('{"message": "café"}'.encode("cp1252"),
                                           content_type="application/json"))
        paths = [c[0] for c in CASES] + ["/undeclared-french", "/undeclared-cp1251"]
        json_paths = ["/json-wrong-charset", "/json-utf16", "/json-non-utf8"]

        class Decode(Spider):
            name = "decode"
            start_urls = [site.url + p for p in paths + json_paths]

            def parse(self, response):
                path = response.url[len(site.url):]
                if path.startswith("/json"):
                    yield {"path": path, "json": response.json()}
                else:
                    yield {"path": path, "encoding": response.encoding, "text": response.text}

        _, items = crawl(Decode)
        return {i["path"]: i for i in items}
    finally:
        site.close()


def _codec(name: object) -> str:
    return codecs.lookup(str(name)).name


@pytest.mark.parametrize(("path", "ct", "body", "encoding", "text"), CASES,
                         ids=[c[0] for c in CASES])
def test_encoding_and_text(decoded, path, ct, body, encoding, text):
    got = decoded[path]
    assert _codec(got["encoding"]) == _codec(encoding), (ct, body)
    if text is not None:
        assert got["text"] == text


def test_undeclared_western_text_is_windows_1252(decoded):
    got = decoded["/undeclared-french"]
    assert got["encoding"] == "cp1252"
    assert "élèves" in str(got["text"])


def test_undeclared_cyrillic_is_detected(decoded):
    got = decoded["/undeclared-cp1251"]
    assert "французских" in str(got["text"]), got["encoding"]


@pytest.mark.parametrize("path", ["/json-wrong-charset", "/json-utf16", "/json-non-utf8"])
def test_json_is_utf8_whatever_the_charset(decoded, path):
    assert decoded[path]["json"] == {"message": "café"}


def test_text_encoding_accepts_text_codecs_only():
    from scraper.encoding import text_encoding

    assert text_encoding("utf-8") == "utf-8"
    assert text_encoding("latin1") == "iso8859-1"
    for junk in ("base64", "hex", "rot13", "zlib", "bz2", "uu", "cp037", "cp500", "nope", "", None):
        assert text_encoding(junk) is None, junk
    assert json.dumps(text_encoding("utf-16")) == '"utf-16-be"'
