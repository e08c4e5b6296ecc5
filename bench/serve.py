"""Serving a directory on 127.0.0.1 for the benchmark: nginx when installed, else Python.

nginx (Debian's package) runs in the foreground from a generated configuration in a
private temporary directory: one worker, no access log, keep-alive without a request
limit, so that it is never what limits a crawl. Without nginx, a `ThreadingHTTPServer`
speaking HTTP/1.1 (keep-alive) serves the files instead, in its own process; it is far
slower and takes CPU from the crawler under test, which the report says.

`start()` returns a running `Server` once its port accepts connections; use it as a
context manager, or call `stop()`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
SERVER_KINDS = ("auto", "nginx", "python")
_READY_TIMEOUT_S = 15.0


class ServerError(RuntimeError):
    """The server could not be started."""


@dataclass
class Server:
    """A server process serving one directory on one port."""

    kind: str
    version: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    def describe(self) -> str:
        return f"{self.version} on {self.origin}"

    def stop(self) -> None:
        """Terminate the server and wait for it; remove its private directory."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def nginx_path() -> str | None:
    """The nginx binary, if installed (Debian puts it in /usr/sbin, often not on PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def start(root: Path, port: int, kind: str = "auto") -> Server:
    """Serve `root` on 127.0.0.1:`port` with nginx (`auto` prefers it) or Python."""
    if kind not in SERVER_KINDS:
        raise ValueError(f"server kind must be one of {SERVER_KINDS}, not {kind!r}")
    nginx = nginx_path()
    if kind == "nginx" and nginx is None:
        raise ServerError("nginx is not installed (apt-get install nginx)")
    workdir = Path(tempfile.mkdtemp(prefix="bench-server-"))
    try:
        if kind != "python" and nginx is not None:
            server = _start_nginx(nginx, root.resolve(), port, workdir)
        else:
            server = _start_python(root.resolve(), port, workdir)
        _wait_until_listening(server)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return server


def _start_nginx(nginx: str, root: Path, port: int, workdir: Path) -> Server:
    conf = workdir / "nginx.conf"
    conf.write_text(nginx_config(root, port, workdir), encoding="utf-8")
    version = (
        subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
        .stderr.strip()
        .removeprefix("nginx version: ")
    )
    with open(workdir / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(
            [nginx, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return Server("nginx", version or "nginx", port, process, workdir)


def nginx_config(root: Path, port: int, workdir: Path) -> str:
    """A minimal nginx.conf: foreground, one worker, static files from `root`."""
    # Workers drop privileges to `nobody` by default, who cannot read a private
    # temporary directory; as root, keep them root (they only read files).
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"    {name}_temp_path {workdir / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes 1;
daemon off;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{
    worker_connections 1024;
}}
http {{
    types {{
        text/html html;
        text/plain txt;
    }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
{temp_paths}    server {{
        listen {HOST}:{port};
        root {root};
        index index.html;
    }}
}}
"""


def _start_python(root: Path, port: int, workdir: Path) -> Server:
    with open(workdir / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.serve", str(root), "--port", str(port)],
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return Server("python", "Python ThreadingHTTPServer", port, process, workdir)


def _wait_until_listening(server: Server) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            errors = (server.workdir / "stderr.log").read_text(errors="replace").strip()
            log = server.workdir / "error.log"
            if log.exists():
                errors += "\n" + log.read_text(errors="replace").strip()
            raise ServerError(f"{server.kind} exited at start: {errors or 'no message'}")
        try:
            with socket.create_connection((HOST, server.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise ServerError(
        f"{server.kind} did not listen on port {server.port} within {_READY_TIMEOUT_S:.0f} s"
    )


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files over HTTP/1.1 (keep-alive), without a log line per request."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, delayed ACKs stall each
    # keep-alive response for ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass


def main(argv: Sequence[str] | None = None) -> None:
    """The Python fallback server's process: serve a directory until terminated."""
    parser = argparse.ArgumentParser(description="Serve a directory on 127.0.0.1 (HTTP/1.1).")
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    handler = partial(_QuietHandler, directory=str(args.root))
    with ThreadingHTTPServer((HOST, args.port), handler) as httpd:
        httpd.daemon_threads = True
        httpd.serve_forever()


if __name__ == "__main__":
    main()
