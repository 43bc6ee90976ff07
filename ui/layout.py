"""The whole Gradio app: header with the storage notice, then the tabs."""

from __future__ import annotations

import gradio as gr

from classifier.service import PredictionService
from classifier.startup import Startup
from feedback.db import StorageInfo
from ui.batch_tab import build_batch_tab
from ui.classify_tab import build_classify_tab
from ui.models_tab import build_models_tab
from ui.monitoring_tab import build_monitoring_tab
from ui.review_tab import build_review_tab


def storage_notice(storage: StorageInfo) -> str:
    text = f"Data is stored in: {storage.location}."
    if not storage.persistent:
        text = f"⚠️ {text} {storage.advice}"
    return text


def build_ui(service: PredictionService, startup: Startup, storage: StorageInfo) -> gr.Blocks:
    with gr.Blocks(title="Support Triage") as blocks:
        gr.Markdown("# Support Triage\nPaste a customer message to get its support category. "
                    "Rate each answer: ratings are how the model gets better.")
        gr.Markdown(storage_notice(storage), elem_id="storage-notice")
        with gr.Tabs():
            with gr.Tab("Classify", id="classify"):
                build_classify_tab(service, startup)
            with gr.Tab("Batch", id="batch"):
                build_batch_tab(service)
            with gr.Tab("Monitoring", id="monitoring") as monitoring:
                build_monitoring_tab(service.settings, monitoring)
            with gr.Tab("Models", id="models") as models:
                build_models_tab(service.settings, models)
            with gr.Tab("Review", id="review") as review:
                build_review_tab(service.settings, review)
    return blocks
