"""Every Frontier/SeenSet implementation, for the contract suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scraper.storage import MemoryBackend
from scraper.storage.sqlite import SQLiteBackend

BACKENDS = ["memory", "sqlite"]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Iterator[object]:
    if request.param == "memory":
        b = MemoryBackend()
    else:
        b = SQLiteBackend(tmp_path / "job")
    yield b
    b.close()
