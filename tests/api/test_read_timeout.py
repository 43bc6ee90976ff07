"""api.read_timeout: a request body that stops arriving is answered 408; one that arrives is
handed on untouched."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from api.read_timeout import ReadTimeout


async def _echo_body(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _call(pieces: list[dict], *, stall: bool, timeout_s: float = 0.05) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        if pieces:
            return pieces.pop(0)
        if stall:
            await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    app = ReadTimeout(_echo_body, timeout_s=timeout_s)
    asyncio.run(asyncio.wait_for(app({"type": "http"}, receive, send), 5))
    return sent


def test_a_body_that_arrives_is_handed_on() -> None:
    sent = _call([{"type": "http.request", "body": b"ab", "more_body": True},
                  {"type": "http.request", "body": b"cd", "more_body": False}], stall=True)
    assert [m.get("status") for m in sent] == [200, None]
    assert sent[1]["body"] == b"abcd"


def test_a_body_that_stops_arriving_is_answered_408() -> None:
    sent = _call([{"type": "http.request", "body": b"ab", "more_body": True}], stall=True)
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_timeout"
