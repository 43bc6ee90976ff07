"""The REST routes under /api/v1. Each handler parses its input, calls one domain function
and formats the answer; errors become JSON through api.errors, never a traceback.

Access (API key, rate limit, body size, UTF-8) is enforced by api.guard before a handler
runs; the bearer scheme below only documents it in the OpenAPI spec.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Security
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPBearer

from api.errors import API_PREFIX, ApiError
from api.health import HEALTH_PATHS
from api.schemas import (
    BatchItem,
    BatchRequest,
    BatchResponse,
    ErrorBody,
    FeedbackRequest,
    FeedbackResponse,
    ItemError,
    ModelInfo,
    ModelsResponse,
    PredictRequest,
    PredictResponse,
)
from classifier.serving.batch import predict_many
from classifier.serving.service import PredictionResult, PredictionService
from classifier.versions import lifecycle
from feedback.errors import NotAuthorizedError
from feedback.export import iter_export_csv, parse_time
from feedback.settings import Settings

PREDICT = f"{API_PREFIX}/predict"
BATCH = f"{API_PREFIX}/predict/batch"
FEEDBACK = f"{API_PREFIX}/feedback"
MODELS = f"{API_PREFIX}/models"
EXPORT = f"{API_PREFIX}/export/predictions.csv"
ROUTES = frozenset({PREDICT, BATCH, FEEDBACK, *HEALTH_PATHS, MODELS, EXPORT})
# No API key: health is for load balancers; export needs the admin token instead.
OPEN_PATHS = frozenset({*HEALTH_PATHS, EXPORT})
ALLOWED_METHODS = {PREDICT: "POST", BATCH: "POST", FEEDBACK: "POST", MODELS: "GET",
                   EXPORT: "GET", **dict.fromkeys(HEALTH_PATHS, "GET")}

bearer = HTTPBearer(auto_error=False, scheme_name="APIKey",
                    description="An API key from API_KEYS or `python -m classifier keys create`")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    texts = {400: "Invalid UTF-8 or unreadable body", 401: "Missing or invalid API key",
             403: "Wrong or missing admin token", 404: "Unknown request id",
             413: "Body larger than MAX_BODY_BYTES",
             422: "Invalid request or message (code says which check)",
             429: "Rate limit reached (see Retry-After)",
             503: "No model loaded, or the database is unavailable"}
    return {s: {"model": ErrorBody, "description": texts[s]} for s in statuses}


KEYED = (400, 401, 413, 422, 429, 503)


def _prediction(r: PredictionResult) -> PredictResponse:
    return PredictResponse(request_id=r.request_id, label=r.label, confidence=r.confidence,
                           scores=r.scores, model_version=r.model_version,
                           latency_ms=r.latency_ms, verdict=r.verdict)


def build_api_router(service: PredictionService, settings: Settings) -> APIRouter:
    """The /api/v1 routes but health, answering through `service` (the same one the UI
    uses)."""
    router = APIRouter(tags=["v1"])
    keyed = [Security(bearer)]

    @router.post(PREDICT, response_model=PredictResponse, dependencies=keyed,
                 responses=_errors(*KEYED))
    def predict(body: PredictRequest) -> PredictResponse:
        """Classify one message; it is logged (redacted) with source `api`."""
        return _prediction(service.predict(body.text, source="api"))

    @router.post(BATCH, response_model=BatchResponse, dependencies=keyed,
                 responses=_errors(*KEYED))
    def predict_batch(body: BatchRequest) -> BatchResponse:
        """Classify up to BATCH_MAX_TEXTS messages; a bad one gets an error, not the batch."""
        if len(body.texts) > settings.batch_max_texts:
            raise ApiError(422, "too_many_texts", f"{len(body.texts):,} texts sent; one batch "
                           f"takes at most {settings.batch_max_texts:,} (BATCH_MAX_TEXTS).")
        outcomes = predict_many(service, body.texts)
        items = [BatchItem(index=i, result=_prediction(o.result) if o.result else None,
                           error=ItemError(code=o.error_code or "error",
                                           message=o.error_message or "")
                           if o.result is None else None)
                 for i, o in enumerate(outcomes)]
        ok = sum(o.result is not None for o in outcomes)
        return BatchResponse(items=items, ok=ok, failed=len(items) - ok)

    @router.post(FEEDBACK, response_model=FeedbackResponse, dependencies=keyed,
                 responses=_errors(*KEYED, 404))
    def feedback(body: FeedbackRequest) -> FeedbackResponse:
        """Rate a prediction by its request id; rating again replaces the earlier rating."""
        r = service.rate(body.request_id, body.verdict, correct_label=body.correct_label,
                         comment=body.comment)
        return FeedbackResponse(request_id=r.request_id, verdict=r.verdict,
                                correct_label=r.correct_label, comment=r.comment,
                                changed=r.changed)

    @router.get(MODELS, response_model=ModelsResponse, dependencies=keyed,
                responses=_errors(*KEYED))
    def models() -> ModelsResponse:
        """Every model version with its status and metrics; which one is live and canary."""
        versions = lifecycle.list_versions(settings)
        by_status = {v.status: v.version for v in versions}
        return ModelsResponse(live_version=by_status.get("live"),
                              canary_version=by_status.get("canary"),
                              versions=[ModelInfo(**v.summary()) for v in versions])

    @router.get(EXPORT, response_class=StreamingResponse, responses={
        200: {"content": {"text/csv": {}}, "description": "The log joined with feedback"},
        **_errors(403, 422, 503)})
    def export_predictions(
        x_admin_token: Annotated[str | None, Header(description="ADMIN_TOKEN")] = None,
        since: Annotated[str | None, Query(max_length=40,
                                           description="ISO date/time, inclusive")] = None,
        until: Annotated[str | None, Query(max_length=40,
                                           description="ISO date/time, exclusive")] = None,
    ) -> StreamingResponse:
        """The prediction log joined with feedback as CSV (admin token in X-Admin-Token)."""
        try:
            lifecycle.authorize(settings, x_admin_token)
        except NotAuthorizedError as exc:
            raise NotAuthorizedError(
                "Export needs the admin token in the X-Admin-Token header. " + str(exc)) from None
        since_at, until_at = parse_time(since, "since"), parse_time(until, "until")
        pieces = iter_export_csv(settings, since=since_at, until=until_at)
        first = next(pieces)  # database errors surface here as 503, before the 200 is sent

        def stream() -> Any:
            yield first
            yield from pieces

        return StreamingResponse(stream(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="predictions.csv"'})

    @router.api_route(API_PREFIX + "/{rest:path}", include_in_schema=False,
                      methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
    def not_found(rest: str) -> None:
        """Unknown API paths answer JSON here instead of falling through to the Gradio UI."""
        path = f"{API_PREFIX}/{rest}"
        if path in ALLOWED_METHODS:
            raise ApiError(405, "method_not_allowed", f"{path} only answers "
                           f"{ALLOWED_METHODS[path]}.", headers={"Allow": ALLOWED_METHODS[path]})
        raise ApiError(404, "not_found", f"No API route {path[:100]}; see /api/docs.")

    return router
