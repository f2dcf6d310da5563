"""Reading a request body: media type and Content-Encoding checks, a size limit, incremental gzip decoding."""

from __future__ import annotations

import zlib

from fastapi import Request

from faultlens.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType

JSON_MEDIA_TYPES = ("application/json",)
# Content-Encoding values a body may carry ("x-gzip" is gzip's old name, RFC 9110 8.4.1.3).
GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
SUPPORTED_ENCODINGS = ("gzip", "identity")


def media_type_of(request: Request) -> str:
    """The request's media type, lowercase, without parameters ("" when there is no Content-Type)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _check_media_type(request: Request, accepted: tuple[str, ...]) -> None:
    media = media_type_of(request)
    if media and media not in accepted:
        raise UnsupportedMediaType(
            f"this route reads a body sent as {' or '.join(accepted)}, not {media}",
            details={"content_type": media, "accepted": list(accepted)},
        )


def _gzip_requested(request: Request) -> bool:
    """Whether the body is gzip-compressed; an encoding other than gzip or identity is refused (415)."""
    tokens = [t.strip().lower() for t in request.headers.get("content-encoding", "").split(",")]
    codings = [t for t in tokens if t and t != "identity"]
    if not codings:
        return False
    if len(codings) == 1 and codings[0] in GZIP_ENCODINGS:
        return True
    raise UnsupportedMediaType(
        f"Content-Encoding {', '.join(codings)} is not supported; send the body as {' or '.join(SUPPORTED_ENCODINGS)}",
        code="unsupported_content_encoding",
        details={"content_encoding": ", ".join(codings)[:100], "accepted": list(SUPPORTED_ENCODINGS)},
    )


class _Gunzip:
    """Incremental gzip decoding (concatenated members too) that refuses output past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.out: list[bytes] = []
        self.decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> None:
        while data:
            try:
                # At most one byte past the limit is produced: enough to know the limit is passed.
                chunk = self.decoder.decompress(data, self.limit - self.size + 1)
            except zlib.error as exc:
                raise InvalidRequest(f"the gzip body does not decompress: {exc}", code="invalid_body") from None
            self._take(chunk)
            if self.decoder.unconsumed_tail:
                data = self.decoder.unconsumed_tail
            elif self.decoder.eof and self.decoder.unused_data:
                data = self.decoder.unused_data
                self.decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            else:
                data = b""

    def _take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(
                f"the decompressed request body exceeds the limit of {self.limit} bytes",
                details={"limit_bytes": self.limit},
            )
        self.out.append(chunk)

    def result(self) -> bytes:
        if not self.decoder.eof:
            raise InvalidRequest("the gzip body is truncated", code="invalid_body")
        return b"".join(self.out)


async def read_body_limited(request: Request, limit: int, *, media_types: tuple[str, ...] = JSON_MEDIA_TYPES) -> bytes:
    """Read the body, refusing it as soon as it passes `limit` bytes (no full buffering of huge uploads).

    Its Content-Type must be one of `media_types` (415 unsupported_media_type), its Content-Encoding gzip or
    identity (415 unsupported_content_encoding). A gzip body is decompressed as it arrives and the limit
    applies to the decompressed size too (a zip bomb is 413); a corrupt one is 400 invalid_body.
    """
    _check_media_type(request, media_types)
    gunzip = _Gunzip(limit) if _gzip_requested(request) else None
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}", details={"limit_bytes": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", details={"limit_bytes": limit})
        if gunzip is not None:
            gunzip.feed(chunk)
        else:
            chunks.append(chunk)
    if gunzip is not None:
        return gunzip.result() if size else b""
    return b"".join(chunks)
