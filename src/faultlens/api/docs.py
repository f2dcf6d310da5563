"""The API's own description: the OpenAPI 3.0 document and the self-hosted Swagger UI at /docs, both offline.

FastAPI's defaults load Swagger UI and ReDoc from a CDN (blank pages without internet) and describe
validation errors as 422 although faultlens answers 400 with its one error body. Here the document is
generated once, then post-processed: 400 and the other common statuses with the error body, the window
parameters' formats, and a downgrade to OpenAPI 3.0.3 that the bundled Swagger UI (4.x) renders. The
pages and the document follow the API's authentication: open in open mode, a read-scoped key once keys exist.
"""

from __future__ import annotations

import copy
import html
import inspect
from pathlib import Path
from typing import Any

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import APIRouter, FastAPI, Request, Response, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute

from faultlens.api import schemas
from faultlens.api.deps import Reader, get_principal
from faultlens.api.pages import StaticFile, file_response, page_headers
from faultlens.errors import NotFound

OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
ASSETS = "/docs-assets"
OPENAPI_VERSION = "3.0.3"

_BUNDLE = Path(swagger_ui_bundle.swagger_ui_path)
_ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# Started from a file of our own rather than an inline script, so the page runs under a CSP without 'unsafe-inline'.
_INIT_JS = b"""window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""
# Swagger UI sets style attributes and draws icons from data: URLs; nothing leaves this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = page_headers(CONTENT_SECURITY_POLICY)

DESCRIPTION = """Failure triage for requests, tasks and jobs.

**Authentication.** While no API key exists (open mode, loopback only) every route is open, these pages
included. Once keys exist, send `Authorization: Bearer <key>` (or `X-API-Key: <key>`; "Authorize" here
sends it with "Try it out"); the scope each route needs is in its description. `/docs` and `/openapi.json`
need a read-scoped key too: a browser that cannot send the header gets the 401 error body, so fetch the
document with a client that can.

**Errors.** Every failure answers `{"error": {"code", "message", "details"}, "request_id", "correlation_id",
"trace_id"}`; invalid parameters answer 400 (never 422).
"""

# Statuses any operation may answer with the error body: guards, authentication, validation, a database down.
_COMMON = (400, 401, 403, 503)
# ...and those reading a request body.
_WITH_BODY = (408, 413, 415)
# An empty value means the parameter is absent (its default), so the schemas admit "" besides the real values.
_DATE_TIME_OR_EMPTY = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}]}
_WINDOW_PARAMS: dict[str, dict[str, Any]] = {
    "window": {
        "schema": {"type": "string", "enum": ["", *schemas.WINDOW_LABELS]},
        "description": "A window ending now (the route's default when absent or empty); not with since/until",
    },
    "since": {
        "schema": _DATE_TIME_OR_EMPTY,
        "description": "RFC 3339 start, inclusive, with an offset (Z or +hh:mm); default: 24h before until",
    },
    "until": {
        "schema": _DATE_TIME_OR_EMPTY,
        "description": "RFC 3339 end, exclusive, with an offset (Z or +hh:mm); default: now",
    },
    "cursor": {"description": "Opaque: the `next_cursor` of the previous page, passed back unchanged"},
}


# The codebase-embedder contract answers its own failures in its {Code, Message, Success, Data} envelope; what
# the server's guards refuse before the route runs still has the one error body.
ENVELOPE_PREFIX = "/codebase-embedder/"
ENVELOPE = {
    "type": "object",
    "required": ["Code", "Message", "Success", "Data"],
    "properties": {
        "Code": {"type": "integer"},
        "Message": {"type": "string"},
        "Success": {"type": "boolean"},
        "Data": {"nullable": True},
    },
}


def _error_response(status: int, *, envelope: bool = False) -> dict[str, Any]:
    body = {"$ref": "#/components/schemas/ErrorBody"}
    schema = {"anyOf": [{"$ref": "#/components/schemas/CompatEnvelope"}, body]} if envelope else body
    return {
        "description": schemas.STATUS_TEXT.get(status, "Error"),
        "content": {"application/json": {"schema": schema}},
    }


def _fix_operation(path: str, method: str, op: dict[str, Any]) -> None:
    envelope = path.startswith(ENVELOPE_PREFIX)
    responses: dict[str, Any] = op.setdefault("responses", {})
    responses.pop("422", None)
    statuses = list(_COMMON)
    if method in ("post", "put", "patch"):
        statuses += _WITH_BODY
    for status in statuses:
        responses.setdefault(str(status), _error_response(status, envelope=envelope))
    for code, response in responses.items():
        # A route that names an error status with a description only still answers the one error body.
        if code[:1] in "45" and "content" not in response:
            response["content"] = _error_response(int(code), envelope=envelope)["content"]
    for param in op.get("parameters", []):
        fix = _WINDOW_PARAMS.get(param.get("name", ""))
        if fix is not None and param.get("in") == "query" and param.get("schema", {}).get("type") != "integer":
            if "schema" in fix:
                param["schema"] = copy.deepcopy(fix["schema"])
            param["description"] = fix["description"]


def _null_free(options: list[Any]) -> tuple[list[Any], bool]:
    kept = [o for o in options if o != {"type": "null"}]
    return kept, len(kept) != len(options)


# Keys whose value maps names to objects: a property called "const" or "type" is a name there, not a keyword.
_NAME_MAPS = frozenset(("properties", "schemas", "paths", "responses", "content", "securitySchemes", "headers"))
# Keys whose value is data (an example body, a default), never a schema to rewrite.
_VALUES = frozenset(("example", "default", "enum"))


def to_openapi_30(node: Any) -> Any:
    """Rewrite the JSON Schema 2020-12 constructs pydantic emits into their OpenAPI 3.0 spelling."""
    if isinstance(node, list):
        return [to_openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _NAME_MAPS & out.keys():
        if isinstance(out[key], dict):
            out[key] = {name: to_openapi_30(value) for name, value in out[key].items()}
    for key in ("anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            kept, nullable = _null_free(out[key])
            if nullable:
                if len(kept) == 1:
                    single = kept[0]
                    del out[key]
                    if "$ref" in single:
                        out["allOf"] = [single]
                    else:
                        out.update(single)
                else:
                    out[key] = kept
                out["nullable"] = True
    out = {key: value if key in _NAME_MAPS or key in _VALUES else to_openapi_30(value) for key, value in out.items()}
    if out.get("type") == "null":
        del out["type"]
        out["nullable"] = True
    if isinstance(out.get("type"), list):
        types = [t for t in out["type"] if t != "null"]
        if len(types) != len(out["type"]):
            out["nullable"] = True
        out["type"] = types[0] if len(types) == 1 else out["type"]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list) and "example" not in out and "in" not in out:
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[inclusive] = out[bound]
            out[bound] = True
    return out


SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
    "headerKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def _needed_scopes(dependant: Dependant) -> tuple[bool, list[str]]:
    """Whether a route authenticates the caller, and the scopes its dependencies require."""
    authenticates, scopes = False, []
    for dep in dependant.dependencies:
        call = dep.call
        if call is get_principal:
            authenticates = True
        elif callable(call) and getattr(call, "__closure__", None):
            scope = inspect.getclosurevars(call).nonlocals.get("scope")
            if isinstance(scope, str):
                scopes.append(scope)
        if call is not None and getattr(call, "__name__", "") == "require_operator":
            scopes.append("operator")
        sub_auth, sub_scopes = _needed_scopes(dep)
        authenticates = authenticates or sub_auth
        scopes += sub_scopes
    return authenticates, list(dict.fromkeys(scopes))


def _document_auth(app: FastAPI, doc: dict[str, Any]) -> None:
    doc["components"]["securitySchemes"] = SECURITY_SCHEMES
    # Routes of included routers are reached through their contexts (the path with its prefix), as get_openapi does.
    for context in routing.iter_route_contexts(app.routes):
        route: Any = context
        if not isinstance(context.original_route, APIRoute) or not route.include_in_schema:
            continue
        authenticates, scopes = _needed_scopes(route.dependant)
        item = doc["paths"].get(route.path_format, {})
        for method in route.methods or ():
            op = item.get(method.lower())
            if op is None or not authenticates:
                continue
            op["security"] = [{"bearerKey": []}, {"headerKey": []}]
            need = " or ".join(f"`{s}`" for s in scopes)
            what = f"an API key with the {need} scope" if need else "an API key (its scope depends on the request)"
            note = f"Needs {what} once keys exist (open mode: none)."
            op["description"] = f"{op['description']}\n\n{note}" if op.get("description") else note


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, generated on first use and then kept."""
    if app.openapi_schema is not None:
        cached: dict[str, Any] = app.openapi_schema
        return cached
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=DESCRIPTION,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["EventIn"] = copy.deepcopy(schemas.EVENT_IN)
    components["ErrorBody"] = schemas.ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in components["ErrorBody"].pop("$defs", {}).items():
        components.setdefault(name, sub)
    _document_auth(app, doc)
    components["CompatEnvelope"] = copy.deepcopy(ENVELOPE)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if isinstance(op, dict) and method in ("get", "post", "put", "patch", "delete"):
                _fix_operation(path, method, op)
    doc = dict(to_openapi_30(doc))
    doc["openapi"] = OPENAPI_VERSION
    app.openapi_schema = doc
    return doc


router = APIRouter(include_in_schema=False)


@router.get(OPENAPI_URL)
def openapi_document(request: Request, principal: Reader) -> JSONResponse:
    return JSONResponse(request.app.openapi())


def docs_page(openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>faultlens API</title>
<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(openapi_url)}"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{ASSETS}/faultlens-docs.js"></script>
</body>
</html>
"""


@router.get(DOCS_URL, response_class=HTMLResponse)
def swagger_ui(principal: Reader) -> HTMLResponse:
    return HTMLResponse(docs_page(OPENAPI_URL), headers=PAGE_HEADERS)


_assets: dict[str, StaticFile] = {}


def _asset(name: str) -> StaticFile | None:
    found = _assets.get(name)
    if found is None:
        if name == "faultlens-docs.js":
            found = StaticFile(_INIT_JS, "text/javascript; charset=utf-8")
        elif name in _ASSET_TYPES:
            found = StaticFile((_BUNDLE / name).read_bytes(), _ASSET_TYPES[name])
        else:
            return None
        _assets[name] = found
    return found


@router.get(ASSETS + "/{name}")
async def docs_asset(name: str, request: Request) -> Response:
    # Public files of the Swagger UI release (no data); served from memory, only the names listed above.
    item = _asset(name)
    if item is None:
        raise NotFound(f"no docs asset {name!r}", details={"name": name})
    return file_response(item, request, "public, max-age=86400")


def install(app: FastAPI) -> None:
    """Serve /openapi.json and /docs (create the app with openapi_url, docs_url and redoc_url set to None)."""
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    app.include_router(router)
