"""Shared fixtures: a real threaded HTTP server on a free loopback port (``site``), and
helpers to run a spider in-process or the CLI in a subprocess."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

Handler = Callable[["Hit"], "Reply | None"]


@dataclass
class Hit:
    """One request the test server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    handler: Any = None  # the BaseHTTPRequestHandler, for routes that write raw bytes
    at: float = 0.0      # time.monotonic() when it arrived


@dataclass
class Reply:
    """What a route answers: status, headers, body; ``delay`` seconds first."""

    body: bytes | str = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "text/html; charset=utf-8"  # None: no Content-Type header
    delay: float = 0.0
    repeated: list[tuple[str, str]] = field(default_factory=list)  # e.g. many Set-Cookie


class Site:
    """Routes path → Reply (or a function of the Hit). Unknown paths are 404.

    ``hits`` records every request; ``max_in_flight`` the most concurrent ones.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Handler] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        site = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # headers and body leave in separate writes: without TCP_NODELAY, Nagle's
            # algorithm and the client's delayed ACK add ~40 ms to every response
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                hit = Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                          body, self, time.monotonic())
                with site.lock:
                    site.hits.append(hit)
                    site.in_flight += 1
                    site.max_in_flight = max(site.max_in_flight, site.in_flight)
                done = False

                def finished() -> None:
                    nonlocal done
                    if not done:
                        done = True
                        with site.lock:
                            site.in_flight -= 1

                try:
                    reply = site.answer(hit)
                    if reply is None:
                        return  # the handler wrote (or broke) the connection itself
                    if reply.delay:
                        time.sleep(reply.delay)
                    # counted out before the answer leaves: once the client has it, it may
                    # send its next request, which must not overlap this one in the count
                    finished()
                    data = reply.body.encode() if isinstance(reply.body, str) else reply.body
                    self.send_response(reply.status)
                    headers = dict(reply.headers)
                    if reply.content_type is not None:
                        headers.setdefault("Content-Type", reply.content_type)
                    for k, v in [*headers.items(), *reply.repeated]:
                        self.send_header(k, v)
                    if "Content-Length" not in headers:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    finished()

            do_GET = do_POST = do_HEAD = do_PUT = _serve

            def log_message(self, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients hanging up (timeouts, killed crawls) are part of the tests

        self.handler_class = _H
        self.server = _Server(("127.0.0.1", 0), _H)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # a short poll so close() returns at once (it waits for serve_forever to notice)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def route(self, path: str, reply: Reply | Handler | str | bytes = b"", **kw: Any) -> None:
        if isinstance(reply, str | bytes):
            reply = Reply(reply, **kw)
        self.routes[path] = reply

    def answer(self, hit: Hit) -> Reply | None:
        route = self.routes.get(hit.path) or self.routes.get(hit.path.split("?", 1)[0])
        if route is None:
            if hit.path == "/robots.txt":
                return Reply(b"", status=404)
            return Reply(b"not found", status=404)
        return route(hit) if callable(route) else route

    def count(self, path: str) -> int:
        return sum(1 for h in self.hits if h.path == path)

    def paths(self) -> collections.Counter[str]:
        return collections.Counter(h.path for h in self.hits)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.close()


def page(*links: str, title: str = "t", extra: str = "") -> str:
    """A small HTML page linking to ``links``."""
    anchors = "".join(f'<a href="{h}">{h}</a>' for h in links)
    return f"<html><head><title>{title}</title></head><body>{anchors}{extra}</body></html>"


def run_cli(*args: str, cwd: Path | str, timeout: float = 60, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m scraper ARGS`` in ``cwd``; returns the completed process (text)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "scraper", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)


def write_project(tmp: Path, spiders: dict[str, str], config: str | None = None) -> Path:
    """A user project in ``tmp``: spiders/<name>.py for each source, and config.yaml."""
    d = tmp / "spiders"
    d.mkdir(parents=True, exist_ok=True)
    for name, src in spiders.items():
        (d / f"{name}.py").write_text(src)
    if config is not None:
        (tmp / "config.yaml").write_text(config)
    return tmp


class Collect:
    """A pipeline that keeps every item it sees (in order)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def process(self, item: Any, spider: Any) -> Any:
        self.items.append(item)
        return item


def crawl(spider_cls: type, settings: dict[str, Any] | None = None, **kw: Any) -> tuple[Any, list[Any]]:
    """Run ``spider_cls`` in this process; returns (stats, items). Robots off unless asked."""
    from scraper.crawl.runner import build_crawl

    collect = Collect()
    merged = {"obey_robots": False, "workers": 4, "retry.backoff": 0.01, **(settings or {})}
    c = build_crawl(spider_cls, settings=merged, pipelines=[collect], **kw)
    stats = c.run()
    return stats, collect.items


@pytest.fixture
def sends(monkeypatch):
    """host -> the wall times its requests were sent, as the workers recorded them and
    politeness received them: where the delay is guaranteed. (The server's arrival
    times add loopback and thread scheduling noise, tens of ms on a loaded machine.)"""
    from scraper.fetch.politeness import Politeness

    seen: dict[str, list[float]] = {}
    original = Politeness.finished

    def finished(self, host, token, latency=None, status=None, sent_at=None):
        if sent_at is not None:
            seen.setdefault(host, []).append(sent_at)
        return original(self, host, token, latency, status, sent_at)

    monkeypatch.setattr(Politeness, "finished", finished)
    return seen


# -- a real redis-server -------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server process on a free loopback port, with no persistence."""

    def __init__(self, binary: str, tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp), "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        self.client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI must install it: see .ci/run)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.client.flushall()
    return redis_server.url
