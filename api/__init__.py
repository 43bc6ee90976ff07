"""The REST API (`/api/v1/...`) on the FastAPI app that also hosts the Gradio UI.

routes.py      the APIRouter: predict, batch, feedback, health, models, export
schemas.py     request and response models (unknown fields refused)
guard.py       pure ASGI middleware for /api/v1: API key, rate limit, body size, UTF-8
auth.py        API keys from API_KEYS and from the database (hashed)
errors.py      every error as {"error": {"code", "message"}}, never a traceback
rejections.py  requests refused before the service are logged as rejected prediction rows
metrics.py     Prometheus counters and histograms at GET /metrics
"""
