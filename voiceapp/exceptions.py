"""One DRF exception handler: every API error is ``{"code", "message"}`` with a 4xx."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from voiceapp.errors import AppError, ErrorCode

_DRF_CODES = {
    exceptions.NotAuthenticated: ErrorCode.AUTH_FAILED,
    exceptions.AuthenticationFailed: ErrorCode.AUTH_FAILED,
    exceptions.PermissionDenied: ErrorCode.AUTH_FAILED,
    exceptions.NotFound: ErrorCode.SESSION_NOT_FOUND,
    exceptions.Throttled: ErrorCode.RATE_LIMITED,
    exceptions.UnsupportedMediaType: ErrorCode.BAD_MESSAGE,
    exceptions.ParseError: ErrorCode.BAD_MESSAGE,
    exceptions.ValidationError: ErrorCode.BAD_MESSAGE,
    exceptions.MethodNotAllowed: ErrorCode.BAD_MESSAGE,
}


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_message(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_message(item) for item in detail)
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, AppError):
        response = Response(exc.to_dict(), status=exc.http_status)
        if exc.code == ErrorCode.RATE_LIMITED:
            response["Retry-After"] = str(exc.to_dict().get("retry_after", 1))
        return response
    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next(
        (code for kind, code in _DRF_CODES.items() if isinstance(exc, kind)),
        ErrorCode.BAD_MESSAGE if response.status_code < 500 else ErrorCode.INTERNAL,
    )
    detail = getattr(exc, "detail", str(exc))
    body: dict[str, Any] = {"code": str(code), "message": _message(detail)}
    if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict):
        body["fields"] = detail
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        body["retry_after"] = int(exc.wait) + 1
    response.data = body
    if response.status_code == status.HTTP_403_FORBIDDEN and code == ErrorCode.AUTH_FAILED:
        body["message"] = body["message"] or "not allowed"
    return response
