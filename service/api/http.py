"""Request heads of bounded size: uvicorn's httptools protocol answering 431 above a limit.

uvicorn's httptools protocol buffers a request's line and headers without limit (a 10 MB
``Authorization`` header was read and handed to the app; ten unfinished 20 MB heads held
245 MB). :class:`BoundedHttpToolsProtocol` counts the bytes of each request head as they
arrive and, above ``max_header_bytes``, answers ``431 Request Header Fields Too Large`` and
closes the connection without reading more. ``hprobust serve`` uses it; with plain uvicorn::

    uvicorn --factory service.main:app_from_env --http service.api.http:BoundedHttpToolsProtocol

(the limit is then ``HPROBUST_MAX_HEADER_BYTES``, default 16 KiB).
"""

from __future__ import annotations

import json
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEADER_BYTES = 16 * 1024


def _env_limit() -> int:
    try:
        return max(1024, int(os.environ.get("HPROBUST_MAX_HEADER_BYTES", DEFAULT_MAX_HEADER_BYTES)))
    except ValueError:
        return DEFAULT_MAX_HEADER_BYTES


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a limit on the size of each request head (line + headers)."""

    max_header_bytes: int = _env_limit()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # still inside a head after this chunk and already over the limit: stop reading
        if self._in_head and not self._refused and self._head_bytes > self.max_header_bytes:
            self._refuse(f"more than {self.max_header_bytes}")

    def _refuse(self, size: int | str) -> None:
        self._refused = True
        body = json.dumps(
            {
                "detail": f"request headers must be at most {self.max_header_bytes} bytes "
                f"(HPROBUST_MAX_HEADER_BYTES), got {size} bytes"
            }
        ).encode()
        self.logger.warning("request head too large (%s bytes): 431", size)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        if size > self.max_header_bytes:
            self._refuse(size)
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0


def bounded_protocol(max_header_bytes: int) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with its limit set to ``max_header_bytes``."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_header_bytes": int(max_header_bytes)},
    )
