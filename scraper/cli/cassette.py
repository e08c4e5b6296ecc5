"""``cassette export DIR OUT``: a recorded cassette (``run --record DIR``) as readable
files, one JSON file per exchange and its body beside it, named by request rather
than by time, so that committing the export with the cassette makes a re-recording
reviewable in a pull request's diff."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "cassette", help="work with a recorded cassette (export)",
        description="Work with a cassette recorded by `run --record DIR`.")
    p.set_defaults(handler=lambda args: p.error("say what to do: export"))
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    export = verbs.add_parser(
        "export", help="write every exchange as readable files, for review and diff",
        description="Write every exchange of the cassette in DIR to OUT: <fingerprint>-<n>.json "
                    "(request, status and headers, or the error) and <fingerprint>-<n>.body "
                    "(the body as received). Files are named by request, not by time, so two "
                    "recordings of one site diff page by page. OUT's old .json/.body files go.")
    export.set_defaults(handler=export_command)
    export.add_argument("dir", metavar="DIR", help="the cassette's directory (run --record DIR)")
    export.add_argument("out", metavar="OUT", help="the directory to write the files to")


def export_command(args: argparse.Namespace) -> int:
    from ..exceptions import ConfigError
    from ..fetch.cassette import CASSETTE_FILE, Cassette

    if not (Path(args.dir) / CASSETTE_FILE).is_file():
        raise ConfigError(f"cassette export {args.dir}: no cassette there (record one with "
                          f"run NAME --record {args.dir})")
    cassette = Cassette(Path(args.dir), fresh=False)
    n = cassette.export(Path(args.out))
    cassette.close_thread()
    sys.stderr.write(f"{n} exchanges written to {args.out}\n")
    return 0
