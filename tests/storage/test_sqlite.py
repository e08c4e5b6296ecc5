"""What only a persistent backend promises: state survives closing, a transaction is
all-or-nothing, one process per job dir, leases of a dead process come back."""

import pytest

from scraper.storage import Entry
from scraper.exceptions import StorageLocked
from scraper.storage.sqlite import SQLiteBackend


def test_state_survives_reopening_and_leases_come_back(tmp_path):
    b = SQLiteBackend(tmp_path / "j")
    with b.transaction():
        b.frontier.push([Entry("h", "a"), Entry("h", "b")])
        b.seen.add(b"x" * 16)
        leased = b.frontier.pop(1, now=9e9)
    assert [l.entry.data for l in leased] == ["a"]
    b.close()  # as if the process died with "a" in flight
    b = SQLiteBackend(tmp_path / "j")
    assert b.frontier.requeue_all() == 1
    assert b.frontier.pending() == 2 and b"x" * 16 in b.seen
    b.close()


def test_transaction_is_all_or_nothing(tmp_path):
    b = SQLiteBackend(tmp_path / "j")
    with pytest.raises(RuntimeError):
        with b.transaction():
            b.frontier.push([Entry("h", "a")])
            b.seen.add(b"y" * 16)
            raise RuntimeError("crash mid-record")
    assert b.frontier.pending() == 0 and b"y" * 16 not in b.seen
    b.close()


def test_one_process_per_job_dir(tmp_path):
    b = SQLiteBackend(tmp_path / "j")
    with pytest.raises(StorageLocked, match="in use"):
        SQLiteBackend(tmp_path / "j")
    b.close()
    SQLiteBackend(tmp_path / "j").close()


def test_frontier_rejects_unserialised_payloads(tmp_path):
    from scraper.exceptions import StorageError

    b = SQLiteBackend(tmp_path / "j")
    with pytest.raises(StorageError):
        b.frontier.push([Entry("h", object())])
    b.close()
