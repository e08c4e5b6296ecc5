"""Items appended to the backend's own item stream (``type: redis-stream``)."""

from __future__ import annotations

from typing import Any

from ..storage import ItemStream
from .base import encode_json, utf8

__all__ = ["StreamOutput"]


class StreamOutput:
    """Items appended to the crawl's Redis stream, in the same transaction that acks their
    page: exactly once, whichever process writes them."""

    path = "-"

    def __init__(self, stream: ItemStream) -> None:
        self.stream = stream

    def encode(self, item: dict[str, Any]) -> str:
        text = encode_json(item, "redis-stream")
        utf8(text, "redis-stream")  # Redis would refuse it halfway through a batch
        return text

    def put(self, encoded: str) -> None:
        self.stream.add(encoded)

    def write(self, item: dict[str, Any]) -> None:
        self.put(self.encode(item))

    def flush(self) -> None:
        pass

    def position(self) -> int:
        return 0

    def close(self) -> None:
        pass
