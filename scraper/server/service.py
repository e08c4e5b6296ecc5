"""The ``serve`` process: the scheduler on the calling (main) thread, as ``schedule``
runs it, and the web server (uvicorn) on another, on a socket bound before either
starts, so a port in use or a schedule dir taken is a one-line error before anything
runs. Stopping the scheduler (a signal) stops the web server after it: the dashboard
shows the runs being stopped until they are.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading

import uvicorn

from ..exceptions import ConfigError
from ..schedules.entries import SchedulePlan
from ..schedules.supervisor import Scheduler
from .app import build_app
from .jobs import Project

__all__ = ["ControlServer", "is_loopback"]

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ControlServer:
    """The scheduler of ``plan`` and the HTTP server beside it."""

    def __init__(self, plan: SchedulePlan, host: str, port: int, token: str | None) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port {port}: must be 0-65535 (0: any free port)")
        if token is None and not is_loopback(host):
            raise ConfigError(f"--host {host}: listening off loopback needs an api_token "
                              "(set SCRAPER_API_TOKEN or api_token in config.yaml); every "
                              "request must then carry it")
        self.host, self.port, self.token = host, port, token
        self.scheduler = Scheduler(plan, run_files=True)
        self.project = Project(plan, self.scheduler)
        self._sock: socket.socket | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def open(self) -> None:
        """Take the port and the schedule dir; ConfigError if either is in use."""
        self._sock = _listen(self.host, self.port)
        self.port = int(self._sock.getsockname()[1])
        try:
            self.scheduler.open()
        except BaseException:
            self._sock.close()
            raise

    def run(self) -> int:
        """Serve until the scheduler is stopped (``self.scheduler.stop``); its exit status."""
        assert self._sock is not None, "open() first"
        config = uvicorn.Config(build_app(self.project, self.token), log_config=None,
                                access_log=False, lifespan="off", timeout_graceful_shutdown=2,
                                server_header=False)
        self._uvicorn = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._uvicorn.run,
                                        kwargs={"sockets": [self._sock]}, name="http",
                                        daemon=True)
        self._thread.start()
        log.info("serving on %s (dashboard; Scrapyd-compatible API; /metrics)%s", self.url,
                 "; every request needs the API token" if self.token else "")
        try:
            return self.scheduler.run()
        finally:
            self._uvicorn.should_exit = True
            self._thread.join(timeout=10)
            self._sock.close()


def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: cannot be resolved ({e.strerror or e})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port} "
                          f"({e.strerror or e})") from None
    sock.set_inheritable(False)  # the runs must not hold the server's port
    return sock
