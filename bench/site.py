"""The benchmark shop: a deterministic generator of static HTML pages, and the truth about them.

The shop has a home page, 20 categories whose listings are paginated (24 products a
page), one page per product and four information pages, plus a robots.txt that allows
everything. Every HTML page weighs 15-30 KB and carries ~80-95 `<a href>`, most of them
repeated on every page (menu, footer) or across pages (related products, pagination).
Links come in every form a crawler must normalise: relative (`5.html`, `./5.html`,
`../../../p/5.html`), root-relative (`/p/5.html`), absolute (`http://127.0.0.1:PORT/...`),
with `#fragments`, padded with whitespace, plus off-site, `mailto:`, `tel:` and
`javascript:` links that must not be fetched. Product pages have four fields to extract
(title, price, SKU, availability) that CSS and XPath both reach, with decoys (prices of
related products) that a careless selector would pick up.

The same seed and size always give the same site, byte for byte, so every crawler of a
run, and every run, faces the same job. `generate()` returns a `Site` that knows how many
pages are reachable from the start URL and which item each product page must yield.
"""

from __future__ import annotations

import argparse
import html
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

PRODUCTS_PER_LISTING = 24
MIN_PAGE_BYTES = 15_000
MAX_PAGE_BYTES = 30_000
INFO_PAGES = ("about", "contact", "shipping", "returns")
CATEGORIES = (
    "Kitchen",
    "Garden",
    "Lighting",
    "Bathroom",
    "Bedding",
    "Storage",
    "Tools",
    "Outdoor",
    "Office",
    "Textiles",
    "Tableware",
    "Décor",
    "Cleaning",
    "Pets",
    "Toys",
    "Crafts",
    "Travel",
    "Wellness",
    "Audio",
    "Café & Bar",
)
_ADJECTIVES = (
    "Classic",
    "Rustic",
    "Modern",
    "Compact",
    "Deluxe",
    "Nordic",
    "Vintage",
    "Smart",
    "Crème",
    "Handmade",
    "Foldable",
    "Sturdy",
    "Elegant",
    "Tiny",
    "Grand",
    "Über",
)
_MATERIALS = (
    "Oak",
    "Steel",
    "Ceramic",
    "Linen",
    "Bamboo",
    "Copper",
    "Glass",
    "Wool",
    "Marble",
    "Walnut",
    "Cotton",
    "Brass",
)
_NOUNS = (
    "Lamp",
    "Mug",
    "Chair",
    "Shelf",
    "Basket",
    "Kettle",
    "Rug",
    "Vase",
    "Clock",
    "Salt & Pepper Mill",
    "Cutting Board",
    "Planter",
    "Cushion",
    "Tray",
    "Jar",
    "Desk Organiser",
    "Watering Can",
    "Speaker",
    "Blanket",
    "Candle Holder",
)
_WORDS = (
    "the",
    "a",
    "with",
    "and",
    "for",
    "of",
    "in",
    "to",
    "your",
    "every",
    "day",
    "home",
    "quality",
    "design",
    "crafted",
    "finish",
    "durable",
    "easy",
    "clean",
    "gift",
    "size",
    "colour",
    "natural",
    "light",
    "warm",
    "soft",
    "strong",
    "simple",
    "perfect",
    "made",
    "from",
    "sustainable",
    "materials",
    "fits",
    "most",
    "spaces",
    "comes",
    "boxed",
    "ready",
    "use",
    "care",
    "instructions",
    "included",
    "hand",
    "wash",
    "only",
    "dishwasher",
    "safe",
    "lasting",
    "comfort",
    "style",
    "bright",
    "rooms",
    "small",
    "large",
    "balcony",
    "café",
    "naïve",
    "smörgåsbord",
    "façade",
    "jalapeño",
    "crème",
    "brûlée",
    "über",
    "piñata",
    "customers",
    "love",
    "this",
    "piece",
    "because",
    "it",
    "is",
    "both",
    "practical",
    "beautiful",
    "our",
    "team",
    "tested",
    "many",
    "weeks",
    "before",
    "adding",
    "range",
    "delivery",
    "within",
    "three",
    "working",
    "days",
    "returns",
    "are",
    "free",
    "thirty",
)
_AVAILABILITY = (("in-stock", "In stock"), ("out-of-stock", "Out of stock"))


@dataclass(frozen=True)
class Product:
    """One product page and the item a crawler must extract from it."""

    id: int
    category: int
    title: str
    price: str
    sku: str
    availability: str
    availability_class: str

    @property
    def path(self) -> str:
        return f"/p/{self.id}.html"

    def item(self) -> dict[str, str]:
        """The four extracted fields, as a crawler must report them."""
        return {
            "title": self.title,
            "price": self.price,
            "sku": self.sku,
            "availability": self.availability,
        }


@dataclass(frozen=True)
class Site:
    """A generated site on disk: where it is, what it holds, what a crawl must find."""

    root: Path
    origin: str
    pages: int
    listing_pages: int
    products: tuple[Product, ...]
    total_bytes: int

    @property
    def start_url(self) -> str:
        return self.origin + "/"

    def expected_items(self) -> dict[str, dict[str, str]]:
        """Product path (`/p/7.html`) -> the item its page must yield."""
        return {product.path: product.item() for product in self.products}


def generate(root: Path, origin: str, products: int = 5_000, seed: int = 1) -> Site:
    """Write the shop under `root` for a server at `origin` (`http://127.0.0.1:PORT`)."""
    if products < PRODUCTS_PER_LISTING:
        raise ValueError(f"need at least {PRODUCTS_PER_LISTING} products, got {products}")
    builder = _ShopBuilder(origin.rstrip("/"), products, random.Random(seed))
    root.mkdir(parents=True, exist_ok=True)
    (root / "robots.txt").write_text("User-agent: *\nDisallow:\n", encoding="ascii")
    pages = 0
    total_bytes = 0
    for path, body in builder.pages():
        if not MIN_PAGE_BYTES <= len(body) <= MAX_PAGE_BYTES:
            raise AssertionError(f"{path} is {len(body)} bytes, outside the 15-30 KB range")
        target = root / (path.lstrip("/") or "index.html")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        pages += 1
        total_bytes += len(body)
    return Site(
        root=root,
        origin=builder.origin,
        pages=pages,
        listing_pages=builder.listing_page_count,
        products=tuple(builder.products),
        total_bytes=total_bytes,
    )


class _ShopBuilder:
    """Renders every page of the shop; all randomness comes from one seeded generator."""

    def __init__(self, origin: str, product_count: int, rng: random.Random) -> None:
        self.origin = origin
        self.rng = rng
        self.paragraphs = [self._paragraph() for _ in range(400)]
        self.products = [self._product(i + 1) for i in range(product_count)]
        self.by_category: dict[int, list[Product]] = {c: [] for c in range(1, len(CATEGORIES) + 1)}
        for product in self.products:
            self.by_category[product.category].append(product)
        self.listing_of: dict[int, int] = {}
        for members in self.by_category.values():
            for index, product in enumerate(members):
                self.listing_of[product.id] = index // PRODUCTS_PER_LISTING + 1
        self.listing_page_count = sum(self._listing_count(c) for c in self.by_category)
        self.chrome_top = self._chrome_top()
        self.chrome_bottom = self._chrome_bottom()

    def pages(self) -> Iterator[tuple[str, bytes]]:
        """(path, UTF-8 body) of every HTML page, in a fixed order."""
        yield "/", self._home()
        for name in INFO_PAGES:
            yield f"/{name}.html", self._info_page(name)
        for category in self.by_category:
            for page in range(1, self._listing_count(category) + 1):
                yield f"/c/{category}/page/{page}.html", self._listing(category, page)
        for product in self.products:
            yield product.path, self._product_page(product)

    # -- content -------------------------------------------------------------------

    def _paragraph(self) -> str:
        words = self.rng.choices(_WORDS, k=self.rng.randint(45, 110))
        words[0] = words[0].capitalize()
        return " ".join(words) + "."

    def _product(self, product_id: int) -> Product:
        rng = self.rng
        title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_MATERIALS)} {rng.choice(_NOUNS)}"
        roll = rng.random()
        if roll < 0.6:
            css_class, availability = _AVAILABILITY[0]
        elif roll < 0.8:
            css_class, availability = _AVAILABILITY[1]
        else:
            css_class, availability = "low-stock", f"Only {rng.randint(1, 9)} left"
        return Product(
            id=product_id,
            category=rng.randint(1, len(CATEGORIES)),
            title=title,
            price=f"£{rng.randint(199, 49_999) / 100:.2f}",
            sku=f"SKU-{product_id:06d}",
            availability=availability,
            availability_class=css_class,
        )

    def _listing_count(self, category: int) -> int:
        members = len(self.by_category[category])
        return max(1, -(-members // PRODUCTS_PER_LISTING))

    # -- page parts ----------------------------------------------------------------

    def _chrome_top(self) -> str:
        menu = "".join(
            f'<li><a href="/c/{number}/page/1.html">{html.escape(name)}</a></li>'
            for number, name in enumerate(CATEGORIES, start=1)
        )
        return (
            '<body id="top"><header class="site-header">'
            '<a class="logo" href="/"><img src="/img/logo.png" alt="Bench Shop"></a>'
            f'<nav class="menu"><ul>{menu}</ul></nav></header>'
        )

    def _chrome_bottom(self) -> str:
        info = "".join(
            f'<li><a href="/{name}.html">{name.capitalize()}</a></li>' for name in INFO_PAGES
        )
        return (
            f'<footer class="site-footer"><ul class="info">{info}'
            '<li><a href="mailto:shop@bench.invalid">Email us</a></li>'
            '<li><a href="tel:+440000000000">Call us</a></li>'
            '<li><a href="https://social.bench.invalid/benchshop">Follow us</a></li>'
            '<li><a href="http://partners.bench.invalid/?ref=shop">Partners</a></li>'
            '<li><a href="javascript:window.print()">Print this page</a></li>'
            '<li><a href="#top">Back to top</a></li></ul>'
            "<p>© Bench Shop. Generated for benchmarking.</p></footer></body></html>"
        )

    def _document(self, title: str, main: Sequence[str], padding_slot: int) -> bytes:
        """A whole page, padded with text at `padding_slot` to a size of 15-30 KB."""
        head = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)} | Bench Shop</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="stylesheet" href="/static/shop.css"></head>'
        )
        before = head + self.chrome_top + "<main>" + "".join(main[:padding_slot])
        after = "".join(main[padding_slot:]) + "</main>" + self.chrome_bottom
        size = len(before.encode()) + len(after.encode())
        target = self.rng.randint(MIN_PAGE_BYTES + 500, MAX_PAGE_BYTES - 2_000)
        padding = ['<section class="text">']
        while size < target:
            paragraph = f"<p>{self.rng.choice(self.paragraphs)}</p>"
            padding.append(paragraph)
            size += len(paragraph.encode())
        padding.append("</section>")
        return (before + "".join(padding) + after).encode()

    def _card(self, product: Product, href: str, thumb_href: str | None = None) -> str:
        thumb = (
            f'<a class="thumb" href="{thumb_href}"><img src="/img/{product.id}.jpg" alt=""></a>'
            if thumb_href
            else ""
        )
        return (
            f'<article class="card">{thumb}<h2 class="title"><a href="{href}">'
            f'{html.escape(product.title)}</a></h2><span class="price">{product.price}</span>'
            f'<span class="stock {product.availability_class}">{product.availability}</span>'
            "</article>"
        )

    # -- pages ---------------------------------------------------------------------

    def _home(self) -> bytes:
        featured = self.rng.sample(self.products, 40)
        cards = "".join(
            self._card(p, f"p/{p.id}.html" if i % 2 else f"{self.origin}/p/{p.id}.html")
            for i, p in enumerate(featured)
        )
        tiles = "".join(
            f'<li><a href="c/{number}/page/1.html#listing">{html.escape(name)}</a></li>'
            for number, name in enumerate(CATEGORIES, start=1)
        )
        main = [
            "<h1>Welcome to Bench Shop</h1>",
            f'<section class="categories"><ul>{tiles}</ul></section>',
            f'<section class="featured"><h2>Featured</h2>{cards}</section>',
        ]
        return self._document("Home", main, padding_slot=1)

    def _info_page(self, name: str) -> bytes:
        main = [f"<h1>{name.capitalize()}</h1>", '<p><a href="./">Back to the shop</a></p>']
        return self._document(name.capitalize(), main, padding_slot=1)

    def _listing(self, category: int, page: int) -> bytes:
        last = self._listing_count(category)
        members = self.by_category[category]
        chunk = members[(page - 1) * PRODUCTS_PER_LISTING : page * PRODUCTS_PER_LISTING]
        cards = []
        for i, product in enumerate(chunk):
            title_href = (
                f"/p/{product.id}.html",
                f"{self.origin}/p/{product.id}.html",
                f"/p/{product.id}.html#reviews",
            )[i % 3]
            cards.append(self._card(product, title_href, f"../../../p/{product.id}.html"))
        pager = ['<a class="first" href="1.html">First</a>']
        if page > 1:
            pager.append(f'<a class="prev" href="./{page - 1}.html">Previous</a>')
        for number in range(max(1, page - 3), min(last, page + 3) + 1):
            pager.append(f'<a href="{number}.html">{number}</a>')
        if page < last:
            pager.append(f'<a class="next" href="/c/{category}/page/{page + 1}.html">Next</a>')
        pager.append(f'<a class="last" href="{self.origin}/c/{category}/page/{last}.html">Last</a>')
        name = html.escape(CATEGORIES[category - 1])
        main = [
            f'<nav class="breadcrumb"><a href="/">Home</a> › <a href="1.html">{name}</a></nav>',
            f'<h1 id="listing">{name}, page {page} of {last}</h1>',
            f'<section class="cards">{"".join(cards)}</section>',
            f'<nav class="pagination">{"".join(pager)}</nav>',
        ]
        return self._document(f"{CATEGORIES[category - 1]} – page {page}", main, padding_slot=2)

    def _product_page(self, product: Product) -> bytes:
        rng = self.rng
        category = product.category
        name = html.escape(CATEGORIES[category - 1])
        related_ids = rng.sample(range(1, len(self.products) + 1), 24)
        related = []
        for i, rid in enumerate(related_ids):
            href = (f"{rid}.html", f"./{rid}.html", f"{rid}.html#top")[i % 3]
            if i == 5:
                href = f"\n  {rid}.html  "  # as hand-edited HTML has; browsers strip it
            related.append(self._card(self.products[rid - 1], href))
        viewed = "".join(
            f'<li><a href="{self.origin}/p/{vid}.html{"#reviews" if vid % 2 else ""}">'
            f"{html.escape(self.products[vid - 1].title)}</a></li>"
            for vid in rng.sample(range(1, len(self.products) + 1), 16)
        )
        pages_of_category = self._listing_count(category)
        more = "".join(
            f'<li><a href="../c/{category}/page/{page}.html">{name}, page {page}</a></li>'
            for page in sorted(
                rng.sample(range(1, pages_of_category + 1), min(8, pages_of_category))
            )
        )
        spec_rows = "".join(
            f"<tr><th>{label}</th><td>{rng.randint(1, 250)} {unit}</td></tr>"
            for label, unit in (("Width", "cm"), ("Height", "cm"), ("Depth", "cm"), ("Weight", "g"))
        )
        listing_page = self.listing_of[product.id]
        main = [
            f'<nav class="breadcrumb"><a href="/">Home</a> › '
            f'<a href="/c/{category}/page/{listing_page}.html">{name}</a></nav>',
            '<div class="product-info">'
            f'<h1 class="product-title">{html.escape(product.title)}</h1>'
            f'<p class="price">{product.price}</p>'
            f'<dl class="meta"><dt>SKU</dt><dd class="sku">{product.sku}</dd>'
            f'<dt>Category</dt><dd><a href="../c/{category}/page/1.html">{name}</a></dd></dl>'
            f'<p class="availability {product.availability_class}">{product.availability}</p>'
            '<a class="review-link" href="#reviews">Write a review</a> '
            f'<a class="permalink" href="{self.origin}{product.path}">Permalink</a></div>',
            f'<table class="specs">{spec_rows}</table>',
            f'<section class="related"><h2>Related products</h2>{"".join(related)}</section>',
            '<section class="also-viewed"><h2>Customers also viewed</h2>'
            f"<ul>{viewed}</ul></section>",
            f'<section class="more"><h2>More {name}</h2><ul>{more}</ul></section>',
            '<section id="reviews"><h2>Reviews</h2></section>',
        ]
        return self._document(product.title, main, padding_slot=3)


def main(argv: Sequence[str] | None = None) -> None:
    """Generate a site into a directory, for looking at it or serving it by hand."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="directory to write the site into")
    parser.add_argument("--origin", default="http://127.0.0.1:8000", help="scheme://host:port")
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    site = generate(args.root, args.origin, args.products, args.seed)
    print(
        f"{site.pages} pages ({len(site.products)} products, {site.listing_pages} listing pages),"
        f" {site.total_bytes / 2**20:.1f} MiB under {site.root}"
    )


if __name__ == "__main__":
    main()
