"""The watchdog: one thread that cuts the connection of any fetch still running at its
deadline, so a server trickling bytes (or headers) cannot hold a worker for ever."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Protocol

__all__ = ["Expirable", "Watchdog"]


class Expirable(Protocol):
    """What the watchdog cuts: a fetcher that can abandon the fetch a token names."""

    def expire(self, token: int) -> None: ...


class Watchdog:
    """One thread that cuts the connection of any fetch still running at its deadline.

    requests' read timeout bounds each read, not the response: a server sending a
    header line or a byte every few seconds would hold a worker for ever. Each fetch
    registers its deadline here (a heap push, no thread per request); past it, the
    socket is shut down and the fetch fails as a timeout.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Expirable]] = []
        self._active: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def watch(self, deadline: float, fetcher: Expirable) -> int:
        token = next(self._tokens)
        with self._cond:
            self._active.add(token)
            heapq.heappush(self._heap, (deadline, token, fetcher))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][1] == token:
                self._cond.notify()
        return token

    def done(self, token: int) -> None:
        with self._cond:
            self._active.discard(token)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                heap = self._heap
                while heap and heap[0][1] not in self._active:
                    heapq.heappop(heap)  # finished in time
                if not heap:
                    self._cond.wait()
                    continue
                wait = heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                _, token, fetcher = heapq.heappop(heap)
                self._active.discard(token)
                fetcher.expire(token)
