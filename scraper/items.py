"""Items: what a callback may yield as an item (a dict, any Mapping, a dataclass, an attrs
instance, a pydantic model: whatever itemadapter knows), turned into a plain dict for the
outputs; a spider's declared ``item_class``, which checks dict items and turns them into
instances of it; and values written as JSON or text that never fails on dates, decimals,
sets, bytes or nested items.

itemadapter (and, through it, pydantic and attrs when installed: ~0.1 s) is imported
only when a value is none of dict, Mapping or dataclass: a crawl of dicts never pays
for it, and neither does starting the command line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .exceptions import DropItem

if TYPE_CHECKING:
    from itemadapter import ItemAdapter

__all__ = ["InvalidItem", "ItemValidator", "dumps", "is_item", "item_to_dict", "item_validator",
           "json_default", "scalar_or_json"]

# what callbacks return or yield, and items hold, that is never an item: answered
# without asking itemadapter (which would try each of its five adapters)
_NEVER_ITEMS = frozenset({types.GeneratorType, list, tuple, set, str, bytes, int, float, bool,
                          type(None), dt.datetime, dt.date, dt.time, decimal.Decimal})

_adapter: type[ItemAdapter] | None = None


def _item_adapter() -> type[ItemAdapter]:
    global _adapter
    if _adapter is None:
        from itemadapter import ItemAdapter

        _adapter = ItemAdapter
    return _adapter


def is_item(value: Any) -> bool:
    """A dict, any Mapping, or an instance of a dataclass, an attrs class, a pydantic model
    (or a Scrapy Item): whatever ``itemadapter.ItemAdapter`` can wrap."""
    cls = type(value)
    if cls is dict:
        return True
    if cls in _NEVER_ITEMS or isinstance(value, type):
        return False
    if isinstance(value, Mapping) or dataclasses.is_dataclass(value):
        return True
    return _item_adapter().is_item(value)


# item class -> its field names, as ItemAdapter sees them (dataclasses, attrs, pydantic)
_field_names: dict[type, tuple[str, ...]] = {}


def item_to_dict(item: Any) -> dict[str, Any]:
    """A plain dict of an item: a dict as it is, a Mapping copied, any other item as its
    fields, what ``ItemAdapter(item)`` holds. Nested items stay objects here: ``dumps``
    and ``scalar_or_json`` write them as ``ItemAdapter(nested).asdict()``, the same bytes
    as converting them up front, at a third of the cost."""
    if type(item) is dict:
        return item
    names = _field_names.get(type(item))
    if names is None:
        if isinstance(item, Mapping):
            return dict(item)
        found = _item_adapter().get_field_names_from_class(type(item))
        if found is None:  # an adapter without declared fields: let it say what it holds
            return dict(_item_adapter()(item))
        names = _field_names[type(item)] = tuple(found)
    return {name: getattr(item, name) for name in names}


# -- item_class ------------------------------------------------------------------------
class InvalidItem(DropItem):
    """An item that does not fit the spider's ``item_class``; ``problems`` lists what is
    wrong, each as ``"field: error"``."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class ItemValidator:
    """Checks items against a declared item class. A dict (or any Mapping) becomes an
    instance of it, or InvalidItem says why not; an item that already has a declared
    type (this class or another) passes as it is: its class is its declaration."""

    def __init__(self, item_class: type, build: Callable[[Mapping[str, Any]], Any]) -> None:
        self.item_class = item_class
        self._build = build

    def __call__(self, item: Any) -> Any:
        if type(item) is dict or (isinstance(item, Mapping) and not isinstance(item, self.item_class)):
            return self._build(item)
        return item


def item_validator(item_class: object) -> ItemValidator:
    """The validator of ``item_class``; TypeError saying what is wrong when it is not a
    dataclass, an attrs class or a pydantic (v2) model."""
    if not isinstance(item_class, type):
        raise TypeError(f"item_class must be a class (a dataclass, an attrs class or a pydantic "
                        f"model), got {item_class!r}")
    if dataclasses.is_dataclass(item_class):
        fields = [f for f in dataclasses.fields(item_class) if f.init]
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        return ItemValidator(item_class, _FieldsBuilder(item_class, [f.name for f in fields],
                                                        required))
    if getattr(item_class, "__attrs_attrs__", None) is not None:
        return ItemValidator(item_class, _attrs_builder(item_class))
    if callable(getattr(item_class, "model_validate", None)) and hasattr(item_class, "model_fields"):
        return ItemValidator(item_class, _PydanticBuilder(item_class))
    raise TypeError(f"item_class {item_class.__qualname__} is not a dataclass, an attrs class or "
                    "a pydantic (v2) model")


class _FieldsBuilder:
    """Dataclasses and attrs classes: every required field present, no unknown one; types
    are not checked (the class's own ``__post_init__`` or validators may)."""

    def __init__(self, item_class: type, names: list[str], required: list[str]) -> None:
        self.item_class = item_class
        self.names = frozenset(names)
        self.required = required

    def __call__(self, item: Mapping[str, Any]) -> Any:
        names = self.names
        problems = [f"{name}: field required" for name in self.required if name not in item]
        problems += [f"{key}: unknown field" for key in item if key not in names]
        if problems:
            raise InvalidItem(problems)
        try:
            return self.item_class(**item)
        except Exception as e:  # its __post_init__ or attrs validators said no
            raise InvalidItem([f"{self.item_class.__name__}(): {type(e).__name__}: {e}"]) from None


def _attrs_builder(item_class: type) -> _FieldsBuilder:
    import attr  # installed: item_class is an attrs class

    fields = [a for a in attr.fields(item_class) if a.init]
    # the keyword __init__ takes: attrs drops the leading underscore of private attributes
    names = [getattr(a, "alias", None) or a.name.lstrip("_") for a in fields]
    required = [n for a, n in zip(fields, names) if a.default is attr.NOTHING]
    return _FieldsBuilder(item_class, names, required)


class _PydanticBuilder:
    """Pydantic models: ``model_validate``, so types are checked and coerced as the model
    says (``"12.5"`` for a float field becomes 12.5; extra keys as its config says)."""

    def __init__(self, item_class: type) -> None:
        from pydantic import ValidationError  # installed: item_class is a pydantic model

        self.item_class: Any = item_class
        self.error = ValidationError

    def __call__(self, item: Mapping[str, Any]) -> Any:
        try:
            return self.item_class.model_validate(item if type(item) is dict else dict(item))
        except self.error as e:
            raise InvalidItem([self._problem(err) for err in e.errors(include_url=False)]) from None
        except Exception as e:  # a validator that raised something pydantic does not wrap
            raise InvalidItem([f"{self.item_class.__name__}(): {type(e).__name__}: {e}"]) from None

    def _problem(self, err: Mapping[str, Any]) -> str:
        field = ".".join(str(part) for part in err.get("loc", ())) or self.item_class.__name__
        return f"{field}: {err.get('msg', 'invalid')}"


# -- values as JSON or text ---------------------------------------------------------------
def json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, enum.Enum):
        return value.value
    if is_item(value):  # a nested dataclass, attrs or pydantic object, or a Mapping
        return item_to_dict(value)
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON that never fails on dates, decimals, sets, bytes or nested items."""
    return json.dumps(value, ensure_ascii=False, default=json_default)


def scalar_or_json(value: Any) -> Any:
    """Containers and nested items as JSON text; other values (dates, decimals, bytes) as
    their plain text."""
    if isinstance(value, list | dict | tuple | set | frozenset) or is_item(value):
        return dumps(value)
    return json_default(value)
