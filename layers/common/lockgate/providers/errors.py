"""The error taxonomy every provider maps its failures onto.

The fallback executor decides from `ErrorKind` alone, so each provider adapter translates its
SDK's exceptions here once and nothing above it ever inspects an SDK exception.
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    RETRYABLE = "retryable"
    """Transient: 408/409/425/429/5xx, timeouts, connection errors, a cut or stalled stream.
    Retry the same target after a backoff, then fall back."""

    TARGET = "target"
    """The target cannot serve anyone right now (bad credentials, unknown model, unsupported
    feature): do not retry it, fall back to the next one."""

    REQUEST = "request"
    """The request itself is at fault (400-class validation): every target would refuse it,
    so the client gets the error at once."""


class ProviderError(Exception):
    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        status: int | None = None,
        code: str = "upstream_error",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind is ErrorKind.RETRYABLE


def kind_for_status(status: int) -> ErrorKind:
    if status in (408, 409, 425, 429) or status >= 500:
        return ErrorKind.RETRYABLE
    if status in (401, 403, 404):
        return ErrorKind.TARGET
    return ErrorKind.REQUEST


def from_status(status: int, message: str, retry_after: float | None = None) -> ProviderError:
    return ProviderError(
        message,
        kind=kind_for_status(status),
        status=status,
        code=f"upstream_{status}",
        retry_after=retry_after,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header value; None when absent or a date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def timed_out(stage: str) -> ProviderError:
    return ProviderError(
        f"upstream timed out ({stage})", kind=ErrorKind.RETRYABLE, code=f"timeout_{stage}"
    )


def connection_failed(detail: str) -> ProviderError:
    return ProviderError(
        f"could not reach upstream: {detail}", kind=ErrorKind.RETRYABLE, code="connection_error"
    )


def stream_cut() -> ProviderError:
    return ProviderError(
        "upstream stream ended before its final chunk", kind=ErrorKind.RETRYABLE, code="stream_cut"
    )


def malformed(detail: str) -> ProviderError:
    return ProviderError(
        f"upstream sent a malformed response: {detail}",
        kind=ErrorKind.RETRYABLE,
        code="malformed_upstream",
    )


def unexpected(exc: BaseException) -> ProviderError:
    """A provider adapter let a foreign exception through: still an upstream failure to the
    client (and worth trying elsewhere), never an unhandled 500."""
    return ProviderError(
        f"upstream adapter failed: {type(exc).__name__}",
        kind=ErrorKind.RETRYABLE,
        code="provider_error",
    )
