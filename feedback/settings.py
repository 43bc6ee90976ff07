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
    admin_token: str = field(repr=False, metadata=_help(
        "Secret that unlocks lifecycle actions in the UI; empty disables them", "ADMIN_TOKEN"))
    server_name: str = field(metadata=_help("Host the app listens on", "GRADIO_SERVER_NAME"))
    server_port: int = field(
        metadata=_help("Port (GRADIO_SERVER_PORT, else PORT)", "GRADIO_SERVER_PORT")
    )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'support_triage.db'}"


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
        gate_max_quality_drop=_float("GATE_MAX_QUALITY_DROP", 0.02),
        gate_min_macro_f1=_float("GATE_MIN_MACRO_F1", 0.5),
        gate_min_class_recall=_float("GATE_MIN_CLASS_RECALL", 0.5),
        gate_max_class_recall_drop=_float("GATE_MAX_CLASS_RECALL_DROP", 0.15),
        gate_max_p95_ms=_float("GATE_MAX_P95_MS", 50.0),
        canary_percent=_int("CANARY_PERCENT", 10),
        admin_token=os.environ.get("ADMIN_TOKEN", ""),
        server_name=_env("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(port) if port.isdigit() else 7860,
    )


def describe_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """(environment variable, current value, help) for each setting, secrets masked."""
    rows = []
    for f in fields(settings):
        value = str(getattr(settings, f.name))
        if f.name == "database_url" and "@" in value:
            value = value.split("://", 1)[0] + "://***@" + value.rsplit("@", 1)[1]
        if f.name == "admin_token":
            value = "(set)" if value else "(not set)"
        rows.append((f.metadata["env"], value, f.metadata["help"]))
    return rows

