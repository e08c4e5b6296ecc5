"""``fetch URL``: print a page's body (or, with ``--headers``, its status and headers) as a
crawl would get it: same settings, user agent, robots.txt, retries and redirects.

The body of the final response goes to standard output byte for byte, whatever its
status. A final status other than 2xx (after retries) still prints the body, as
Scrapy's ``fetch`` does, and exits 1 with one line naming the URL and the kind
(``http-404``); a request that got no response (refused, timed out, forbidden by
robots.txt) prints nothing and exits 1 the same way.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .run import settings_args

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "fetch", help="print a URL's body as a crawl would fetch it",
        description="Fetch URL as a crawl would (settings, user agent, headers, robots.txt, "
                    "retries, redirects) and write the final response's body to stdout, as "
                    "received. A final status other than 2xx still prints the body and exits 1; "
                    "a URL that could not be fetched (or that robots.txt forbids) exits 1.")
    p.set_defaults(handler=fetch_command)
    p.add_argument("url", metavar="URL", help="an absolute http(s) URL")
    p.add_argument("--headers", action="store_true",
                   help="print the status on a line of its own, then the response headers "
                        "(Name: value), instead of the body")
    p.add_argument("--spider", metavar="NAME", help="use that spider's custom_settings")
    settings_args(p)


def fetch_command(args: argparse.Namespace) -> int:
    from ..http import Request
    from .console import report_error
    from .probe import ToolContext, checked_url, fetch_one

    url = checked_url("fetch", args.url)
    ctx = ToolContext.from_args(args)
    result = fetch_one(Request(url), ctx)
    response = result.response
    if response is not None:
        if args.headers:
            lines = [str(response.status)] + [f"{k}: {v}" for k, v in response.headers.items()]
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(response.content)
            sys.stdout.buffer.flush()
    error = result.error
    if error is not None:
        report_error(f"fetch {error}")
        return 1
    return 0
