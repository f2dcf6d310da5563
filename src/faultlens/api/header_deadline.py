"""A deadline for a request's headers: uvicorn's HTTP/1.1 protocol, closing a connection whose headers stall."""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("faultlens.server")


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol plus a header deadline: from the moment a connection opens (or the first byte of a
    further request on it arrives), the request line and headers must be complete within `header_timeout_s`, or
    the connection is closed. uvicorn itself waits for headers forever, so one client could hold file descriptors
    open by sending a byte now and then. The body has its own deadline (api/body_deadline.py)."""

    header_timeout_s = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # a (further) request has begun: its headers are not complete yet
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info(
                "closed a connection from %s: no complete request headers within %gs",
                self._peer(),
                self.header_timeout_s,
            )
            self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "-"


def protocol(header_timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class uvicorn.run(http=...) takes, with this header deadline."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout_s": header_timeout_s})
