"""Content-Encoding as the crawler undoes it, black-box through a real local server:
cases ported from Scrapy (github.com/scrapy/scrapy @ 11079cb,
tests/test_downloadermiddleware_httpcompression.py and tests/test_utils_gz.py),
each citing its test, with Scrapy's sample bodies (data/compressed/, copied
unchanged; see SOURCE.txt there), plus the header forms RFC 9110 8.4 allows.

One crawl serves every case: each route answers its bytes with its
Content-Encoding header(s); the spider records the body, the header and the
encoding, or the failure kind.

Scrapy's cases that do not apply: COMPRESSION_ENABLED (decoding is always on),
DOWNLOAD_WARNSIZE (no such setting), per-spider/per-request download_maxsize
(``max_response_size`` is one crawl setting), the middleware's stats counters.

DEVIATIONS (what we do otherwise, and why):

1. Every decoded case: the Response keeps the Content-Encoding header the server
   sent (Scrapy removes it once decoded). ``response.headers`` are the headers as
   received, as in requests; the body is always the decoded one.
2. test_multipleencodings, test_multi_compression_*_invalid_compression: when the
   Content-Encoding list names a coding we cannot undo (``uuencode, gzip``,
   ``gzip, foo, deflate``), nothing is undone and the body is passed on as sent
   (Scrapy undoes the codings after the unknown one and leaves a half-decoded body
   under a rewritten header). One rule for any unknown coding, alone or in a list:
   the header still describes the body exactly.
3. zstd (test_process_response_zstd, the zstd bombs and truncations): decoded only
   when urllib3 can (the ``backports.zstd`` package, or Python 3.14); otherwise it
   is not offered in Accept-Encoding, and a server sending it anyway has its body
   passed on as sent, like any unknown coding.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import pytest

from scraper import Request, Spider

from ..conftest import Reply, Site, crawl

DATA = Path(__file__).parent / "data" / "compressed"
HTTPC = "scrapy tests/test_downloadermiddleware_httpcompression.py"
GZ = "scrapy tests/test_utils_gz.py"
LIMIT = 1_000_000  # max_response_size for the whole crawl, as Scrapy's bomb tests set it


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


HTML_SIZE = 74837  # html-*.bin decoded (Scrapy: httpcompression/response_bytes)
DEFLATE_SIZE = 74840  # its deflate samples were made from a copy 3 bytes longer
GB2312_PAGE = (b"<html><head><title>Some page</title>"
               b'<meta http-equiv="Content-Type" content="text/html; charset=gb2312">')
SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.google.com/schemas/sitemap/0.84">
  <url>
    <loc>http://www.example.com/</loc>
    <lastmod>2009-08-16</lastmod>
    <changefreq>daily</changefreq>
    <priority>1</priority>
  </url>
  <url>
    <loc>http://www.example.com/Special-Offers.html</loc>
    <lastmod>2009-08-16</lastmod>
    <changefreq>weekly</changefreq>
    <priority>0.8</priority>
  </url>
</urlset>"""
PLAIN_A = b"a" * 100_000


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


# (path, source, body, Content-Encoding header values, Content-Type)
Served = tuple[str, str, bytes, list[str], str | None]
SERVED: list[Served] = [
    ("/gzip", f"{HTTPC} test_process_response_gzip", sample("html-gzip.bin"), ["gzip"], "text/html"),
    ("/br", f"{HTTPC} test_process_response_br", sample("html-br.bin"), ["br"], "text/html"),
    ("/rawdeflate", f"{HTTPC} test_process_response_rawdeflate", sample("html-rawdeflate.bin"),
     ["deflate"], "text/html"),
    ("/zlibdeflate", f"{HTTPC} test_process_response_zlibdelate", sample("html-zlibdeflate.bin"),
     ["deflate"], "text/html"),
    ("/plain", f"{HTTPC} test_process_response_plain", b"<!DOCTYPE...", [], "text/html"),
    ("/gzip-deflate", f"{HTTPC} test_multi_compression_single_header",
     sample("html-gzip-deflate.bin"), ["gzip, deflate"], "text/html"),
    ("/gzip+deflate", f"{HTTPC} test_multi_compression_multiple_header",
     sample("html-gzip-deflate.bin"), ["gzip", "deflate"], "text/html"),
    ("/gzip+deflate-gzip", f"{HTTPC} test_multi_compression_single_and_multiple_header",
     sample("html-gzip-deflate-gzip.bin"), ["gzip", "deflate, gzip"], "text/html"),
    ("/uuencode-gzip", f"{HTTPC} test_multipleencodings", sample("html-gzip.bin"),
     ["uuencode", "gzip"], "text/html"),
    ("/gzip-foo-deflate", f"{HTTPC} test_multi_compression_single_header_invalid_compression",
     sample("html-gzip-deflate.bin"), ["gzip, foo, deflate"], "text/html"),
    ("/gzip+foo+deflate", f"{HTTPC} test_multi_compression_multiple_header_invalid_compression",
     sample("html-gzip-deflate.bin"), ["gzip", "foo", "deflate"], "text/html"),
    ("/gzip+foo-deflate",
     f"{HTTPC} test_multi_compression_single_and_multiple_header_invalid_compression",
     sample("html-gzip-deflate.bin"), ["gzip", "foo,deflate"], "text/html"),
    ("/encoding-inside-body", f"{HTTPC} test_process_response_encoding_inside_body",
     gzip.compress(GB2312_PAGE), ["gzip"], "text/html"),
    ("/identity-no-content-type", f"{HTTPC} test_process_response_no_content_type_header",
     GB2312_PAGE, ["identity"], None),
    ("/gzipped-content-type", f"{HTTPC} test_process_response_gzipped_contenttype",
     sample("html-gzip.bin"), ["gzip"], "application/gzip"),
    ("/octet-stream", f"{HTTPC} test_process_response_gzip_app_octetstream_contenttype",
     sample("html-gzip.bin"), ["gzip"], "application/octet-stream"),
    ("/x-gzip-binary", f"{HTTPC} test_process_response_gzip_binary_octetstream_contenttype",
     sample("html-gzip.bin"), ["x-gzip"], "binary/octet-stream"),
    ("/gzipped-gzip-file", f"{HTTPC} test_process_response_gzipped_gzip_file",
     gzip.compress(gzip.compress(SITEMAP)), ["gzip"], "application/gzip"),
    ("/deflate-trailing-garbage", f"{HTTPC} test_deflate_extra_data_after_stream[trailing-garbage]",
     zlib.compress(PLAIN_A) + b"garbage", ["deflate"], "text/plain"),
    ("/deflate-second-stream", f"{HTTPC} test_deflate_extra_data_after_stream[second-zlib-stream]",
     zlib.compress(PLAIN_A) + zlib.compress(b"b" * 100_000), ["deflate"], "text/plain"),
    *[(f"/bomb-{c}", f"{HTTPC} test_compression_bomb_setting_{c}", sample(f"bomb-{c}.bin"),
       [c], "text/html") for c in ("br", "deflate", "gzip")],
    *[(f"/truncated-{c}", f"{HTTPC} test_process_truncated_response_{c}",
       half(sample(f"html-{c}.bin")), [coding], "text/html")
      for c, coding in (("br", "br"), ("zlibdeflate", "deflate"), ("gzip", "gzip"))],
    ("/zstd", f"{HTTPC} test_process_response_zstd", sample("html-zstd-static-content-size.bin"),
     ["zstd"], "text/html"),
    ("/gz-truncated", f"{GZ} test_gunzip_truncated", sample("truncated-crc-error.gz"), ["gzip"],
     "text/html"),
    ("/gz-truncated-short", f"{GZ} test_gunzip_truncated_short",
     sample("truncated-crc-error-short.gz"), ["gzip"], "text/html"),
    ("/gz-illegal-eof", f"{GZ} test_gunzip_illegal_eof", sample("unexpected-eof.gz"), ["gzip"],
     "text/html; charset=cp1252"),
    ("/gz-not-gzip", f"{GZ} test_gunzip_no_gzip_file_raises", SITEMAP, ["gzip"], "text/xml"),
    # RFC 9110 8.4: codings are case-insensitive, spaces around them are not part of
    # them, identity is no coding; an unknown coding alone is passed through
    *[(f"/rfc-{name}", "RFC 9110 8.4", sample("html-gzip.bin"), [header], "text/html")
      for name, header in (("upper", "GZIP"), ("spaces", " gzip "), ("identity-gzip", "identity, gzip"),
                           ("gzip-identity", "gzip, identity"), ("empty-item", "gzip,,"))],
    ("/rfc-identity", "RFC 9110 8.4", sample("html-gzip.bin"), ["identity"], "text/html"),
    ("/rfc-unknown", "RFC 9110 8.4", sample("html-gzip.bin"), ["foo"], "text/html"),
]


@pytest.fixture(scope="module")
def fetched() -> dict[str, dict[str, Any]]:
    site = Site()
    try:
        for path, _, body, codings, ctype in SERVED:
            site.route(path, Reply(body, content_type=ctype,
                                   repeated=[("Content-Encoding", c) for c in codings]))
        # test_process_response_head_request_no_decode_required
        site.route("/head", Reply(sample("html-gzip.bin"), content_type="application/gzip",
                                  headers={"Content-Encoding": "gzip"}))
        out: dict[str, dict[str, Any]] = {}

        class Bodies(Spider):
            name = "compression-conformance"

            def start_requests(self):
                for path, *_ in SERVED:
                    yield Request(site.url + path, errback=self.failed)
                yield Request(site.url + "/head", method="HEAD", errback=self.failed)

            def parse(self, response):
                out[response.url[len(site.url):]] = {
                    "body": response.content, "encoding": response.encoding,
                    "text": response.text if response.url.endswith("eof") else None,
                    "content-encoding": response.headers.get("Content-Encoding")}
                yield {}

            def failed(self, failure):
                out[failure.request.url[len(site.url):]] = {"failure": failure.kind}

        crawl(Bodies, {"max_response_size": LIMIT, "retry.attempts": 1})
        out["accept-encoding"] = {"sent": site.hits[0].headers.get("accept-encoding", "")}
        return out
    finally:
        site.close()


def _source(path: str) -> str:
    return next(s for p, s, *_ in SERVED if p == path)


def _zstd_decoded(fetched: dict[str, dict[str, Any]]) -> bool:
    return "zstd" in fetched["accept-encoding"]["sent"]


HTML_PATHS = ["/gzip", "/br", "/gzip-deflate", "/gzip+deflate", "/gzip+deflate-gzip",
              "/gzipped-content-type", "/octet-stream", "/x-gzip-binary",
              "/rfc-upper", "/rfc-spaces", "/rfc-identity-gzip", "/rfc-gzip-identity",
              "/rfc-empty-item"]


@pytest.mark.parametrize("path", HTML_PATHS + ["/rawdeflate", "/zlibdeflate"])
def test_decoded(fetched, path):
    got = fetched[path]
    assert "failure" not in got, _source(path)
    size = DEFLATE_SIZE if path.endswith("deflate") and "gzip" not in path else HTML_SIZE
    assert got["body"].startswith(b"<!DOCTYPE") and len(got["body"]) == size, _source(path)
    # DEVIATION 1: Scrapy removes the header once the body is decoded
    assert got["content-encoding"] is not None


def test_plain_body_is_left_alone(fetched):
    assert fetched["/plain"]["body"] == b"<!DOCTYPE..."
    assert fetched["/plain"]["content-encoding"] is None


@pytest.mark.parametrize("path", ["/uuencode-gzip", "/gzip-foo-deflate", "/gzip+foo+deflate",
                                  "/gzip+foo-deflate", "/rfc-unknown"])
def test_an_unknown_coding_leaves_the_body_as_sent(fetched, path):
    # DEVIATION 2 (but /rfc-unknown, which Scrapy passes through too): Scrapy undoes
    # the codings applied after the unknown one
    served = next(body for p, _, body, *_ in SERVED if p == path)
    assert fetched[path]["body"] == served, _source(path)
    assert fetched[path]["content-encoding"] is not None


def test_identity_alone_is_no_coding(fetched):
    assert fetched["/rfc-identity"]["body"] == sample("html-gzip.bin")


@pytest.mark.parametrize("path", ["/encoding-inside-body", "/identity-no-content-type"])
def test_charset_is_read_from_the_decoded_body(fetched, path):
    got = fetched[path]
    assert got["body"] == GB2312_PAGE, _source(path)
    assert got["encoding"] == "gb18030"  # gb2312, as w3lib's resolve_encoding names it


def test_a_gzip_file_sent_gzip_encoded_is_decoded_once(fetched):
    got = fetched["/gzipped-gzip-file"]
    assert gzip.decompress(got["body"]) == SITEMAP


def test_head_response_needs_no_decoding(fetched):
    assert fetched["/head"]["body"] == b""


@pytest.mark.parametrize("path", ["/deflate-trailing-garbage", "/deflate-second-stream"])
def test_bytes_after_a_deflate_stream_do_not_stall(fetched, path):
    assert fetched[path]["body"] == PLAIN_A, _source(path)


@pytest.mark.parametrize("coding", ["br", "deflate", "gzip"])
def test_decompression_bomb_is_too_large(fetched, coding):
    # 34 B (br), 27,968 B (deflate), 27,988 B (gzip) that inflate to 11,511,612 B
    assert fetched[f"/bomb-{coding}"] == {"failure": "too-large"}


@pytest.mark.parametrize("coding", ["br", "zlibdeflate", "gzip"])
def test_truncated_body_keeps_what_could_be_decoded(fetched, coding):
    got = fetched[f"/truncated-{coding}"]
    assert got["body"].startswith(b"<!DOCTYPE"), got.get("failure")


def test_gzip_with_a_bad_trailer_keeps_what_could_be_decoded(fetched):
    # test_gunzip_truncated, test_gunzip_truncated_short: a CRC error at the end
    assert fetched["/gz-truncated"]["body"].endswith(b"</html")
    assert fetched["/gz-truncated-short"]["body"].endswith(b"</html>")


def test_gzip_cut_short_keeps_what_could_be_decoded(fetched):
    # test_gunzip_illegal_eof: the text read as cp1252 is Scrapy's expected output
    expected = (DATA / "unexpected-eof-output.txt").read_text(encoding="utf-8")
    assert fetched["/gz-illegal-eof"]["text"] == expected


def test_a_body_that_is_not_what_its_coding_says_is_a_decode_failure(fetched):
    # test_gunzip_no_gzip_file_raises: gunzip refuses it; here the fetch fails as decode
    assert fetched["/gz-not-gzip"] == {"failure": "decode"}


def test_zstd_only_when_it_can_be_decoded(fetched):
    got = fetched["/zstd"]
    if _zstd_decoded(fetched):
        assert got["body"].startswith(b"<!DOCTYPE") and len(got["body"]) == HTML_SIZE
    else:  # DEVIATION 3
        assert got["body"] == sample("html-zstd-static-content-size.bin")


def test_accept_encoding_offers_what_can_be_decoded(fetched):
    # test_process_request: ACCEPTED_ENCODINGS (brotli is a dev dependency)
    offered = {c.strip() for c in fetched["accept-encoding"]["sent"].split(",")}
    assert {"gzip", "deflate", "br"} <= offered
