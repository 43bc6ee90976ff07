"""A bounded wait for request bodies, for every route (REST and web UI alike).

uvicorn bounds idle keep-alive connections but not a request whose body trickles in, so a
client sending a byte every few seconds could hold a worker for as long as it liked. Here
each wait for the next piece of a body is bounded by BODY_READ_TIMEOUT_S; past it the request
is answered 408 and the connection closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# Generous for any real client on a slow link (a 1 MB body at 100 kB/s arrives in pieces
# far more often than this), short enough that a stalled one lets go of its worker soon.
BODY_READ_TIMEOUT_S = 10.0


class BodyReadTimeoutError(Exception):
    """The client stopped sending its request body."""


class ReadTimeout:
    def __init__(self, app: ASGIApp, *, timeout_s: float = BODY_READ_TIMEOUT_S) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = body_done = False

        async def bounded_receive() -> Message:
            nonlocal body_done
            if body_done:  # later receives wait for a disconnect (streams): not bounded
                return await receive()
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for wraps receive() in a
                # new task and takes two extra turns of the event loop, for every request.
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeoutError from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except BodyReadTimeoutError:
            if started:  # an answer is under way: nothing sensible to add
                return
            body = json.dumps({"error": {"code": "request_timeout", "message": (
                f"The request body did not arrive within {self.timeout_s:g} s.")}}).encode()
            await send({"type": "http.response.start", "status": 408, "headers": [
                (b"content-type", b"application/json"), (b"connection", b"close"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
