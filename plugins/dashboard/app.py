"""The dashboard's web app (Starlette): pages, their JSON, the token, the controls.

Every request needs the token printed with the URL (the ``token`` query parameter; the page
it opens keeps it in a cookie for this port, so links work), reads included: a machine is
shared. A control also needs ``allow_control`` and the token in the ``X-Research-Token``
header, which only the dashboard's own pages send, so another site cannot post one through
the cookie. Reads go through a read-only SQLite connection opened per request (the store
can never be modified, locked or corrupted through it); a control opens its own writable
connection for the one event it queues, as the command line does.

Pages are small HTML shells; the script (``static/dashboard.js``) fetches their JSON and
draws every figure with plotly.js, served from the installed ``plotly`` package.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import sqlite3
from collections.abc import Callable
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from research_plugins.dashboard import views
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from research import __version__
from research.errors import ResearchError
from research.plugins import Plugins
from research.study.store import Store, StoreError

log = logging.getLogger(__name__)
TOKEN_HEADER = "X-Research-Token"
OWN_FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
PAGES = ("studies", "study", "trial", "compare")
INT64_MAX = 2 ** 63 - 1
"""The largest integer SQLite stores: larger query numbers are a bad request, not a bug."""


def plotly_js() -> Path:
    """The plotly.js bundle the ``plotly`` package installs (no CDN: works offline)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


class Dashboard:
    """The state one app serves from: the store's path, the token, the plugins, whether
    controls are allowed, and the views remembered between requests."""

    def __init__(self, store: Path, plugins: Plugins, *, token: str | None = None, allow_control: bool = False):
        self.store = Path(store)
        self.plugins = plugins
        self.token = token or secrets.token_urlsafe(24)
        self.allow_control = allow_control
        self.views = views.Views()

    def cookie(self, request: Request) -> str:
        """The token's cookie, one per port (cookies ignore ports: two dashboards must not mix)."""
        return f"research_token_{request.url.port or 80}"

    def allowed(self, request: Request) -> bool:
        given = (request.query_params.get("token") or request.headers.get(TOKEN_HEADER)
                 or request.cookies.get(self.cookie(request)) or "")
        return secrets.compare_digest(given.encode(), self.token.encode())

    def prepare(self, studies: int = views.CURVES_REMEMBERED) -> None:
        """Make the views of the newest ``studies`` studies ahead of the first visit (run in a
        thread at start: a study of 1,000 trials x 100 epochs then opens at once). A store
        that cannot be read yet is left to the pages to report."""
        try:
            with Store(self.store, read_only=True) as store:
                for study in reversed(store.studies()[-studies:]):
                    views.overview(store, study, self.plugins, self.views, self.allow_control)
                    views.figures(store, study, self.plugins, self.views)
        except (ResearchError, sqlite3.Error):
            pass

    def read(self, make: Callable[[Store], Any]) -> Any:
        """``make(store)`` on a read-only connection of its own (requests run in threads)."""
        with Store(self.store, read_only=True) as store:
            return make(store)


def _refused(request: Request) -> Response:
    text = "this dashboard needs its token: open the URL that `research dashboard` printed (it ends in ?token=...)"
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": text}, status_code=403)
    return HTMLResponse(_shell("refused", "research dashboard", {}, error=text, token=""), status_code=403)


def _shell(page: str, title: str, data: dict[str, Any], *, token: str, error: str | None = None) -> str:
    """A page: its title, the data its script needs, and a one-line error when there is one."""
    attributes = " ".join(f'data-{escape(k)}="{escape(str(v))}"' for k, v in data.items())
    problem = f'<p class="error" id="error">{escape(error)}</p>' if error else '<p class="error" id="error" hidden></p>'
    scripts = "" if error else ('<script src="/static/plotly.min.js"></script>\n'
                                '<script src="/static/dashboard.js"></script>')
    # A store that cannot be read yet (no study has run): the page looks again every 5 s.
    again = '<meta http-equiv="refresh" content="5">\n' if error and page != "refused" else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="research-token" content="{escape(token)}">
{again}<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/dashboard.css">
</head>
<body data-page="{escape(page)}" {attributes}>
<header><a href="/">research</a> <span class="version">{escape(__version__)}</span>
<span id="live" class="live"></span></header>
<main>
{problem}
<div id="content"></div>
</main>
{scripts}
</body>
</html>
"""


def make_app(dashboard: Dashboard) -> Starlette:
    """The Starlette app serving ``dashboard``."""

    def guarded(endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """``endpoint`` behind the token; a page opened with ``?token=`` keeps it in a cookie."""

        def checked(request: Request) -> Response:
            if not dashboard.allowed(request):
                return _refused(request)
            response = endpoint(request)
            if request.query_params.get("token"):
                response.set_cookie(dashboard.cookie(request), dashboard.token, httponly=True, samesite="strict")
            return response

        return checked

    def api(make: Callable[[Request, Store], Any]) -> Callable[[Request], Response]:
        """A JSON endpoint: ``make``'s answer, or ``{"error": one line}`` (404 for an unknown
        study or trial, 400 for a bad request, 503 when the store cannot be read, 500 for a
        bug, whose traceback goes to the server's log, not to the page)."""

        def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(dashboard.read(lambda store: make(request, store)))
            except ResearchError as err:
                problem = views.store_problem(dashboard.store)
                if problem is not None:
                    return JSONResponse({"error": problem}, status_code=503)
                return JSONResponse({"error": str(err)}, status_code=404 if isinstance(err, StoreError) else 400)
            except sqlite3.Error as err:  # a store that changed under the reader in a way it cannot read
                return JSONResponse({"error": f"cannot read {dashboard.store}: {err}"}, status_code=503)
            except Exception as err:  # a bug: one line for the page, the traceback for the log
                log.exception("dashboard: %s failed", request.url.path)
                return JSONResponse({"error": f"{type(err).__name__}: {err} (a bug; the dashboard's terminal shows "
                                              "the traceback)"}, status_code=500)

        return guarded(endpoint)

    def page(kind: str) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            query = request.query_params
            data = {key: query[key] for key in ("name", "number") if key in query}
            if kind == "compare":
                data["names"] = json.dumps(query.getlist("study"))
            title = {"studies": "studies", "study": query.get("name", ""), "compare": "compare studies",
                     "trial": f"{query.get('name', '')} trial {query.get('number', '')}"}[kind]
            problem = views.store_problem(dashboard.store)
            html = _shell(kind, f"{title} - research dashboard", data, token=dashboard.token, error=problem)
            return HTMLResponse(html, status_code=503 if problem else 200)

        return endpoint

    def number(request: Request) -> int:
        text = request.query_params.get("number", "")
        if not text.isdigit() or int(text) > INT64_MAX:
            raise ResearchError(f"trial number must be a whole number up to {INT64_MAX}, got '{text}'")
        return int(text)

    def whole(request: Request, key: str) -> int:
        text = request.query_params.get(key, "0")
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not 0 <= value <= INT64_MAX:  # SQLite's integers are 64-bit
            raise ResearchError(f"{key} must be a whole number from 0 to {INT64_MAX}, got '{text}'")
        return value

    def since(request: Request) -> float:
        text = request.query_params.get("since", "0")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ResearchError(f"since must be a time in seconds, got '{text}'")
        return value

    def study(request: Request, store: Store) -> Any:
        name = request.query_params.get("name")
        if not name:
            raise ResearchError("name a study: ?name=STUDY")
        return store.study(name)

    def static(request: Request) -> Response:
        name = request.path_params["file"]
        if name == "plotly.min.js":
            return FileResponse(plotly_js(), media_type="text/javascript",
                                headers={"Cache-Control": "private, max-age=86400"})
        if name not in OWN_FILES:
            return JSONResponse({"error": f"no file {name}"}, status_code=404)
        return FileResponse(Path(__file__).with_name("static") / name, media_type=OWN_FILES[name])

    def control(request: Request) -> Response:
        """Apply one of the study's controls (POST, JSON ``{"values": {...}}``), in a thread."""
        if not dashboard.allow_control:
            return JSONResponse({"error": "controls are off: start the dashboard with --allow-control"},
                                status_code=403)
        if not secrets.compare_digest(request.headers.get(TOKEN_HEADER, "").encode(), dashboard.token.encode()):
            return JSONResponse({"error": f"a control needs the {TOKEN_HEADER} header (the dashboard's pages send it)"},
                                status_code=403)
        name, which = request.query_params.get("name", ""), request.path_params["control"]
        try:
            values = request.state.body.get("values") or {}
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise ResearchError('send {"values": {"NAME": "TEXT", ...}}')
            with Store(dashboard.store, create=False) as store:
                record = study(request, store)
                found = {c.name: c for c in dashboard.plugins.controls(record)}
                if which not in found:
                    offered = ", ".join(found) or "none"
                    return JSONResponse({"error": f"study '{name}' has no control '{which}'; it offers: {offered}"},
                                        status_code=404)
                fields = [field.name for field in found[which].fields]
                unknown = sorted(set(values) - set(fields))
                if unknown:  # its apply would read its own fields, empty, and say "cannot read ''"
                    takes = f"the fields {', '.join(fields)}" if fields else "no fields"
                    raise ResearchError(f"control '{which}' takes {takes}; got {', '.join(unknown)}")
                said = found[which].apply(store, record, values, dashboard.plugins)
        except StoreError as err:  # no such study (or store): as the pages answer it
            return JSONResponse({"error": str(err)}, status_code=404)
        except ResearchError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        return JSONResponse({"message": said})

    async def control_endpoint(request: Request) -> Response:
        if request.method != "POST":  # as every other answer of the API: JSON, not Starlette's plain text
            return JSONResponse({"error": f"a control is sent with POST, not {request.method}"}, status_code=405,
                                headers={"Allow": "POST"})
        if not dashboard.allowed(request):
            return _refused(request)
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}  # a control without fields may send no body
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": 'send JSON: {"values": {"NAME": "TEXT", ...}}'}, status_code=400)
        request.state.body = body
        return await run_in_threadpool(control, request)

    routes = [
        Route("/", guarded(page("studies"))),
        Route("/study", guarded(page("study"))),
        Route("/trial", guarded(page("trial"))),
        Route("/compare", guarded(page("compare"))),
        Route("/static/{file}", guarded(static)),
        Route("/api/studies", api(lambda request, store: {"store": str(dashboard.store),
                                                          "studies": views.studies(store)})),
        Route("/api/study", api(lambda request, store: views.overview(
            store, study(request, store), dashboard.plugins, dashboard.views, dashboard.allow_control))),
        Route("/api/figures", api(lambda request, store: views.figures(
            store, study(request, store), dashboard.plugins, dashboard.views))),
        Route("/api/updates", api(lambda request, store: views.updates(
            store, study(request, store), dashboard.plugins, whole(request, "after"), whole(request, "events_after"),
            since(request)))),
        Route("/api/trial", api(lambda request, store: views.trial(
            store, study(request, store), number(request), dashboard.plugins))),
        Route("/api/compare", api(lambda request, store: {"studies": views.compare(
            store, request.query_params.getlist("study"), dashboard.views)})),
        Route("/api/control/{control}", control_endpoint, methods=["POST", "GET"]),
    ]
    return Starlette(routes=routes)
