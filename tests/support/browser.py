"""Open a local HTML file in headless Debian chromium: the DOM as rendered, a screenshot, and
the URLs the page asked for (from chromium's net log), with nothing able to leave the machine.

* :func:`find_chromium` -> the binary, or ``None`` (``$COLM_CHROMIUM`` overrides the search).
* :func:`render` -> :class:`Rendered` (``dom``, ``screenshot``, ``page_requests``, timings).
* :func:`external_references` -> ``src``/``href``/``url(...)`` values in markup that point
  outside the page (anything but ``#fragment`` and ``data:``).
* :func:`visible_text` -> text a person sees without clicking (closed ``<details>`` hide all
  but their ``<summary>``); :func:`details_text` -> text inside ``<details>`` elements.

Every chromium run has a timeout; on expiry its whole process group is killed. Host names
resolve to nothing (``--host-resolver-rules``), so even a request the page made could not
reach the network; the net log shows whether it tried.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["Rendered", "details_text", "external_references", "find_chromium",
           "page_requests", "render", "visible_text"]

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
    "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
)


def find_chromium() -> str | None:
    """Path of a chromium binary: ``$COLM_CHROMIUM``, else the usual Debian places."""
    env = os.environ.get("COLM_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for path in CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


@dataclass
class Rendered:
    dom: str
    """``--dump-dom`` output: the DOM after load, serialised."""
    screenshot: Path
    page_requests: list[str]
    """URLs the page itself asked the network stack for (chromium's own background requests
    excluded)."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each chromium run (``dom``, ``screenshot``)."""
    stderr: str = ""


def _run(args: list[str], timeout_s: float) -> tuple[str, str, float]:
    """Run chromium in its own process group; kill the group on timeout."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        raise RuntimeError(f"chromium timed out after {timeout_s} s: {' '.join(args)}\n"
                           f"{err[-2000:]}") from None
    finally:
        try:  # renderer and helper processes left behind by a finished browser
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {' '.join(args)}\n"
                           f"{err[-2000:]}")
    return out, err, time.perf_counter() - start


def page_requests(netlog: Path) -> list[str]:
    """URLs of requests the page started, from a ``--log-net-log`` file. Chromium's own
    requests (time sync, updates, accounts) have initiator ``not an origin``; those of a
    ``file://`` page have initiator ``null``."""
    text = netlog.read_text(encoding="utf-8", errors="replace")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # not finalised: close the event list
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    types = log["constants"]["logEventTypes"]
    start = types["URL_REQUEST_START_JOB"]
    urls = []
    for event in log.get("events", []):
        params = event.get("params") or {}
        if event.get("type") == start and "url" in params:
            if params.get("initiator", "not an origin") != "not an origin":
                urls.append(str(params["url"]))
    return list(dict.fromkeys(urls))


def render(page: Path, out_dir: Path, *, timeout_s: float = 60.0, width: int = 1280,
           height: int = 2000, chromium: str | None = None) -> Rendered:
    """Load ``page`` twice in headless chromium: once for the DOM and the net log, once for a
    ``width`` x ``height`` screenshot (``out_dir/<page stem>.png``)."""
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium not found (apt-get install -y chromium)")
    out_dir.mkdir(parents=True, exist_ok=True)
    url = page.resolve().as_uri()
    netlog = out_dir / f"{page.stem}.netlog.json"
    shot = out_dir / f"{page.stem}.png"
    dom, err, t_dom = _run([binary, *FLAGS, f"--user-data-dir={out_dir / 'profile-dom'}",
                            f"--log-net-log={netlog}", "--dump-dom", url], timeout_s)
    _, err2, t_shot = _run([binary, *FLAGS, f"--user-data-dir={out_dir / 'profile-shot'}",
                            f"--screenshot={shot}", f"--window-size={width},{height}", url],
                           timeout_s)
    return Rendered(dom=dom, screenshot=shot, page_requests=page_requests(netlog),
                    seconds={"dom": t_dom, "screenshot": t_shot}, stderr=err + err2)


_URL_ATTRS = frozenset({"src", "href", "xlink:href", "srcset", "poster", "action", "formaction",
                        "data", "background", "ping", "cite", "longdesc", "manifest"})
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]*)|@import\s+['"]([^'"]*)""", re.IGNORECASE)


class _RefParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[str] = []
        self.in_style = False

    def _css(self, text: str) -> None:
        self.refs.extend(next(g for g in m.groups() if g is not None)
                         for m in _CSS_URL.finditer(text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        for name, value in attrs:
            if name.lower() in _URL_ATTRS and value is not None:
                self.refs.append(value)
            elif name.lower() == "style" and value:
                self._css(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.in_style = False

    def handle_data(self, data: str) -> None:
        if self.in_style:
            self._css(data)


def external_references(markup: str) -> list[str]:
    """Resource references in ``markup`` (URL attributes, CSS ``url()`` and ``@import``)
    that are neither ``#fragment`` nor ``data:``. Text content is not looked at."""
    parser = _RefParser()
    parser.feed(markup)
    parser.close()
    return [v.strip() for v in parser.refs
            if not (v.strip().startswith("#") or v.strip().lower().startswith("data:"))]


class _TextParser(HTMLParser):
    _SKIP = frozenset({"style", "script", "title", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []  # (tag, closed details)
        self.visible: list[str] = []
        self.inside_details: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "meta", "link", "img", "input", "hr", "wbr"):
            return
        closed = tag == "details" and not any(k == "open" for k, _ in attrs)
        self.stack.append((tag, closed))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        tags = [t for t, _ in self.stack]
        if any(t in self._SKIP for t in tags):
            return
        if "details" in tags:
            self.inside_details.append(data)
        hidden = any(closed and not any(t == "summary" for t, _ in self.stack[i + 1:])
                     for i, (_, closed) in enumerate(self.stack))
        if not hidden:
            self.visible.append(data)


def _parse(markup: str) -> _TextParser:
    parser = _TextParser()
    parser.feed(markup)
    parser.close()
    return parser


def visible_text(markup: str) -> str:
    """Text shown without clicking anything (collapsed ``<details>`` show their summary)."""
    return " ".join(" ".join(_parse(markup).visible).split())


def details_text(markup: str) -> str:
    """Text inside ``<details>`` elements (open or not), unescaped."""
    return "".join(_parse(markup).inside_details)
