"""Spider contracts, as in Scrapy: lines of a callback's docstring that say which page to
try it on and what it must make there, read and judged here (``check`` runs them).

    def parse_book(self, response):
        \"\"\"One item per book page.

        @url http://127.0.0.1:8000/catalogue/book-1.html
        @cb_kwargs {"category": "poetry"}
        @returns items 1 1
        @returns requests 0 0
        @scrapes title price url
        \"\"\"

- ``@url URL``: the page; a callback without it is not checked.
- ``@cb_kwargs {json}`` / ``@meta {json}``: the request's cb_kwargs / meta.
- ``@returns item(s)|request(s) [MIN [MAX]]``: how many of that kind the callback
  returns; MIN defaults to 1, MAX to no limit.
- ``@scrapes FIELD...``: every item has these fields.

Scrapy's semantics: a docstring takes part when a line of it starts with ``@``; each
such line is ``@name args`` (args split on whitespace; a line that is not, such as
``@ text``, is ignored); ``@returns`` and ``@scrapes`` count only objects of their
kind. Unlike Scrapy, an unknown contract name or malformed arguments are a usage
error, reported before anything is fetched.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import ConfigError

__all__ = ["Contracts", "Returns", "Scrapes", "contracted_methods", "item_fields",
           "read_contracts"]

KNOWN = ("url", "cb_kwargs", "meta", "returns", "scrapes")
_TAKES_PART = re.compile(r"^\s*@", re.MULTILINE)
_LINE = re.compile(r"@(\w+)\s*(.*)")
_KINDS = {"item": "items", "items": "items", "request": "requests", "requests": "requests"}


def contracted_methods(cls: type) -> list[str]:
    """Names of the callables of ``cls`` (inherited ones too) whose docstring has a line
    starting with ``@``, in alphabetical order."""
    return [name for name, value in inspect.getmembers(cls)
            if callable(value) and isinstance(getattr(value, "__doc__", None), str)
            and _TAKES_PART.search(value.__doc__)]


def item_fields(item: Any) -> set[str]:
    """The field names of an item: a Mapping's keys, a dataclass's, attrs' or pydantic's
    fields."""
    if isinstance(item, Mapping):
        return {str(k) for k in item}
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return {f.name for f in dataclasses.fields(item)}
    attrs = getattr(type(item), "__attrs_attrs__", None)
    if attrs is not None:
        return {a.name for a in attrs}
    model_fields = getattr(type(item), "model_fields", None)
    if isinstance(model_fields, Mapping):
        return {str(k) for k in model_fields}
    return set()


def _is_item(value: Any) -> bool:
    from ..crawl.callbacks import is_item

    return is_item(value)


@dataclass(frozen=True)
class Returns:
    """``@returns KIND [MIN [MAX]]``."""

    text: str
    kind: str  # "items" or "requests"
    low: int
    high: float

    def judge(self, output: list[Any]) -> str | None:
        from ..http import Request

        match = _is_item if self.kind == "items" else (lambda x: isinstance(x, Request))
        n = sum(1 for x in output if match(x))
        if self.low <= n <= self.high:
            return None
        if self.low == self.high:
            expected = str(self.low)
        elif math.isinf(self.high):
            expected = f"at least {self.low}"
        else:
            expected = f"{self.low}..{int(self.high)}"
        return f"@returns {self.text}: got {n}, expected {expected}"


@dataclass(frozen=True)
class Scrapes:
    """``@scrapes FIELD...``: every item returned has these fields."""

    fields: tuple[str, ...]

    def judge(self, output: list[Any]) -> str | None:
        from ..items import dumps, item_to_dict

        for x in output:
            if not _is_item(x):
                continue
            have = item_fields(x)
            missing = [f for f in self.fields if f not in have]
            if missing:
                try:
                    shown = dumps(item_to_dict(x))
                except Exception:
                    shown = repr(x)
                shown = shown if len(shown) <= 120 else shown[:117] + "..."
                return (f"@scrapes {' '.join(self.fields)}: missing fields "
                        f"{', '.join(missing)} in {shown}")
        return None


@dataclass(frozen=True)
class Contracts:
    """The contracts of one callback."""

    spider: str
    method: str
    url: str | None
    cb_kwargs: dict[str, Any]
    meta: dict[str, Any]
    checks: tuple[Returns | Scrapes, ...]
    names: tuple[str, ...] = ()  # the contracts found, in order (none: not a contracted callback)

    @property
    def label(self) -> str:
        return f"{self.spider}.{self.method}"

    def failures(self, output: list[Any]) -> list[str]:
        """What the callback's output breaks, one message per contract broken."""
        return [m for m in (c.judge(output) for c in self.checks) if m is not None]


def read_contracts(spider: str, method: str, doc: str) -> Contracts:
    """The contracts in ``doc``; ConfigError naming spider, callback and contract."""
    url: str | None = None
    found: dict[str, Any] = {"cb_kwargs": {}, "meta": {}}
    checks: list[Returns | Scrapes] = []
    names: list[str] = []
    for raw in doc.split("\n"):
        line = raw.strip()
        m = _LINE.match(line) if line.startswith("@") else None
        if m is None:
            continue
        name, text = m.group(1), m.group(2).strip()
        where = f"check: spider {spider}, callback {method}: @{name}"
        args = text.split()
        names.append(name)
        if name == "url":
            url = _url(where, args)
        elif name in ("cb_kwargs", "meta"):
            found[name] = _json_object(where, text)
        elif name == "returns":
            checks.append(_returns(where, args))
        elif name == "scrapes":
            if not args:
                raise ConfigError(f"{where}: name the fields every item must have")
            checks.append(Scrapes(tuple(args)))
        else:
            raise ConfigError(f"check: spider {spider}, callback {method}: unknown contract "
                              f"@{name} (known: {', '.join('@' + k for k in KNOWN)})")
    return Contracts(spider, method, url, found["cb_kwargs"], found["meta"], tuple(checks),
                     tuple(names))


def _url(where: str, args: list[str]) -> str:
    from ..http import Request

    if len(args) != 1:
        raise ConfigError(f"{where}: expected one URL, got {len(args)} words")
    try:
        return Request(args[0]).url
    except (TypeError, ValueError):
        raise ConfigError(f"{where} {args[0]}: not an absolute http(s) URL") from None


def _json_object(where: str, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{where} {text}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{where} {text}: expected a JSON object such as {{\"key\": \"value\"}}")
    return value


def _returns(where: str, args: list[str]) -> Returns:
    usage = f"{where} {' '.join(args)}: expected @returns items|requests [MIN [MAX]]"
    if not 1 <= len(args) <= 3 or args[0] not in _KINDS:
        raise ConfigError(usage)
    try:
        bounds = [int(a) for a in args[1:]]
    except ValueError:
        raise ConfigError(usage + " with MIN and MAX whole numbers") from None
    low = bounds[0] if bounds else 1
    high: float = bounds[1] if len(bounds) > 1 else math.inf
    if low < 0 or high < low:
        raise ConfigError(f"{where} {' '.join(args)}: MIN must be >= 0 and MAX >= MIN")
    return Returns(" ".join(args), _KINDS[args[0]], low, high)
