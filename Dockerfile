# Support Triage: the web app (Gradio UI + REST API) in one container.
#
#   docker build -t support-triage .                      # trains at first start (~1 min)
#   docker build -t support-triage --build-arg BAKE_MODEL=1 .   # model trained into the image
#   docker run --init -p 7860:7860 -v st-data:/data support-triage
#
# docs/DEPLOY.md covers volumes, PostgreSQL, several replicas, upgrades and backups.

# Pinned by tag (Debian 12, like the machines the tests run on); pin by digest as well
# (python:3.11-slim-bookworm@sha256:...) for byte-identical rebuilds.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    DATA_DIR=/data

# A fixed uid, so a volume prepared on the host (chown 10001) matches.
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin app \
    && mkdir /data \
    && chown app:app /data

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# Only what the app runs; owned by root, so the app cannot rewrite its own code.
COPY app.py ./
COPY api/ api/
COPY classifier/ classifier/
COPY dashboards/ dashboards/
COPY feedback/ feedback/
COPY ui/ ui/

# Numeric, so runtimes that check for a non-root user (runAsNonRoot) can tell.
USER 10001:10001

# 1 trains the default model at build time into the image's /data, so a container started
# on a fresh volume serves at once; 0 leaves that to the app's first start. Declared here,
# not at the top: a build argument is part of the cache key of every RUN after it, and the
# dependency layer above should not be rebuilt when only this changes.
ARG BAKE_MODEL=0
# The app's own first-start path (classifier/training/default_model.py): train the default model on
# Banking77 and promote it, only when no version is live. Before VOLUME: a build step that
# writes under a declared volume is discarded.
RUN if [ "$BAKE_MODEL" = "1" ]; then \
        python -c "from classifier.training.default_model import ensure_live_model; \
from feedback.settings import load_settings; ensure_live_model(load_settings())"; \
    fi

VOLUME ["/data"]
EXPOSE 7860

# Liveness only: it never touches the database, and answers while the first start trains.
# Readiness (/api/v1/health/ready) is for load balancers. Python's stdlib: no curl here.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/api/v1/health/live' % os.environ.get('GRADIO_SERVER_PORT', '7860'), timeout=3)"]

# On SIGTERM the app flushes queued prediction rows (up to 30 s): stop with a grace period
# above that (docker stop -t 40; compose: stop_grace_period).
CMD ["python", "app.py"]
