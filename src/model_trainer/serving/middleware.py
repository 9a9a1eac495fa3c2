"""The server's ASGI middleware, which sees a request before FastAPI does: the API key check
and the body size limit, so a stranger's or an oversized body is refused unread."""

import hmac
import time
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers

ASK_FOR_THE_KEY = {
    "error": "This server needs an API key: none was sent, or not the right one.",
    "remediation": "Send it as the header 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
}

ARRIVED = "model_trainer_arrived"


class BodyGate:
    """Reads each request body before the app does: refuses one larger than `max_bytes` with a
    413 (by its Content-Length, or by counting when it is streamed without one), and notes when
    the request arrived, for the latency in the prediction log."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})[ARRIVED] = time.perf_counter()
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, receive: Callable, send: Callable) -> None:
        response = JSONResponse(
            status_code=413,
            content={
                "error": f"The request body is larger than {self.max_bytes} bytes.",
                "remediation": "Send fewer records per request, or start the server with a "
                "larger --max-body-bytes.",
            },
        )
        await response(scope, receive, send)


class KeyGate:
    """Refuses a request without the API key (as a bearer token or an X-API-Key header) on
    every path but `open_paths`, so a new route is guarded unless opened here. It runs before
    BodyGate: a stranger's body is never read, and a 401 is all a stranger gets (no 413, no 422)."""

    def __init__(self, app: Any, api_key: str, open_paths: set[str | None]) -> None:
        self.app = app
        self.expected = api_key.encode()
        self.open_paths = open_paths

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or self._has_key(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            status_code=401, content=ASK_FOR_THE_KEY, headers={"WWW-Authenticate": "Bearer"}
        )
        await response(scope, receive, send)

    def _has_key(self, scope: dict) -> bool:
        headers = Headers(scope=scope)
        scheme, token = get_authorization_scheme_param(headers.get("authorization"))
        given = [headers.get("x-api-key"), token if scheme.lower() == "bearer" else None]
        # Header values arrive decoded as latin-1: back to the bytes the client sent.
        return any(
            key and hmac.compare_digest(key.encode("latin-1"), self.expected) for key in given
        )
