"""``list``, and the commands on a crawl's stored state: ``push``, ``reset``,
``retry-failed`` (each on a job dir or a shared backend)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parsers"]

_CONFIG_HELP = "config file (default: ./config.yaml if present)"


def _store_args(p: argparse.ArgumentParser, job_dir_required: bool = False) -> None:
    p.add_argument("name", metavar="NAME", help="the spider's name")
    p.add_argument("--job-dir", metavar="DIR", required=job_dir_required,
                   help="the job dir" + ("" if job_dir_required else " (instead of --backend)"))
    p.add_argument("--backend", metavar="URL",
                   help="the backend URL (default: config.yaml's backend)")
    p.add_argument("--config", metavar="PATH", help=_CONFIG_HELP)


def add_parsers(sub: Any) -> None:
    lst = sub.add_parser("list", help="print the name of every spider, one a line",
                         description="Print each spider's name, one a line, on stdout.")
    lst.set_defaults(handler=list_command)
    lst.add_argument("--config", metavar="PATH", help=_CONFIG_HELP)

    push = sub.add_parser("push", help="add start URLs to a stored (Redis or job dir) crawl",
                          description="Add URLs to the frontier of NAME's stored crawl (skipping "
                                      "those already seen); running processes pick them up.")
    push.set_defaults(handler=push_command)
    _store_args(push)
    push.add_argument("urls", metavar="URL", nargs="+", help="absolute http(s) URLs")

    reset = sub.add_parser("reset", help="delete a stored crawl's state",
                           description="Delete everything stored for NAME's crawl: its frontier, "
                                       "seen-set, stats, dead letters and items stream (for "
                                       "Redis, every key under scraper:NAME:).")
    reset.set_defaults(handler=reset_command)
    _store_args(reset)

    rf = sub.add_parser("retry-failed", help="put a crawl's failed requests back in its queue",
                        description="Put the requests of NAME's crawl that failed after their "
                                    "last retry back in its frontier; run the crawl again to "
                                    "fetch them.")
    rf.set_defaults(handler=retry_failed_command)
    _store_args(rf)


def list_command(args: argparse.Namespace) -> int:
    from ..crawl.runner import list_spiders

    for name in list_spiders(args.config):
        sys.stdout.write(name + "\n")
    return 0


def push_command(args: argparse.Namespace) -> int:
    from ..crawl.admin import push

    added, seen = push(args.name, args.urls, config_path=args.config, backend_url=args.backend,
                       job_dir=args.job_dir)
    sys.stderr.write(f"{added} URL(s) added to {args.name}'s crawl"
                     + (f" ({seen} already seen)" if seen else "") + "\n")
    return 0


def reset_command(args: argparse.Namespace) -> int:
    from ..crawl.admin import reset

    n = reset(args.name, config_path=args.config, backend_url=args.backend, job_dir=args.job_dir)
    sys.stderr.write(f"{n} key(s) of {args.name}'s crawl deleted\n")
    return 0


def retry_failed_command(args: argparse.Namespace) -> int:
    from ..crawl.admin import retry_failed

    n = retry_failed(args.name, args.job_dir, args.config, backend_url=args.backend)
    where = args.job_dir or "the backend"
    sys.stderr.write(f"{n} failed request(s) put back in {where}; run the crawl again to "
                     "fetch them\n")
    return 0
