"""Every Frontier/SeenSet implementation, for the contract suite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from scraper.storage import MemoryBackend
from scraper.storage.sqlite import SQLiteBackend

from .. import rediscluster

BACKENDS = ["memory", "sqlite", "redis", "redis-cluster"]
redis_cluster = rediscluster.redis_cluster  # the fixture


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Iterator[object]:
    if request.param == "memory":
        b = MemoryBackend()
    elif request.param == "sqlite":
        b = SQLiteBackend(tmp_path / "job")
    elif request.param == "redis-cluster":
        from scraper.storage.registry import BackendOptions, open_backend

        fleet = request.getfixturevalue("redis_cluster")
        b = open_backend(fleet.url, BackendOptions(spider=f"contract-{uuid.uuid4().hex[:8]}"))
    else:
        from scraper.storage.redis import RedisBackend

        url = request.getfixturevalue("redis_url")
        b = RedisBackend(url, f"contract-{uuid.uuid4().hex[:8]}")
    yield b
    b.close()
