"""Prometheus metrics in the text format at GET /metrics, with the official client.

The prediction service tells the metrics what it did (they are one of its observers).
Counters live in a private registry per app (tests build several apps in one process):
requests by route, method and HTTP status; classify requests by source, status and model
version (UI, API and batch alike); feedback by verdict; latency histograms.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from classifier.serving.background import BackgroundWork, Loop
from classifier.serving.service import Outcome, PredictionResult
from classifier.serving.validation import RejectedInputError
from feedback.errors import SupportTriageError
from feedback.log_writer import PredictionLogWriter
from feedback.storage_health import StorageMonitor, StorageUnavailableError
from feedback.store import FeedbackRecord

# Seconds; the model answers in about 1-10 ms, so the resolution sits there.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "support_triage_http_requests", "REST requests by route, method and HTTP status",
            ["route", "method", "status"], registry=self.registry)
        self.http_latency = Histogram(
            "support_triage_http_request_duration_seconds",
            "Time to answer a REST request, by route", ["route"], buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self.predictions = Counter(
            "support_triage_predictions",
            "Classify requests by source (ui, api, batch), status (ok, rejected, error) and "
            "the model version that answered ('none' when no model did)",
            ["source", "status", "model_version"], registry=self.registry)
        self.prediction_latency = Histogram(
            "support_triage_prediction_duration_seconds",
            "Time the prediction service took per message (validation, model, log write)",
            ["source"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.feedback = Counter("support_triage_feedback", "Ratings saved, by verdict",
                                ["verdict"], registry=self.registry)
        self.unauthenticated = Counter(
            "support_triage_unauthenticated_requests",
            "REST requests refused for a missing or unknown API key, by code (counted here, "
            "not written to the prediction log one row each)", ["code"], registry=self.registry)
        self.ui_rate_limited = Counter(
            "support_triage_ui_rate_limited_requests",
            "Web UI calls refused by the per-client rate limit", registry=self.registry)
        self.log_queue = Gauge("support_triage_log_queue_rows",
                               "Prediction rows handed to the log writer, not committed yet",
                               registry=self.registry)
        self.storage_up = Gauge("support_triage_storage_up",
                                "1 while this process can reach the database, else 0",
                                registry=self.registry)
        self.storage_outages = Gauge(
            "support_triage_storage_outages", "Database outages this process has seen",
            registry=self.registry)
        self.storage_refused = Counter(
            "support_triage_storage_refused_requests",
            "Requests answered 503 because the database was unavailable",
            registry=self.registry)
        self.loop_runs = Gauge("support_triage_background_loop_runs",
                               "Successful rounds of each background loop", ["loop"],
                               registry=self.registry)
        self.loop_failures = Gauge("support_triage_background_loop_failures",
                                   "Failed rounds of each background loop", ["loop"],
                                   registry=self.registry)
        self.loop_last_success = Gauge(
            "support_triage_background_loop_last_success_timestamp_seconds",
            "When each background loop last finished a round (0: never)", ["loop"],
            registry=self.registry)

    def watch(self, *, log_writer: PredictionLogWriter, monitor: StorageMonitor,
              work: BackgroundWork) -> None:
        """Read the live figures of the writer, the storage monitor and the loops at each
        scrape (no bookkeeping on the request path)."""
        self.log_queue.set_function(lambda: log_writer.pending)
        self.storage_up.set_function(lambda: 1.0 if monitor.up else 0.0)
        self.storage_outages.set_function(lambda: monitor.outages)
        for loop in work.loops:
            self._watch_loop(loop)

    def _watch_loop(self, loop: Loop) -> None:
        self.loop_runs.labels(loop.name).set_function(lambda: loop.runs)
        self.loop_failures.labels(loop.name).set_function(lambda: loop.failures)
        self.loop_last_success.labels(loop.name).set_function(
            lambda: loop.last_success.timestamp() if loop.last_success else 0.0)

    def count_prediction(self, source: str, status: str, version: int | None) -> None:
        self.predictions.labels(source, status, "none" if version is None else str(version)).inc()

    # --- the prediction service's observer (classifier.serving.service.ServiceObserver) ---

    def answered(self, source: str, outcomes: Sequence[Outcome], seconds_each: float) -> None:
        for outcome in outcomes:
            self.prediction_latency.labels(source).observe(seconds_each)
            if isinstance(outcome, PredictionResult):
                self.count_prediction(source, "ok", outcome.model_version)
            else:
                status = "rejected" if isinstance(outcome, RejectedInputError) else "error"
                self.count_prediction(source, status, None)

    def not_answered(self, source: str, count: int, error: SupportTriageError,
                     seconds_each: float) -> None:
        if isinstance(error, StorageUnavailableError):
            self.storage_refused.inc()
        for _ in range(count):
            self.prediction_latency.labels(source).observe(seconds_each)
            self.count_prediction(source, "error", None)

    def rated(self, record: FeedbackRecord) -> None:
        self.feedback.labels(record.verdict).inc()

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def build_metrics_router(metrics: ApiMetrics) -> APIRouter:
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus text exposition format."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return router
