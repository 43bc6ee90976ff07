"""Support Triage web app: the Gradio UI and REST routes on one FastAPI app.

Run `python app.py`. Host from GRADIO_SERVER_NAME (default 127.0.0.1), port from
GRADIO_SERVER_PORT or PORT (default 7860). Wiring only: no SQL and no sklearn here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType

import gradio as gr
import uvicorn
from fastapi import FastAPI
from gradio.routes import App as GradioApp

from api.auth import ApiKeyring
from api.errors import install_error_handlers
from api.guard import ApiGuard
from api.metrics import ApiMetrics, MeteredService, build_metrics_router
from api.rejections import RejectionLog
from api.routes import OPEN_PATHS, ROUTES, build_api_router
from classifier.access import AccessPolicy
from classifier.ratelimit import TokenBucketLimiter
from classifier.serving import ModelCache
from classifier.startup import Startup
from dashboards.alerts import AlertLoop
from dashboards.autopromote import AutoPromoteLoop
from feedback.db import describe_storage, get_engine
from feedback.log_writer import PredictionLogWriter
from feedback.retention import start_retention_schedule
from feedback.settings import Settings, load_settings
from ui.guard import UiGuard
from ui.layout import KEYBOARD_JS, build_ui, storage_notice
from ui.sign_in import build_sign_in_router
from ui.traffic import UiRateLimit

log = logging.getLogger("support_triage")
SHUTDOWN_FLUSH_SECONDS = 30.0


def create_app(settings: Settings) -> tuple[FastAPI, Startup]:
    """Build the FastAPI app with the UI mounted at `/`; the model is prepared in background."""
    get_engine(settings)  # fail fast, with a clear message, if the database is unusable
    storage = describe_storage(settings)
    models = ModelCache(settings)
    metrics = ApiMetrics()
    log_writer = PredictionLogWriter(settings)
    service = MeteredService(settings, models, metrics=metrics, log_writer=log_writer)
    startup = Startup(settings, models)
    rejections = RejectionLog(settings, metrics, log_writer)
    keyring = ApiKeyring(settings)
    guard = UiGuard(AccessPolicy(settings))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        # Every queued prediction row is written before the process ends (close() at exit).
        if not log_writer.flush(timeout=SHUTDOWN_FLUSH_SECONDS):
            log.error("%d prediction rows still unwritten at shutdown", log_writer.pending)

    api = FastAPI(title="Support Triage", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  description="Classify support messages, rate answers, list model versions.",
                  lifespan=lifespan)
    api.include_router(build_api_router(service, settings, startup=startup))
    api.include_router(build_metrics_router(metrics))
    api.include_router(build_sign_in_router(guard.policy, guard))
    install_error_handlers(api, rejections)
    api.add_middleware(ApiGuard, keyring=keyring,  # type: ignore[arg-type]
                       limiter=TokenBucketLimiter(settings.rate_limit_per_minute,
                                                  settings.rate_limit_burst),
                       rejections=rejections, metrics=metrics,
                       max_body_bytes=settings.max_body_bytes, open_paths=OPEN_PATHS,
                       routes=ROUTES)
    api.add_middleware(UiRateLimit,  # type: ignore[arg-type]
                       limiter=TokenBucketLimiter(settings.ui_rate_limit_per_minute,
                                                  settings.ui_rate_limit_burst),
                       on_refuse=metrics.ui_rate_limited.inc)
    api.state.keyring = keyring
    api.state.log_writer = log_writer
    blocks = build_ui(service, startup, storage, guard)
    app = gr.mount_gradio_app(api, blocks, path="/", run_history=False, footer_links=["api"],
                              show_error=True, js=KEYBOARD_JS)
    return app, startup


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    storage = describe_storage(settings)
    log.info(storage_notice(storage))
    if not storage.persistent:
        log.warning(storage.advice)
    app, startup = create_app(settings)
    keyring: ApiKeyring = app.state.keyring
    (log.info if keyring.configured() else log.warning)(keyring.describe())
    startup.start()
    startup.models.start_polling()
    start_retention_schedule(settings)
    AlertLoop(settings, probe=startup.health).start()
    AutoPromoteLoop(settings).start()
    log.info("Support Triage on http://%s:%d", settings.server_name, settings.server_port)
    config = uvicorn.Config(app, host=settings.server_name, port=settings.server_port,
                            log_level="warning",
                            timeout_graceful_shutdown=int(SHUTDOWN_FLUSH_SECONDS))
    AppServer(config, gradio_app=next(r.app for r in app.routes
                                      if isinstance(getattr(r, "app", None), GradioApp))).run()


class AppServer(uvicorn.Server):
    """uvicorn that, on SIGTERM, first ends Gradio's session heartbeat streams, as Gradio's
    own launch() does: otherwise shutdown waits for every open page (and a gradio_client) to
    drop its heartbeat connection."""

    def __init__(self, config: uvicorn.Config, *, gradio_app: GradioApp) -> None:
        super().__init__(config)
        self.gradio_app = gradio_app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.gradio_app.stop_event.set()
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    main()
