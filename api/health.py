"""Health for load balancers and orchestrators: liveness and readiness, from memory.

- `GET /api/v1/health/live`: the process answers. Never touches the database or a lock, so
  a stalled database never makes a healthy process look dead (and get restarted for it).
  Container HEALTHCHECKs and liveness probes use this.
- `GET /api/v1/health/ready` (and `/api/v1/health`, its short form): the process can serve
  now: a model is loaded and the database answered the last probe (within about a second).
  503 otherwise, with the reason. Load balancers and readiness probes use this.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.errors import API_PREFIX
from api.schemas import HealthResponse
from classifier.serving.background import BackgroundWork
from classifier.serving.model_cache import ModelCache, ModelUnavailableError
from classifier.serving.startup import Startup
from feedback.storage_health import RETRY_AFTER_S, StorageMonitor

HEALTH = f"{API_PREFIX}/health"
HEALTH_LIVE = f"{HEALTH}/live"
HEALTH_READY = f"{HEALTH}/ready"
HEALTH_PATHS = frozenset({HEALTH, HEALTH_LIVE, HEALTH_READY})


@dataclass(frozen=True)
class Readiness:
    models: ModelCache
    monitor: StorageMonitor
    work: BackgroundWork
    startup: Startup

    def check(self) -> tuple[bool, dict[str, Any]]:
        """(ready, the short answer) from what this process holds in memory."""
        version = self.models.live_version
        if version is None:  # nothing loaded yet: try once (at most every poll interval)
            with contextlib.suppress(ModelUnavailableError):
                version = self.models.current().version
        if version is None:
            status = self.startup.status
            return False, {"status": status.state if status.state != "ready" else "unavailable",
                           "message": self.models.last_error or status.message}
        if not self.monitor.up:
            return False, {"status": "storage_down", "model_version": version,
                           "message": self.monitor.refuse_reason()}
        return True, {"status": "ok", "model_version": version}

    def details(self) -> dict[str, Any]:
        return {"storage": self.monitor.describe(),
                "loops": {loop.name: {
                    "leader": loop.leader, "runs": loop.runs, "failures": loop.failures,
                    "last_success": loop.last_success.isoformat() if loop.last_success else None,
                    "last_error": loop.last_error} for loop in self.work.loops}}


def build_health_router(readiness: Readiness) -> APIRouter:
    router = APIRouter(tags=["health"])
    unready: dict[int | str, dict[str, Any]] = {
        503: {"model": HealthResponse, "description": "Not ready: no model loaded, or the "
              "database is unavailable (see Retry-After)"}}

    def answer(ready: bool, body: dict[str, Any]) -> JSONResponse:
        return JSONResponse(body, status_code=200 if ready else 503,
                            headers=None if ready else {"Retry-After": str(RETRY_AFTER_S)})

    @router.get(HEALTH_LIVE, response_model=HealthResponse)
    async def live() -> JSONResponse:
        """The process answers (no database, no model check). No key needed."""
        # async: answered on the event loop, never queued behind busy worker threads
        return JSONResponse({"status": "alive"})

    @router.get(HEALTH, response_model=HealthResponse, responses=unready)
    def health() -> JSONResponse:
        """Ready to serve: the live model version; 503 while not. No key needed."""
        return answer(*readiness.check())

    @router.get(HEALTH_READY, response_model=HealthResponse, responses=unready)
    def ready() -> JSONResponse:
        """Ready to serve, with the storage state and every background loop's last success.
        No key needed."""
        ok, body = readiness.check()
        return answer(ok, {**body, **readiness.details()})

    return router
