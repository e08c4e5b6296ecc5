"""Finds Spider subclasses in ``spiders_path`` (a directory or an importable package)
and imports dotted paths (pipelines, middlewares) and builds them from their specs;
duplicate spider names are an error."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .exceptions import ConfigError, SpiderError, SpiderNotFound
from .spider import Spider

__all__ = ["build_instance", "find_spiders", "import_object", "load_spider"]


def _import(name: str, origin: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except SyntaxError as e:
        raise SpiderError(f"{e.filename or origin}:{e.lineno}: cannot import spiders: "
                          f"SyntaxError: {e.msg}") from None
    except Exception as e:  # a user module failing at import time
        raise SpiderError(f"{origin}: cannot import spiders: {type(e).__name__}: {e}") from None


def _modules(spiders_path: str, base_dir: Path) -> list[ModuleType]:
    directory = base_dir / spiders_path
    if directory.is_dir():
        directory = directory.resolve()
        package = directory.name
        if not package.isidentifier():
            raise ConfigError(f"spiders_path {spiders_path!r}: directory name must be a valid "
                              "Python identifier")
        _register_package(package, directory)
        mods = [sys.modules[package]]
        for info in pkgutil.walk_packages([str(directory)], prefix=package + ".",
                                          onerror=lambda name: None):
            rel = info.name.split(".")[1:]
            origin = directory.joinpath(*rel)
            mods.append(_import(info.name, str(origin) + ("" if info.ispkg else ".py")))
        return mods
    # an importable package name
    try:
        root = importlib.import_module(spiders_path)
    except ModuleNotFoundError:
        raise ConfigError(f"spiders_path {spiders_path!r}: no such directory (relative to "
                          f"{base_dir}) or importable package") from None
    except Exception as e:
        raise SpiderError(f"{spiders_path}: cannot import spiders: {type(e).__name__}: {e}") from None
    mods = [root]
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=root.__name__ + "."):
        mods.append(_import(info.name, info.name))
    return mods


def _register_package(package: str, directory: Path) -> None:
    """Make ``package`` name this directory, whatever else on sys.path has that name
    (another project's ``spiders`` package must not shadow the configured one)."""
    existing = sys.modules.get(package)
    if existing is not None and str(directory) in list(getattr(existing, "__path__", [])):
        return
    for name in [m for m in sys.modules if m.startswith(package + ".")]:
        del sys.modules[name]
    init = directory / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(
            package, init, submodule_search_locations=[str(directory)])
    else:
        spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
        spec.submodule_search_locations = [str(directory)]
    if spec is None:  # pragma: no cover - spec_from_file_location answers for a file
        raise SpiderError(f"{directory}: cannot be imported as a package")
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    parent = str(directory.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)  # so dotted paths into the project (pipelines) import
    if spec.loader is not None:
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            del sys.modules[package]
            raise SpiderError(f"{init}: cannot import spiders: {type(e).__name__}: {e}") from None


def find_spiders(spiders_path: str, base_dir: Path) -> dict[str, type[Spider]]:
    """Spider classes by name from every module under ``spiders_path``."""
    found: dict[str, type[Spider]] = {}
    for module in _modules(spiders_path, base_dir):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, Spider) or cls.__module__ != module.__name__:
                continue
            name = getattr(cls, "name", "")
            if not name:
                continue  # an abstract base without a name
            if not isinstance(name, str):
                raise SpiderError(f"{cls.__module__}.{cls.__qualname__}: name must be a string")
            other = found.get(name)
            if other is not None and other is not cls:
                raise SpiderError(f"spider name {name!r} is used twice: "
                                  f"{other.__module__}.{other.__qualname__} and "
                                  f"{cls.__module__}.{cls.__qualname__}")
            found[name] = cls
    return dict(sorted(found.items()))


def load_spider(name: str, spiders_path: str, base_dir: Path) -> type[Spider]:
    """The spider class called ``name``; SpiderNotFound lists the known names."""
    spiders = find_spiders(spiders_path, base_dir)
    try:
        return spiders[name]
    except KeyError:
        known = ", ".join(spiders) or "none found in " + spiders_path
        raise SpiderNotFound(f"unknown spider {name!r} (known: {known})") from None


def import_object(path: str, what: str) -> Any:
    """The object at a dotted path ``package.module.Name``; ConfigError names ``what``."""
    module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"{what} {path!r}: expected a dotted path such as package.module.Class")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"{what} {path!r}: cannot import {e.name!r}") from None
    except Exception as e:
        raise ConfigError(f"{what} {path!r}: import failed: {type(e).__name__}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{what} {path!r}: {module_name} has no {attr!r}") from None


def build_instance(spec: Mapping[str, Any], what: str) -> Any:
    """An instance of the class a ``{class: dotted.path, **options}`` spec names, the
    options passed as keyword arguments; ConfigError names ``what`` and the path."""
    path = spec["class"]
    cls = import_object(path, what)
    if not inspect.isclass(cls):
        raise ConfigError(f"{what} {path!r}: is not a class")
    options = {k: v for k, v in spec.items() if k != "class"}
    try:
        return cls(**options)
    except TypeError as e:
        raise ConfigError(f"{what} {path!r}: cannot be built with options {options}: {e}") from None
    except Exception as e:
        raise ConfigError(f"{what} {path!r}: constructor failed: {type(e).__name__}: {e}") from None
