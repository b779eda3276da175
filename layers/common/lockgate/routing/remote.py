"""Fail-over run outside this process, and the contract between its parts.

A remote executor (in AWS: the Step Functions state machine compiled from the policy by
`infra/stepfunctions.py`) performs the same retries and fallback as `FallbackExecutor`, one
provider call per task. The three parts that meet here — the compiler, the attempt handler that
makes each call, and the adapter that starts the run — share only this module: the error names
a failed attempt raises, and the JSON an attempt returns or fails with. Nothing here knows AWS.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from lockgate.chat import ChatRequest, ChatResult, Usage
from lockgate.providers.errors import ErrorKind, ProviderError
from lockgate.routing.fallback import Answer
from lockgate.routing.router import Route

RETRYABLE = "Lockgate.Retryable"
"""Transient (5xx, 408/409/425/429, connection, malformed or cut answer): retry, then fall back."""
TIMEOUT = "Lockgate.Timeout"
"""The attempt ran past the alias's `response_s`: retried like `RETRYABLE`."""
RATE_LIMITED = "Lockgate.RateLimited"
"""The upstream asked to wait longer than `max_retry_after_s`: next target at once."""
TARGET_REJECTED = "Lockgate.TargetRejected"
"""The target cannot serve anyone (bad credentials, unknown model): next target, no retry."""
CLIENT_ERROR = "Lockgate.ClientError"
"""The request itself is at fault: every target would refuse it, so the run ends."""
ALL_FAILED = "Lockgate.AllTargetsFailed"
"""The run's final error when no target answered; its cause lists each target's failure."""
UNKNOWN_ALIAS = "Lockgate.UnknownAlias"
"""The run was started for an alias the deployed state machine was not compiled with."""

ATTEMPT_ERRORS = (RETRYABLE, TIMEOUT, RATE_LIMITED, TARGET_REJECTED, CLIENT_ERROR)
RETRIED_ERRORS = (RETRYABLE, TIMEOUT)


class RemoteExecutor(Protocol):
    """Runs a buffered request's retries and fallback elsewhere; answers like
    `FallbackExecutor.complete` and raises `FallbackExhausted` the same way."""

    def fits(self, request: ChatRequest) -> bool:
        """False when the request cannot be handed over (too large); it then runs in-process."""
        ...

    async def complete(self, request: ChatRequest, route: Route) -> Answer: ...


def error_name(error: ProviderError, max_retry_after_s: float) -> str:
    """The name an attempt fails with, chosen as `FallbackExecutor` decides what follows."""
    if error.kind is ErrorKind.REQUEST:
        return CLIENT_ERROR
    if error.kind is ErrorKind.TARGET:
        return TARGET_REJECTED
    if error.retry_after is not None and error.retry_after > max_retry_after_s:
        return RATE_LIMITED
    if error.code.startswith("timeout"):
        return TIMEOUT
    return RETRYABLE


def failure_message(error: ProviderError, target: str, attempt: int) -> str:
    """A failed attempt as the message of the exception the attempt handler raises: the state
    machine carries it as the error's cause, and `failures_from_cause` reads it back."""
    return json.dumps(
        {
            "target": target,
            "attempt": attempt,
            "message": error.message,
            "kind": error.kind.value,
            "status": error.status,
            "code": error.code,
            "retry_after": error.retry_after,
        }
    )


def failures_from_cause(error: str, cause: str | None) -> list[ProviderError]:
    """One target's failure as the list of errors `FallbackExecutor` would have collected: the
    last error, once per attempt the target took (the state machine keeps only the last).

    `cause` is what a Catch put beside the error: for an attempt that raised, the Lambda error
    payload `{"errorType", "errorMessage", ...}` whose message `failure_message` wrote; for a
    task that timed out or a Lambda that could not run, Step Functions' own text.
    """
    try:
        details = json.loads(json.loads(cause or "")["errorMessage"])
        failure = ProviderError(
            str(details["message"]),
            kind=ErrorKind(details["kind"]),
            status=details.get("status"),
            code=str(details.get("code") or "upstream_error"),
            retry_after=details.get("retry_after"),
        )
        return [failure] * (int(details.get("attempt", 0)) + 1)
    except (ValueError, TypeError, KeyError):
        pass
    if error == "States.Timeout":
        return [
            ProviderError(
                "upstream timed out (task)", kind=ErrorKind.RETRYABLE, code="timeout_task"
            )
        ]
    return [
        ProviderError(
            f"the attempt could not run: {error}", kind=ErrorKind.RETRYABLE, code="attempt_failed"
        )
    ]


def result_payload(result: ChatResult) -> dict[str, Any]:
    return {
        "text": result.text,
        "finish_reason": result.finish_reason,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
        },
        "tool_calls": result.tool_calls,
    }


def result_from_payload(payload: dict[str, Any]) -> ChatResult:
    usage = payload.get("usage") or {}
    return ChatResult(
        text=str(payload.get("text") or ""),
        finish_reason=str(payload.get("finish_reason") or "stop"),
        usage=Usage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))),
        tool_calls=payload.get("tool_calls"),
    )
