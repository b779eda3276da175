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

LWA_ACCOUNT = "753240598075"
LWA_PORT = 8080
READINESS_PATH = "/health"
# API Gateway gives up on a buffered integration after 29 s; a REST API response stream may last
# 15 minutes, and the function must not end it sooner.
BUFFERED_TIMEOUT_SECONDS = 29
STREAM_TIMEOUT_SECONDS = 15 * 60
BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")

_CODE_EXCLUDES = ["**/__pycache__", "**/*.pyc", "README*"]


def lwa_layer_arn(version: int) -> str:
    """The AWS-published Lambda Web Adapter layer (x86_64) in the deployment's region."""
    return f"arn:aws:lambda:{cdk.Aws.REGION}:{LWA_ACCOUNT}:layer:LambdaAdapterLayerX86:{version}"


def _python_function(
    scope: Construct,
    *,
    code_dir: Path,
    handler: str,
    layers: Sequence[lambda_.ILayerVersion],
    environment: Mapping[str, str],
    memory_size: int,
    timeout: cdk.Duration,
    description: str,
) -> lambda_.Function:
    log_group = logs.LogGroup(
        scope,
        "Logs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    return lambda_.Function(
        scope,
        "Function",
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        code=lambda_.Code.from_asset(str(code_dir), exclude=_CODE_EXCLUDES),
        handler=handler,
        layers=list(layers),
        environment=dict(environment),
        memory_size=memory_size,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        description=description,
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = _python_function(
            self,
            code_dir=code_dir,
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
        self.function = _python_function(
            self,
            code_dir=code_dir,
            handler="run.sh",
            layers=[*layers, adapter],
            environment={**environment, **adapter_environment},
            memory_size=memory_size,
            timeout=cdk.Duration.seconds(timeout_seconds),
            description="Lockgate streaming chat (Lambda Web Adapter)",
        )

    def allow_bedrock(self, model_ids: Sequence[str] = ()) -> None:
        """Lets the function invoke Bedrock models, streaming or not, and nothing else there.

        With no ids, any foundation model or inference profile of the account; with ids, those
        models, directly or through a cross-region inference profile (`us.<id>`, `eu.<id>`, ...).
        """
        partition, account = cdk.Aws.PARTITION, cdk.Aws.ACCOUNT_ID
        model = f"arn:{partition}:bedrock:*::foundation-model"
        profile = f"arn:{partition}:bedrock:*:{account}:inference-profile"
        if model_ids:
            resources = [
                arn
                for model_id in model_ids
                for arn in (
                    f"{model}/{model_id}",
                    f"{profile}/{model_id}",
                    f"{profile}/*.{model_id}",
                )
            ]
        else:
            resources = [f"{model}/*", f"{profile}/*"]
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=list(BEDROCK_INVOKE_ACTIONS), resources=resources)
        )
