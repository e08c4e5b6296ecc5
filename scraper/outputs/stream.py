"""Items appended to the backend's own item stream (``type: redis-stream``)."""

from __future__ import annotations

from typing import Any

from ..items import dumps
from ..storage import ItemStream

__all__ = ["StreamOutput"]


class StreamOutput:
    """Items appended to the crawl's Redis stream, in the same transaction that acks their
    page: exactly once, whichever process writes them."""

    path = "-"

    def __init__(self, stream: ItemStream) -> None:
        self.stream = stream

    def write(self, item: dict[str, Any]) -> None:
        self.stream.add(dumps(item))

    def flush(self) -> None:
        pass

    def position(self) -> int:
        return 0

    def close(self) -> None:
        pass
