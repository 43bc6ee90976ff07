"""A per-client rate limit on the web UI's calls, like the REST API's per key.

Every Gradio event (classify, rate, tab loads, uploads) is a POST under /gradio_api/, which
anyone can send without the page. Each client address gets a token bucket
(UI_RATE_LIMIT_PER_MINUTE, UI_RATE_LIMIT_BURST); above it the call is answered 429 with
Retry-After before Gradio queues any work. Behind a reverse proxy (a Space, a load
balancer) set FORWARDED_ALLOW_IPS so the address is the client's, not the proxy's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from classifier.ratelimit import TokenBucketLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
GRADIO_API = "/gradio_api/"


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
        body = json.dumps({"error": f"Too many requests from your address: wait {wait:.0f} s "
                                    "and try again."}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"),
            (b"retry-after", str(max(1, math.ceil(wait))).encode()),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
