"""``irm serve``: the crisis cell's live board, a read-only Starlette application.

One background task watches the journal's files (a ``stat`` of the database and its WAL, no query) and
the live runs' feeds every ``POLL`` seconds, and rebuilds the snapshot (``state.snapshot``) only when one
changed, or every ``REFRESH`` seconds for the detection sources; a snapshot that differs from the last is
pushed to every browser at once by server-sent events (each browser has a one-slot mailbox: a slow one
gets the newest snapshot, never a backlog). So the journal is read once per change whatever the number of
browsers, and always read-only (SQLite's WAL lets a reader and irm's writes go on together: a reader
never holds a lock a stage waits on).

The page (``static/board.js``) builds every element with ``textContent``: no name from the inventory, the
journal or an alert is ever parsed as markup; the server's template escapes too (Jinja2 autoescape), and
the Content-Security-Policy allows only the board's own script and style. Only GET (and HEAD) routes
exist: there is no endpoint that writes. Access control (token, TLS) is the CLI's (``cli/serve.py``) and
this module's middleware.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import jinja2
import markupsafe
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.board.feed import Tail
from orchestrator.board.state import snapshot
from orchestrator.core.inventory import Inventory
from orchestrator.preparation import archmap

HERE = Path(__file__).resolve().parent
POLL = 0.25  # seconds between two looks at the journal's and the feeds' files
REFRESH = 5.0  # seconds between two snapshots when nothing changed (the detection sources)
COOKIE = "irm_board"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'"


class Hub:
    """The one watcher of the journal and the feeds, and the browsers it pushes snapshots to."""

    def __init__(self, inv: Inventory, journal: Path, incident: int | None, secrets: list[str]) -> None:
        self.inv, self.journal, self.incident, self.secrets = inv, journal, incident, secrets
        self.tail = Tail(journal)
        self.current = b"{}"
        self.version = 0
        self.builds = 0  # snapshots built (the bench compares them with the browsers served)
        self.mailboxes: set[asyncio.Queue[bytes]] = set()
        self._seen: tuple[Any, ...] = ()
        self.error = ""

    def _files(self) -> tuple[Any, ...]:
        out: list[tuple[int, int, int] | None] = []
        for path in (self.journal, self.journal.with_name(self.journal.name + "-wal")):
            try:
                st = os.stat(path)
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def build(self) -> bytes:
        """A new snapshot (in a worker thread: it reads SQLite and the detection logs)."""
        self.builds += 1
        try:
            data = snapshot(self.inv, self.journal, self.tail, self.incident)
            self.error = ""
        except Exception as exc:  # the board stays up and says why it cannot read (a damaged journal, ...)
            data = {"error": f"{type(exc).__name__}: {exc}"[:500], "journal": str(self.journal)}
            self.error = data["error"]
        return json.dumps(data, default=str).encode()

    def publish(self, body: bytes) -> None:
        if _without_time(body) == _without_time(self.current):
            return
        self.current, self.version = body, self.version + 1
        for box in list(self.mailboxes):
            if box.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    box.get_nowait()
            box.put_nowait(body)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last = 0.0
        while True:
            files = self._files()
            now = loop.time()
            if files != self._seen or self.tail.changed() or now - last >= REFRESH:
                self._seen, last = files, now
                self.publish(await anyio.to_thread.run_sync(self.build))
            await asyncio.sleep(POLL)


def _without_time(body: bytes) -> bytes:
    """A snapshot without its own build time: two snapshots saying the same thing are one."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        data.pop("generated_at", None)
    return json.dumps(data, sort_keys=True).encode()


class Guard:
    """Every request carries the board's token (a bearer header or the cookie set by ``/?token=``) when
    one is configured, and every response carries the security headers."""

    def __init__(self, app: ASGIApp, token: str | None, secure: bool) -> None:
        self.app, self.token, self.secure = app, token, secure

    def _allowed(self, request: Request) -> bool:
        if self.token is None:
            return True
        given = request.cookies.get(COOKIE) or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response: Response | None = None
        if self.token is not None and request.url.path == "/" and "token" in request.query_params:
            given = request.query_params["token"]
            if hmac.compare_digest(given.encode(), self.token.encode()):
                response = RedirectResponse("/", status_code=303)  # the token leaves the address bar
                response.set_cookie(COOKIE, self.token, httponly=True, secure=self.secure, samesite="strict")
            else:
                response = Response("wrong token\n", status_code=401, media_type="text/plain")
        elif not self._allowed(request):
            response = Response("the board needs its token: open /?token=... once, or send Authorization: Bearer\n",
                                status_code=401, media_type="text/plain")
        if response is not None:
            await response(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                names = {k.lower() for k, _ in headers}
                for k, v in ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                             (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store"),
                             (b"content-security-policy", CSP.encode())):
                    if k not in names:
                        headers.append((k, v))
                if self.secure:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
            await send(message)
        await self.app(scope, receive, with_headers)


def create_app(inv: Inventory, journal: Path, incident: int | None = None, token: str | None = None,
               secure: bool = False, hosts: list[str] | None = None, secrets: list[str] | None = None) -> Starlette:
    """The board for this inventory and journal (``hosts``: the Host header values accepted)."""
    hub = Hub(inv, journal, incident, list(secrets or []))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    page = env.get_template("board.html.j2")
    drawing = archmap.svg(inv, scopes=True)  # escaped by archmap; marked safe once, here

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page.render(title=f"irm board: {journal.name}", drawing=markupsafe.Markup(drawing)))

    async def state(request: Request) -> Response:
        return Response(hub.current, media_type="application/json")

    async def events(request: Request) -> EventSourceResponse:
        box: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        hub.mailboxes.add(box)

        async def stream() -> AsyncIterator[dict[str, str]]:
            try:
                yield {"event": "snapshot", "data": hub.current.decode()}
                while True:
                    body = await box.get()
                    yield {"event": "snapshot", "data": body.decode()}
            finally:
                hub.mailboxes.discard(box)
        return EventSourceResponse(stream(), ping=15)

    async def report(request: Request) -> Response:
        def build() -> str | None:
            from orchestrator.aftermath import report as rep
            from orchestrator.core.journal import Journal

            if not journal.exists():
                return None
            j = Journal.reader(journal)
            try:
                if not j.incidents.all():
                    return None
                return rep.html_page(rep.Report(inv, j, incident, secrets=hub.secrets).data())
            finally:
                j.close()
        text = await anyio.to_thread.run_sync(build)
        if text is None:
            return Response("no incident yet: no report\n", status_code=404, media_type="text/plain")
        return HTMLResponse(text, headers={"content-security-policy": REPORT_CSP})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"version": hub.version, "browsers": len(hub.mailboxes), "builds": hub.builds,
                             "error": hub.error})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub.publish(await anyio.to_thread.run_sync(hub.build))
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    routes = [Route("/", index, methods=["GET"]), Route("/state", state, methods=["GET"]),
              Route("/events", events, methods=["GET"]), Route("/report", report, methods=["GET"]),
              Route("/health", health, methods=["GET"]),
              Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static")]
    middleware = [Middleware(Guard, token=token, secure=secure)]
    if hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=hosts))
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.hub = hub
    return app
