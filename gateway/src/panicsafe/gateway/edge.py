"""The HTTP edge as pure ASGI: security headers on every answer and body limits counted on the bytes
actually received (a chunked upload has no Content-Length to trust), and the routing of a few exact
paths to their own application."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'"
    ),
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(self), microphone=(self), geolocation=()",
}
_HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
TOO_LARGE = json.dumps(
    {"error": {"code": "invalid", "message": "Requête trop volumineuse.", "fields": []}}, ensure_ascii=False
).encode()


class ExactPaths:
    """HTTP and WebSocket requests for one of `paths` go straight to its application, all else to `app`."""

    def __init__(self, app: ASGIApp, paths: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.paths = dict(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.paths.get(scope.get("path", "")) if scope["type"] in ("http", "websocket") else None
        await (target or self.app)(scope, receive, send)


class Edge:
    """Wraps the app: `limit_for(path)` bytes at most per request body."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("path", "")))
        started = False
        refused = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the edge answered already; the app's late answer is dropped
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _refuse(send_with_headers)
                return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not started:
                    # Answer now: the app (or its body parser) only sees the client go away.
                    await _refuse(send_with_headers)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counted_receive, send_with_headers)


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(TOO_LARGE)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": TOO_LARGE})
