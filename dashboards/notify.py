"""Webhook delivery of alert changes: JSON over HTTP POST, never allowed to break serving."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger(__name__)
# A slow receiver must not hold alert evaluation (or a cron run) for long.
WEBHOOK_TIMEOUT_S = 3.0


def post_json(url: str, payload: dict[str, Any], timeout: float = WEBHOOK_TIMEOUT_S) -> bool:
    """POST `payload`; True on a 2xx answer. Failures are logged (without the URL, which may
    hold a secret token) and reported as False, never raised."""
    request = urllib.request.Request(url, data=json.dumps(payload, default=str).encode(),
                                     headers={"Content-Type": "application/json"},
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return 200 <= response.status < 300
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        log.warning("alert webhook failed: %s", type(exc).__name__)
        return False


def post_in_background(url: str, payload: dict[str, Any]) -> threading.Thread:
    """Deliver without waiting: the caller (the app's alert loop) carries on at once."""
    thread = threading.Thread(target=post_json, args=(url, payload), daemon=True,
                              name="alert-webhook")
    thread.start()
    return thread
