"""Step Functions fail-over: the Express state machine compiled from the routing policy, and
the attempt function its Tasks invoke (functions/orchestrate/attempt.py).

Express, synchronous: a buffered chat request waits for its run (`StartSyncExecution`), which
lasts as long as its retries, and Express bills by duration rather than per state transition.
Runs log every event to CloudWatch without execution data (prompts and answers stay out of the
logs) and are traced with X-Ray; the machine's role may invoke the attempt function and nothing
else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct, IConstruct
from lockgate.policy import Policy

from infra.components.layers import ARCHITECTURE, RUNTIME
from infra.stepfunctions import attempt_timeout_seconds, compile_json

ATTEMPT_HANDLER = "attempt.handler"
STATE_MACHINE_ARN_ENV = "LOCKGATE_STATE_MACHINE_ARN"


class Failover(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        code_dir: Path,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        memory_size: int = 512,
    ) -> None:
        super().__init__(scope, construct_id)
        attempt_logs = _log_group(self, "AttemptLogs")
        # Its own role rather than the managed basic-execution policy: it writes only its logs.
        attempt_role = iam.Role(
            self, "AttemptRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
        )
        attempt_logs.grant_write(attempt_role)
        self.function = lambda_.Function(
            self,
            "Attempt",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(str(code_dir), exclude=["*", "!attempt.py"]),
            handler=ATTEMPT_HANDLER,
            layers=list(layers),
            environment=dict(environment),
            memory_size=memory_size,
            timeout=cdk.Duration.seconds(attempt_timeout_seconds(policy)),
            tracing=lambda_.Tracing.ACTIVE,
            role=attempt_role,
            log_group=attempt_logs,
            description="Lockgate fail-over: one provider call per Step Functions task",
        )
        _suppress(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 is the runtime the shared layer is built and tested for.",
        )
        _suppress(
            attempt_role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            "X-Ray trace actions support no resource-level permissions.",
            ["Resource::*"],
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="Lockgate fail-over runs: invoke the attempt function, log, trace",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
            )
        )
        self.log_group = _log_group(self, "RunLogs")
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.EXPRESS,
            definition_body=sfn.DefinitionBody.from_string(compile_json(policy)),
            definition_substitutions={"AttemptFunctionArn": self.function.function_arn},
            role=role,
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
        )
        _suppress(
            role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            "CloudWatch Logs delivery and X-Ray trace actions support no resource-level "
            "permissions; Step Functions needs them on '*' to log and trace runs.",
            ["Resource::*"],
        )

    def allow_start(self, function: lambda_.Function) -> None:
        """Lets a serving function run buffered requests on the state machine, and tells it
        where it is."""
        self.state_machine.grant(function, "states:StartSyncExecution")
        function.add_environment(STATE_MACHINE_ARN_ENV, self.state_machine.state_machine_arn)


def _log_group(scope: Construct, construct_id: str) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )


def _suppress(
    construct: IConstruct, rule: str, reason: str, applies_to: list[str] | None = None
) -> None:
    """A cdk-nag suppression on the construct's resource, written as `NagSuppressions` writes
    it, so that carrying it needs no cdk-nag import."""
    resource = construct.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    suppression: dict[str, Any] = {"id": rule, "reason": reason}
    if applies_to:
        suppression["applies_to"] = applies_to
    resource.add_metadata("cdk_nag", {"rules_to_suppress": [suppression]})
