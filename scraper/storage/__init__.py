"""Where a crawl's state lives: the Frontier (requests to fetch) and the SeenSet.

``open_backend`` picks an implementation; the engine only sees the protocols
in ``base``. Storage never imports spiders, the engine or requests: it moves
strings, bytes and opaque payloads.
"""

from .base import Backend, Entry, Frontier, Lease, SeenSet
from .memory import MemoryBackend, MemoryFrontier, MemorySeenSet

__all__ = [
    "Backend", "Entry", "Frontier", "Lease", "MemoryBackend", "MemoryFrontier",
    "MemorySeenSet", "SeenSet", "open_backend",
]


def open_backend() -> MemoryBackend:
    """The backend for a crawl: in memory (persistent backends plug in here)."""
    return MemoryBackend()
