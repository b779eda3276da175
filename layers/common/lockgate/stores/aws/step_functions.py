"""`RemoteExecutor` on the Step Functions Express state machine compiled from the policy.

A buffered request of a `step_functions` alias starts a synchronous execution
(`StartSyncExecution`) and waits for it; the state machine does the retries and fallback and
this adapter reads its outcome back into what `FallbackExecutor` would have produced: an
`Answer` (result, target, attempts) or `FallbackExhausted` with the failures in order, so the
gateway maps it to the same HTTP error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lockgate.chat import ChatRequest
from lockgate.policy import Target
from lockgate.providers import errors
from lockgate.providers.errors import ErrorKind, ProviderError
from lockgate.routing import remote
from lockgate.routing.fallback import Answer, FallbackExhausted
from lockgate.routing.router import Route

log = logging.getLogger("lockgate.routing")

MAX_INPUT_BYTES = 256 * 1024
"""Step Functions' limit on an execution's input (and on any state's data)."""
EXPRESS_MAX_SECONDS = 300


def default_client() -> Any:
    """A client that waits as long as an Express execution may run, and never re-sends a
    start: a retried `StartSyncExecution` would run the whole fail-over again."""
    config = Config(
        read_timeout=EXPRESS_MAX_SECONDS + 10, retries={"mode": "standard", "total_max_attempts": 1}
    )
    return boto3.client("stepfunctions", config=config)


class StepFunctionsExecutor:
    def __init__(self, state_machine_arn: str, client: Any | None = None) -> None:
        self._arn = state_machine_arn
        self._client = client if client is not None else default_client()

    def fits(self, request: ChatRequest) -> bool:
        return len(self._input(request, "")) <= MAX_INPUT_BYTES

    async def complete(self, request: ChatRequest, route: Route) -> Answer:
        execution = await asyncio.to_thread(self._run, self._input(request, route.alias))
        status = execution.get("status")
        if status == "SUCCEEDED":
            return _answer(json.loads(execution.get("output") or "{}"))
        if status == "TIMED_OUT":
            raise FallbackExhausted([errors.timed_out("total")])
        error, cause = execution.get("error") or "", execution.get("cause")
        if error in (remote.ALL_FAILED, remote.CLIENT_ERROR):
            raise FallbackExhausted(_failures(json.loads(cause or "{}")))
        log.error("fail-over execution ended %s: %s", status, error)
        raise FallbackExhausted(
            [ProviderError(f"fail-over run failed: {error or status}", kind=ErrorKind.RETRYABLE)]
        )

    def _input(self, request: ChatRequest, alias: str) -> bytes:
        body = {"alias": alias, "request": request.model_dump(mode="json", exclude_none=True)}
        return json.dumps(body, separators=(",", ":")).encode()

    def _run(self, execution_input: bytes) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self._client.start_sync_execution(
                stateMachineArn=self._arn,
                name=uuid.uuid4().hex,
                input=execution_input.decode(),
            )
            return response
        except (ClientError, BotoCoreError) as exc:
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else "network"
            log.error("could not start the fail-over run: %s", code)
            throttled = code in ("ThrottlingException", "TooManyRequestsException")
            raise FallbackExhausted(
                [
                    ProviderError(
                        f"the fail-over state machine refused the run ({code})",
                        kind=ErrorKind.RETRYABLE,
                        status=503 if throttled else None,
                        code="executor_unavailable",
                    )
                ]
            ) from None


def _answer(output: dict[str, Any]) -> Answer:
    answer = output["answer"]
    provider, _, model = str(answer["target"]).partition("/")
    failed = sum(len(fs) for fs in _per_target(output.get("failures") or {}))
    return Answer(
        remote.result_from_payload(answer["result"]),
        Target(provider=provider, model=model),
        failed + int(answer.get("attempt", 0)) + 1,
    )


def _per_target(failures: dict[str, Any]) -> list[list[ProviderError]]:
    """Each target's failures, in the policy's target order (the keys are `t<index>`)."""
    ordered = sorted(failures.items(), key=lambda item: int(item[0].lstrip("t") or 0))
    return [
        remote.failures_from_cause(str(caught.get("Error", "")), caught.get("Cause"))
        for _, caught in ordered
    ]


def _failures(failures: dict[str, Any]) -> list[ProviderError]:
    return [failure for target in _per_target(failures) for failure in target]
