"""The dashboard: HTML shells for its pages (overview, event, pivots, alerts, releases, groups), assets, sources."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from faultlens import __version__
from faultlens.api.deps import Reader, ServicesDep, WindowDep
from faultlens.api.pages import StaticFile, file_response, page_headers
from faultlens.errors import NotFound
from faultlens.triage import raw

router = APIRouter(include_in_schema=False)

_HERE = Path(__file__).resolve().parent
_STATIC = _HERE / "static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Only flat, plainly named files: the name never reaches the file system unless it matches.
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.(?:js|css|svg)$")
_VERSION = re.compile(r"^[0-9a-f]{12}$")
IMMUTABLE = "public, max-age=31536000, immutable"


# Every event string is untrusted, so pages run only our own files: no inline script or style, no
# plugins, no framing, and fetches go back to this origin only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = page_headers(CONTENT_SECURITY_POLICY)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,  # every template is HTML; data never reaches them unescaped
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


_static_cache: dict[str, tuple[float, StaticFile]] = {}


def _static_file(name: str) -> StaticFile | None:
    if not _STATIC_NAME.match(name):
        return None
    path = _STATIC / name
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    cached = _static_cache.get(name)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    item = StaticFile(path.read_bytes(), _TYPES[path.suffix])
    _static_cache[name] = (mtime, item)
    return item


def _asset_version() -> str:
    """A short hash over the static files, so a new release never runs against a cached old module graph."""
    digest = hashlib.sha256()
    for path in sorted(_STATIC.iterdir()):
        item = _static_file(path.name)
        if item is not None:
            digest.update(item.etag.encode())
    return digest.hexdigest()[:12]


def _page(template: str, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(version=__version__, asset_version=_asset_version(), **context)
    return HTMLResponse(html, headers=PAGE_HEADERS)


@router.get("/", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:
    return _page("dashboard.html", page="dashboard", event_id="", modules=["lib", "charts", "dashboard"])


@router.get("/events/{event_id:path}", response_class=HTMLResponse)
def event_page(event_id: str) -> HTMLResponse:
    # The shell only: the page fetches the event itself, so a missing id and a missing key are
    # reported by the API the same way as everywhere else.
    return _page("event.html", page="event", event_id=event_id, modules=["lib", "waterfall", "event"])


# The pivot pages: shells like the event page's; each fetches /api/v1/<kind>s/{id} and draws its waterfall.
def _pivot_page(kind: str, value: str) -> HTMLResponse:
    return _page(
        "pivot.html", page="pivot", event_id="", pivot=kind, pivot_id=value, modules=["lib", "waterfall", "pivot"]
    )


@router.get("/traces/{trace_id:path}", response_class=HTMLResponse)
def trace_page(trace_id: str) -> HTMLResponse:
    return _pivot_page("trace", trace_id)


@router.get("/correlations/{correlation_id:path}", response_class=HTMLResponse)
def correlation_page(correlation_id: str) -> HTMLResponse:
    return _pivot_page("correlation", correlation_id)


@router.get("/requests/{request_id:path}", response_class=HTMLResponse)
def request_page(request_id: str) -> HTMLResponse:
    return _pivot_page("request", request_id)


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page() -> HTMLResponse:
    # A shell too: the page reads /api/v1/alerting/* with the key the dashboard keeps, and ?alert=<id> (the link
    # in every notification) is read by the page itself.
    return _page("alerts.html", page="alerts", event_id="", modules=["lib", "alerts"])


@router.get("/releases", response_class=HTMLResponse)
def releases_page() -> HTMLResponse:
    # A shell: the page reads /api/v1/releases and /api/v1/releases/timeline itself; ?release=<name> (and
    # &environment=) selects one, so a link to a release's timeline can be shared.
    return _page("releases.html", page="releases", event_id="", modules=["lib", "releases"])


@router.get("/groups", response_class=HTMLResponse)
def groups_page() -> HTMLResponse:
    # A shell: the page reads /api/v1/groups itself; its filters, sort and page live in the query string.
    return _page("groups.html", page="groups", event_id="", modules=["lib", "groups"])


@router.get("/groups/{group_id}", response_class=HTMLResponse)
def group_page(group_id: str) -> HTMLResponse:
    # A shell like the event page's: the page fetches /api/v1/groups/{id} itself (the id of a template merged
    # elsewhere leads on to its group), so a missing id and a missing key are reported by the API.
    return _page(
        "group.html", page="group", event_id="", group_id=group_id, modules=["lib", "charts", "groups", "group"]
    )


def _static_response(name: str, request: Request, cache_control: str) -> Response:
    # Served on the event loop (async routes, files held in memory): a first visit asks for several at
    # once and a thread-pool hop each would only queue them behind the API calls.
    item = _static_file(name)
    if item is None:
        raise NotFound(f"no static file {name!r}", details={"name": name})
    return file_response(item, request, cache_control)


@router.get("/static/{version}/{name}")
async def versioned_static(version: str, name: str, request: Request) -> Response:
    # Pages link /static/<hash of all files>/app.js, and the modules import each other relatively, so the
    # whole graph sits under one versioned path that browsers may keep forever. An old version (a page
    # cached across an upgrade) gets today's file, revalidated instead of kept.
    if not _VERSION.match(version):
        raise NotFound(f"no static file {name!r}", details={"name": name})
    fresh = version == _asset_version()
    return _static_response(name, request, IMMUTABLE if fresh else "no-cache")


@router.get("/static/{name}")
async def static(name: str, request: Request) -> Response:
    return _static_response(name, request, "no-cache")


@router.get("/ui/sources")
def sources(principal: Reader, services: ServicesDep, window: WindowDep) -> dict[str, Any]:
    """Sources with events in the window, busiest first: the dashboard's source filter choices."""
    with services.engine.connect() as conn:
        rows = raw.aggregate(conn, tenant=principal.tenant, start=window.start_ms, end=window.end_ms, by=("source",))
    items = [{"source": key[0], "count": n} for key, (n, _attempts) in rows.items()]
    items.sort(key=lambda item: (-item["count"], item["source"]))
    return {"window": window.label, "items": items}
