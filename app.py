"""Support Triage web app: the Gradio UI and REST routes on one FastAPI app.

Run `python app.py`. Host from GRADIO_SERVER_NAME (default 127.0.0.1), port from
GRADIO_SERVER_PORT or PORT (default 7860). Wiring only: no SQL and no sklearn here.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType

from feedback.settings import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    """The settings, or one line on stderr and exit status 2, as the CLIs do (no traceback)."""
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    # Checked before the imports below (about 10 s, Gradio most of it), so that a bad value
    # stops `python app.py` at once; main() reads them again. Hence E402 for this file.
    settings_or_exit()

# skops before Gradio: its import looks every numpy ufunc up in every module loaded so far,
# which costs 2.5 s more once Gradio's modules are in (this file imports in 10.3 s instead
# of 12.8 s here). The model cache needs it for the first model it loads anyway.
import skops.io  # noqa: F401

# isort: split
import gradio as gr
import uvicorn
from fastapi import FastAPI
from gradio.routes import App as GradioApp

from api.auth import KEY_REFRESH_SECONDS, ApiKeyring
from api.errors import install_error_handlers
from api.guard import ApiGuard
from api.health import Readiness, build_health_router
from api.metrics import ApiMetrics, build_metrics_router
from api.read_timeout import ReadTimeout
from api.rejections import RejectionLog
from api.routes import OPEN_PATHS, ROUTES, build_api_router
from classifier.serving.background import BackgroundWork
from classifier.serving.model_cache import ModelCache
from classifier.serving.ratelimit import TokenBucketLimiter
from classifier.serving.service import PredictionService
from classifier.serving.startup import Startup
from classifier.versions.autopromote import AUTO_PROMOTE_CHECK_SECONDS, auto_promote_round
from dashboards.alerts import check_alerts, record_outage
from feedback.access import CACHE_SECONDS as ACCOUNTS_REFRESH_SECONDS
from feedback.access import AccessPolicy
from feedback.db import describe_storage, get_engine
from feedback.log_writer import PredictionLogWriter
from feedback.retention import apply_retention
from feedback.storage_health import StorageMonitor
from ui.guard import UiGuard
from ui.layout import PAGE_JS, build_ui, storage_notice
from ui.sessions import expire_idle_sessions
from ui.sign_in import build_sign_in_router
from ui.theme import PAGE_CSS, THEME
from ui.traffic import GradioCallCheck, UiRateLimit

log = logging.getLogger("support_triage")
SHUTDOWN_FLUSH_SECONDS = 30.0
STORAGE_PROBE_SECONDS = 1.0  # how soon a process notices the database is back
SESSION_SWEEP_SECONDS = 60.0
SIGN_IN_PURGE_SECONDS = 3600.0


def background_work(settings: Settings, *, models: ModelCache, keyring: ApiKeyring,
                    policy: AccessPolicy, monitor: StorageMonitor, startup: Startup,
                    blocks: gr.Blocks) -> BackgroundWork:
    """Every periodic job of the app, owned by one supervisor started in the lifespan."""
    work = BackgroundWork(settings)
    work.add("model-poll", settings.model_poll_seconds, models.refresh)
    work.add("api-keys", KEY_REFRESH_SECONDS, keyring.refresh)
    work.add("accounts", ACCOUNTS_REFRESH_SECONDS, policy.refresh)
    work.add("storage-probe", STORAGE_PROBE_SECONDS, monitor.probe)
    work.add("sign-ins", SIGN_IN_PURGE_SECONDS, policy.purge_expired_sign_ins, lease="sign-ins")
    work.add("ui-sessions", SESSION_SWEEP_SECONDS,
             lambda: expire_idle_sessions(blocks, settings.ui_session_idle_minutes * 60))
    work.add("alerts", settings.alert_check_seconds,
             lambda: check_alerts(settings, probe=startup.health), lease="alerts")
    if settings.auto_promote:
        work.add("auto-promote", AUTO_PROMOTE_CHECK_SECONDS,
                 lambda: auto_promote_round(settings), lease="auto-promote")
    if settings.retention_days > 0:
        work.add("retention", max(settings.retention_check_hours, 0.0) * 3600 or 3600.0,
                 lambda: apply_retention(settings), lease="retention")
    return work


def create_app(settings: Settings) -> tuple[FastAPI, Startup]:
    """Build the FastAPI app with the UI mounted at `/`; the model is prepared in background
    and the background loops run while the app does (its lifespan)."""
    get_engine(settings)  # fail fast, with a clear message, if the database is unusable
    storage = describe_storage(settings)
    models = ModelCache(settings)
    metrics = ApiMetrics()
    monitor = StorageMonitor(settings, on_recovered=lambda outage: record_outage(settings,
                                                                                 outage))
    log_writer = PredictionLogWriter(settings, monitor=monitor)
    service = PredictionService(settings, models, log_writer=log_writer, observers=[metrics])
    startup = Startup(settings, models)
    rejections = RejectionLog(service, metrics)
    keyring = ApiKeyring(settings)
    policy = AccessPolicy(settings)
    guard = UiGuard(policy)
    blocks = build_ui(service, startup, storage, guard)
    work = background_work(settings, models=models, keyring=keyring, policy=policy,
                           monitor=monitor, startup=startup, blocks=blocks)
    metrics.watch(log_writer=log_writer, monitor=monitor, work=work)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Everything built so far lives as long as the process: out of the cyclic garbage
        # collector's sight, a full collection takes milliseconds instead of stopping every
        # thread, the health checks included, for 100-150 ms.
        gc.freeze()
        work.start()
        yield
        work.stop()
        # Every queued prediction row is committed before the process ends.
        if log_writer.close(timeout=SHUTDOWN_FLUSH_SECONDS):
            log.error("%d prediction rows could not be written at shutdown", log_writer.lost)

    api = FastAPI(title="Support Triage", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  description="Classify support messages, rate answers, list model versions.",
                  lifespan=lifespan)
    api.include_router(build_health_router(Readiness(models, monitor, work, startup)))
    api.include_router(build_api_router(service, settings))  # last: it ends in a catch-all
    api.include_router(build_metrics_router(metrics))
    api.include_router(build_sign_in_router(policy, guard))
    install_error_handlers(api, rejections)
    api.add_middleware(ApiGuard, keyring=keyring,
                       limiter=TokenBucketLimiter(settings.rate_limit_per_minute,
                                                  settings.rate_limit_burst),
                       rejections=rejections, metrics=metrics,
                       max_body_bytes=settings.max_body_bytes, open_paths=OPEN_PATHS,
                       routes=ROUTES)
    # Outermost last: bounded body reads, then the web rate limit, then call checks.
    api.add_middleware(GradioCallCheck, handlers=frozenset(blocks.fns))
    api.add_middleware(UiRateLimit,
                       limiter=TokenBucketLimiter(settings.ui_rate_limit_per_minute,
                                                  settings.ui_rate_limit_burst),
                       on_refuse=metrics.ui_rate_limited.inc)
    api.add_middleware(ReadTimeout)
    api.state.keyring = keyring
    api.state.log_writer = log_writer
    api.state.work = work
    app = gr.mount_gradio_app(api, blocks, path="/", run_history=False, footer_links=["api"],
                              show_error=True, js=PAGE_JS, theme=THEME,
                              css=PAGE_CSS)
    return app, startup


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = settings_or_exit()
    storage = describe_storage(settings)
    log.info(storage_notice(storage))
    if not storage.persistent:
        log.warning(storage.advice)
    app, startup = create_app(settings)
    keyring: ApiKeyring = app.state.keyring
    (log.info if keyring.configured() else log.warning)(keyring.describe())
    startup.start()
    log.info("Support Triage on http://%s:%d", settings.server_name, settings.server_port)
    # loop and http stay "auto": uvloop and httptools (requirements.txt) when installed,
    # else asyncio and h11.
    config = uvicorn.Config(app, host=settings.server_name, port=settings.server_port,
                            log_level="warning",
                            timeout_graceful_shutdown=int(SHUTDOWN_FLUSH_SECONDS))
    AppServer(config, gradio_app=next(mounted for r in app.routes
                                      if isinstance(mounted := getattr(r, "app", None),
                                                    GradioApp))).run()


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
