"""What the browser-facing routes (dashboard, API docs) share: page security headers, and files served from
memory with a content ETag (a matching If-None-Match answers 304 with no body)."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response


def page_headers(content_security_policy: str) -> dict[str, str]:
    """The headers of an HTML page: its CSP, no sniffing, no referrer, no framing, never cached."""
    return {
        "Content-Security-Policy": content_security_policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


class StaticFile:
    """A file's bytes, media type and strong ETag (a hash of the bytes)."""

    __slots__ = ("body", "etag", "media_type")

    def __init__(self, body: bytes, media_type: str) -> None:
        self.body = body
        self.media_type = media_type
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def file_response(item: StaticFile, request: Request, cache_control: str) -> Response:
    """The file, or 304 when the client already holds this version; both carry the ETag and `cache_control`."""
    headers = {"ETag": item.etag, "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == item.etag:
        return Response(status_code=304, headers=headers)
    return Response(item.body, media_type=item.media_type, headers=headers)
