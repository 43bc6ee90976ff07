"""All settings, declared once: environment variable, default, bounds and help in one field.

Each setting has a default that is safe for a single-user SQLite install; `python -m
classifier settings` prints them, and feedback/settings_doc.py writes docs/SETTINGS.md's table.
`load_settings()` reads the environment and refuses bad values with one `SettingsError`
naming every one of them; `Settings(...)` built in code reads no environment at all.
Secrets are only ever read from the environment and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict, Unpack, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from feedback.errors import SupportTriageError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
# Shorter API_KEYS secrets are guessable; `python -m classifier keys create` makes 43-character
# ones. api/auth.py checks the same at run time.
MIN_API_KEY_CHARS = 16
# How a secret shows in `settings` output and in error messages.
SET, NOT_SET = "(set)", "(not set)"
NOT_ON_OFF = "not on/off"  # the reason of a bad boolean; the message then says what is allowed


class SettingsError(SupportTriageError, ValueError):
    """One or more settings are malformed or out of range; the message names each variable,
    its value (secrets hidden) and what is allowed."""


def _default_data_dir() -> Path:
    """`/data` when it exists and is writable (a Space's persistent volume), else `./data`."""
    mounted = Path("/data")
    if mounted.is_dir() and os.access(mounted, os.W_OK):
        return mounted
    return Path("data").resolve()


def _on_off(value: object) -> object:
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError(NOT_ON_OFF)
    return value


def _auto_on_off(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    value = _on_off(value)
    return ("1" if value else "0") if isinstance(value, bool) else value


def _names(value: object) -> object:
    if isinstance(value, str):
        return tuple(n.strip() for n in value.split(",") if n.strip())
    return value


def _check_api_keys(raw: str) -> str:
    """Entries are `id:secret` or plain secrets; a message names an entry by position only,
    and names the variable itself (load_settings shows it as it is)."""
    for position, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        secret = entry.partition(":")[2] if ":" in entry else entry
        if entry and len(secret.strip()) < MIN_API_KEY_CHARS:
            raise ValueError(f"API_KEYS entry {position}: the secret is shorter than "
                             f"{MIN_API_KEY_CHARS} characters; use a long random key")
    return raw


def _absolute(path: Path) -> Path:
    return path.expanduser().resolve()


def _csv_file(env: str) -> AfterValidator:
    """Empty (the bundled file), or an existing file made absolute: a wrong path stops
    start-up, not the first retrain someone starts."""
    def check(value: str) -> str:
        if value and not Path(value).expanduser().is_file():
            raise ValueError(f"setting {env}={value!r} is not an existing file")
        return str(Path(value).expanduser().resolve()) if value else ""
    return AfterValidator(check)


OnOff = Annotated[bool, BeforeValidator(_on_off)]
AutoOnOff = Annotated[Literal["auto", "1", "0"], BeforeValidator(_auto_on_off)]
Names = Annotated[tuple[str, ...], BeforeValidator(_names)]
ApiKeys = Annotated[str, AfterValidator(_check_api_keys)]
Folder = Annotated[Path, AfterValidator(_absolute)]


class Bounds(TypedDict, total=False):
    """The bounds a numeric setting may have (pydantic's Field keywords)."""

    ge: float
    gt: float
    le: float
    lt: float


def setting(default: Any, env: str | tuple[str, ...], help_text: str, *,
            secret: bool | Literal["password"] = False, default_text: str = "",
            **bounds: Unpack[Bounds]) -> Any:
    """One setting: its default, environment variable(s) (the first set one wins), a line of
    help and bounds (ge, gt, le, lt). `secret=True` is never shown; "password" shows a URL
    without its password. `default_text` describes a default computed at start-up."""
    names = (env,) if isinstance(env, str) else env
    extra: dict[str, Any] = {"secret": secret, "default_text": default_text}
    if callable(default):
        return Field(default_factory=default, description=help_text, repr=not secret,
                     validation_alias=AliasChoices(*names), json_schema_extra=extra, **bounds)
    return Field(default, description=help_text, repr=not secret,
                 validation_alias=AliasChoices(*names), json_schema_extra=extra, **bounds)


@dataclass(frozen=True, config=ConfigDict(validate_by_name=True, validate_by_alias=True,
                                          extra="forbid", allow_inf_nan=False,
                                          hide_input_in_errors=True))  # secrets stay out
class Settings:
    """One immutable, validated snapshot of the configuration."""

    data_dir: Folder = setting(
        _default_data_dir, "DATA_DIR",
        "Folder of the SQLite database, and of caches the app rebuilds by itself: the "
        "encoder's derived graph and cached vectors (`encoders/`), the off-topic detector's "
        "fit (`off_topic_detector.json`)", default_text="`/data` if writable, else `./data`")
    database_url: str = setting(
        "", "DATABASE_URL", "SQLAlchemy URL, e.g. `postgresql+psycopg://user:pass@host/db`; "
        "empty means SQLite in DATA_DIR", secret="password")
    redact_pii: OnOff = setting(
        True, "REDACT_PII", "Redact e-mails, phones, cards, IBANs before storage and prediction")
    max_text_chars: int = setting(
        5000, "MAX_TEXT_CHARS", "Longest message accepted, in characters", ge=1)
    low_confidence: float = setting(
        0.5, "LOW_CONFIDENCE", "Below this confidence the UI asks for a human check", ge=0, le=1)
    model_poll_seconds: float = setting(
        2.0, "MODEL_POLL_SECONDS", "How often a process checks which version is live", gt=0)
    db_busy_timeout_s: float = setting(
        5.0, "DB_BUSY_TIMEOUT", "Seconds SQLite waits for a lock before a clear error", gt=0)
    db_statement_timeout_s: float = setting(
        10.0, "DB_STATEMENT_TIMEOUT", "PostgreSQL: longest a single statement may run, in "
        "seconds", gt=0)
    db_auto_upgrade: AutoOnOff = setting(
        "auto", "DB_AUTO_UPGRADE",
        "Upgrade an older database schema at start-up: auto (yes on SQLite, no on PostgreSQL, "
        "where replicas start together; run `python -m classifier db upgrade`), 1 or 0")
    gate_max_quality_drop: float = setting(
        0.02, "GATE_MAX_QUALITY_DROP", "Gate: largest macro-F1 drop allowed against the live "
        "version", ge=0, le=1)
    gate_min_macro_f1: float = setting(
        0.5, "GATE_MIN_MACRO_F1", "Gate: macro-F1 floor on the holdout", ge=0, le=1)
    gate_min_class_recall: float = setting(
        0.5, "GATE_MIN_CLASS_RECALL", "Gate: every class's recall must reach this", ge=0, le=1)
    gate_max_class_recall_drop: float = setting(
        0.15, "GATE_MAX_CLASS_RECALL_DROP", "Gate: largest recall drop of any class against the "
        "live version", ge=0, le=1)
    gate_max_p95_ms: float = setting(
        50.0, "GATE_MAX_P95_MS", "Gate: single-message p95 latency limit in milliseconds", gt=0)
    # The bounds are registry.MIN_CANARY_PERCENT and MAX_CANARY_PERCENT (a test checks).
    canary_percent: int = setting(
        10, "CANARY_PERCENT", "Traffic share for a canary started without --percent (also a "
        "retrain's canary)", ge=1, le=50)
    auto_promote: OnOff = setting(
        False, "AUTO_PROMOTE", "Promote a retrain's canary by itself once its live figures are "
        "not worse")
    auto_promote_min_ratings: int = setting(
        50, "AUTO_PROMOTE_MIN_RATINGS", "AUTO_PROMOTE waits for this many rated canary requests",
        ge=1)
    auto_promote_margin: float = setting(
        0.02, "AUTO_PROMOTE_MARGIN", "AUTO_PROMOTE: how far the canary's thumbs-up rate may "
        "trail live's (0.02 = 2 points)", ge=0, le=1)
    feedback_holdout_share: float = setting(
        0.2, "FEEDBACK_HOLDOUT_SHARE", "Share of reviewed feedback held back from retraining to "
        "evaluate on", ge=0, lt=1)
    retrain_data: Annotated[str, _csv_file("RETRAIN_DATA")] = setting(
        "", "RETRAIN_DATA", "Base training CSV (text, category) a feedback retrain adds the "
        "reviewed messages to, from the UI or the CLI; empty: the bundled Banking77 train.csv")
    retrain_test_data: Annotated[str, _csv_file("RETRAIN_TEST_DATA")] = setting(
        "", "RETRAIN_TEST_DATA", "Fixed test CSV a retrain scores challenger and live on; "
        "empty: the bundled Banking77 test.csv")
    admin_token: str = setting(
        "", "ADMIN_TOKEN", "Secret that unlocks lifecycle actions in the UI (user `admin`) and "
        "the REST export; empty disables them", secret=True)
    api_keys: ApiKeys = setting(
        "", "API_KEYS", "REST API keys, comma-separated `id:secret` or plain secrets (id = first "
        "8 hex of the secret's sha256; more in the database: `python -m classifier keys create "
        f"NAME`); each secret at least {MIN_API_KEY_CHARS} characters", secret=True)
    admin_users: Names = setting(
        (), "ADMIN_USERS", "Hugging Face user names (comma-separated) who are admins when they "
        "sign in on a Space")
    reviewer_users: Names = setting(
        (), "REVIEWER_USERS", "Hugging Face user names (comma-separated) who are reviewers when "
        "they sign in on a Space; anyone else signed in is an agent")
    sign_in_hours: float = setting(
        12.0, "SIGN_IN_HOURS", "How long a sign-in to the web UI lasts", gt=0)
    ui_rate_limit_per_minute: int = setting(
        300, "UI_RATE_LIMIT_PER_MINUTE", "Web UI calls per minute allowed per client address, "
        "or per signed-in person (0 = no limit)", ge=0)
    ui_rate_limit_burst: int = setting(
        60, "UI_RATE_LIMIT_BURST", "Web UI calls a client may send at once before the "
        "per-minute rate applies", ge=1)
    ui_sessions_max: int = setting(
        200, "UI_SESSIONS_MAX", "Web UI sessions kept in memory at most (least recently used "
        "dropped first)", ge=1)
    ui_session_idle_minutes: float = setting(
        30.0, "UI_SESSION_IDLE_MINUTES", "A web UI session idle this long is dropped from "
        "memory", gt=0)
    temp_file_minutes: float = setting(
        10.0, "TEMP_FILE_MINUTES", "Uploaded and generated files (Batch and Review CSVs) are "
        "deleted after this many minutes", gt=0)
    rate_limit_per_minute: int = setting(
        600, "RATE_LIMIT_PER_MINUTE", "REST requests per minute allowed per API key (token "
        "refill rate; 0 = no limit)", ge=0)
    rate_limit_burst: int = setting(
        60, "RATE_LIMIT_BURST", "REST requests an API key may send at once before the "
        "per-minute rate applies", ge=1)
    max_body_bytes: int = setting(
        1024 * 1024, "MAX_BODY_BYTES", "Largest REST request body accepted, in bytes", ge=1)
    batch_max_texts: int = setting(
        100, "BATCH_MAX_TEXTS", "Most texts in one POST /api/v1/predict/batch request", ge=1)
    batch_max_rows: int = setting(
        10_000, "BATCH_MAX_ROWS", "Most rows in one CSV of the Batch tab", ge=1)
    retention_days: int = setting(
        0, "RETENTION_DAYS", "Delete predictions and feedback older than this many days; 0 "
        "keeps them forever", ge=0)
    retention_check_hours: float = setting(
        6.0, "RETENTION_CHECK_HOURS", "How often the app applies RETENTION_DAYS", gt=0)
    drift_window_requests: int = setting(
        300, "DRIFT_WINDOW_REQUESTS", "Drift looks at this many newest answered requests", ge=1)
    drift_term_min_messages: int = setting(
        5, "DRIFT_TERM_MIN_MESSAGES", "A surging term is shown only once this many different "
        "messages contain it, so no single customer's name or number appears", ge=1)
    alert_webhook_url: str = setting(
        "", "ALERT_WEBHOOK_URL", "POST each alert opening/resolving as JSON here (empty: off)",
        secret=True)
    alert_check_seconds: float = setting(
        60.0, "ALERT_CHECK_SECONDS", "How often the app evaluates the alert rules (and folds "
        "rollups)", gt=0)
    alert_window_minutes: int = setting(
        15, "ALERT_WINDOW_MINUTES", "Window of the error, rejection and latency rules", ge=1)
    alert_min_requests: int = setting(
        20, "ALERT_MIN_REQUESTS", "Fewer requests than this in the window never fire a rate "
        "rule", ge=1)
    alert_error_rate: float = setting(
        0.05, "ALERT_ERROR_RATE", "Alert when this share of requests fails", ge=0, le=1)
    alert_rejection_rate: float = setting(
        0.25, "ALERT_REJECTION_RATE", "Alert when this share of requests is rejected", ge=0, le=1)
    alert_p95_ms: float = setting(
        500.0, "ALERT_P95_MS", "Alert when p95 latency exceeds this (ms)", gt=0)
    alert_negative_feedback_rate: float = setting(
        0.5, "ALERT_NEGATIVE_FEEDBACK_RATE", "Alert when this share of the last day's ratings "
        "is thumbs-down", ge=0, le=1)
    alert_min_ratings: int = setting(
        10, "ALERT_MIN_RATINGS", "Fewer ratings than this never fire the feedback rule", ge=1)
    alert_traffic_drop: float = setting(
        0.2, "ALERT_TRAFFIC_DROP", "Alert when the last hour's traffic falls below this share "
        "of the 7-day hourly mean", ge=0, le=1)
    server_name: str = setting(
        "127.0.0.1", "GRADIO_SERVER_NAME", "Host the app listens on (Spaces set `0.0.0.0`)")
    server_port: int = setting(
        7860, ("GRADIO_SERVER_PORT", "PORT"), "Port the app listens on", ge=1, le=65535)
    space_id: str = setting(
        "", "SPACE_ID", "Set by Hugging Face Spaces: the app runs on a Space")
    oauth_client_id: str = setting(
        "", "OAUTH_CLIENT_ID", "Set by Spaces when the README front matter has `hf_oauth: "
        "true`: Sign in with Hugging Face is on")

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


def declared_settings() -> Iterator[tuple[str, FieldInfo, tuple[str, ...]]]:
    """(attribute, declaration, environment variables) of every setting, in order."""
    for name, info in Settings.__pydantic_fields__.items():  # type: ignore[attr-defined]  # set by @dataclass
        alias = info.validation_alias
        assert isinstance(alias, AliasChoices)
        yield name, info, tuple(str(choice) for choice in alias.choices)


def setting_extra(info: FieldInfo, key: str) -> Any:
    extra = info.json_schema_extra
    return extra.get(key) if isinstance(extra, dict) else None


# Every environment variable a setting is read from (tests and benchmarks clear them).
SETTING_ENV_NAMES = frozenset(n for _, _, names in declared_settings() for n in names)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment (or `environ`) now: the first set variable of a setting wins, an
    empty one means the default. Raises SettingsError naming every malformed setting."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    given: dict[str, str] = {}  # attribute -> the variable it was read from
    for name, _, names in declared_settings():
        for env in names:
            raw = environ.get(env, "").strip()
            if raw:
                values[name], given[name] = raw, env
                break
    try:
        return Settings(**values)  # type: ignore[arg-type]  # strings, which pydantic parses
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            info = Settings.__pydantic_fields__.get(name)  # type: ignore[attr-defined]  # by @dataclass
            if info is None or name not in values:  # a default is refused: a bug, not a setting
                raise
            problems.append(_problem(given[name], info, values[name], error))
        message = "; ".join(problems)
        raise SettingsError(message[0].upper() + message[1:] + ".") from None


def _problem(env: str, info: FieldInfo, raw: str, error: Any) -> str:
    secret = setting_extra(info, "secret")
    shown = f"{env} {SET}" if secret is True else f"{env}={_shown(info, raw)!r}"
    reason = str(error.get("ctx", {}).get("error", "")) if error["type"] == "value_error" else ""
    if reason and reason != NOT_ON_OFF:
        return reason
    return f"setting {shown} is not {expected(info)}"


def expected(info: FieldInfo) -> str:
    """What a setting accepts, in words: "a whole number from 1 to 65535"."""
    annotation = info.annotation
    if annotation is bool:
        return "on/off (1 or 0)"
    if annotation in (int, float):
        noun = "a whole number" if annotation is int else "a number"
        return f"{noun}{_range(info)}"
    if annotation is Path:
        return "a folder"
    if get_origin(annotation) is Literal:
        values = [str(v) for v in get_args(annotation)]
        return ", ".join(values[:-1]) + " or " + values[-1]
    if get_origin(annotation) is tuple:
        return "comma-separated names"
    return "text"


def _bounds(info: FieldInfo) -> dict[str, float]:
    found: dict[str, float] = {}
    for item in info.metadata:
        for kind in (Ge, Gt, Le, Lt):
            if isinstance(item, kind):
                key = kind.__name__.lower()
                found[key] = getattr(item, key)
    return found


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(info: FieldInfo) -> str:
    b = _bounds(info)
    low, high = b.get("ge"), b.get("le")
    if low is not None and high is not None:
        return f" from {_number(low)} to {_number(high)}"
    parts = []
    if low is not None:
        parts.append(f"of at least {_number(low)}")
    if "gt" in b:
        parts.append(f"above {_number(b['gt'])}")
    if high is not None:
        parts.append(f"of at most {_number(high)}")
    if "lt" in b:
        parts.append(f"below {_number(b['lt'])}")
    return " " + " and ".join(parts) if parts else ""


def _shown(info: FieldInfo, value: object) -> str:
    """A value as it may be printed: secrets as (set)/(not set), URLs without a password."""
    text = ",".join(value) if isinstance(value, tuple) else str(value)
    secret = setting_extra(info, "secret")
    if secret == "password":
        if "@" in text:
            return text.split("://", 1)[0] + "://***@" + text.rsplit("@", 1)[1]
        return text
    if secret:
        return SET if text else NOT_SET
    return text


def env_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return ",".join(value) if isinstance(value, tuple) else str(value)


def describe_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """(environment variable, current value, help) for each setting, secrets masked."""
    rows = []
    for name, info, names in declared_settings():
        help_text = info.description or ""
        if len(names) > 1:
            help_text += f" ({', else '.join(names)})"
        rows.append((names[0], _shown(info, getattr(settings, name)), help_text))
    return rows


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that give a child process exactly these settings."""
    return {names[0]: env_text(getattr(settings, name)) for name, _, names in declared_settings()}
