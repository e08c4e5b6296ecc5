"""The Redis Cluster backend: ``redis+cluster://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/0``
(``rediss+cluster://`` for TLS), the Redis backend with its keys spread over the shards.

The crawl's keys are split into ``PARTITIONS`` partitions, each under the prefix
``scraper:{<spider>.<tag>}:`` whose hash tag puts the whole partition on one shard;
the tags are chosen so that the partitions' hash slots are spread evenly over the
16,384 (so over the masters of a cluster whose slots are split evenly, as
``redis-cli --cluster create`` does). A host belongs to one partition: its queue,
slots, next-allowed time, limits and robots.txt, and the seen-set of its URLs, live
on one shard, so every script stays one atomic step. Fingerprints marked on their own
(``SeenSet.add``), counters and their totals spread over every partition; items and
dead letters live in the first one.

A pop asks every partition that had work (one script each, in one pipeline: one round
trip per master); priorities hold within a partition and the batch is merged by
priority. A transaction's writes are applied by one script per partition: atomic per
shard, not across shards (see README: what a lost shard costs).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ..exceptions import StorageUnusable
from .redis import Layout, RedisBackend, call_timeout
from .registry import mask_url

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import ClusterNode
    from redis.crc import key_slot
    from redis.retry import Retry
except ImportError:  # pragma: no cover - redis is a dependency
    redis = None  # type: ignore[assignment]

__all__ = ["PARTITIONS", "cluster_layout", "open_redis_cluster", "parse_cluster_url"]

#: partitions of a crawl on a cluster: a multiple of 2 and 3 masters, few enough that a pop
#: asking each costs little
PARTITIONS = 6
_SLOTS = 16384


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], str | None, str | None, bool]:
    """(nodes, username, password, tls) of a cluster URL, or StorageUnusable naming it."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("redis+cluster", "rediss+cluster"):
        raise StorageUnusable("expected redis+cluster://HOST:PORT,HOST:PORT/0", location=mask_url(url))
    netloc, _, path = rest.partition("/")
    user = password = None
    if "@" in netloc:
        info, _, netloc = netloc.rpartition("@")
        user, _, pw = info.partition(":")
        user, password = (unquote(user) or None), (unquote(pw) or None)
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise StorageUnusable(f"{part!r} is not HOST:PORT", location=mask_url(url))
        nodes.append((host.strip("[]"), int(port)))
    db = path.split("?", 1)[0]
    if db not in ("", "0"):
        raise StorageUnusable("a Redis Cluster has only database 0", location=mask_url(url))
    return nodes, user, password, scheme.lower() == "rediss+cluster"


def cluster_layout(spider: str, partitions: int = PARTITIONS) -> Layout:
    """The partitions' prefixes: for partition i, the first tag whose hash slot falls in
    the i-th of ``partitions`` equal ranges of slots."""
    prefixes = []
    n = 0
    for i in range(partitions):
        low, high = i * _SLOTS // partitions, (i + 1) * _SLOTS // partitions
        while not low <= key_slot(f"{spider}.{n}".encode()) < high:
            n += 1
        prefixes.append(f"scraper:{{{spider}.{n}}}:")
        n += 1
    return Layout(prefixes)


def open_redis_cluster(url: str, options: Any) -> RedisBackend:
    """The registry's factory for ``redis+cluster://`` and ``rediss+cluster://``."""
    if redis is None:  # pragma: no cover
        raise StorageUnusable("needs the redis package (pip install redis)", location=mask_url(url))
    nodes, user, password, tls = parse_cluster_url(url)
    timeout = call_timeout(options.retry_window)
    try:
        client = redis.RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in nodes],  # type: ignore[no-untyped-call]
            username=user, password=password,
            ssl=tls, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0))
    except redis.RedisError as e:
        raise StorageUnusable(f"the cluster cannot be reached ({type(e).__name__}: {e})",
                              location=mask_url(url)) from None
    return RedisBackend(url, options.spider, lease_seconds=options.lease_seconds,
                        seen_ttl=options.seen_ttl, retry_window=options.retry_window,
                        client=client, layout=cluster_layout(options.spider))
