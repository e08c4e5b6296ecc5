"""Items: turning whatever a callback yields as an item (a dict, a Mapping, a dataclass)
into a plain dict, and writing values as JSON or text that never fails on dates,
decimals, sets or bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps", "item_to_dict", "json_default", "scalar_or_json"]


def item_to_dict(item: Any) -> dict[str, Any]:
    """A plain dict of an item (a dict, a dataclass instance or any Mapping)."""
    if type(item) is dict:
        return item
    if isinstance(item, Mapping):
        return dict(item)
    return dataclasses.asdict(item)


def json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON that never fails on dates, decimals, sets or bytes."""
    return json.dumps(value, ensure_ascii=False, default=json_default)


def scalar_or_json(value: Any) -> Any:
    """Containers as JSON text; other values (dates, decimals, bytes) as their plain text."""
    if isinstance(value, list | dict | tuple | set | frozenset) or (
            dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return dumps(value)
    return json_default(value)
