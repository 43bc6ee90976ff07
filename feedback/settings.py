"""All settings, read from environment variables in one place.

Each setting has a default that is safe for a single-user SQLite install and a line of help;
`python -m classifier settings` prints them. Secrets are only ever read from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


def _default_data_dir() -> Path:
    """`/data` when it exists and is writable (a Space's persistent volume), else `./data`."""
    mounted = Path("/data")
    if mounted.is_dir() and os.access(mounted, os.W_OK):
        return mounted
    return Path("data").resolve()


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"Setting {name}={raw!r} is not a whole number") from exc


def _float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"Setting {name}={raw!r} is not a number") from exc


def _bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"Setting {name}={raw!r} is not on/off (use 1 or 0)")


def _auto_bool(name: str) -> str:
    """"auto", "1" or "0": on/off, or left to a rule that depends on other settings."""
    raw = _env(name, "auto").lower()
    if raw == "auto":
        return "auto"
    try:
        return "1" if _bool(name, False) else "0"
    except ValueError:
        raise ValueError(f"Setting {name}={raw!r} is not auto, 1 or 0") from None


# Settings whose values are never printed, only whether they are set.
SECRET_FIELDS = frozenset({"admin_token", "api_keys", "alert_webhook_url"})
# Fields whose value is a comma-separated list of names.
LIST_FIELDS = frozenset({"admin_users", "reviewer_users"})


def _help(text: str, env: str) -> dict[str, str]:
    return {"help": text, "env": env}


@dataclass(frozen=True)
class Settings:
    """One immutable snapshot of the configuration."""

    data_dir: Path = field(metadata=_help("Folder for the SQLite database", "DATA_DIR"))
    database_url: str = field(
        metadata=_help("SQLAlchemy URL; empty means SQLite in DATA_DIR", "DATABASE_URL")
    )
    redact_pii: bool = field(
        metadata=_help("Redact e-mails, phones, cards, IBANs before storage", "REDACT_PII")
    )
    max_text_chars: int = field(
        metadata=_help("Longest message accepted, in characters", "MAX_TEXT_CHARS")
    )
    low_confidence: float = field(
        metadata=_help("Below this confidence the UI asks for a human check", "LOW_CONFIDENCE")
    )
    model_poll_seconds: float = field(
        metadata=_help("How often a process checks which version is live", "MODEL_POLL_SECONDS")
    )
    db_busy_timeout_s: float = field(
        metadata=_help("How long SQLite waits for a lock before giving up", "DB_BUSY_TIMEOUT")
    )
    db_statement_timeout_s: float = field(metadata=_help(
        "PostgreSQL: longest a single statement may run, in seconds", "DB_STATEMENT_TIMEOUT"))
    db_auto_upgrade: str = field(metadata=_help(
        "Upgrade an older database schema at start-up: auto (yes on SQLite, no on PostgreSQL, "
        "where replicas start together; run `python -m classifier db upgrade`), 1 or 0",
        "DB_AUTO_UPGRADE"))
    gate_max_quality_drop: float = field(metadata=_help(
        "Gate: largest macro-F1 drop allowed against the live version", "GATE_MAX_QUALITY_DROP"))
    gate_min_macro_f1: float = field(metadata=_help(
        "Gate: macro-F1 floor on the holdout", "GATE_MIN_MACRO_F1"))
    gate_min_class_recall: float = field(metadata=_help(
        "Gate: every class's recall must reach this", "GATE_MIN_CLASS_RECALL"))
    gate_max_class_recall_drop: float = field(metadata=_help(
        "Gate: largest recall drop of any class against the live version",
        "GATE_MAX_CLASS_RECALL_DROP"))
    gate_max_p95_ms: float = field(metadata=_help(
        "Gate: single-message p95 latency limit in milliseconds", "GATE_MAX_P95_MS"))
    canary_percent: int = field(metadata=_help(
        "Traffic share for a canary started without --percent", "CANARY_PERCENT"))
    auto_promote: bool = field(metadata=_help(
        "Promote a retrain's canary by itself once its live figures are not worse",
        "AUTO_PROMOTE"))
    auto_promote_min_ratings: int = field(metadata=_help(
        "AUTO_PROMOTE waits for this many rated canary requests", "AUTO_PROMOTE_MIN_RATINGS"))
    auto_promote_margin: float = field(metadata=_help(
        "AUTO_PROMOTE: how far the canary's thumbs-up rate may trail live's (0.02 = 2 points)",
        "AUTO_PROMOTE_MARGIN"))
    feedback_holdout_share: float = field(metadata=_help(
        "Share of reviewed feedback held back from retraining to evaluate on",
        "FEEDBACK_HOLDOUT_SHARE"))
    admin_token: str = field(repr=False, metadata=_help(
        "Secret that unlocks lifecycle actions in the UI; empty disables them", "ADMIN_TOKEN"))
    api_keys: str = field(repr=False, metadata=_help(
        "REST API keys, comma-separated `id:secret` or plain secrets (more in the database: "
        "`python -m classifier keys create NAME`)", "API_KEYS"))
    admin_users: tuple[str, ...] = field(metadata=_help(
        "Hugging Face user names (comma-separated) who are admins when they sign in on a Space",
        "ADMIN_USERS"))
    reviewer_users: tuple[str, ...] = field(metadata=_help(
        "Hugging Face user names (comma-separated) who are reviewers when they sign in on a "
        "Space; anyone else signed in is an agent", "REVIEWER_USERS"))
    sign_in_hours: float = field(metadata=_help(
        "How long a sign-in to the web UI lasts", "SIGN_IN_HOURS"))
    ui_rate_limit_per_minute: int = field(metadata=_help(
        "Web UI calls per minute allowed per client address, or per signed-in person "
        "(0 = no limit)", "UI_RATE_LIMIT_PER_MINUTE"))
    ui_rate_limit_burst: int = field(metadata=_help(
        "Web UI calls a client may send at once before the per-minute rate applies",
        "UI_RATE_LIMIT_BURST"))
    ui_sessions_max: int = field(metadata=_help(
        "Web UI sessions kept in memory at most (least recently used dropped first)",
        "UI_SESSIONS_MAX"))
    ui_session_idle_minutes: float = field(metadata=_help(
        "A web UI session idle this long is dropped from memory", "UI_SESSION_IDLE_MINUTES"))
    temp_file_minutes: float = field(metadata=_help(
        "Uploaded and generated files (Batch and Review CSVs) are deleted after this many "
        "minutes", "TEMP_FILE_MINUTES"))
    rate_limit_per_minute: int = field(metadata=_help(
        "REST requests per minute allowed per API key (token refill rate; 0 = no limit)",
        "RATE_LIMIT_PER_MINUTE"))
    rate_limit_burst: int = field(metadata=_help(
        "REST requests an API key may send at once before the per-minute rate applies",
        "RATE_LIMIT_BURST"))
    max_body_bytes: int = field(metadata=_help(
        "Largest REST request body accepted, in bytes", "MAX_BODY_BYTES"))
    batch_max_texts: int = field(metadata=_help(
        "Most texts in one POST /api/v1/predict/batch request", "BATCH_MAX_TEXTS"))
    batch_max_rows: int = field(metadata=_help(
        "Most rows in one CSV of the Batch tab", "BATCH_MAX_ROWS"))
    retention_days: int = field(metadata=_help(
        "Delete predictions and feedback older than this many days; 0 keeps them forever",
        "RETENTION_DAYS"))
    retention_check_hours: float = field(metadata=_help(
        "How often the app applies RETENTION_DAYS", "RETENTION_CHECK_HOURS"))
    drift_window_requests: int = field(metadata=_help(
        "Drift looks at this many newest answered requests", "DRIFT_WINDOW_REQUESTS"))
    drift_term_min_messages: int = field(metadata=_help(
        "A surging term is shown only once this many different messages contain it, so no "
        "single customer's name or number appears", "DRIFT_TERM_MIN_MESSAGES"))
    alert_webhook_url: str = field(repr=False, metadata=_help(
        "POST each alert opening/resolving as JSON here (empty: off)", "ALERT_WEBHOOK_URL"))
    alert_check_seconds: float = field(metadata=_help(
        "How often the app evaluates the alert rules", "ALERT_CHECK_SECONDS"))
    alert_window_minutes: int = field(metadata=_help(
        "Window of the error, rejection and latency rules", "ALERT_WINDOW_MINUTES"))
    alert_min_requests: int = field(metadata=_help(
        "Fewer requests than this in the window never fire a rate rule", "ALERT_MIN_REQUESTS"))
    alert_error_rate: float = field(metadata=_help(
        "Alert when this share of requests fails", "ALERT_ERROR_RATE"))
    alert_rejection_rate: float = field(metadata=_help(
        "Alert when this share of requests is rejected", "ALERT_REJECTION_RATE"))
    alert_p95_ms: float = field(metadata=_help(
        "Alert when p95 latency exceeds this (ms)", "ALERT_P95_MS"))
    alert_negative_feedback_rate: float = field(metadata=_help(
        "Alert when this share of the last day's ratings is thumbs-down",
        "ALERT_NEGATIVE_FEEDBACK_RATE"))
    alert_min_ratings: int = field(metadata=_help(
        "Fewer ratings than this never fire the feedback rule", "ALERT_MIN_RATINGS"))
    alert_traffic_drop: float = field(metadata=_help(
        "Alert when the last hour's traffic falls below this share of the 7-day hourly mean",
        "ALERT_TRAFFIC_DROP"))
    server_name: str = field(metadata=_help("Host the app listens on", "GRADIO_SERVER_NAME"))
    server_port: int = field(
        metadata=_help("Port (GRADIO_SERVER_PORT, else PORT)", "GRADIO_SERVER_PORT")
    )
    space_id: str = field(metadata=_help(
        "Set by Hugging Face Spaces: the app runs on a Space", "SPACE_ID"))
    oauth_client_id: str = field(metadata=_help(
        "Set by Spaces when the README front matter has `hf_oauth: true`: Sign in with "
        "Hugging Face is on", "OAUTH_CLIENT_ID"))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'support_triage.db'}"

    @property
    def upgrades_schema_at_start(self) -> bool:
        """DB_AUTO_UPGRADE with "auto" resolved: a single-process SQLite install upgrades
        itself; on PostgreSQL an operator runs the upgrade once for all replicas."""
        if self.db_auto_upgrade == "auto":
            return self.effective_database_url.startswith("sqlite")
        return self.db_auto_upgrade == "1"


def _names(name: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in _env(name, "").split(",") if n.strip())


def load_settings() -> Settings:
    """Read the environment now; raises ValueError naming the setting that is malformed."""
    data_dir = Path(_env("DATA_DIR", "")) if _env("DATA_DIR", "") else _default_data_dir()
    port = os.environ.get("GRADIO_SERVER_PORT", "").strip() or os.environ.get("PORT", "").strip()
    return Settings(
        data_dir=data_dir.expanduser().resolve(),
        database_url=_env("DATABASE_URL", ""),
        redact_pii=_bool("REDACT_PII", True),
        max_text_chars=_int("MAX_TEXT_CHARS", 5000),
        low_confidence=_float("LOW_CONFIDENCE", 0.5),
        model_poll_seconds=_float("MODEL_POLL_SECONDS", 2.0),
        db_busy_timeout_s=_float("DB_BUSY_TIMEOUT", 5.0),
        db_statement_timeout_s=_float("DB_STATEMENT_TIMEOUT", 10.0),
        db_auto_upgrade=_auto_bool("DB_AUTO_UPGRADE"),
        gate_max_quality_drop=_float("GATE_MAX_QUALITY_DROP", 0.02),
        gate_min_macro_f1=_float("GATE_MIN_MACRO_F1", 0.5),
        gate_min_class_recall=_float("GATE_MIN_CLASS_RECALL", 0.5),
        gate_max_class_recall_drop=_float("GATE_MAX_CLASS_RECALL_DROP", 0.15),
        gate_max_p95_ms=_float("GATE_MAX_P95_MS", 50.0),
        canary_percent=_int("CANARY_PERCENT", 10),
        auto_promote=_bool("AUTO_PROMOTE", False),
        auto_promote_min_ratings=_int("AUTO_PROMOTE_MIN_RATINGS", 50),
        auto_promote_margin=_float("AUTO_PROMOTE_MARGIN", 0.02),
        feedback_holdout_share=_float("FEEDBACK_HOLDOUT_SHARE", 0.2),
        admin_token=os.environ.get("ADMIN_TOKEN", ""),
        api_keys=os.environ.get("API_KEYS", "").strip(),
        admin_users=_names("ADMIN_USERS"),
        reviewer_users=_names("REVIEWER_USERS"),
        sign_in_hours=_float("SIGN_IN_HOURS", 12.0),
        ui_rate_limit_per_minute=_int("UI_RATE_LIMIT_PER_MINUTE", 300),
        ui_rate_limit_burst=_int("UI_RATE_LIMIT_BURST", 60),
        ui_sessions_max=_int("UI_SESSIONS_MAX", 200),
        ui_session_idle_minutes=_float("UI_SESSION_IDLE_MINUTES", 30.0),
        temp_file_minutes=_float("TEMP_FILE_MINUTES", 10.0),
        rate_limit_per_minute=_int("RATE_LIMIT_PER_MINUTE", 600),
        rate_limit_burst=_int("RATE_LIMIT_BURST", 60),
        max_body_bytes=_int("MAX_BODY_BYTES", 1024 * 1024),
        batch_max_texts=_int("BATCH_MAX_TEXTS", 100),
        batch_max_rows=_int("BATCH_MAX_ROWS", 10_000),
        retention_days=_int("RETENTION_DAYS", 0),
        retention_check_hours=_float("RETENTION_CHECK_HOURS", 6.0),
        drift_window_requests=_int("DRIFT_WINDOW_REQUESTS", 300),
        drift_term_min_messages=_int("DRIFT_TERM_MIN_MESSAGES", 5),
        alert_webhook_url=os.environ.get("ALERT_WEBHOOK_URL", "").strip(),
        alert_check_seconds=_float("ALERT_CHECK_SECONDS", 60.0),
        alert_window_minutes=_int("ALERT_WINDOW_MINUTES", 15),
        alert_min_requests=_int("ALERT_MIN_REQUESTS", 20),
        alert_error_rate=_float("ALERT_ERROR_RATE", 0.05),
        alert_rejection_rate=_float("ALERT_REJECTION_RATE", 0.25),
        alert_p95_ms=_float("ALERT_P95_MS", 500.0),
        alert_negative_feedback_rate=_float("ALERT_NEGATIVE_FEEDBACK_RATE", 0.5),
        alert_min_ratings=_int("ALERT_MIN_RATINGS", 10),
        alert_traffic_drop=_float("ALERT_TRAFFIC_DROP", 0.2),
        server_name=_env("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(port) if port.isdigit() else 7860,
        space_id=_env("SPACE_ID", ""),
        oauth_client_id=_env("OAUTH_CLIENT_ID", ""),
    )


def describe_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """(environment variable, current value, help) for each setting, secrets masked."""
    rows = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        value = ",".join(value) if f.name in LIST_FIELDS else str(value)
        if f.name == "database_url" and "@" in value:
            value = value.split("://", 1)[0] + "://***@" + value.rsplit("@", 1)[1]
        if f.name in SECRET_FIELDS:
            value = "(set)" if value else "(not set)"
        rows.append((f.metadata["env"], value, f.metadata["help"]))
    return rows


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that give a child process exactly these settings."""
    env = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, bool):
            value = "1" if value else "0"
        env[f.metadata["env"]] = ",".join(value) if f.name in LIST_FIELDS else str(value)
    return env
