"""The routing policy compiled to a Step Functions (Express) state machine definition.

One machine serves every alias whose `executor` is `step_functions`: a Choice on `$.alias` leads
to that alias's chain of Tasks, one per target, in policy order. One machine rather than one per
alias keeps one ARN for the functions to know, one IAM grant, one log group and one deployment
unit that changes with the policy; the alias of a run stays visible in its input and state names.

Per target, the Task invokes the attempt function (functions/orchestrate/attempt.py) once per
try and decides what follows from the error name the attempt fails with, as `FallbackExecutor`
decides from `ErrorKind` (see `lockgate.routing.remote`):

- `Lockgate.Retryable`, `Lockgate.Timeout`: Retry with the alias's backoff (full jitter,
  doubling, capped), up to `attempts` tries in all, then Catch to the next target;
- `Lockgate.TargetRejected`, `Lockgate.RateLimited` (a Retry-After longer than the policy
  accepts) and anything else: Catch to the next target at once;
- `Lockgate.ClientError`: Catch straight to the `ClientError` failure: no other target is tried.

Each Catch records the failure under `$.run.failures`; the final Fail states carry them as their
cause, so the gateway rebuilds the same HTTP error as the in-process executor (400, 502, 503
with Retry-After, 504). Differences that Step Functions imposes: retry intervals are whole
seconds (at least 1 s before the jitter), a Retry-After within the policy's limit is waited out
by the attempt itself before it fails, the whole run is bounded by the longest `total_s` of the
compiled aliases (Express: at most 5 minutes), and there is no cooldown: skipping a target that
keeps failing is in-process state, so the machine always tries targets in policy order.
"""

from __future__ import annotations

import json
import math
from typing import Any

from lockgate.policy import Policy, Target
from lockgate.routing import remote

ATTEMPT_FUNCTION_ARN = "${AttemptFunctionArn}"
"""Placeholder for the attempt function's ARN (CDK `definition_substitutions`)."""
EXPRESS_MAX_SECONDS = 300
TASK_MARGIN_SECONDS = 10
"""Beyond a try's own time, for a cold start, before Step Functions gives up on the Lambda call."""
STATE_NAME_MAX = 80
BACKOFF_RATE = 2.0
"""`FallbackExecutor` doubles its backoff ceiling per retry."""
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
"""The Lambda service's own transient failures (AWS's recommended retry for Lambda tasks)."""

CLIENT_ERROR_STATE = "ClientError"
ALL_FAILED_STATE = "AllTargetsFailed"
UNKNOWN_ALIAS_STATE = "UnknownAlias"
ANSWERED_STATE = "Answered"


def remote_aliases(policy: Policy) -> list[str]:
    """The aliases whose buffered calls run on the state machine."""
    return [name for name, alias in policy.models.items() if alias.executor == "step_functions"]


def compile_policy(policy: Policy, function_arn: str = ATTEMPT_FUNCTION_ARN) -> dict[str, Any]:
    """The ASL definition for the policy's `step_functions` aliases."""
    aliases = remote_aliases(policy)
    if not aliases:
        raise ValueError("no model alias has 'executor: step_functions'")
    states: dict[str, Any] = {
        "Alias": {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.alias",
                    "StringEquals": name,
                    "Next": _state_name(name, 0, policy.models[name].targets[0]),
                }
                for name in aliases
            ],
            "Default": UNKNOWN_ALIAS_STATE,
        },
        ANSWERED_STATE: {"Type": "Pass", "OutputPath": "$.run", "End": True},
        CLIENT_ERROR_STATE: {
            "Type": "Fail",
            "Error": remote.CLIENT_ERROR,
            "CausePath": "States.JsonToString($.run.failures)",
        },
        ALL_FAILED_STATE: {
            "Type": "Fail",
            "Error": remote.ALL_FAILED,
            "CausePath": "States.JsonToString($.run.failures)",
        },
        UNKNOWN_ALIAS_STATE: {
            "Type": "Fail",
            "Error": remote.UNKNOWN_ALIAS,
            "Cause": "this state machine was compiled without the requested alias",
        },
    }
    for name in aliases:
        for state, task in _alias_tasks(policy, name, function_arn):
            if state in states:
                raise ValueError(f"models.{name}: state name {state!r} is not unique")
            states[state] = task
    total = max(policy.timeouts_for(name).total_s for name in aliases)
    return {
        "Comment": "Lockgate fail-over, compiled from the routing policy",
        "StartAt": "Alias",
        "TimeoutSeconds": min(EXPRESS_MAX_SECONDS, math.ceil(total)),
        "States": states,
    }


def compile_json(policy: Policy, function_arn: str = ATTEMPT_FUNCTION_ARN) -> str:
    return json.dumps(compile_policy(policy, function_arn), indent=2)


def attempt_timeout_seconds(policy: Policy) -> int:
    """The attempt function's timeout: its longest attempt plus the margin."""
    return min(900, max(_task_seconds(policy, name) for name in remote_aliases(policy)))


def _task_seconds(policy: Policy, alias: str) -> int:
    """How long one try may take: the call, then the upstream's Retry-After waited out."""
    wait = policy.timeouts_for(alias).response_s + policy.retry_for(alias).max_retry_after_s
    return math.ceil(wait) + TASK_MARGIN_SECONDS


def _state_name(alias: str, index: int, target: Target) -> str:
    return f"{alias} #{index + 1} {target.key}"[:STATE_NAME_MAX]


def _alias_tasks(policy: Policy, alias: str, function_arn: str) -> list[tuple[str, dict[str, Any]]]:
    retry, timeouts = policy.retry_for(alias), policy.timeouts_for(alias)
    targets = policy.models[alias].targets
    names = [_state_name(alias, i, t) for i, t in enumerate(targets)]
    interval = max(1, math.ceil(retry.backoff_initial_s))
    retriers: list[dict[str, Any]] = [
        {
            "ErrorEquals": LAMBDA_SERVICE_ERRORS,
            "IntervalSeconds": 1,
            "MaxAttempts": 2,
            "BackoffRate": BACKOFF_RATE,
            "JitterStrategy": "FULL",
        }
    ]
    if retry.attempts > 1:
        retriers.append(
            {
                "ErrorEquals": [*remote.RETRIED_ERRORS, "States.Timeout"],
                "IntervalSeconds": interval,
                "BackoffRate": BACKOFF_RATE,
                "MaxAttempts": retry.attempts - 1,
                "MaxDelaySeconds": max(interval, math.ceil(retry.backoff_max_s)),
                "JitterStrategy": "FULL",
            }
        )
    tasks = []
    for i, target in enumerate(targets):
        following = names[i + 1] if i + 1 < len(targets) else ALL_FAILED_STATE
        recorded = f"$.run.failures.t{i}"
        tasks.append(
            (
                names[i],
                {
                    "Type": "Task",
                    "Comment": f"{alias}: try {target.key}",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {
                        "FunctionName": function_arn,
                        "Payload": {
                            "target": {"provider": target.provider, "model": target.model},
                            "request.$": "$.request",
                            "attempt.$": "$$.State.RetryCount",
                            "attempts": retry.attempts,
                            "timeout_s": timeouts.response_s,
                            "max_retry_after_s": retry.max_retry_after_s,
                        },
                    },
                    "TimeoutSeconds": _task_seconds(policy, alias),
                    "ResultSelector": {
                        "target.$": "$.Payload.target",
                        "attempt.$": "$.Payload.attempt",
                        "result.$": "$.Payload.result",
                    },
                    "ResultPath": "$.run.answer",
                    "Retry": retriers,
                    "Catch": [
                        {
                            "ErrorEquals": [remote.CLIENT_ERROR],
                            "ResultPath": recorded,
                            "Next": CLIENT_ERROR_STATE,
                        },
                        {"ErrorEquals": ["States.ALL"], "ResultPath": recorded, "Next": following},
                    ],
                    "Next": ANSWERED_STATE,
                },
            )
        )
    return tasks
