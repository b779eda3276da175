"""The REST API in front of both functions.

A REST API rather than an HTTP API because only REST APIs have API keys with usage plans (the
tenant's key, throttle and quota are enforced before any Lambda runs) and response streaming
(`ResponseTransferMode.STREAM`). Routes that call a model (chat, messages, responses,
embeddings) stream from `orchestrate`; so do the document upload and delete routes, because
they ingest in place (parse, embed, index), which may outlast a buffered integration's 29 s,
and because `orchestrate` is the serving function allowed to write the RAG indexes. Reading and
deleting a stored response go there too, so that one function owns the conversation table.
Everything else, including a `{proxy+}` catch-all, is buffered through `gateway`, which only
reads.

PDF and DOCX uploads are binary: their media types are binary media types, so API Gateway hands
the body to Lambda base64-encoded (`isBase64Encoded`) instead of mangling it as UTF-8 text, and
the Lambda Web Adapter decodes it before the app reads it. JSON stays text.

The stage writes one JSON access-log line per request (request id, API key id, status,
latencies) to a log group kept for a month, logs errors of the execution, and publishes
per-method metrics.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.components.functions import STREAM_TIMEOUT_SECONDS

STREAMING_ROUTES = (
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/responses"),
    ("GET", "/v1/responses/{response_id}"),
    ("DELETE", "/v1/responses/{response_id}"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/collections/{collection}/documents"),
    ("DELETE", "/v1/collections/{collection}/documents/{doc_id}"),
    ("DELETE", "/v1/collections/{collection}"),
)
BUFFERED_ROUTES = (("GET", "/v1/models"), ("GET", "/health"))
# Resources of their own shadow `{proxy+}`: their other methods go to `gateway` explicitly.
BUFFERED_ANY = (
    "/v1/collections",
    "/v1/collections/{collection}",
    "/v1/collections/{collection}/documents",
    "/v1/collections/{collection}/documents/{doc_id}",
)
BINARY_MEDIA_TYPES = (
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/octet-stream",
)
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "apiKeyId": "$context.identity.apiKeyId",
    "ip": "$context.identity.sourceIp",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "error": "$context.error.message",
    "time": "$context.requestTime",
}


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
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        # No console test-invoke permissions: they would double each function's resource policy
        # (one statement per method), which has a 20 KB limit.
        self.buffered = apigateway.LambdaIntegration(gateway, proxy=True, allow_test_invoke=False)
        self.streaming = apigateway.LambdaIntegration(
            orchestrate,
            proxy=True,
            allow_test_invoke=False,
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
            binary_media_types=list(BINARY_MEDIA_TYPES),
            deploy_options=apigateway.StageOptions(
                stage_name=stage_name,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
            ),
            # Stage logging needs the account's API Gateway CloudWatch role; kept on teardown,
            # since other APIs in the account use the same setting.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # API Gateway writes execution logs to this group; created here so it has a retention
        # (left to API Gateway, it would keep them forever) and goes with the stack.
        self.execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.rest_api.rest_api_id}/{stage_name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        for method, path in STREAMING_ROUTES:
            self.route(method, path, self.streaming)
        for method, path in BUFFERED_ROUTES:
            self.route(method, path, self.buffered)
        for path in BUFFERED_ANY:
            self.route("ANY", path, self.buffered)
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
