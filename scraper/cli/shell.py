"""``shell [URL|FILE] [-c CODE]``: a Python console with a page bound to ``response``, to try
selectors on; ``-c`` evaluates CODE instead and exits.

Bound names: ``response``, ``request``, ``fetch(url_or_request)`` (fetches as a crawl
would and rebinds both), ``spider``, ``settings``, ``Request``. A URL is fetched as
``fetch`` does; a final status other than 2xx is still bound (with a warning), a
request that got no response is an error (exit 1). A FILE (``./page.html``,
``/abs/page.html``, ``file:///abs/page.html``) is read as a 200 response whose URL is
its ``file://`` URL; its ``request`` is a GET of that URL that was never sent.

``-c CODE``: an expression's value is printed as ``print()`` prints it (a string bare,
anything else as its str, a SelectorList as a list of Selectors); statements are run
and print only what they print. An exception in CODE is one line and exit 1.
The console is IPython when it is installed, else Python's own (``code.interact``);
``--console python|ipython`` picks one.
"""

from __future__ import annotations

import argparse
import mimetypes
import signal
import sys
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError, ScraperError, SpiderError
from .console import CommandFailed
from .run import settings_args

if TYPE_CHECKING:
    from ..http import Request
    from ..response import Response
    from .probe import ToolContext

__all__ = ["add_parsers"]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "shell", help="a Python console with a fetched page bound to `response`",
        description="Open a Python console (IPython when installed) with `response` (URL "
                    "fetched as a crawl would, or FILE read as a page), `request`, `fetch(url)`, "
                    "`spider` and `settings` bound. With -c, evaluate CODE, print its value and "
                    "exit.")
    p.set_defaults(handler=shell_command)
    p.add_argument("target", metavar="URL|FILE", nargs="?",
                   help="an absolute http(s) URL, or an HTML file (./page.html, /abs/page.html, "
                        "file:///abs/page.html)")
    p.add_argument("-c", dest="code", metavar="CODE",
                   help="evaluate CODE (e.g. \"response.css('title::text').get()\"), print its "
                        "value as print() would, and exit")
    p.add_argument("--console", choices=("auto", "ipython", "python"), default="auto",
                   help="the interactive console: IPython, Python's own, or (auto, the default) "
                        "IPython when it is installed")
    p.add_argument("--spider", metavar="NAME", help="bind an instance of that spider to `spider`, "
                                                    "and fetch with its custom_settings")
    settings_args(p)


def shell_command(args: argparse.Namespace) -> int:
    from .probe import ToolContext

    code = _compiled(args.code) if args.code is not None else None
    ipython = _use_ipython(args.console) if code is None else False
    ctx = ToolContext.from_args(args)
    session = ShellSession(ctx)
    if args.target:
        session.load(args.target)
    if code is not None:
        return session.evaluate(args.code, *code)
    return session.interact(ipython)


def _use_ipython(console: str) -> bool:
    if console == "python":
        return False
    try:
        import IPython  # noqa: F401
    except ImportError:
        if console == "ipython":
            raise ConfigError("shell --console ipython: IPython is not installed "
                              "(pip install ipython)") from None
        return False
    return True


def _compiled(code: str) -> tuple[CodeType, bool]:
    """CODE compiled as an expression (True) or, failing that, as statements (False);
    a syntax error is a usage error, found before anything is fetched."""
    try:
        return compile(code, "<-c>", "eval"), True
    except SyntaxError:
        pass
    try:
        return compile(code, "<-c>", "exec"), False
    except SyntaxError as e:
        raise ConfigError(f"shell -c {code!r}: SyntaxError: {e.msg}") from None


class ShellSession:
    """The console's namespace and what changes it (``load``, ``fetch``)."""

    def __init__(self, ctx: ToolContext) -> None:
        from ..http import Request
        from .probe import DefaultSpider

        self.ctx = ctx
        settings = ctx.settings()
        cls = ctx.spider_cls or DefaultSpider
        try:
            spider = cls()
        except Exception as e:
            raise SpiderError(f"spider {cls.name}: __init__ failed: {type(e).__name__}: {e}") from None
        spider.settings = settings
        self.namespace: dict[str, Any] = {
            "response": None, "request": None, "fetch": self.fetch, "spider": spider,
            "settings": settings, "Request": Request}

    # -- what is bound -----------------------------------------------------------------
    def load(self, target: str) -> None:
        """Bind ``target`` (a URL, fetched; or a file, read); a page that could not be
        had at all is CommandFailed."""
        from .probe import checked_url

        path = _file_of(target)
        if path is None:
            self._fetch(checked_url("shell", target))
            return
        response = _file_response(target, path)
        self._bind(response, response.request, warn=None)

    def fetch(self, target: str | Request) -> None:
        """Fetch a URL (or a Request) as a crawl would, and bind ``response`` and ``request``."""
        try:
            self._fetch(target)
        except (CommandFailed, ScraperError) as e:
            sys.stderr.write(f"fetch: {e}\n")
        except KeyboardInterrupt:
            sys.stderr.write("fetch: interrupted\n")

    def _fetch(self, target: str | Request) -> None:
        from ..http import Request
        from .probe import checked_url, fetch_one

        request = target if isinstance(target, Request) else Request(checked_url("fetch", target))
        result = fetch_one(request, self.ctx)
        if result.response is None:
            raise CommandFailed(f"shell {result.error}")
        self._bind(result.response, request, warn=result.error)
        sys.stderr.write(f"response = {result.response!r}\n")

    def _bind(self, response: Response, request: Request, warn: str | None) -> None:
        self.namespace["response"] = response
        self.namespace["request"] = request
        if warn:
            sys.stderr.write(f"scraper: warning: {warn}; `response` is that answer\n")

    # -- the two modes -----------------------------------------------------------------
    def evaluate(self, text: str, code: CodeType, expression: bool) -> int:
        try:
            value = eval(code, self.namespace)  # the user's own code, by request
        except Exception as e:
            raise CommandFailed(f"shell -c {text!r}: {type(e).__name__}: {e}") from None
        if expression:
            print(value)
        sys.stdout.flush()
        return 0

    def interact(self, ipython: bool) -> int:
        banner = self.banner()
        # Ctrl-C in a console cancels the line being typed, as in any Python console
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if not ipython:
            _plain_console(self.namespace, banner)
            return 0
        from IPython import start_ipython
        from traitlets.config import Config

        config = Config()
        config.TerminalIPythonApp.display_banner = False
        sys.stderr.write(banner + "\n")
        start_ipython(argv=[], user_ns=self.namespace, config=config)
        return 0

    def banner(self) -> str:
        ns = self.namespace
        rows = [("response", repr(ns["response"]) if ns["response"] is not None else
                 "None (fetch(url) to get one)"),
                ("request", repr(ns["request"])),
                ("spider", repr(ns["spider"])),
                ("settings", 'the merged settings, e.g. settings["user_agent"]'),
                ("fetch(url)", "fetch a URL (or a Request) as a crawl would; rebinds response "
                               "and request"),
                ("Request", "scraper.Request")]
        lines = ["scraper shell: available names"] + [f"  {k:<11} {v}" for k, v in rows]
        lines.append("  try: response.css('title::text').get(), response.xpath('//a/@href')"
                     ".getall(), response.links()")
        return "\n".join(lines)


def _plain_console(namespace: dict[str, Any], banner: str) -> None:
    import code

    try:
        import readline
        import rlcompleter

        readline.set_completer(rlcompleter.Completer(namespace).complete)
        readline.parse_and_bind("tab: complete")
    except ImportError:  # pragma: no cover - not every Python has readline
        pass
    code.interact(banner=banner, local=namespace, exitmsg="")


def _file_of(target: str) -> Path | None:
    """The file ``target`` names, None when it is a URL to fetch; ConfigError for
    anything else (another scheme, a missing file)."""
    lowered = target.lower()
    if lowered.startswith(("http://", "https://")):
        return None
    if lowered.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        path = Path(unquote(urlsplit(target).path))
    elif "://" in target:
        raise ConfigError(f"shell {target}: only http(s) URLs and files can be opened")
    else:
        path = Path(target)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError(f"shell {target}: not a file")
    raise ConfigError(f"shell {target}: no such file (and not an http(s) URL: a URL starts "
                      "with http:// or https://)")


def _file_response(target: str, path: Path) -> Response:
    """A file read as a 200 response at its file:// URL (its request is never sent:
    Request itself only takes http(s) URLs, so the URL is set after construction)."""
    from requests.structures import CaseInsensitiveDict

    from ..http import Request
    from ..response import Response

    try:
        content = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"shell {target}: cannot be read ({e.strerror or e})") from None
    url = path.resolve().as_uri()
    request = Request("http://localhost/")
    request.url = url
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    ctype = mimetypes.guess_type(path.name)[0]
    if ctype is not None:
        headers["Content-Type"] = ctype
    return Response(url, 200, headers, content, request)
