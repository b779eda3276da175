"""The REST API in front of both functions.

A REST API rather than an HTTP API because only REST APIs have API keys with usage plans (the
tenant's key, throttle and quota are enforced before any Lambda runs) and response streaming
(`ResponseTransferMode.STREAM`). The two chat routes stream from `orchestrate`; everything else,
including a `{proxy+}` catch-all, is buffered through `gateway`.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.components.functions import STREAM_TIMEOUT_SECONDS

STREAMING_ROUTES = (("POST", "/v1/chat/completions"), ("POST", "/v1/messages"))
BUFFERED_ROUTES = (("GET", "/v1/models"), ("GET", "/health"))


class GatewayApi(Construct):
    """Routes, integrations and the deployed stage; every method requires an API key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        gateway: lambda_.IFunction,
        orchestrate: lambda_.IFunction,
        stage_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.buffered = apigateway.LambdaIntegration(gateway, proxy=True)
        self.streaming = apigateway.LambdaIntegration(
            orchestrate,
            proxy=True,
            response_transfer_mode=apigateway.ResponseTransferMode.STREAM,
            # A buffered integration is capped at 29 s; a streamed one may run 15 min.
            timeout=cdk.Duration.seconds(STREAM_TIMEOUT_SECONDS),
        )
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            description="Lockgate: OpenAI- and Anthropic-compatible LLM gateway",
            # Edge-optimised endpoints cut idle streams after 30 s; regional ones allow 5 min.
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            api_key_source_type=apigateway.ApiKeySourceType.HEADER,
            # What `/` and the `{proxy+}` catch-all use; chat routes override it.
            default_integration=self.buffered,
            default_method_options=apigateway.MethodOptions(api_key_required=True),
            deploy_options=apigateway.StageOptions(
                stage_name=stage_name,
                tracing_enabled=True,
                metrics_enabled=True,
            ),
            cloud_watch_role=False,
        )
        for method, path in STREAMING_ROUTES:
            self.route(method, path, self.streaming)
        for method, path in BUFFERED_ROUTES:
            self.route(method, path, self.buffered)
        self.rest_api.root.add_proxy(any_method=True)

    def route(
        self, method: str, path: str, integration: apigateway.Integration
    ) -> apigateway.Method:
        """Adds `method path`, creating the intermediate resources once."""
        resource = self.rest_api.root.resource_for_path(path)
        return resource.add_method(method, integration)

    @property
    def url(self) -> str:
        return self.rest_api.url

    @property
    def stage(self) -> apigateway.Stage:
        return self.rest_api.deployment_stage
