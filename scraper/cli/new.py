"""``new PROJECT`` (alias ``startproject``): write a project that works at once.

    PROJECT/
      config.yaml          every setting, with its meaning, commented out at its default
      spiders/books.py     an example spider (listing -> detail), runs on ``scraper demo``
      tests/test_books.py  runs it offline against tests/pages/ on a local server
      README.md, .gitignore

The files come from ``scraper/templates/project`` (package data), except config.yaml,
which is written from the settings schema so that it lists every setting there is.
PROJECT must not exist, or be an empty directory.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from ..config.schema import Setting

__all__ = ["add_parsers", "config_yaml", "templates"]

_HEADER = """\
# Settings for every spider of this project: each setting there is, with what it does,
# commented out at its default. Uncomment a line to change it (for a nested key such as
# retry.attempts, uncomment its group's line, `retry:`, too).
# Precedence, highest first: -s KEY=VALUE on the command line > a schedule's settings >
# the spider's custom_settings > this file > defaults. An unknown key is an error.
# `python -m scraper settings` prints the merged settings.
"""


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "new", aliases=["startproject"], help="create a project: config, an example spider, tests",
        description="Create the project directory PROJECT: config.yaml (every setting, commented), "
                    "spiders/books.py (an example spider: `python -m scraper demo books` runs it) "
                    "and tests/test_books.py (runs it offline). PROJECT must not exist or be empty.")
    p.set_defaults(handler=new_command)
    p.add_argument("project", metavar="PROJECT", help="the directory to create")


def templates() -> Traversable:
    """The templates directory (package data)."""
    from importlib.resources import files

    return files("scraper").joinpath("templates")


def new_command(args: argparse.Namespace) -> int:
    target = Path(args.project)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"new {args.project}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise ConfigError(f"new {args.project}: directory exists and is not empty")
    name = target.resolve().name
    try:
        target.mkdir(parents=True, exist_ok=True)
        written = _copy(templates().joinpath("project"), target, {"project": name})
        (target / "config.yaml").write_text(config_yaml(), encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"new {args.project}: cannot be written ({e.strerror or e})") from None
    written.append(target / "config.yaml")
    for path in sorted(written):
        sys.stderr.write(f"  {path}\n")
    sys.stderr.write(f"project {name} created in {target}; next:\n"
                     f"  cd {args.project}\n"
                     "  python -m scraper demo books        # the example spider on the demo shop\n"
                     "  python -m pytest tests              # its tests, offline\n"
                     "  python -m scraper genspider NAME URL\n")
    return 0


def _copy(source: Traversable, dest: Path, values: dict[str, str]) -> list[Path]:
    """Copy the template tree ``source`` into ``dest``; ``*.tmpl`` files are filled in."""
    written = []
    for entry in source.iterdir():
        name = entry.name
        if entry.is_dir():
            (dest / name).mkdir(exist_ok=True)
            written += _copy(entry, dest / name, values)
            continue
        if name.endswith(".tmpl"):
            name = name[:-len(".tmpl")]
            name = ".gitignore" if name == "gitignore" else name
            (dest / name).write_text(Template(entry.read_text(encoding="utf-8")).substitute(values),
                                     encoding="utf-8")
        else:
            (dest / name).write_bytes(entry.read_bytes())
        written.append(dest / name)
    return written


# -- config.yaml, from the schema ---------------------------------------------------------
def config_yaml() -> str:
    """Every setting of the schema with its documentation, commented out at its default.
    Uncommenting every setting line (``#key: value``, ``#  sub: value``) gives a valid
    config with the default settings."""
    from ..config.schema import SCHEMA

    out = [_HEADER]
    section = None
    done: set[str] = set()
    for key, setting in SCHEMA.items():
        group = key.split(".", 1)[0] if "." in key else None
        if key in done or (group is not None and group in done):
            continue
        if setting.section != section:
            section = setting.section
            out.append(f"\n# -- {section} " + "-" * (84 - len(section)) + "\n")
        if group is None:
            done.add(key)
            out.append(_entry(key, setting, indent=""))
            continue
        done.add(group)
        out.append(f"\n#{group}:\n")
        for sub_key, sub in SCHEMA.items():
            if sub_key.startswith(group + "."):
                out.append(_entry(sub_key[len(group) + 1:], sub, indent="  ").lstrip("\n"))
    return "".join(out)


def _entry(key: str, setting: Setting, indent: str) -> str:
    """``# doc`` lines, then ``#key: default`` (a nested key indented under its group)."""
    from .settings import dump_yaml

    doc_prefix = f"#{indent}# " if indent else "# "
    doc = textwrap.wrap(setting.doc[:1].upper() + setting.doc[1:], width=88 - len(doc_prefix))
    lines = [doc_prefix + d for d in doc]
    value = dump_yaml({key: setting.default}).rstrip("\n").split("\n")
    lines += [f"#{indent}{line}" for line in value]
    return "\n" + "\n".join(lines) + "\n"
