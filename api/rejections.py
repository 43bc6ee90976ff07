"""Requests refused before they reach the prediction service (bad JSON, unknown fields, too
large, bad UTF-8, rate limited, a wrong admin token) still leave a trace: a log line with
the key id (never the key) and a `rejected` prediction row with the reason, no text. A
missing or unknown API key is only counted and summarised in the log (api/guard.py): a
flood of them must not grow the prediction log."""

from __future__ import annotations

import logging
import uuid

from starlette.concurrency import run_in_threadpool

from api.metrics import ApiMetrics
from classifier.serving.service import PredictionService
from feedback.errors import StorageError

log = logging.getLogger("support_triage.api")


class RejectionLog:
    def __init__(self, service: PredictionService, metrics: ApiMetrics | None = None) -> None:
        self._service = service
        self._metrics = metrics

    def record(self, code: str, message: str, *, method: str, path: str,
               key_id: str | None = None) -> str:
        """Log one refused request; returns its request id. Never raises for storage."""
        request_id = uuid.uuid4().hex
        log.warning("rejected %s %s: %s (key %s, request %s)", method, path, code,
                    key_id or "-", request_id)
        reason = f"{code}: {method} {path[:80]}: {message}"
        try:
            self._service.log_refused(request_id=request_id, source="api", reason=reason)
        except StorageError as exc:
            log.error("could not log rejected request %s: %s", request_id, exc)
        if self._metrics is not None:
            self._metrics.count_prediction("api", "rejected", None)
        return request_id

    async def record_async(self, code: str, message: str, *, method: str, path: str,
                           key_id: str | None = None) -> str:
        """`record` off the event loop (it writes to the database)."""
        return await run_in_threadpool(self.record, code, message, method=method, path=path,
                                       key_id=key_id)
