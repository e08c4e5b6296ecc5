"""The contract every storage backend keeps: the same tests for memory, SQLite and
Redis: priorities, per-host room, not-before times, leases (ack, release, expiry),
a seen-set whose test-and-set has exactly one winner under a race, and a HostState
whose ``take`` never gives a host more slots than its limit, even under a race."""

import threading
import time

from scraper.storage import Entry


def _push(b, *entries):
    with b.transaction():
        b.frontier.push(list(entries))


def _pop(b, limit=100, host_limits=None, default_limit=100, closed=(), now=None):
    b.hosts.set_defaults(default_limit, 0.0)
    for host, n in (host_limits or {}).items():
        b.hosts.configure(host, n, 0.0)
    with b.transaction():
        return b.frontier.pop(limit, now=time.time() if now is None else now, closed=closed)


def test_higher_priority_first_then_fifo(backend):
    _push(backend, Entry("h", "a", 0), Entry("h", "b", 5), Entry("h", "c", 0), Entry("h", "d", 5))
    assert [l.entry.data for l in _pop(backend)] == ["b", "d", "a", "c"]


def test_priority_holds_across_hosts(backend):
    _push(backend, Entry("h1", "low", 0), Entry("h2", "high", 9), Entry("h3", "mid", 3))
    assert [l.entry.data for l in _pop(backend)] == ["high", "mid", "low"]


def test_room_limits_each_host(backend):
    _push(backend, *[Entry("a", f"a{i}") for i in range(5)], *[Entry("b", f"b{i}") for i in range(5)])
    got = [l.entry.data for l in _pop(backend, host_limits={"a": 1}, default_limit=2)]
    assert sorted(got) == ["a0", "b0", "b1"]
    assert backend.frontier.pending() == 7 and backend.frontier.leased() == 3


def test_host_without_room_is_skipped_not_blocking(backend):
    _push(backend, *[Entry("busy", f"x{i}", 5) for i in range(50)], Entry("free", "y", 0))
    got = [l.entry.data for l in _pop(backend, closed={"busy"})]
    assert got == ["y"]


def test_not_before_waits(backend):
    now = time.time()
    _push(backend, Entry("h", "later", 0, now + 60), Entry("h", "now", 0))
    assert [l.entry.data for l in _pop(backend, now=now)] == ["now"]
    assert backend.frontier.pending() == 1
    assert abs(backend.frontier.next_ready() - (now + 60)) < 0.01
    assert [l.entry.data for l in _pop(backend, now=now + 61)] == ["later"]


def test_ack_forgets_and_release_returns(backend):
    _push(backend, Entry("h", "a"), Entry("h", "b"))
    leases = _pop(backend)
    with backend.transaction():
        backend.frontier.ack([leases[0].id])
        backend.frontier.release([leases[1].id])
    assert backend.frontier.leased() == 0 and backend.frontier.pending() == 1
    assert [l.entry.data for l in _pop(backend)] == ["b"]


def test_expired_leases_go_back_to_the_queue(backend):
    backend.frontier.lease_seconds = 0.2
    _push(backend, Entry("h", "a"), Entry("h", "b"))
    leases = _pop(backend)
    with backend.transaction():
        backend.frontier.renew([leases[1].id])  # still being worked on... until it too expires
    assert backend.frontier.requeue_expired() == 0
    time.sleep(0.3)
    assert backend.frontier.requeue_expired() == 2
    assert backend.frontier.leased() == 0
    assert sorted(l.entry.data for l in _pop(backend)) == ["a", "b"]


def test_pop_limit_and_empty(backend):
    assert _pop(backend) == []
    _push(backend, *[Entry("h", str(i)) for i in range(10)])
    assert len(_pop(backend, limit=3)) == 3 and backend.frontier.pending() == 7


def test_seen_set_test_and_set(backend):
    seen = backend.seen
    with backend.transaction():
        assert seen.add(b"a" * 16) is True
        assert seen.add(b"a" * 16) is False
        assert seen.add_many([b"b" * 16, b"a" * 16, b"b" * 16, b"c" * 16]) == [True, False, False, True]
    assert b"c" * 16 in seen and b"d" * 16 not in seen and len(seen) == 3


def test_seen_set_race_has_exactly_one_winner(backend):
    seen = backend.seen
    fps = [i.to_bytes(16, "big") for i in range(200)]
    wins = []
    lock = threading.Lock()
    barrier = threading.Barrier(12)

    def racer():
        barrier.wait()
        mine = sum(1 for fp in fps if seen.add(fp))
        with lock:
            wins.append(mine)

    threads = [threading.Thread(target=racer) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(wins) == len(fps) and len(seen) == len(fps)


def test_pop_takes_host_slots_until_given_back(backend):
    _push(backend, *[Entry("h", str(i)) for i in range(5)])
    first = _pop(backend, default_limit=2)
    assert len(first) == 2 and _pop(backend, default_limit=2) == []  # both slots held
    with backend.transaction():
        backend.hosts.give("h", first[0].id)
        backend.frontier.ack([first[0].id])
    assert len(_pop(backend, default_limit=2)) == 1


def test_host_spacing_and_hold(backend):
    hosts = backend.hosts
    hosts.set_defaults(4, 0.0)
    hosts.configure("slow", 1, 10.0)
    now = time.time()
    assert hosts.take("slow", "t1", now) is True
    hosts.give("slow", "t1")
    assert hosts.take("slow", "t2", now + 1) is False      # spaced 10 s apart
    assert hosts.take("slow", "t3", now + 10.5) is True
    assert hosts.take("fast", "f1", now) and hosts.take("fast", "f2", now)
    hosts.hold("fast", now + 30)
    assert hosts.take("fast", "f3", now + 1) is False      # backed off
    hosts.hold("fast", now + 5)                            # a hold never shortens
    assert hosts.take("fast", "f4", now + 10) is False
    assert hosts.take("fast", "f5", now + 31) is True


def test_host_slot_race_never_exceeds_the_limit(backend):
    hosts = backend.hosts
    hosts.set_defaults(5, 0.0)
    won = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def racer(n):
        barrier.wait()
        for i in range(10):
            if hosts.take("race", f"{n}-{i}", time.time()):
                with lock:
                    won.append((n, i))

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 5


def test_push_unseen_marks_and_pushes_in_one_step(backend):
    entries = [Entry("h", str(i)) for i in range(4)]
    with backend.transaction():
        assert backend.push_unseen(entries, [b"a" * 16, b"b" * 16, b"a" * 16, None]) == [
            True, True, False, True]                   # None: not tested, always pushed
    assert sorted(l.entry.data for l in _pop(backend)) == ["0", "1", "3"]
    assert b"a" * 16 in backend.seen and len(backend.seen) == 2
    with backend.transaction():
        assert backend.push_unseen([Entry("h", "4")], [b"b" * 16]) == [False]
    assert backend.frontier.pending() == 0


def test_push_unseen_race_queues_each_fingerprint_once(backend):
    fps = [i.to_bytes(16, "big") for i in range(100)]
    barrier = threading.Barrier(8)

    def racer(n):
        barrier.wait()
        with backend.transaction():
            backend.push_unseen([Entry("h", f"{n}-{i}") for i in range(len(fps))], fps)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert backend.frontier.pending() == len(fps) and len(backend.seen) == len(fps)
