"""The two Lambda functions that serve the same FastAPI app.

`gateway` runs it behind Mangum: one API Gateway event in, one buffered response out, which suits
every route but chat. `orchestrate` runs it under uvicorn behind the Lambda Web Adapter, which
turns the HTTP response into a Lambda response stream, because a Python handler cannot stream
on its own and chat answers must reach the client token by token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.layers import ARCHITECTURE, RUNTIME
from infra.components.network import Network

LWA_ACCOUNT = "753240598075"
LWA_PORT = 8080
READINESS_PATH = "/health"
# API Gateway gives up on a buffered integration after 29 s; a REST API response stream may last
# 15 minutes, and the function must not end it sooner.
BUFFERED_TIMEOUT_SECONDS = 29
STREAM_TIMEOUT_SECONDS = 15 * 60
BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
# Cross-region inference profile ids start with a geography: `us.amazon.nova-lite-v1:0`.
_PROFILE_PREFIXES = ("us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "global.")
# What a function in a VPC needs to attach its network interfaces; EC2 takes no resource here.
_ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]

_CODE_EXCLUDES = ["**/__pycache__", "**/*.pyc", "README*"]


def lwa_layer_arn(version: int) -> str:
    """The AWS-published Lambda Web Adapter layer (x86_64) in the deployment's region."""
    return f"arn:aws:lambda:{cdk.Aws.REGION}:{LWA_ACCOUNT}:layer:LambdaAdapterLayerX86:{version}"


def function_role(scope: Construct, log_group: logs.ILogGroup) -> iam.Role:
    """A role that may write to its function's own log group, and nothing else yet.

    Rather than AWSLambdaBasicExecutionRole, which allows every log group in the account."""
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description="Lockgate function role",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return role


def python_function(
    scope: Construct,
    *,
    code: lambda_.Code,
    handler: str,
    layers: Sequence[lambda_.ILayerVersion],
    environment: Mapping[str, str],
    memory_size: int,
    timeout: cdk.Duration,
    description: str,
    network: Network | None = None,
) -> lambda_.Function:
    """A Python 3.12 x86_64 function with its own log group (a month), role and X-Ray tracing;
    in the VPC's private subnets when `network` is given."""
    log_group = logs.LogGroup(
        scope,
        "Logs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    role = function_role(scope, log_group)
    placement: dict[str, object] = {}
    if network is not None:
        role.add_to_policy(iam.PolicyStatement(actions=_ENI_ACTIONS, resources=["*"]))
        placement = {
            "vpc": network.vpc,
            "vpc_subnets": network.subnets,
            "security_groups": [network.functions],
        }
    return lambda_.Function(
        scope,
        "Function",
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        code=code,
        handler=handler,
        layers=list(layers),
        environment=dict(environment),
        memory_size=memory_size,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=role,
        description=description,
        **placement,  # type: ignore[arg-type]
    )


def code_from(code_dir: Path) -> lambda_.Code:
    return lambda_.Code.from_asset(str(code_dir), exclude=_CODE_EXCLUDES)


def bedrock_model_arns(model_ids: Sequence[str]) -> list[str]:
    """The ARNs invoking these models needs, directly or through an inference profile.

    A profile id (`us.amazon.nova-lite-v1:0`) needs the profile in this account and region and
    the foundation model in every region the profile may route to; a plain model id needs the
    model here and, so a profile of it works too, the profiles named after it."""
    partition, region, account = cdk.Aws.PARTITION, cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID
    profile = f"arn:{partition}:bedrock:{region}:{account}:inference-profile"
    arns: list[str] = []
    for model_id in dict.fromkeys(model_ids):
        base = model_id
        for prefix in _PROFILE_PREFIXES:
            if model_id.startswith(prefix):
                base = model_id.removeprefix(prefix)
                arns.append(f"{profile}/{model_id}")
                break
        else:
            arns.append(f"{profile}/*.{model_id}")
        arns.append(f"arn:{partition}:bedrock:*::foundation-model/{base}")
    return arns


def allow_bedrock(function: lambda_.IFunction, model_ids: Sequence[str]) -> None:
    """Lets the function invoke these Bedrock models, streaming or not, and nothing else."""
    if not model_ids:
        raise ValueError("name the Bedrock models the function may invoke")
    function.add_to_role_policy(
        iam.PolicyStatement(
            actions=list(BEDROCK_INVOKE_ACTIONS), resources=bedrock_model_arns(model_ids)
        )
    )


class GatewayFunction(Construct):
    """Buffered routes: Mangum over `lockgate.app:create_app` (functions/gateway/handler.py)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        memory_size: int = 512,
        timeout_seconds: int = BUFFERED_TIMEOUT_SECONDS,
        network: Network | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = python_function(
            self,
            code=code_from(code_dir),
            network=network,
            handler="handler.handler",
            layers=layers,
            environment=environment,
            memory_size=memory_size,
            timeout=cdk.Duration.seconds(timeout_seconds),
            description="Lockgate buffered routes (Mangum)",
        )


class OrchestrateFunction(Construct):
    """Streaming chat: uvicorn behind the Lambda Web Adapter (functions/orchestrate/run.sh)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        lwa_layer_version: int,
        memory_size: int = 1024,
        timeout_seconds: int = STREAM_TIMEOUT_SECONDS,
        network: Network | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        adapter = lambda_.LayerVersion.from_layer_version_arn(
            self, "WebAdapter", lwa_layer_arn(lwa_layer_version)
        )
        adapter_environment = {
            # The runtime starts /opt/bootstrap (the adapter), which runs the handler script.
            "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
            "AWS_LWA_INVOKE_MODE": "response_stream",
            "AWS_LWA_PORT": str(LWA_PORT),
            "AWS_LWA_READINESS_CHECK_PATH": READINESS_PATH,
        }
        self.function = python_function(
            self,
            code=code_from(code_dir),
            network=network,
            handler="run.sh",
            layers=[*layers, adapter],
            environment={**environment, **adapter_environment},
            memory_size=memory_size,
            timeout=cdk.Duration.seconds(timeout_seconds),
            description="Lockgate streaming chat (Lambda Web Adapter)",
        )
