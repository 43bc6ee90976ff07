"""Every REST error as JSON `{"error": {"code": ..., "message": ...}}`, never a traceback.

`code` is machine-readable and stable; `message` is a sentence for a person. Requests
refused before they reach the prediction service are logged as rejected rows as well.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from feedback.errors import (
    NotAuthorizedError,
    SupportTriageError,
)
from feedback.storage_health import RETRY_AFTER_S

if TYPE_CHECKING:
    from api.rejections import RejectionLog

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_MESSAGE_CHARS = 300  # error messages never echo large inputs back
MAX_LOCATION_CHARS = 40
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
              422: "invalid_request", 429: "rate_limited"}


class ApiError(Exception):
    """A refusal with its HTTP status, machine-readable code and human message."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_json(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message[:MAX_MESSAGE_CHARS], **extra}}


def error_response(status: int, code: str, message: str,
                   headers: Mapping[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(error_json(code, message, **extra), status_code=status, headers=headers)


def describe_validation_error(exc: RequestValidationError) -> tuple[int, str, str]:
    """(status, code, short message) for a request body or parameters that failed validation.

    Names where and what, never the offending value: the input may be a megabyte.
    """
    errors = list(exc.errors())
    if any(e.get("type") in ("invalid_utf8", "string_unicode") for e in errors):
        return 400, "invalid_utf8", ("The request contains text that is not valid Unicode "
                                     "(an unpaired surrogate escape such as \\ud800).")
    parts = []
    for e in errors[:3]:
        where = ".".join(str(p)[:MAX_LOCATION_CHARS] for p in e.get("loc", ())
                         if p not in ("body",))
        if e.get("type") == "json_invalid":
            parts.append("the body is not valid JSON")
        elif not where and e.get("type") in ("model_attributes_type", "dict_type"):
            parts.append("the body must be a JSON object sent with Content-Type: "
                         "application/json")
        elif e.get("type") == "extra_forbidden":
            parts.append(f"unknown field {where!r}")
        else:
            parts.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return 422, "invalid_request", "Invalid request: " + "; ".join(parts) + more + "."


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX + "/")



def install_error_handlers(app: FastAPI, rejections: RejectionLog) -> None:
    """JSON errors for the API routes; requests refused here are logged as rejected rows."""

    async def refuse(request: Request, status: int, code: str, message: str,
                     headers: Mapping[str, str] | None = None) -> JSONResponse:
        request_id = await rejections.record_async(code, message, method=request.method,
                                                   path=request.url.path,
                                                   key_id=getattr(request.state, "api_key_id",
                                                                  None))
        return error_response(status, code, message, headers, request_id=request_id)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> Response:
        if exc.status in (404, 405):
            return error_response(exc.status, exc.code, exc.message, exc.headers)
        return await refuse(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        status, code, message = describe_validation_error(exc)
        return await refuse(request, status, code, message)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        if not _is_api(request):
            return await http_exception_handler(request, exc)
        code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 400:  # FastAPI could not read the body (e.g. nested too deep)
            return await refuse(request, 400, "invalid_request",
                                f"The request body could not be read: {message}")
        return error_response(exc.status_code, code, message, exc.headers)

    @app.exception_handler(SupportTriageError)
    async def on_domain(request: Request, exc: SupportTriageError) -> Response:
        status = exc.http_status
        if isinstance(exc, NotAuthorizedError):  # a wrong admin token is a refused request
            return await refuse(request, status, exc.code, str(exc))
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(status, exc.code, str(exc), headers)

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> Response:
        log.error("unexpected error in %s %s", request.method, request.url.path,
                  exc_info=(type(exc), exc, exc.__traceback__))
        return error_response(500, "internal", "Internal error: it has been logged. Try again, "
                              "and report it if it persists.")

