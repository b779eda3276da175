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
    """The target cannot serve anyone right now (bad credentials, an account out of credit,
    unknown model, unsupported feature): do not retry it, fall back to the next one."""

    REQUEST = "request"
    """The request itself is at fault (400-class validation, or a body that could not even be
    encoded for the upstream): every target would refuse it, so the client gets the error at
    once, and no target is blamed for it (its cooldown is untouched)."""


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
    if status in (401, 402, 403, 404):
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


def unencodable(detail: str) -> ProviderError:
    """The request could not be turned into the upstream's wire format (a value its JSON cannot
    carry): raised before the upstream is contacted, so it is the request's fault, never the
    target's. Adapters raise this around body encoding rather than let it pass for malformed."""
    return ProviderError(
        f"the request cannot be encoded for the upstream: {detail}",
        kind=ErrorKind.REQUEST,
        status=400,
        code="request_unencodable",
    )


def timed_out(stage: str) -> ProviderError:
    return ProviderError(
        f"upstream timed out ({stage})", kind=ErrorKind.RETRYABLE, code=f"timeout_{stage}"
    )


def unless_too_soon(
    error: ProviderError, elapsed_s: float, shortest_timeout_s: float
) -> ProviderError:
    """A "timeout" reported before any timeout the gateway set could have expired is a dropped
    connection in disguise (some HTTP clients map a server disconnect onto a timeout class): a
    bad gateway to the client, not a 504 "timed out" after a tenth of a second."""
    if error.code.startswith("timeout") and elapsed_s < shortest_timeout_s * 0.9:
        return connection_failed("the upstream closed the connection")
    return error


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
