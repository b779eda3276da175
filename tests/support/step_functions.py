"""The fail-over state machine deployed into moto, with its attempt function runnable.

What moto does itself: the Lambda and Step Functions APIs, and the state machine's semantics
(Choice, Task, Retry with IntervalSeconds/BackoffRate/MaxDelaySeconds/JitterStrategy, Catch with
ResultPath, Fail with CausePath, `$$.State.RetryCount`) by its ASL interpreter
(`mock_aws(config={"stepfunctions": {"execute_state_machine": True}})`). The interpreter calls
`arn:aws:states:::lambda:invoke` through boto3's `lambda.invoke`, which reaches moto's Lambda.

What is filled in here, each at the narrowest point:
- Running the function: moto runs Lambda code only in Docker, from `LambdaFunction._invoke_lambda`.
  That one method runs the handler named in the function's configuration from the deployed zip,
  in this process, under the function's environment variables. A raised exception becomes the
  payload Lambda's Python runtime sends (`errorType` = the class name, `errorMessage`,
  `stackTrace`) — its shape is known by reading AWS's documentation, not by emulation; moto then
  flags it with `X-Amz-Function-Error` (`Handled`, where Lambda says `Unhandled`; Step Functions
  treats both alike) and its interpreter takes `errorType` as the error name. The handler module
  is loaded once per function and kept, as a warm container keeps it.
- `StartSyncExecution`, which moto does not implement: the execution is started through moto's
  own backend and awaited, and its outcome is returned in StartSyncExecution's shape.
  (`AWS_DISABLE_HOST_PREFIX_INJECTION` keeps boto3 from sending it to `sync-states.*`.)
- Retry waits: the interpreter's sleep between retries is recorded in `Deployment.waits`
  instead of slept, so tests stay fast and can check the backoff the definition asks for.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import time
import traceback
import types
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from lockgate.policy import parse_policy
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.responses import StepFunctionResponse

from infra.stepfunctions import compile_json

REPO = Path(__file__).resolve().parents[2]
ATTEMPT_SOURCE = REPO / "functions" / "orchestrate" / "attempt.py"
REGION = "us-east-1"


@dataclass
class Deployment:
    state_machine_arn: str
    function_arn: str
    definition: dict[str, Any]
    waits: list[float] = field(default_factory=list)
    invocations: list[dict[str, Any]] = field(default_factory=list)

    def client(self) -> Any:
        return boto3.client("stepfunctions", region_name=REGION)


def _zip(source: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(source, source.name)
    return buffer.getvalue()


def close_container(module: types.ModuleType) -> None:
    """What a Lambda container's end would release: the attempt handler's provider clients
    and its event loop."""
    for provider in module._providers.values():
        module._loop.run_until_complete(provider.aclose())
    module._loop.close()


class _Functions:
    """Handler modules loaded from each deployed zip, once per function (a warm container)."""

    def __init__(self, root: Path, deployment: Deployment) -> None:
        self._root = root
        self._deployment = deployment
        self._handlers: dict[str, Any] = {}
        self.modules: list[types.ModuleType] = []

    def handler(self, fn: LambdaFunction) -> Any:
        if fn.function_arn not in self._handlers:
            code = self._root / uuid.uuid4().hex
            with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as archive:
                archive.extractall(code)
            module_name, _, attr = fn.handler.rpartition(".")
            unique = f"lambda_{code.name}_{module_name}"
            spec = importlib.util.spec_from_file_location(unique, code / f"{module_name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            with _environ(fn.environment_vars):
                spec.loader.exec_module(module)
            self.modules.append(module)
            self._handlers[fn.function_arn] = getattr(module, attr)
        return self._handlers[fn.function_arn]

    def invoke(self, fn: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        handler = self.handler(fn)
        self._deployment.invocations.append(event)
        context = types.SimpleNamespace(
            function_name=fn.function_name,
            function_version="$LATEST",
            invoked_function_arn=fn.function_arn,
            memory_limit_in_mb=fn.memory_size,
            aws_request_id=uuid.uuid4().hex,
            log_group_name=fn.logs_group_name,
            log_stream_name="local",
        )
        with _environ(fn.environment_vars):
            try:
                return json.dumps(handler(event, context)), False, ""
            except Exception as exc:
                payload = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }
                return json.dumps(payload), True, ""


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _start_sync_execution(self: StepFunctionResponse) -> ActionResult:
    backend = self.stepfunction_backend
    execution = backend.start_execution(
        self._get_param("stateMachineArn"),
        self._get_param("name"),
        self._get_param("input", if_none="{}"),
    )
    deadline = time.monotonic() + 120
    while execution.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.005)
    response: dict[str, Any] = {
        "executionArn": execution.execution_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "startDate": execution.start_date,
        "stopDate": execution.stop_date,
        "status": str(execution.status),
        "input": execution.execution_input,
    }
    if execution.output is not None:
        output = execution.output
        response["output"] = output if isinstance(output, str) else json.dumps(output)
    if execution.error is not None:
        response["error"] = execution.error
    if execution.cause is not None:
        response["cause"] = execution.cause
    return ActionResult(response)


@contextmanager
def deployed(
    policy: dict[str, Any], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    """moto with the policy's state machine and the attempt function (policy in its env)."""
    config = workdir / "attempt-policy.yaml"
    config.write_text(yaml.safe_dump(policy), encoding="utf-8")
    compiled = parse_policy(policy)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        iam = boto3.client("iam", region_name=REGION)
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(RoleName="attempt", AssumeRolePolicyDocument=json.dumps(trust))
        function = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName="lockgate-attempt",
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="attempt.handler",
            Code={"ZipFile": _zip(ATTEMPT_SOURCE)},
            Environment={"Variables": {"LOCKGATE_CONFIG": str(config)}},
            Timeout=30,
        )
        definition = compile_json(compiled, function["FunctionArn"])
        machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="lockgate-failover",
            definition=definition,
            roleArn=role["Role"]["Arn"],
            type="EXPRESS",
        )
        deployment = Deployment(
            machine["stateMachineArn"], function["FunctionArn"], json.loads(definition)
        )
        functions = _Functions(workdir, deployment)
        monkeypatch.setattr(
            LambdaFunction,
            "_invoke_lambda",
            lambda fn, event=None: functions.invoke(fn, event),
        )
        monkeypatch.setattr(
            StepFunctionResponse, "start_sync_execution", _start_sync_execution, raising=False
        )
        monkeypatch.setattr(
            retrier_decl, "time", types.SimpleNamespace(sleep=deployment.waits.append)
        )
        try:
            yield deployment
        finally:
            for module in functions.modules:
                close_container(module)
