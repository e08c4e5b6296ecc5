"""A real 3-master Redis Cluster for the tests (one per session and module that imports
the fixture): ``redis-server --cluster-enabled yes`` on three loopback ports, joined by
``redis-cli --cluster create`` (bench/redisload.py's ``RedisFleet``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from bench.redisload import RedisFleet


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisFleet]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server and redis-cli are needed (CI must install them)")
        pytest.skip("redis-server is not installed")
    fleet = RedisFleet(tmp_path_factory.mktemp("cluster"), masters=3)
    yield fleet
    fleet.stop()
