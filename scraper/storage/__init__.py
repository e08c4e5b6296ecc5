"""Where a crawl's state lives. ``base`` declares one Protocol per concern,
``registry`` opens a backend by URL scheme, and each backend module implements
them: ``memory`` (this process), ``sqlite`` (a job dir), ``redis`` (shared).

Storage imports nothing above it: it moves bytes, strings, numbers and opaque
payloads, never Requests or spiders.
"""

from .base import (Backend, DeadLetters, Entry, Frontier, HostState, ItemStream, JobState, Lease,
                   RobotsCache, SeenSet, SharedCounters)
from .memory import MemoryBackend, MemoryFrontier, MemoryHostState, MemorySeenSet
from .registry import BackendOptions, mask_url, open_backend, register, scheme_of, schemes

__all__ = [
    "Backend", "BackendOptions", "DeadLetters", "Entry", "Frontier", "HostState", "ItemStream",
    "JobState", "Lease", "MemoryBackend", "MemoryFrontier", "MemoryHostState", "MemorySeenSet",
    "RobotsCache", "SeenSet", "SharedCounters", "mask_url", "open_backend", "register",
    "scheme_of", "schemes",
]
