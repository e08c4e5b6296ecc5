"""The item pipeline chain: user pipelines in order (open / process / close), then outputs.

Items pass through in the coordinator thread, one at a time, so a pipeline
needs no locking. ``DropItem`` discards an item (counted as dropped); any other
exception from ``process`` drops that item too, logged with its traceback and
counted as a ``pipeline-error``; the crawl goes on.

Pipelines get the item object itself, as Scrapy's do: the dict, dataclass, attrs or
pydantic instance the callback yielded (or the spider's ``item_class`` made of a dict),
so one may keep its type, its methods and ``isinstance`` routing. A pipeline that reads
and writes through ``itemadapter.ItemAdapter(item)`` works for every item type. Only
the outputs need one shape: they get a plain dict of the item's fields (nested items
are written as what ``ItemAdapter(nested).asdict()`` gives).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..exceptions import ConfigError, DropItem
from ..items import is_item, item_to_dict
from ..loader import import_object
from ..outputs import Output, write_item
from ..spider import Spider

__all__ = ["Pipeline", "PipelineChain", "build_pipelines"]

log = logging.getLogger(__name__)


class Pipeline(Protocol):
    """What a pipeline class provides; ``open`` and ``close`` are optional."""

    def process(self, item: Any, spider: Spider) -> Any: ...


def build_pipelines(specs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Instantiate each ``{class: dotted.path, **options}``; ConfigError names the culprit."""
    out = []
    for spec in specs:
        path = spec["class"]
        cls = import_object(path, "pipeline")
        if not inspect.isclass(cls):
            raise ConfigError(f"pipeline {path!r}: is not a class")
        options = {k: v for k, v in spec.items() if k != "class"}
        try:
            instance = cls(**options)
        except TypeError as e:
            raise ConfigError(f"pipeline {path!r}: cannot be built with options {options}: {e}") from None
        except Exception as e:
            raise ConfigError(f"pipeline {path!r}: constructor failed: {type(e).__name__}: {e}") from None
        if not callable(getattr(instance, "process", None)):
            raise ConfigError(f"pipeline {path!r}: has no process(item, spider) method")
        out.append(instance)
    return out


class PipelineChain:
    """Runs items through the pipelines, then writes survivors to every output."""

    def __init__(self, pipelines: list[Any], outputs: list[Output]) -> None:
        self.pipelines = pipelines
        self.outputs = outputs
        self.dropped = 0
        self.errors = 0
        self._opened: list[Any] = []
        # nothing keeps an item: say so once, at the first one, not after a long crawl
        self._discarding = not outputs and not pipelines

    def open(self, spider: Spider) -> None:
        for p in self.pipelines:
            hook = getattr(p, "open", None)
            if hook is not None:
                hook(spider)
            self._opened.append(p)

    def process(self, item: Any, spider: Spider) -> dict[str, Any] | None:
        """The item as written, or None if a pipeline dropped it; BadItem, with nothing
        written anywhere, when an output cannot write it."""
        for p in self.pipelines:
            try:
                item = p.process(item, spider)
            except DropItem as e:
                self.dropped += 1
                log.debug("dropped by %s: %s", type(p).__name__, e)
                return None
            except Exception:
                self.errors += 1
                log.exception("pipeline %s failed; item dropped", type(p).__name__)
                return None
            if type(item) is not dict and not is_item(item):
                self.errors += 1
                log.error("pipeline %s returned %s, not an item; return the item or raise "
                          "DropItem", type(p).__name__,
                          "None" if item is None else f"a {type(item).__name__}")
                return None
        record = item_to_dict(item)
        if self._discarding:
            self._discarding = False
            log.warning("items are discarded: no output is configured (-o FILE, or outputs: "
                        "in config.yaml) and no pipeline keeps them")
        write_item(self.outputs, record)  # to every output or none: BadItem for the caller
        return record

    def flush(self) -> None:
        for output in self.outputs:
            output.flush()

    def positions(self) -> dict[str, int]:
        """Each file output's committed position (flushing it first), by path."""
        return {o.path: o.position() for o in self.outputs if o.path != "-"}

    def close(self, spider: Spider) -> None:
        """Close pipelines (in reverse) and outputs; errors are logged, not raised."""
        for p in reversed(self._opened):
            hook = getattr(p, "close", None)
            if hook is not None:
                try:
                    hook(spider)
                except Exception:
                    log.exception("pipeline %s failed to close", type(p).__name__)
        for output in self.outputs:
            try:
                output.close()
            except Exception:
                log.exception("output %s failed to close", output.path)
