"""Worker processes (``processes`` > 1): the coordinator's tasks run in N processes of
``workers`` threads each, instead of in threads of its own.

    engine.tasks ──▶ feeder ──▶ pipe ──▶ worker process k (threads: fetch, decide, callback)
    engine.results ◀── reader k ◀── pipe ◀──┘

The coordinator keeps everything that must be one (frontier, seen-set, politeness,
robots.txt, stats, job, pipelines); only tasks and outcomes cross, pickled by
``tasks.Wire``. The feeder hands each task to the live process with the fewest in
hand, never more than its threads, so what is prefetched stays what the dispatcher
decided. Each process has a reader that puts its outcomes on the results queue and
knows the tasks it holds: when the process dies (killed, crashed), each comes back as
``Abandoned`` (its request returns to the frontier, no page counted) and a new process
takes its place. Such a request is suspect from then on: it goes to a process that
holds nothing else, and only if that process dies too is it known to be the culprit:
it fails (``worker-died``, a dead letter that ``retry-failed`` sends again) rather than
kill processes for ever; no other request is ever failed for being in its company.
More than ``MAX_RESTARTS`` restarts in a minute end the crawl as an error (a spider
that kills whatever process runs it): the requests held go back to the frontier.

Processes are forked from a zygote: one process forked when the crawl starts, before
any worker thread, fetch or timer exists, and that stays single-threaded. Forking the
coordinator itself later (a restart) would copy it mid-flight with its threads, any
of which may hold a lock the child would then wait on for ever. Worker processes
ignore SIGINT and SIGTERM (the coordinator stops them, after its graceful stop), and
exit as soon as their pipe closes: a coordinator that dies, however, takes them along.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import queue
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from ..exceptions import FetchError
from ..fetch.policy import Fail
from .tasks import (STOP, Abandoned, Fetch, FetchRobots, Outcome, PageOutcome, Refuse,
                    RobotsOutcome, Stop, Task, Wire)
from .worker import task_key

__all__ = ["MAX_RESTARTS", "ProcessPool", "Zygote", "usable_cpus"]

log = logging.getLogger(__name__)

MAX_RESTARTS = 10   # worker process restarts in a minute before the crawl gives up
_STOP_S = 4.0       # a graceful stop waits this long for the processes, then kills them
_INT = struct.Struct("!i")

#: The main of a worker process: its pipe to the coordinator and its index.
Serve = Callable[[Connection, int], None]


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity), or all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# -- the zygote ----------------------------------------------------------------------
class Zygote:
    """A process that forks the worker processes when asked. It is forked from the
    coordinator once, early, and runs one thread: so is every process it forks."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.pid = 0
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        ours, theirs = socket.socketpair()
        sys.stdout.flush()  # else what is buffered would be written again by each process
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the zygote (os._exit: no coverage data)
            status = 1
            try:
                ours.close()
                _zygote(theirs, self.serve)
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        theirs.close()
        self.pid, self._sock = pid, ours

    def spawn(self, index: int) -> tuple[int, Connection]:
        """A new worker process ``index``: its pid and the coordinator's end of its pipe.
        OSError when the zygote is gone."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                sock = self._sock
                if sock is None:
                    raise OSError("the zygote is closed")
                socket.send_fds(sock, [_INT.pack(index)], [theirs.fileno()])
                pid = _INT.unpack(_recv_exactly(sock, _INT.size))[0]
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return pid, Connection(ours.detach())

    def close(self, deadline: float) -> None:
        """No more processes: the zygote waits for its workers (until ``deadline``, then
        kills them) and exits; killed if it has not by then."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        if not self.pid:
            return
        while True:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done or time.monotonic() >= deadline + 1.0:
                break
            time.sleep(0.02)
        if not done:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        self.pid = 0


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("the zygote is gone")
        data += chunk
    return data


def _zygote(sock: socket.socket, serve: Serve) -> None:  # pragma: no cover - in the zygote
    """The zygote's loop: fork a worker per request until the coordinator closes the
    socket (or dies); reap the workers as they end."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)  # inherited by the workers: the coordinator stops them
    children: set[int] = set()
    while True:
        ready, _, _ = select.select([sock], [], [], 0.5)
        _reap(children)
        if not ready:
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(sock, _INT.size, 1)
        except OSError:
            break
        if len(msg) < _INT.size or not fds:
            break  # the coordinator closed the socket, or died
        index = _INT.unpack(msg)[0]
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                sock.close()
                serve(Connection(fds[0]), index)
                status = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(status)
        os.close(fds[0])
        children.add(pid)
        sock.sendall(_INT.pack(pid))
    deadline = time.monotonic() + _STOP_S
    while children and time.monotonic() < deadline:
        _reap(children)
        time.sleep(0.02)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _reap(children: set[int]) -> None:  # pragma: no cover - in the zygote
    for pid in list(children):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            children.discard(pid)


# -- the pool ------------------------------------------------------------------------
@dataclass(eq=False)
class _Process:
    """One worker process as the coordinator sees it."""

    index: int
    pid: int
    conn: Connection
    held: dict[Any, Task] = field(default_factory=dict)  # task key -> task, unanswered
    alive: bool = True
    alone: bool = False  # it holds one suspect request, and nothing else
    report: dict[str, Any] | None = None  # its resource use, sent when it stopped
    send_lock: threading.Lock = field(default_factory=threading.Lock)


class ProcessPool:
    """N worker processes taking tasks from ``tasks`` and putting exactly one outcome per
    task on ``results`` (an ``Abandoned`` one for a task whose process died)."""

    def __init__(self, n: int, threads: int, wire: Wire, serve: Serve,
                 tasks: queue.Queue[Task], results: queue.Queue[Any], *,
                 on_fatal: Callable[[], None]) -> None:
        self.n = n
        self.threads = threads
        self.wire = wire
        self.tasks = tasks
        self.results = results
        self.on_fatal = on_fatal
        self.zygote = Zygote(serve)
        self.restarts = 0
        self.failed: str | None = None
        self._procs: list[_Process] = []
        self._cond = threading.Condition()
        self._closing = False
        self._restarted_at: collections.deque[float] = collections.deque()
        self._suspects: set[bytes] = set()  # fingerprints of requests a process died with
        self._readers: list[threading.Thread] = []
        self._feeder = threading.Thread(target=self._feed, name="process-feeder", daemon=True)

    # -- starting and stopping ---------------------------------------------------------
    def start(self) -> None:
        self.zygote.start()
        try:
            for i in range(self.n):
                self._spawn(i)
        except BaseException:
            self.stop()
            raise
        self._feeder.start()

    def _spawn(self, index: int) -> None:
        pid, conn = self.zygote.spawn(index)
        proc = _Process(index, pid, conn)
        with self._cond:
            if self._closing:  # stopped meanwhile: it sees its pipe close, and exits
                conn.close()
                return
            self._procs = [p for p in self._procs if p.index != index] + [proc]
            self._cond.notify_all()
        reader = threading.Thread(target=self._read, args=(proc,), name=f"process-{index}-reader",
                                  daemon=True)
        self._readers.append(reader)
        reader.start()

    def stop(self) -> None:
        """Stop every process (the coordinator's stop is over): they finish what they
        hold, report and exit; within a few seconds, or they are killed."""
        deadline = time.monotonic() + _STOP_S
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            procs = list(self._procs)
        try:
            self.tasks.put_nowait(STOP)  # wakes a feeder waiting for a task
        except queue.Full:
            pass  # then it is not waiting for one
        for proc in procs:
            self._send(proc, b"")
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            if proc.alive:
                log.warning("worker process %d (pid %d) did not stop; killing it", proc.index,
                            proc.pid)
                _kill(proc.pid)
            proc.conn.close()
        self.zygote.close(deadline)

    def kill(self) -> None:
        """Kill every process now (the coordinator exits at once)."""
        with self._cond:
            self._closing = True
            procs = list(self._procs)
        for proc in procs:
            if proc.alive:
                _kill(proc.pid)
        if self.zygote.pid:
            _kill(self.zygote.pid)

    def reports(self) -> list[dict[str, Any]]:
        """The resource use each current process reported when it stopped."""
        return [p.report for p in sorted(self._procs, key=lambda p: p.index) if p.report]

    # -- tasks out -----------------------------------------------------------------------
    def _feed(self) -> None:
        """Tasks from the queue to the processes, as they have room."""
        tasks = self.tasks
        while True:
            room = self._wait_for_room()
            if room == 0:
                return
            batch = [tasks.get()]
            try:
                while len(batch) < room:
                    batch.append(tasks.get_nowait())
            except queue.Empty:
                pass
            stop = any(isinstance(t, Stop) for t in batch)
            self._hand_out([t for t in batch if not isinstance(t, Stop)])
            if stop:
                return

    def _wait_for_room(self) -> int:
        """How many tasks the live processes can take now, once there is room for one;
        0 when the pool is closing."""
        with self._cond:
            while True:
                if self._closing:
                    return 0
                room = sum(self.threads - len(p.held) for p in self._procs
                           if p.alive and not p.alone)
                if room > 0:
                    return room
                self._cond.wait()

    def _hand_out(self, batch: list[Task]) -> None:
        out: dict[_Process, list[tuple[Any, bytes]]] = {}
        for task in batch:
            assert isinstance(task, Fetch | Refuse | FetchRobots)
            key = task_key(task)
            try:
                blob = self.wire.dumps(task)
            except Exception as e:
                self.results.put(_unsendable(task, f"it cannot be sent to a worker process "
                                                   f"({type(e).__name__}: {e})"))
                continue
            suspect = isinstance(task, Fetch) and task.request.fingerprint in self._suspects
            if suspect:  # it waits for a process to empty: what it holds must be sent first
                self._send_all(out)
            proc = self._place(key, task, suspect)
            if proc is not None:
                out.setdefault(proc, []).append((key, blob))
        self._send_all(out)

    def _send_all(self, out: dict[_Process, list[tuple[Any, bytes]]]) -> None:
        for proc, frames in out.items():
            self._send(proc, pickle.dumps(frames, pickle.HIGHEST_PROTOCOL))
        out.clear()

    def _place(self, key: Any, task: Task, suspect: bool) -> _Process | None:
        """The live process with the fewest tasks (a suspect: one with none), now holding
        ``task``; None when every process is gone for good (the task comes back
        abandoned)."""
        with self._cond:
            while True:
                live = [p for p in self._procs if p.alive and (
                    not p.held if suspect else not p.alone and len(p.held) < self.threads)]
                if live:
                    proc = min(live, key=lambda p: len(p.held))
                    proc.held[key] = task
                    proc.alone = suspect
                    return proc
                if self.failed is not None or self._closing:
                    self.results.put(Abandoned(task))  # type: ignore[arg-type]
                    return None
                self._cond.wait()

    def _send(self, proc: _Process, data: bytes) -> None:
        """To a process; one that cannot take it has died, and its reader says so."""
        with proc.send_lock:
            try:
                proc.conn.send_bytes(data)
            except OSError:
                pass

    # -- outcomes back ---------------------------------------------------------------------
    def _read(self, proc: _Process) -> None:
        conn, wire, put = proc.conn, self.wire, self.results.put
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                break
            msg = pickle.loads(data)
            if isinstance(msg, dict):
                proc.report = msg
                continue
            with self._cond:
                held = proc.held
                answered = [(held.pop(key, None), blob, why) for key, blob, why in msg]
                if proc.alone and not held:  # the suspect did not kill it: not the culprit
                    proc.alone = False
                    for task, _, _ in answered:
                        if isinstance(task, Fetch):
                            self._suspects.discard(task.request.fingerprint)
                self._cond.notify_all()
            for task, blob, why in answered:
                if task is not None:
                    put(_decoded(wire, task, blob, why))
        self._died(proc)

    def _died(self, proc: _Process) -> None:
        with self._cond:
            proc.alive = False
            lost = [self._abandon(task, proc.alone) for task in proc.held.values()]
            proc.held.clear()
            closing = self._closing
            self._cond.notify_all()
        for outcome in lost:
            self.results.put(outcome)
        if closing:
            return
        log.warning("worker process %d (pid %d) died with %d request(s) in flight; starting "
                    "another", proc.index, proc.pid, len(lost))
        self._restart(proc.index)

    def _abandon(self, task: Task, culprit: bool) -> Outcome:
        """What becomes of a task its process died with: back to the frontier, as a
        suspect; a failure when it was the only one (``culprit``)."""
        assert isinstance(task, Fetch | Refuse | FetchRobots)
        if not isinstance(task, Fetch):
            return Abandoned(task)
        request = task.request
        if not culprit:
            self._suspects.add(request.fingerprint)
            return Abandoned(task)
        self._suspects.discard(request.fingerprint)
        log.error("%s: a worker process died handling this request alone (as another had "
                  "with it); not trying it again", request.url)
        return PageOutcome(task.lease, request, Fail(FetchError(
            f"{request.url}: worker processes die handling it", request=request,
            kind="worker-died"), dead=True))

    def _restart(self, index: int) -> None:
        now = time.monotonic()
        times = self._restarted_at
        while times and times[0] < now - 60:
            times.popleft()
        if len(times) >= MAX_RESTARTS:
            self._fail(f"worker processes died {MAX_RESTARTS + 1} times within a minute; "
                       "stopping the crawl (the requests they held go back to the frontier)")
            return
        times.append(now)
        try:
            self._spawn(index)
        except OSError as e:
            self._fail(f"could not start a worker process: {e}")
            return
        self.restarts += 1

    def _fail(self, message: str) -> None:
        with self._cond:
            if self.failed is not None:
                return
            self.failed = message
            self._cond.notify_all()
        log.error("%s", message)
        self.on_fatal()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _decoded(wire: Wire, task: Task, blob: bytes | None, why: str | None) -> Outcome:
    if blob is not None:
        try:
            outcome: Outcome = wire.loads(blob)
            return outcome
        except Exception as e:
            why = f"its outcome could not be read ({type(e).__name__}: {e})"
    return _unsendable(task, why or "no outcome")


def _unsendable(task: Task, why: str) -> Outcome:
    """The outcome of a task that could not cross between processes: a failure (not
    retried: it would not cross the next time either)."""
    assert isinstance(task, Fetch | Refuse | FetchRobots)
    if isinstance(task, FetchRobots):
        log.error("%s/robots.txt: %s", task.host, why)
        return RobotsOutcome(task.host, None, error="unpicklable")
    request = task.request
    log.error("%s: %s", request.url, why)
    return PageOutcome(task.lease, request, Fail(FetchError(f"{request.url}: {why}",
                                                            request=request, kind="unpicklable")),
                       fetched=isinstance(task, Fetch))
