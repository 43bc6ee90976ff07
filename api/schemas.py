"""Request and response bodies of the REST API. Unknown fields are refused (422), so a
typo such as `"txt"` is an error instead of an empty request."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

# The longest request id we issue is 32 hex digits; a little slack for other formats.
MAX_REQUEST_ID_CHARS = 64


def _valid_unicode(value: str) -> str:
    # JSON may carry "\ud800" escapes that decode to lone surrogates: valid JSON, but not
    # text that UTF-8 (or the database) can hold.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid_utf8", "text is not valid Unicode") from None
    return value


UnicodeText = Annotated[str, AfterValidator(_valid_unicode)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(Strict):
    text: UnicodeText = Field(description="The customer's message (at most MAX_TEXT_CHARS "
                              "characters after trimming).",
                              examples=["I was charged twice for one coffee"])


class PredictResponse(BaseModel):
    request_id: str = Field(description="Quote it to rate the answer via /api/v1/feedback")
    label: str
    confidence: float
    scores: dict[str, float] = Field(description="Every category's probability, highest first")
    model_version: int
    latency_ms: float
    verdict: Literal["confident", "unsure", "off_topic"] = Field(
        description="How far to trust `label`: `off_topic` when the message does not look "
        "like a support request (a greeting, thanks, small talk), `unsure` below the "
        "LOW_CONFIDENCE setting (a person should check), else `confident`")


class BatchRequest(Strict):
    texts: list[UnicodeText] = Field(min_length=1, description="At most BATCH_MAX_TEXTS "
                                     "messages; each is classified and logged on its own.")


class ItemError(BaseModel):
    code: str
    message: str


class BatchItem(BaseModel):
    index: int
    result: PredictResponse | None = None
    error: ItemError | None = None


class BatchResponse(BaseModel):
    items: list[BatchItem]
    ok: int
    failed: int


class FeedbackRequest(Strict):
    request_id: UnicodeText = Field(min_length=1, max_length=MAX_REQUEST_ID_CHARS)
    verdict: Literal["up", "down"]
    correct_label: UnicodeText | None = Field(default=None, max_length=200,
                                              description="With 'down': the right category")
    comment: UnicodeText | None = Field(default=None, max_length=1000)


class FeedbackResponse(BaseModel):
    request_id: str
    verdict: str
    correct_label: str | None
    comment: str | None
    changed: bool = Field(description="True when an earlier rating was replaced")


class HealthResponse(BaseModel):
    status: str
    model_version: int | None = None
    message: str | None = None


class ModelInfo(BaseModel):
    version: int
    status: str
    created_at: str
    accuracy: float
    macro_f1: float
    n_train: int
    n_test: int
    labels: int
    taxonomy: str | None
    sha256: str
    gate_passed: bool | None


class ModelsResponse(BaseModel):
    live_version: int | None
    canary_version: int | None
    versions: list[ModelInfo]


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable, e.g. invalid_api_key, too_long")
    message: str = Field(description="What went wrong and what to do, for a person")
    request_id: str | None = Field(default=None,
                                   description="Id of the rejected row in the prediction log")


class ErrorBody(BaseModel):
    error: ErrorDetail
