"""Calling Gradio event handlers the way an outsider can: by `fn_index`, over the queue's
plain HTTP protocol (POST /gradio_api/queue/join, then the event stream), with any inputs and
any cookies, whatever the page would allow."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

API = "/gradio_api"


@dataclass(frozen=True)
class Outcome:
    success: bool
    output: dict[str, Any]

    @property
    def text(self) -> str:
        """Everything the caller got back, as one string to search."""
        return json.dumps(self.output, ensure_ascii=False)


def call_fn(client: httpx.Client, fn_index: int, data: list[Any], *,
            event_data: Any = None, trigger_id: int | None = None,
            session_hash: str | None = None, timeout: float = 30) -> Outcome:
    """Run one handler and wait for its result."""
    session_hash = session_hash or uuid.uuid4().hex[:11]
    joined = client.post(f"{API}/queue/join", json={
        "data": data, "event_data": event_data, "fn_index": fn_index,
        "trigger_id": trigger_id, "session_hash": session_hash}, timeout=timeout)
    if joined.status_code != 200:
        return Outcome(False, {"status": joined.status_code, "body": joined.text})
    event_id = joined.json()["event_id"]
    with client.stream("GET", f"{API}/queue/data", params={"session_hash": session_hash},
                       timeout=timeout) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("event_id") not in (None, event_id):
                continue
            if message.get("msg") == "process_completed":
                return Outcome(bool(message.get("success")), message.get("output") or {})
            if message.get("msg") == "unexpected_error":
                return Outcome(False, message)
    return Outcome(False, {"error": "the event stream ended without a result"})


def dependencies(client: httpx.Client) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """(every event handler in /config, components by id)."""
    config = client.get("/config").json()
    return config["dependencies"], {c["id"]: c for c in config["components"]}
