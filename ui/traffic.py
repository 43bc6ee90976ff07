"""What reaches Gradio's own routes: a per-client rate limit on the web UI's calls (like the
REST API's per key), and plain answers for calls no page makes.

Every Gradio event (classify, rate, tab loads, uploads) is a POST under /gradio_api/, which
anyone can send without the page. Each client address gets a token bucket
(UI_RATE_LIMIT_PER_MINUTE, UI_RATE_LIMIT_BURST); above it the call is answered 429 with
Retry-After before Gradio queues any work. Behind a reverse proxy (a Space, a load
balancer) set FORWARDED_ALLOW_IPS so the address is the client's, not the proxy's.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from classifier.serving.ratelimit import TokenBucketLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
GRADIO_API = "/gradio_api/"
QUEUE_JOIN = "/gradio_api/queue/join"
QUEUE_DATA = "/gradio_api/queue/data"
DIRECT_RUN = "/gradio_api/run/"
MAX_CALL_BYTES = 1024 * 1024  # a call carries texts and file references, never files
log = logging.getLogger(__name__)


class UiRateLimit:
    def __init__(self, app: ASGIApp, *, limiter: TokenBucketLimiter,
                 on_refuse: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.limiter = limiter
        self.on_refuse = on_refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or not scope.get("path", "").startswith(GRADIO_API)):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.limiter.acquire(client[0] if client else "unknown")
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        self.on_refuse()
        await _send_json(send, 429, {"error": f"Too many requests from your address: wait "
                                              f"{wait:.0f} s and try again."},
                         headers=[(b"retry-after", str(max(1, math.ceil(wait))).encode())])


class GradioCallCheck:
    """Plain answers for calls the page never makes, instead of Gradio's tracebacks.

    - A queue join or direct run naming an event handler that does not exist (`fn_index`)
      gets 404 and one short log line; Gradio itself logs a 13 KB traceback per request.
    - `POST /gradio_api/run/<name>` answers a handler's own refusal (a gr.Error: an empty
      message, a sign-in needed) with 500, as if the server broke; here it becomes 422, or
      403 when the caller may not do it.
    - An event stream for a session Gradio does not know has already answered the client
      ("session_not_found") when Gradio fails on it; that failure becomes one log line
      instead of a traceback.
    """

    def __init__(self, app: ASGIApp, *, handlers: frozenset[int],
                 max_body_bytes: int = MAX_CALL_BYTES) -> None:
        self.app = app
        self.handlers = handlers
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == QUEUE_DATA:
            await self._stream(scope, receive, send)
            return
        if scope.get("method") != "POST" or not (path == QUEUE_JOIN
                                                 or path.startswith(DIRECT_RUN)):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes or not message.get("more_body"):
                break
        fn_index = _fn_index(body)
        if fn_index is not None and fn_index not in self.handlers:
            log.warning("refused a call to unknown event handler %r on %s", fn_index, path)
            await _send_json(send, 404, {"error": "There is no such event handler."})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        if path.startswith(DIRECT_RUN):
            send = _refusals_are_not_crashes(send)
        await self.app(scope, replay, send)


    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        finished = False

        async def tracking(message: Message) -> None:
            nonlocal finished
            finished = message["type"] == "http.response.body" and not message.get(
                "more_body", False)
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except RuntimeError as exc:  # Gradio's failure after its own answer was sent
            log.warning("event stream for an unknown session ended: %s", exc)
            if not finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def _fn_index(body: bytes) -> object:
    try:
        value = json.loads(body).get("fn_index")
    except (ValueError, AttributeError):
        return None  # Gradio answers a malformed body itself
    return value


def _refusals_are_not_crashes(send: Send) -> Send:
    """Hold a 500's start until its body shows whether it was a handler's gr.Error."""
    held: list[Message] = []

    async def rewriting(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 500:
            held.append(message)
            return
        if held and message["type"] == "http.response.body":
            start = dict(held.pop())
            try:
                payload = json.loads(message.get("body", b""))
            except ValueError:
                payload = {}
            if isinstance(payload, dict) and payload.get("title"):
                start["status"] = 403 if payload["title"] == "Not allowed" else 422
            await send(start)
        await send(message)

    return rewriting


async def _send_json(send: Send, status: int, payload: dict[str, object],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
