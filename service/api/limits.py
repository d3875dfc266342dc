"""A small ASGI middleware that refuses request bodies above ``max_bytes`` with 413.

It checks ``Content-Length`` up front and also counts the bytes actually streamed (a chunked
body has no Content-Length), so an oversized body is never read in full.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException

Scope = dict[str, Any]


class BodyLimitMiddleware:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: int | str) -> bytes:
        return json.dumps(
            {
                "detail": f"request body must be at most {self.max_bytes} bytes "
                f"(HPROBUST_MAX_BODY_BYTES), got {size} bytes"
            }
        ).encode()

    async def _reject(self, send: Any, size: int | str) -> None:
        body = self._message(size)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
                if length > self.max_bytes:
                    await self._reject(send, length)
                    return
        received = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(received, self.max_bytes)
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge as exc:
            if not started:
                await self._reject(send, f"more than {exc.size}")


class _TooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException, so the app's own handlers answer 413."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.size = size
        super().__init__(
            413,
            detail=f"request body must be at most {max_bytes} bytes (HPROBUST_MAX_BODY_BYTES), "
            f"got more than {size} bytes",
        )
