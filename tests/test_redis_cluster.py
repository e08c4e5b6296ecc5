"""One crawl through a real 3-master Redis Cluster (redis+cluster://): the storage
contract on the sharded layout, and a crawl by two processes, one SIGKILLed mid-crawl,
that still fetches every page."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from scraper.storage import Entry
from scraper.storage.rediscluster import cluster_layout, parse_cluster_url
from scraper.storage.registry import BackendOptions, open_backend

from . import rediscluster, test_redis
from .test_redis import _items, _project, _start

tree = test_redis.tree  # the fixtures
redis_cluster = rediscluster.redis_cluster

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def cluster_backend(redis_cluster):
    b = open_backend(redis_cluster.url, BackendOptions(spider=f"c{uuid.uuid4().hex[:6]}"))
    yield b
    b.clear()
    b.close()


def test_partitions_spread_over_every_master(redis_cluster):
    from redis.cluster import key_slot

    layout = cluster_layout("books")
    slots = sorted(key_slot(p.encode()) for p in layout.prefixes)
    assert [s * 3 // 16384 for s in slots] == [0, 0, 1, 1, 2, 2]   # two per master
    assert parse_cluster_url("redis+cluster://:pw@a:1,b:2/0") == ([("a", 1), ("b", 2)], None,
                                                                  "pw", False)


def test_contract_on_the_cluster(cluster_backend):
    b = cluster_backend
    b.hosts.set_defaults(2, 0.0)
    hosts = [f"http://h{i}.test:80" for i in range(12)]
    entries = [Entry(h, f"{h}/{j}", j % 3) for h in hosts for j in range(4)]
    fps = [uuid.uuid4().bytes for _ in entries]
    with b.transaction():
        assert all(b.push_unseen(entries, fps))
        assert b.push_unseen(entries[:5], fps[:5]) == [False] * 5
    assert b.frontier.pending() == 48 and fps[7] in b.seen and len(b.seen) == 48
    leases = b.frontier.pop(100, now=time.time())
    assert len(leases) == 24                          # two slots per host
    assert [lease.entry.priority for lease in leases] == sorted(
        (lease.entry.priority for lease in leases), reverse=True)
    assert b.frontier.pop(100, now=time.time()) == []  # every host full
    with b.transaction():
        for lease in leases:
            b.hosts.give(lease.entry.host, lease.id)
        b.frontier.ack([lease.id for lease in leases[:20]])
        b.counters.add({"pages": 20})
    b.frontier.release([lease.id for lease in leases[20:]])
    assert b.frontier.counts() == (28, 0) and b.counters.totals() == {"pages": 20}
    assert len(b.frontier.pop(100, now=time.time())) == 24


def test_two_processes_one_killed_every_page_fetched(tree, redis_cluster, tmp_path):  # noqa: F811
    redis_cluster.flush()
    project = _project(tmp_path, "per_host_workers: 8\n")
    url = redis_cluster.url
    a = _start(project, tree, url, "a.jsonl")
    b = _start(project, tree, url, "b.jsonl")
    deadline = time.monotonic() + 60
    while len(tree.hits) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    a.send_signal(signal.SIGKILL)   # dies holding leases and a prefetch buffer
    a.communicate()
    _, err = b.communicate(timeout=120)
    assert b.returncode == 0, err
    urls = _items(project, "a.jsonl", "b.jsonl")
    assert set(urls) == tree.expected                # nothing lost
    # a page twice only if the killed process had it leased (workers + prefetch)
    assert len(urls) - len(tree.expected) <= 8
    assert "cluster" in err
