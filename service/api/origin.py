"""Requests from elsewhere (issue 21, B3): the Host a request names, the browser origin it comes
from, and the content type of what it sends.

A page on another site can make a browser send requests to this service: a form POST or a
``no-cors`` ``fetch`` with a ``text/plain`` body reach the API without any preflight, and a
page whose own name is made to resolve to 127.0.0.1 (DNS rebinding) can even read the
answers. :class:`RequestOriginMiddleware`, the outermost layer of the app, refuses:

- a request whose ``Host`` is not a name this service is served under (421, naming the host
  and ``HPROBUST_ALLOWED_HOSTS``): a rebinding page's requests carry its own name;
- a mutating request (POST, PUT, PATCH, DELETE) with a body that is not JSON or YAML (415,
  naming the accepted types): a page can send ``text/plain`` and form bodies cross-site, never
  ``application/json`` or YAML without a CORS preflight, which this service never grants;
- a mutating request whose ``Origin`` (browsers send it with every cross-site POST) is not
  one of the served names (403): a body-less POST (``/cancel``, ``/resume``) needs no content
  type, and this is what tells a page's from a client's. Clients that are not browsers (the
  CLI, curl, httpx, MLflow) send no ``Origin``.

``GET /healthz`` is answered whatever the Host (a container's health check may name the
container); it says nothing about any study.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

#: The content types a mutating request may send a body in (service/api/body.py reads them).
JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
ACCEPTED_TYPES = JSON_TYPES + YAML_TYPES
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Answered whatever the Host says (nothing about any study).
ANY_HOST_PATHS = frozenset({"/healthz"})
#: The names a service bound to loopback is reached by.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def split_host(value: str) -> tuple[str, int | None]:
    """``name[:port]`` (an IPv6 address in brackets) as (lower-case name, port or None);
    ValueError when it is not one."""
    value = value.strip().lower()
    if not value:
        raise ValueError("an empty host")
    if value.startswith("["):
        name, _, rest = value.partition("]")
        name += "]"
        if rest and not rest.startswith(":"):
            raise ValueError(f"not a host: {value!r}")
        port = rest[1:] or None
    else:
        name, _, port = value.partition(":")
        if ":" in port:
            raise ValueError(f"not a host: {value!r} (an IPv6 address goes in brackets)")
    if port is not None and port != "":
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"not a port: {port!r} in {value!r}")
        return name, int(port)
    return name, None


class HostRule:
    """The served names: ``*`` (any host), or names each with an optional port."""

    def __init__(self, entries: Iterable[str]) -> None:
        entries = [e.strip() for e in entries if e.strip()]
        self.any = "*" in entries
        self.names: list[tuple[str, int | None]] = [split_host(e) for e in entries if e != "*"]

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host:
            return False
        try:
            name, port = split_host(host)
        except ValueError:
            return False
        return any(n == name and (p is None or p == port) for n, p in self.names)

    def describe(self) -> str:
        if self.any:
            return "*"
        return ", ".join(n if p is None else f"{n}:{p}" for n, p in self.names)


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in scope.get("headers", []):
        out.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
    return out


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def media_type(content_type: str) -> str:
    """``application/json`` of ``Application/JSON; charset=utf-8``."""
    return content_type.split(";", 1)[0].strip().lower()


class RequestOriginMiddleware:
    """Refuses requests from elsewhere (see the module doc); everything else passes as is."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = HostRule(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host")
        if scope.get("path") not in ANY_HOST_PATHS and not self.hosts.allows(host):
            await _refuse(
                send,
                421,
                f"Host {host!r} is not a name this service is served under (served: "
                f"{self.hosts.describe()}; HPROBUST_ALLOWED_HOSTS lists them): a page whose "
                "name was pointed at this machine is refused",
            )
            return
        if scope.get("method", "GET").upper() in MUTATING:
            problem = self._mutation_problem(headers)
            if problem is not None:
                await _refuse(send, *problem)
                return
        await self.app(scope, receive, send)

    def _mutation_problem(self, headers: dict[str, str]) -> tuple[int, str] | None:
        origin = headers.get("origin")
        if origin is not None:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not self.hosts.allows(parts.netloc):
                return (
                    403,
                    f"a change requested by a page of another origin is refused (Origin "
                    f"{origin!r}; served: {self.hosts.describe()})",
                )
        content_type = headers.get("content-type")
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if content_type is None:
            if has_body:
                return (
                    415,
                    "Content-Type must be one of " + ", ".join(ACCEPTED_TYPES) + " for a "
                    "request with a body, got none",
                )
            return None
        if media_type(content_type) not in ACCEPTED_TYPES:
            return (
                415,
                "Content-Type must be one of "
                + ", ".join(ACCEPTED_TYPES)
                + f", got {content_type[:100]!r}",
            )
        return None
