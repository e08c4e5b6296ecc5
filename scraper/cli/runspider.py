"""``runspider FILE.py [run options]``: run a spider defined in a file, no project needed.

The file is imported as a module (its directory first on ``sys.path``, so modules
beside it import); the spider is its one Spider subclass with a name (``--spider NAME``
picks one when it defines several). Everything else is ``run``: the same options,
config.yaml in the working directory if there is one, summary and exit statuses.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError, SpiderError, SpiderNotFound

if TYPE_CHECKING:
    from ..spider import Spider

__all__ = ["add_parsers", "spider_from_file"]


def add_parsers(sub: Any) -> None:
    from .run import add_run_options

    p = sub.add_parser(
        "runspider", help="run a spider from a .py file, without a project",
        description="Run the spider defined in FILE.py (its one Spider subclass with a name; "
                    "--spider NAME when it defines several), with the options of `run`.")
    p.set_defaults(handler=runspider_command)
    p.add_argument("file", metavar="FILE.py", help="a Python file defining a spider")
    p.add_argument("--spider", metavar="NAME", help="the spider to run, when FILE defines several")
    add_run_options(p)


def runspider_command(args: argparse.Namespace) -> int:
    from .run import run_command

    cls = spider_from_file(args.file, args.spider)
    args.name = cls.name
    args.spider_cls = cls
    return run_command(args)


def spider_from_file(file: str, name: str | None = None) -> type[Spider]:
    """The spider class FILE defines (the one called ``name``, when given)."""
    from ..spider import Spider

    path = Path(file)
    if not path.is_file():
        raise ConfigError(f"runspider {file}: no such file")
    if path.suffix != ".py":
        raise ConfigError(f"runspider {file}: not a Python file (.py)")
    module = _import_file(path)
    found = {cls.name: cls for _, cls in inspect.getmembers(module, inspect.isclass)
             if issubclass(cls, Spider) and cls.__module__ == module.__name__
             and isinstance(getattr(cls, "name", None), str) and cls.name}
    if name is not None:
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise SpiderNotFound(f"runspider {file}: no spider named {name!r} (it defines: {known})")
        return found[name]
    if not found:
        raise SpiderError(f"runspider {file}: defines no spider (a Spider subclass with a name)")
    if len(found) > 1:
        raise SpiderError(f"runspider {file}: defines several spiders ({', '.join(sorted(found))}); "
                          "pick one with --spider NAME")
    return next(iter(found.values()))


def _import_file(path: Path) -> ModuleType:
    stem = re.sub(r"\W", "_", path.stem)
    name = stem if stem.isidentifier() and stem not in sys.modules else f"_runspider_{stem}"
    directory = str(path.resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # so that modules beside the file import
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise SpiderError(f"runspider {path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look classes up by module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[name]
        raise SpiderError(f"{e.filename or path}:{e.lineno}: cannot import: SyntaxError: "
                          f"{e.msg}") from None
    except Exception as e:
        del sys.modules[name]
        raise SpiderError(f"runspider {path}: cannot import: {type(e).__name__}: {e}") from None
    return module
