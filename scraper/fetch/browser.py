"""The browser pool: pages rendered by Chromium, driven by Playwright, for requests that
ask for it (``meta={"browser": ...}``, see ``adaptive`` for who asks).

Playwright's objects belong to the thread and event loop that made them, so each crawl
process has one ``BrowserPool``: one thread running an asyncio loop that owns the
Playwright driver, one Chromium and its contexts. Worker threads hand it a page to
render and wait on a ``concurrent.futures`` future; ``browser.pages`` pages render at
once (a semaphore in the loop), whatever the number of HTTP workers. The pool starts
at the first page rendered, in the process that renders it (never before a fork), and
``close`` ends Chromium and the driver.

    worker thread ── render(request, options) ──▶ [loop thread] page in a context of the
                                                   host ─▶ goto ─▶ wait ─▶ actions ─▶ DOM
                  ◀── Response (rendered DOM, main document's status and headers) ──┘

Contexts (cookie stores) are kept per host, ``contexts_per_host`` of them, each closed
and replaced after ``recycle_after`` pages so memory stays bounded over a long crawl.
A host's cookies go from the crawl's HTTP jar into its context before each page and
back into the jar after it. When Chromium dies (crashed, killed, out of memory) it is
started again and the pages that were rendering are rendered again, up to twice each;
then the page fails as ``browser-crash`` (a connection failure: the retry policy
retries it later).

This is the one boundary where Playwright errors enter the package: each becomes a
FetchError with a stats kind (``timeout``, ``connection``, ``dns``, ``browser``...).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import hashlib
import importlib.util
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

from ..config.settings import BrowserSettings
from ..exceptions import ConfigError, ConnectionFailed, FetchError, FetchTimeout, ResponseTooLarge
from ..http import Request
from ..response import Response

__all__ = ["BROWSER_ARGS", "BrowserConfig", "BrowserOptions", "BrowserPool", "browser_problem"]

log = logging.getLogger(__name__)

#: Chromium switches every launch gets: no sandbox (it refuses to start as root with
#: one), no GPU, none of the background traffic a crawler has no use for.
BROWSER_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage")
WAIT_UNTIL = ("load", "domcontentloaded", "networkidle", "commit")
RESOURCE_TYPES = frozenset({"document", "stylesheet", "image", "media", "font", "script",
                            "texttrack", "xhr", "fetch", "eventsource", "websocket", "manifest",
                            "other"})
DEFAULT_BLOCK = frozenset({"image", "font", "media"})
_OPTION_KEYS = ("wait_until", "wait_for", "timeout", "actions", "screenshot", "block",
                "when_missing")
_CRASH_RETRIES = 2
_MARKUP = ("text/html", "application/xhtml+xml")
_NOT_PASSED_ON = ("content-encoding", "content-length", "transfer-encoding")


def browser_problem(executable: str) -> str | None:
    """Why no page can be rendered here (one line naming the fix), or None."""
    if importlib.util.find_spec("playwright") is None:
        return ("pages with meta browser need Playwright: pip install 'scraper[browser]' "
                "(and Chromium: apt-get install chromium)")
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        return (f"browser.executable {executable}: no Chromium there (apt-get install chromium, "
                f"or set browser.executable)")
    return None


@dataclass(frozen=True)
class BrowserOptions:
    """How one page is rendered: ``meta["browser"]`` (True, "auto" or a dict of these)."""

    wait_until: str = "load"
    wait_for: str | None = None
    timeout: float | None = None
    actions: tuple[str, ...] = ()
    screenshot: bool = False
    block: frozenset[str] = DEFAULT_BLOCK
    #: adaptive: fetched with HTTP first, rendered only when this CSS selector matches nothing
    when_missing: str | None = None

    @classmethod
    def parse(cls, value: Any, when_missing: str | None = None) -> BrowserOptions | None:
        """The options ``value`` stands for; None for no browser (False, None). ValueError
        saying what is wrong otherwise. ``when_missing``: the spider's selector for "auto"."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if value == "auto":
            if not when_missing:
                raise ValueError('browser "auto" needs a CSS selector: browser_when_missing on '
                                 'the spider, or {"when_missing": "div.product"}')
            return cls(when_missing=when_missing)
        if not isinstance(value, Mapping):
            raise ValueError(f'browser must be true, "auto" or a dict of options, got {value!r}')
        return cls._from_dict(value)

    @classmethod
    def _from_dict(cls, d: Mapping[str, Any]) -> BrowserOptions:
        unknown = [k for k in d if k not in _OPTION_KEYS]
        if unknown:
            raise ValueError(f"unknown browser option {unknown[0]!r} (known: "
                             f"{', '.join(_OPTION_KEYS)})")
        wait_until = d.get("wait_until", "load")
        if wait_until not in WAIT_UNTIL:
            raise ValueError(f"browser wait_until must be one of {', '.join(WAIT_UNTIL)}")
        timeout = d.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                    or timeout <= 0):
            raise ValueError("browser timeout must be a number of seconds > 0")
        actions = d.get("actions") or ()
        actions = (actions,) if isinstance(actions, str) else tuple(actions)
        block = d.get("block", DEFAULT_BLOCK)
        if not isinstance(block, list | tuple | set | frozenset) or not set(block) <= RESOURCE_TYPES:
            raise ValueError(f"browser block must be a list of resource types "
                             f"({', '.join(sorted(RESOURCE_TYPES))})")
        for key in ("wait_for", "when_missing"):
            if d.get(key) is not None and (not isinstance(d[key], str) or not d[key]):
                raise ValueError(f"browser {key} must be a CSS selector")
        if not all(isinstance(a, str) and a for a in actions):
            raise ValueError("browser actions must be a spider method name (or a list of them)")
        return cls(wait_until, d.get("wait_for"), float(timeout) if timeout else None, actions,
                   bool(d.get("screenshot", False)), frozenset(block), d.get("when_missing"))

    def record(self) -> dict[str, Any]:
        """What ``response.meta["browser"]`` says of a rendered page."""
        out: dict[str, Any] = {"rendered": True, "wait_until": self.wait_until}
        if self.wait_for:
            out["wait_for"] = self.wait_for
        if self.actions:
            out["actions"] = list(self.actions)
        if self.when_missing:
            out["when_missing"] = self.when_missing
        return out


@dataclass(frozen=True)
class BrowserConfig:
    """What the pool needs from the settings."""

    executable: str
    pages: int
    contexts_per_host: int
    headless: bool
    launch_args: tuple[str, ...]
    recycle_after: int
    timeout: float
    screenshot_dir: Path
    user_agent: str
    headers: Mapping[str, str]
    max_response_size: int
    ignore_https_errors: bool = False
    proxy: str | None = None

    @classmethod
    def from_settings(cls, s: BrowserSettings, *, user_agent: str, headers: Mapping[str, str],
                      max_response_size: int, spider: str, verify: bool = True,
                      proxy: str | None = None) -> BrowserConfig:
        return cls(s.executable, s.pages, s.contexts_per_host, s.headless, s.launch_args,
                   s.recycle_after, s.timeout, Path(s.screenshot_dir.replace("{spider}", spider)),
                   user_agent, dict(headers), max_response_size, not verify, proxy)


@dataclass
class _Context:
    """A browser context of one host: its pages in use and rendered."""

    context: Any
    host: str
    active: int = 0
    rendered: int = 0
    idle: list[tuple[Any, _Router]] = field(default_factory=list)  # open pages, to reuse
    last_used: float = field(default_factory=time.monotonic)


class _Crashed(Exception):
    """Chromium went away while a page was rendering."""


class BrowserPool:
    """One Chromium of this process, its contexts, and the thread whose loop drives them.
    ``render`` may be called from any thread; it blocks until the page is rendered."""

    def __init__(self, config: BrowserConfig, jar: CookieJar,
                 actions: Callable[[str], Callable[..., Any] | None] | None = None) -> None:
        self.config = config
        self.jar = jar
        self.actions = actions or (lambda name: None)
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        # the loop's own state (touched only in the loop thread)
        self._playwright: Any = None
        self._browser: Any = None
        self._gone: asyncio.Future[bool] | None = None  # set when that browser disconnects
        self._generation = 0
        self._launching: asyncio.Lock | None = None
        self._pages: asyncio.Semaphore | None = None
        self._contexts: dict[str, list[_Context]] = {}
        self.launches = 0

    # -- from worker threads -------------------------------------------------------
    def render(self, request: Request, options: BrowserOptions) -> Response:
        """The page ``request`` leads to, rendered; FetchError when it cannot be."""
        loop = self._started(request)
        future = asyncio.run_coroutine_threadsafe(self._render(request, options), loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise FetchError(f"{request.url}: the browser was closed", request=request,
                             kind="browser") from None

    def _started(self, request: Request) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise FetchError(f"{request.url}: the browser is closed", request=request,
                                 kind="browser")
            if self._loop is None:
                self._start()
            assert self._loop is not None
            return self._loop

    def _start(self) -> None:
        problem = browser_problem(self.config.executable)
        if problem is not None:
            raise ConfigError(problem)
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, args=(loop,), name="browser",
                                        daemon=True)
        self._thread.start()
        self._loop = loop
        atexit.register(self.close)
        try:
            asyncio.run_coroutine_threadsafe(self._launch(0), loop).result()
        except Exception as e:
            log.error("the browser cannot be started: %s", e)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        loop.close()

    def close(self) -> None:
        """Close every context, Chromium and the Playwright driver; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        atexit.unregister(self.close)
        if loop is None or thread is None or os.getpid() != self.pid:
            return  # never started here (or a forked child's copy of its parent's pool)
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        except Exception as e:  # a browser that will not close must not hang the crawl's end
            log.warning("closing the browser: %s", e)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)

    # -- in the loop thread --------------------------------------------------------
    async def _launch(self, seen: int) -> Any:
        """The running browser; (re)started when generation ``seen`` is the current one."""
        if self._launching is None:
            self._launching = asyncio.Lock()
        async with self._launching:
            if self._browser is not None and (self._generation != seen or
                                              self._browser.is_connected()):
                return self._browser
            await self._forget_browser()
            if self._playwright is None:
                from playwright.async_api import async_playwright
                self._playwright = await async_playwright().start()
            c = self.config
            kwargs: dict[str, Any] = {"executable_path": c.executable, "headless": c.headless,
                                      "args": [*BROWSER_ARGS, *c.launch_args]}
            if c.proxy:
                kwargs["proxy"] = {"server": c.proxy}
            browser = self._browser = await self._playwright.chromium.launch(**kwargs)
            gone = self._gone = asyncio.get_running_loop().create_future()
            browser.on("disconnected", lambda _: _settle(gone))
            self._generation += 1
            self.launches += 1
            log.info("browser started: Chromium %s (%d pages at once)", self._browser.version,
                     c.pages)
            return self._browser

    async def _forget_browser(self) -> None:
        self._contexts.clear()
        browser, self._browser = self._browser, None
        if browser is not None:
            try:  # a browser that died may never answer
                await asyncio.wait_for(browser.close(), 10)
            except Exception:
                pass  # it is gone already

    async def _shutdown(self) -> None:
        for contexts in list(self._contexts.values()):
            for ctx in contexts:
                await _quietly(ctx.context.close())
        await self._forget_browser()
        if self._playwright is not None:
            await _quietly(self._playwright.stop())
            self._playwright = None

    async def _render(self, request: Request, options: BrowserOptions) -> Response:
        if self._pages is None:
            self._pages = asyncio.Semaphore(self.config.pages)
        async with self._pages:
            for attempt in range(_CRASH_RETRIES + 1):
                generation = self._generation
                browser = self._browser
                if self._closed:
                    raise FetchError(f"{request.url}: the browser is closed", request=request,
                                     kind="browser")
                if browser is None or not browser.is_connected():
                    await self._relaunch(generation, request)
                try:
                    return await self._render_once(request, options)
                except _Crashed:
                    log.warning("the browser went away while rendering %s; restarting it%s",
                                request.url, "" if attempt < _CRASH_RETRIES else " (giving up)")
            raise ConnectionFailed(f"{request.url}: the browser crashed rendering it "
                                   f"{_CRASH_RETRIES + 1} times", request=request,
                                   kind="browser-crash")

    async def _relaunch(self, generation: int, request: Request) -> None:
        try:
            await self._launch(generation)
        except Exception as e:
            raise ConnectionFailed(f"{request.url}: the browser cannot be started: {_short(e)}",
                                   request=request, kind="browser-crash") from None

    async def _render_once(self, request: Request, options: BrowserOptions) -> Response:
        """One try; _Crashed as soon as Chromium disconnects (a page of a dead browser may
        never answer), FetchTimeout when the page takes far longer than its timeout."""
        browser, gone = self._browser, self._gone
        if browser is None or gone is None or not browser.is_connected():
            raise _Crashed()
        ctx = await self._context(browser, _host(request.url))
        ctx.active += 1
        task = asyncio.ensure_future(self._page(ctx, request, options))
        limit = 3 * (options.timeout or self.config.timeout) + 10
        try:
            watched: set[asyncio.Future[Any]] = {task, gone}
            done, _ = await asyncio.wait(watched, timeout=limit,
                                         return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            task.cancel()
            task.add_done_callback(_forget)
            if gone.done():
                raise _Crashed()
            raise FetchTimeout(f"{request.url}: rendering took over {limit:g} s", request=request)
        except (FetchError, _Crashed):
            raise
        except Exception as e:
            if not browser.is_connected() or _is_closed(e):
                raise _Crashed() from e
            raise _translate(e, request) from e
        finally:
            ctx.active -= 1
            ctx.rendered += 1
            if browser.is_connected():
                await self._retire(ctx)

    async def _context(self, browser: Any, host: str) -> _Context:
        """A context of ``host`` with the fewest pages open (a new one while it has fewer
        than ``contexts_per_host`` in use)."""
        contexts = self._contexts.setdefault(host, [])
        live = [c for c in contexts if c.rendered < self.config.recycle_after]
        idle = [c for c in live if c.active == 0]
        if idle or len(live) >= self.config.contexts_per_host:
            chosen = min(idle or live, key=lambda c: c.active)
        else:
            c = self.config
            context = await browser.new_context(user_agent=c.user_agent,
                                                extra_http_headers=dict(c.headers) or None,
                                                ignore_https_errors=c.ignore_https_errors)
            chosen = _Context(context, host)
            contexts.append(chosen)
            await self._evict_idle()
        chosen.last_used = time.monotonic()
        return chosen

    async def _evict_idle(self) -> None:
        """Close the least recently used idle contexts beyond a few per page slot: a crawl
        of many hosts keeps a bounded number of cookie stores open (the jar keeps the rest)."""
        every = [c for cs in self._contexts.values() for c in cs]
        over = len(every) - 2 * self.config.pages * self.config.contexts_per_host
        if over <= 0:
            return
        for ctx in sorted((c for c in every if c.active == 0), key=lambda c: c.last_used)[:over]:
            ctx.rendered = self.config.recycle_after  # retire it
            await self._retire(ctx)

    async def _retire(self, ctx: _Context) -> None:
        """Close a context that has rendered its share, once no page of it is open."""
        if ctx.rendered < self.config.recycle_after or ctx.active:
            return
        contexts = self._contexts.get(ctx.host, [])
        if ctx in contexts:
            contexts.remove(ctx)
            if not contexts:
                del self._contexts[ctx.host]
        await _quietly(ctx.context.close())

    async def _page(self, ctx: _Context, request: Request, options: BrowserOptions) -> Response:
        timeout_s = options.timeout or self.config.timeout
        started = time.monotonic()
        await ctx.context.add_cookies(jar_cookies(self.jar, request.url))
        page, router = await self._open_page(ctx)
        router.start(request, options.block)
        reusable = False
        try:
            page.set_default_timeout(timeout_s * 1000)
            if request.headers:
                await page.set_extra_http_headers({k: str(v) for k, v in request.headers.items()})
            main = await page.goto(request.url, wait_until=options.wait_until,
                                   timeout=timeout_s * 1000)
            if main is None:
                raise FetchError(f"{request.url}: the browser loaded no document",
                                 request=request, kind="browser")
            record = options.record()
            if options.wait_for:
                record["found"] = await _wait_for(page, options.wait_for, timeout_s)
            for name in options.actions:
                await self._act(name, page, request)
            response = await self._response(page, main, request, record, started)
            if options.screenshot:
                record["screenshot"] = await self._screenshot(page, request)
            log.debug("rendered %s (%d) in %.2f s", request.url, main.status,
                      time.monotonic() - started)
            reusable = not request.headers
            return response
        finally:
            if self._browser is not None and self._browser.is_connected():
                store_cookies(self.jar, await _cookies_of(ctx.context, request.url))
                await self._done_with(ctx, page, router, reusable)

    async def _open_page(self, ctx: _Context) -> tuple[Any, _Router]:
        """An open page of the context (a new one costs more than a navigation)."""
        if ctx.idle:
            return ctx.idle.pop()
        page = await ctx.context.new_page()
        router = _Router()
        await page.route("**/*", router)
        return page, router

    async def _done_with(self, ctx: _Context, page: Any, router: _Router, reusable: bool) -> None:
        """Keep a page that rendered cleanly for the next one, on a blank document (no
        script of the last page keeps running); close any other."""
        if reusable and ctx.rendered + 1 < self.config.recycle_after:
            try:
                await page.goto("about:blank")
                ctx.idle.append((page, router))
                return
            except Exception:
                pass
        await _quietly(page.close())

    async def _act(self, name: str, page: Any, request: Request) -> None:
        fn = self.actions(name)
        if fn is None or not inspect.iscoroutinefunction(fn):
            raise FetchError(f"{request.url}: browser actions {name!r} is not an async def "
                             f"method of the spider", request=request, kind="browser-actions")
        try:
            await fn(page)
        except Exception as e:
            if _is_closed(e):
                raise
            log.exception("browser actions %s raised on %s", name, request.url)
            raise FetchError(f"{request.url}: browser actions {name} raised "
                             f"{type(e).__name__}: {_short(e)}", request=request,
                             kind="browser-actions") from None

    async def _response(self, page: Any, main: Any, request: Request, record: dict[str, Any],
                        started: float) -> Response:
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(await main.all_headers())
        mime = headers.get("content-type", "text/html").split(";")[0].strip().lower()
        if mime in _MARKUP or not headers.get("content-type"):
            body = (await page.content()).encode("utf-8")
            headers["content-type"] = f"{mime or 'text/html'}; charset=utf-8"
        else:  # a JSON, XML or text document: its bytes, not the viewer page around them
            body = await main.body()
        for name in _NOT_PASSED_ON:
            headers.pop(name, None)
        if len(body) > self.config.max_response_size:
            raise ResponseTooLarge(f"{page.url}: rendered page over max_response_size "
                                   f"{self.config.max_response_size} bytes", request=request)
        history = await _history(main, request)
        rendered = request.replace(meta={**request.meta, "browser": record})
        rendered.attempt = request.attempt
        return Response(page.url, main.status, headers, body, rendered, history=history,
                        elapsed=time.monotonic() - started)

    async def _screenshot(self, page: Any, request: Request) -> str:
        directory = self.config.screenshot_dir
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        path = directory / (hashlib.sha1(request.fingerprint).hexdigest()[:20] + ".png")
        await page.screenshot(path=str(path), full_page=True)
        return str(path)


class _Router:
    """Every request of a page: blocked resource types aborted; the main document sent
    with the request's method and body (a page.goto alone would GET it)."""

    def __init__(self) -> None:
        self.request: Request | None = None
        self.block: frozenset[str] = DEFAULT_BLOCK
        self.first = False

    def start(self, request: Request, block: frozenset[str]) -> None:
        """The page is about to render ``request``."""
        self.request, self.block, self.first = request, block, True

    async def __call__(self, route: Any) -> None:
        req = route.request
        r = self.request
        if self.first and req.is_navigation_request():
            self.first = False
            if r is not None and (r.method != "GET" or r.body is not None):
                await route.continue_(method=r.method, post_data=r.body)
                return
        elif req.resource_type in self.block:
            await route.abort("blockedbyclient")
            return
        await route.continue_()


async def _wait_for(page: Any, selector: str, timeout_s: float) -> bool:
    """Whether ``selector`` appeared within the timeout (the page is delivered either way;
    ``response.meta["browser"]["found"]`` says which)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        await page.wait_for_selector(selector, state="attached", timeout=timeout_s * 1000)
        return True
    except PlaywrightTimeout:
        return False


async def _history(main: Any, request: Request) -> list[Response]:
    """The redirects the browser followed to the main document, oldest first."""
    hops: list[Response] = []
    hop = main.request.redirected_from
    while hop is not None:
        answer = await hop.response()
        hops.append(Response(hop.url, answer.status if answer is not None else 0, {}, b"", request))
        hop = hop.redirected_from
    hops.reverse()
    return hops


async def _cookies_of(context: Any, url: str) -> list[dict[str, Any]]:
    try:
        return list(await context.cookies([url]))
    except Exception:
        return []  # the context (or the browser) is gone: nothing to carry back


def _settle(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(True)


def _forget(task: asyncio.Future[Any]) -> None:
    """A cancelled page's outcome, read so that nothing reports it as never retrieved."""
    if not task.cancelled():
        task.exception()


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        pass


# -- cookies: the HTTP jar and a browser context, per host -----------------------------
def jar_cookies(jar: CookieJar, url: str) -> list[dict[str, Any]]:
    """The jar's cookies for ``url``'s host, as Playwright takes them."""
    host = (urlsplit(url).hostname or "").lower()
    now = time.time()
    out: list[dict[str, Any]] = []
    for c in list(jar):
        domain = c.domain[:-6] if c.domain_specified and c.domain.endswith(".local") else c.domain
        bare = domain.lstrip(".")
        if not (host == bare or (c.domain_specified and host.endswith("." + bare))):
            continue
        if c.expires is not None and c.expires <= now:
            continue
        cookie: dict[str, Any] = {"name": c.name, "value": c.value or "", "path": c.path or "/",
                                  "secure": bool(c.secure),
                                  "httpOnly": bool(c.has_nonstandard_attr("HttpOnly"))}
        # a host-only cookie is given as its URL, a domain cookie as .domain
        if c.domain_specified:
            cookie["domain"] = "." + bare
        else:
            cookie["domain"] = bare
        if c.expires is not None:
            cookie["expires"] = float(c.expires)
        out.append(cookie)
    return out


def store_cookies(jar: CookieJar, cookies: list[dict[str, Any]]) -> None:
    """Cookies a browser context holds, into the HTTP jar (replacing same-named ones)."""
    for c in cookies:
        domain = str(c.get("domain") or "")
        if not domain or not c.get("name"):
            continue
        expires = c.get("expires")
        expires_at = int(expires) if isinstance(expires, int | float) and expires > 0 else None
        dotted = domain.startswith(".")
        jar.set_cookie(Cookie(
            version=0, name=str(c["name"]), value=str(c.get("value", "")), port=None,
            port_specified=False, domain=domain, domain_specified=dotted,
            domain_initial_dot=dotted, path=str(c.get("path") or "/"), path_specified=True,
            secure=bool(c.get("secure")), expires=expires_at, discard=expires_at is None,
            comment=None, comment_url=None,
            rest={"HttpOnly": ""} if c.get("httpOnly") else {}, rfc2109=False))


# -- errors ----------------------------------------------------------------------------
def _is_closed(e: BaseException) -> bool:
    text = str(e)
    return type(e).__name__ == "TargetClosedError" or "has been closed" in text or \
        "Browser closed" in text or "Connection closed" in text


def _translate(e: Exception, request: Request) -> FetchError:
    """A Playwright error as one of ours, with a stats kind."""
    text = _short(e)
    url = request.url
    if type(e).__name__ == "TimeoutError":
        return FetchTimeout(f"timed out rendering {url}: {text}", request=request)
    if "ERR_NAME_NOT_RESOLVED" in text:
        return ConnectionFailed(f"DNS lookup failed for {url}", request=request, kind="dns")
    if "ERR_CERT" in text or "ERR_SSL" in text:
        return ConnectionFailed(f"TLS error for {url}: {text}", request=request, kind="tls")
    if "net::ERR_" in text:
        return ConnectionFailed(f"connection failed for {url}: {text}", request=request)
    return FetchError(f"rendering {url} failed: {text}", request=request, kind="browser")


def _short(e: BaseException) -> str:
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return first[:200]


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
