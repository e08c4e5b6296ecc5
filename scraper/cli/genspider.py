"""``genspider NAME URL [--template basic|crawl|sitemap]``: write a new spider, from
``scraper/templates/spiders``, to ``<spiders_path>/NAME.py``.

URL may be a bare domain (``example.com`` is ``https://example.com/``). The spider's
``allowed_domains`` is URL's host and its docstrings carry contracts for URL, so
``check NAME`` works at once. An existing spider of that name, or an existing file,
is a usage error: nothing is overwritten. A missing spiders directory is created.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import ConfigError

__all__ = ["add_parsers"]

TEMPLATES = ("basic", "crawl", "sitemap")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "genspider", help="write a new spider from a template",
        description="Write spiders_path/NAME.py: a spider called NAME for URL (a URL, or a "
                    "domain for https://DOMAIN/), from the template basic (a Spider), crawl (a "
                    "CrawlSpider with rules) or sitemap (a SitemapSpider).")
    p.set_defaults(handler=genspider_command)
    p.add_argument("name", metavar="NAME", help="the spider's name (letters, digits, _ and -)")
    p.add_argument("url", metavar="URL", help="where it starts, e.g. https://example.com/ or "
                                              "example.com")
    p.add_argument("--template", "-t", choices=TEMPLATES, default="basic",
                   help="basic (default), crawl or sitemap")
    p.add_argument("--config", metavar="PATH",
                   help="config file (default: ./config.yaml if present); its spiders_path "
                        "says where the spider goes")


def genspider_command(args: argparse.Namespace) -> int:
    from ..config import load_config, resolve_settings
    from ..loader import find_spiders

    name = args.name
    if not _NAME.match(name):
        raise ConfigError(f"genspider {name}: a spider name starts with a letter and has only "
                          "letters, digits, _ and -")
    url, domain = _start_url(args.url)
    config = load_config(args.config)
    spiders_path = resolve_settings(config).crawl.spiders_path
    directory = _spiders_dir(spiders_path, config.base_dir)
    target = directory / (name.replace("-", "_") + ".py")
    if target.exists():
        raise ConfigError(f"genspider {name}: {target} already exists")
    existing = find_spiders(spiders_path, config.base_dir) if directory.is_dir() else {}
    if name in existing:
        cls = existing[name]
        raise ConfigError(f"genspider {name}: a spider named {name!r} already exists "
                          f"({cls.__module__}.{cls.__qualname__})")
    values = {"name": name, "classname": _class_name(name), "domain": domain, "url": url,
              "sitemap": _sitemap_url(url)}
    text = Template(_template(args.template)).substitute(values)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as f:  # "x": never overwrite
            f.write(text)
    except OSError as e:
        raise ConfigError(f"genspider {name}: {target} cannot be written "
                          f"({e.strerror or e})") from None
    sys.stderr.write(f"spider {name} ({args.template}) written to {target}; try it:\n"
                     f"  python -m scraper parse {url} --spider {name}\n"
                     f"  python -m scraper run {name}\n")
    return 0


def _start_url(raw: str) -> tuple[str, str]:
    """The start URL and its host; a bare domain means https://DOMAIN/."""
    text = raw.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"genspider {raw}: not an http(s) URL or a domain")
    if not parts.path:
        text = text + "/"
    return text, parts.hostname


def _sitemap_url(url: str) -> str:
    """The sitemap template's sitemap_urls entry: URL itself when it names a sitemap or a
    robots.txt, else /sitemap.xml on its host."""
    parts = urlsplit(url)
    if parts.path.endswith((".xml", ".xml.gz", "/robots.txt")):
        return url
    return f"{parts.scheme}://{parts.netloc}/sitemap.xml"


def _class_name(name: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    return "".join(w[:1].upper() + w[1:] for w in words) + "Spider"


def _spiders_dir(spiders_path: str, base_dir: Path) -> Path:
    """Where spiders_path's modules live: a directory under the config's, or the
    directory of an importable package of that name (else a directory to create)."""
    directory = base_dir / spiders_path
    if directory.is_dir() or "." not in spiders_path:
        return directory
    try:
        spec = importlib.util.find_spec(spiders_path)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise ConfigError(f"spiders_path {spiders_path!r}: no such directory (relative to "
                          f"{base_dir}) or importable package")
    return Path(locations[0])


def _template(kind: str) -> str:
    from .new import templates

    return templates().joinpath("spiders", f"{kind}.py.tmpl").read_text(encoding="utf-8")
