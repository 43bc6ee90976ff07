"""Support Triage web app: the Gradio UI and REST routes on one FastAPI app.

Run `python app.py`. Host from GRADIO_SERVER_NAME (default 127.0.0.1), port from
GRADIO_SERVER_PORT or PORT (default 7860). Wiring only: no SQL and no sklearn here.
"""

from __future__ import annotations

import logging

import gradio as gr
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from classifier.service import PredictionService
from classifier.serving import ModelCache, ModelUnavailableError
from classifier.startup import Startup
from feedback.db import describe_storage, get_engine
from feedback.settings import Settings, load_settings
from ui.layout import build_ui, storage_notice

log = logging.getLogger("support_triage")


def create_app(settings: Settings) -> tuple[FastAPI, Startup]:
    """Build the FastAPI app with the UI mounted at `/`; the model is prepared in background."""
    get_engine(settings)  # fail fast, with a clear message, if the database is unusable
    storage = describe_storage(settings)
    models = ModelCache(settings)
    service = PredictionService(settings, models)
    startup = Startup(settings, models)
    api = FastAPI(title="Support Triage", docs_url="/api/docs", openapi_url="/api/openapi.json")

    @api.get("/api/v1/health")
    def health() -> JSONResponse:
        """Liveness plus the live model version; 503 until a model is loaded."""
        try:
            version = service.current_model().version
        except ModelUnavailableError:
            return JSONResponse({"status": startup.status.state,
                                 "message": startup.status.message}, status_code=503)
        return JSONResponse({"status": "ok", "model_version": version})

    blocks = build_ui(service, startup, storage)
    app = gr.mount_gradio_app(api, blocks, path="/", run_history=False, footer_links=["api"],
                              show_error=True)
    return app, startup


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    storage = describe_storage(settings)
    log.info(storage_notice(storage))
    if not storage.persistent:
        log.warning(storage.advice)
    app, startup = create_app(settings)
    startup.start()
    startup.models.start_polling()
    log.info("Support Triage on http://%s:%d", settings.server_name, settings.server_port)
    uvicorn.run(app, host=settings.server_name, port=settings.server_port, log_level="warning")


if __name__ == "__main__":
    main()
