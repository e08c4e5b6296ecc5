"""The bundled demo site: a deterministic book shop served on a loopback port.

Used by ``python -m scraper demo`` (and ``make demo``) so a new user can watch
a real crawl end to end without touching the internet: 10 catalogue pages of
20 books each, 200 book pages, 5 category listings, and a robots.txt.
"""

from __future__ import annotations

import html
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BOOKS", "CATEGORIES", "DemoSite"]

BOOKS = 200
PER_PAGE = 20
CATEGORIES = ["fiction", "history", "poetry", "science", "travel"]
_WORDS = ("silent river garden night winter light stone shadow paper city machine "
          "ocean letter forest glass memory empire harbour orchard lantern").split()


def _book(n: int) -> dict[str, Any]:
    rng = random.Random(n)
    return {
        "title": " ".join(w.capitalize() for w in rng.sample(_WORDS, 3)) + f" {n}",
        "price": f"£{rng.randint(500, 6000) / 100:.2f}",
        "stock": rng.choice(["In stock", "In stock", "Out of stock"]),
        "rating": rng.choice(["One", "Two", "Three", "Four", "Five"]),
        "category": CATEGORIES[n % len(CATEGORIES)],
        "upc": f"{rng.getrandbits(48):012x}",
    }


def _page(title: str, body: str) -> bytes:
    nav = "".join(f'<li><a href="/category/{c}/">{c.capitalize()}</a></li>' for c in CATEGORIES)
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title></head><body><header><a href=\"/\">Books</a><ul class=\"nav\">{nav}</ul>"
            f"</header><main>{body}</main></body></html>").encode()


def _listing(books: list[int], page: int, pages: int, prefix: str) -> str:
    items = "".join(
        f'<article class="product_pod"><h3><a href="/catalogue/book-{n}.html" '
        f'title="{html.escape(_book(n)["title"])}">{html.escape(_book(n)["title"])}</a></h3>'
        f'<p class="price_color">{_book(n)["price"]}</p></article>' for n in books)
    pager = ""
    if page > 1:
        pager += f'<li class="previous"><a href="{prefix}page-{page - 1}.html">previous</a></li>'
    if page < pages:
        pager += f'<li class="next"><a href="{prefix}page-{page + 1}.html">next</a></li>'
    return f'<section>{items}</section><ul class="pager">{pager}</ul>'


def render(path: str) -> tuple[int, str, bytes]:
    """Status, content type and body for a path of the demo site."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    pages = BOOKS // PER_PAGE
    if path == "/robots.txt":
        return 200, "text/plain", b"User-agent: *\nDisallow: /private/\n"
    if path in ("/", "/index.html"):
        path = "/catalogue/page-1.html"
    if path.startswith("/catalogue/page-") and path.endswith(".html"):
        num = path[len("/catalogue/page-"):-5]
        if num.isdigit() and 1 <= int(num) <= pages:
            p = int(num)
            books = list(range((p - 1) * PER_PAGE + 1, p * PER_PAGE + 1))
            return 200, "text/html; charset=utf-8", _page(
                f"All books, page {p}", _listing(books, p, pages, "/catalogue/"))
    if path.startswith("/catalogue/book-") and path.endswith(".html"):
        num = path[len("/catalogue/book-"):-5]
        if num.isdigit() and 1 <= int(num) <= BOOKS:
            b = _book(int(num))
            body = (f'<div class="product_main"><h1>{html.escape(b["title"])}</h1>'
                    f'<p class="price_color">{b["price"]}</p>'
                    f'<p class="instock availability">{b["stock"]}</p>'
                    f'<p class="star-rating {b["rating"]}"></p></div>'
                    f'<table class="table"><tr><th>UPC</th><td>{b["upc"]}</td></tr></table>'
                    f'<p><a href="../category/{b["category"]}/#top">{b["category"]}</a></p>')
            return 200, "text/html; charset=utf-8", _page(b["title"], body)
    if path.startswith("/category/"):
        rest = path[len("/category/"):].split("/")
        if rest[0] in CATEGORIES:
            books = [n for n in range(1, BOOKS + 1) if _book(n)["category"] == rest[0]]
            return 200, "text/html; charset=utf-8", _page(
                rest[0].capitalize(), _listing(books, 1, 1, f"/category/{rest[0]}/"))
    return 404, "text/html; charset=utf-8", _page("Not found", "<h1>Not found</h1>")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave in separate writes: without TCP_NODELAY, Nagle's
    # algorithm and the client's delayed ACK add ~40 ms to every response
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        status, ctype, body = render(self.path)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-request (a stopped crawl) is not news


class DemoSite:
    """The demo site served from a background thread; ``url`` ends with a slash."""

    def __init__(self, port: int = 0) -> None:
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DemoSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
