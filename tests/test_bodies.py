"""Bodies: streamed under max_response_size (also after decompression, so a gzip bomb
is a counted error), gzip/deflate/br decoded, connections dropped mid-body retried,
non-HTML bodies delivered as bytes."""

import gzip
import resource
import zlib

import brotli

from scraper import Request, Spider

from .conftest import Reply, crawl, page


def _spider(urls, errors):
    class S(Spider):
        name = "bodies"

        def start_requests(self):
            for u in urls:
                yield Request(u, errback=self.failed)

        def parse(self, response):
            yield {"url": response.url, "size": len(response.content),
                   "links": response.links(), "type": response.content_type}

        def failed(self, failure):
            errors.append((failure.request.url.rsplit("/", 1)[1], failure.kind))
    return S


def test_gzip_bomb_is_a_counted_error_not_an_out_of_memory(site):
    bomb = gzip.compress(b"\0" * (200 * 2**20), compresslevel=9)  # 200 MiB inflated, ~200 KB sent
    site.route("/bomb", Reply(bomb, headers={"Content-Encoding": "gzip"}))
    site.route("/ok", page())
    errors = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stats, items = crawl(_spider([site.url + "/bomb", site.url + "/ok"], errors),
                         {"max_response_size": "1 MB"})
    grew_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert errors == [("bomb", "too-large")] and stats.errors["too-large"] == 1
    assert [i["url"] for i in items] == [site.url + "/ok"]
    assert grew_mib < 50


def test_gzip_deflate_and_br_bodies_are_decoded(site):
    html = page("/x").encode()
    site.route("/gz", Reply(gzip.compress(html), headers={"Content-Encoding": "gzip"}))
    site.route("/deflate", Reply(zlib.compress(html), headers={"Content-Encoding": "deflate"}))
    site.route("/br", Reply(brotli.compress(html), headers={"Content-Encoding": "br"}))
    errors = []
    stats, items = crawl(_spider([site.url + p for p in ("/gz", "/deflate", "/br")], errors), {})
    assert errors == []
    assert {i["size"] for i in items} == {len(html)}
    assert all(i["links"] == [site.url + "/x"] for i in items)
    assert "br" in site.hits[0].headers["accept-encoding"]


def test_body_over_limit_without_content_length_is_abandoned(site):
    def endless(hit):
        h = hit.handler
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            for _ in range(400):  # 400 × 16 KiB = 6.4 MiB, far over the limit
                h.wfile.write(b"x" * 16384)
        except OSError:
            pass  # the client gave up, as it should
        h.close_connection = True
        return None
    site.route("/huge", endless)
    site.route("/declared", Reply(b"y" * 3_000_000))
    site.route("/ok", page())
    errors = []
    stats, items = crawl(_spider([site.url + p for p in ("/huge", "/declared", "/ok")], errors),
                         {"max_response_size": 1_000_000})
    assert sorted(errors) == [("declared", "too-large"), ("huge", "too-large")]
    assert len(items) == 1


def test_connection_dropped_mid_body_is_retried_then_fails(site):
    def dropped(hit):
        h = hit.handler
        h.send_response(200)
        h.send_header("Content-Type", "text/html")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.wfile.write(b"<html>" + b"a" * 1000)
        h.wfile.flush()
        h.close_connection = True
        return None
    site.route("/drop", dropped)
    errors = []
    stats, items = crawl(_spider([site.url + "/drop"], errors), {"retry.attempts": 3})
    assert errors == [("drop", "connection")]
    assert site.count("/drop") == 3 and stats.retries == 2


def test_non_html_bodies_reach_callbacks_as_bytes(site):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    site.route("/img.png", Reply(png, content_type="image/png"))
    site.route("/data.json", Reply(b'{"a": [1, 2]}', content_type="application/json"))
    got = {}

    class S(Spider):
        name = "bin"
        start_urls = [site.url + "/img.png", site.url + "/data.json"]

        def parse(self, response):
            got[response.url.rsplit("/", 1)[1]] = response
            yield {}

    crawl(S, {})
    img, data = got["img.png"], got["data.json"]
    assert img.content == png and img.links() == [] and img.css("a") == []
    assert data.json() == {"a": [1, 2]} and data.links() == []


def test_junk_charsets_fall_back_to_sniffing_and_lose_nothing(site):
    # issue 12: charset=base64 (a codec, not a text encoding) raised LookupError from
    # response.text and the page's items and links were lost
    for junk in ("base64", "hex", "rot13", "zlib", "cp037"):
        site.route(f"/{junk}", Reply(page(f"/next-{junk}", extra="caf\xe9"),
                                     content_type=f"text/html; charset={junk}"))
    urls = [f"{site.url}/{j}" for j in ("base64", "hex", "rot13", "zlib", "cp037")]
    errors: list = []
    stats, items = crawl(_spider(urls, errors))
    assert errors == [] and stats.errors.get("callback", 0) == 0
    assert len(items) == 5
    for item in items:
        junk = item["url"].rsplit("/", 1)[1]
        assert item["links"] == [f"{site.url}/next-{junk}"]


def test_html_nested_too_deep_is_counted_not_silently_cut(site):
    # issue 12: libxml2 stops at 256 levels and dropped the rest of the page silently.
    # Now 2,048 levels parse; beyond that the page is counted as truncated-html.
    deep = "<div>" * 1500 + "<a href='/inside'>i</a>" + "</div>" * 1500
    site.route("/deep", "<html><body><a href='/first'>f</a>" + deep
               + "<a href='/after'>a</a></body></html>")
    deeper = "<div>" * 5000 + "x" + "</div>" * 5000
    site.route("/deeper", "<html><body><a href='/first'>f</a>" + deeper + "</body></html>")
    stats, items = crawl(_spider([f"{site.url}/deep", f"{site.url}/deeper"], []))
    by_url = {i["url"].rsplit("/", 1)[1]: i for i in items}
    assert by_url["deep"]["links"] == [f"{site.url}/first", f"{site.url}/inside",
                                       f"{site.url}/after"]
    assert by_url["deeper"]["links"][0] == f"{site.url}/first"
    assert stats.errors["truncated-html"] == 1
