"""Pure ASGI middleware in front of /api/v1 (the Gradio UI and everything else pass through
untouched): API key, per-key rate limit, body size and UTF-8, and request metrics.

Checks run cheapest-and-safest first: an unauthenticated caller's body is never read. The
body is read into memory (at most MAX_BODY_BYTES) and replayed to the app.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.datastructures import Headers

from api.auth import ApiKeyring
from api.errors import API_PREFIX, ApiError, error_response
from api.metrics import ApiMetrics
from api.rejections import RejectionLog
from classifier.serving.ratelimit import TokenBucketLimiter
from feedback.access import came_through_proxy

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
log = logging.getLogger("support_triage.api")


class RefusalSummary:
    """One log line per interval for a flood of refusals: the first one, then a count."""

    def __init__(self, what: str, every_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.every = every_seconds
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._logged_at = float("-inf")

    def note(self, code: str) -> None:
        self._counts[code] += 1
        now = self._clock()
        if now - self._logged_at >= self.every:
            summary = ", ".join(f"{n} {c}" for c, n in sorted(self._counts.items()))
            log.warning("%s refused since the last line: %s", self.what, summary)
            self._counts.clear()
            self._logged_at = now


class ApiGuard:
    def __init__(self, app: ASGIApp, *, keyring: ApiKeyring, limiter: TokenBucketLimiter,
                 rejections: RejectionLog, metrics: ApiMetrics, max_body_bytes: int,
                 open_paths: frozenset[str], routes: frozenset[str]) -> None:
        self.app = app
        self.keyring = keyring
        self.limiter = limiter
        self.rejections = rejections
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.open_paths = open_paths  # no API key: health, and export (admin token instead)
        self.routes = routes  # metric labels: known paths by name, anything else as "other"
        self.unauthenticated_log = RefusalSummary("REST requests without a valid API key")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(API_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_count(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            replay = await self._check(scope, receive)
        except ApiError as exc:
            await self._refuse(scope, exc, send_and_count)
        else:
            await self.app(scope, replay, send_and_count)
        finally:
            route = path if path in self.routes else "other"
            self.metrics.observe_http(route, scope["method"], status, time.perf_counter() - start)

    async def _check(self, scope: Scope, receive: Receive) -> Receive:
        """Authenticate, rate-limit and read the body; returns the receive to hand on."""
        headers = Headers(scope=scope)
        if scope["path"] not in self.open_paths:
            key_id = self.keyring.authenticate(headers.get("authorization"),
                                               proxied=came_through_proxy(headers))
            scope.setdefault("state", {})["api_key_id"] = key_id
            wait = self.limiter.acquire(key_id)
            if wait > 0:
                raise ApiError(429, "rate_limited",
                               f"Rate limit of this API key reached: wait {wait:.1f} s.",
                               headers={"Retry-After": str(max(1, math.ceil(wait)))})
        if "content-length" not in headers and "transfer-encoding" not in headers:
            return receive
        body = await self._read_body(headers, receive)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "invalid_utf8", f"The request body is not valid UTF-8 (byte "
                           f"{exc.start}). Send JSON encoded as UTF-8.") from None
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes:
        too_large = ApiError(413, "body_too_large", f"The request body is larger than "
                             f"{self.max_body_bytes:,} bytes (MAX_BODY_BYTES).")
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise ApiError(400, "bad_request", "The Content-Length header is not a number.")
            if int(declared) > self.max_body_bytes:
                raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiError(400, "bad_request", "The client disconnected mid-request.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope: Scope, exc: ApiError, send: Send) -> None:
        headers = dict(exc.headers)
        extra: dict[str, str] = {}
        if exc.status == 401:
            # Anyone can send these, as fast as they like: a counter and a throttled log
            # line, never a database row each.
            headers["WWW-Authenticate"] = "Bearer"
            self.metrics.unauthenticated.labels(exc.code).inc()
            self.unauthenticated_log.note(exc.code)
        else:
            key_id = scope.get("state", {}).get("api_key_id")
            extra["request_id"] = await self.rejections.record_async(
                exc.code, exc.message, method=scope["method"], path=scope["path"],
                key_id=key_id)
        response = error_response(exc.status, exc.code, exc.message, headers, **extra)
        await response(scope, self._no_receive, send)

    @staticmethod
    async def _no_receive() -> Message:
        return {"type": "http.disconnect"}
