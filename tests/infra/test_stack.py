"""The synthesized CloudFormation: what API Gateway and Lambda will actually be told."""

from __future__ import annotations

import json
from typing import Any

import pytest

LWA_LAYER = ":753240598075:layer:LambdaAdapterLayerX86:"
STREAMING = {
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/responses"),
    ("GET", "/v1/responses/{response_id}"),
    ("DELETE", "/v1/responses/{response_id}"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/collections/{collection}/documents"),
    ("DELETE", "/v1/collections/{collection}/documents/{doc_id}"),
    ("DELETE", "/v1/collections/{collection}"),
}
BUFFERED = {
    ("GET", "/v1/models"),
    ("GET", "/health"),
    ("ANY", "/{proxy+}"),
    ("ANY", "/"),
    ("ANY", "/v1/collections"),
    ("ANY", "/v1/collections/{collection}"),
    ("ANY", "/v1/collections/{collection}/documents"),
    ("ANY", "/v1/collections/{collection}/documents/{doc_id}"),
}


def resources(template: Any, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(kind)
    return found


def flatten(value: Any) -> str:
    """A CloudFormation value (string, Fn::Join, GetAtt...) as one searchable string."""
    return json.dumps(value, sort_keys=True)


SERVING = {"handler.handler": "Gateway", "run.sh": "Orchestrate"}


def function_id(template: Any, handler: str) -> str:
    """The serving function with this handler (the ingest function shares `handler.handler`)."""
    prefix = SERVING.get(handler, "")
    ids = [
        logical_id
        for logical_id, fn in resources(template, "AWS::Lambda::Function").items()
        if fn["Properties"]["Handler"] == handler and logical_id.startswith(prefix)
    ]
    assert len(ids) == 1, f"expected one function with handler {handler}: {ids}"
    return ids[0]


def routes(template: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Methods keyed by (HTTP method, full resource path)."""
    api_resources = resources(template, "AWS::ApiGateway::Resource")

    def path_of(resource_ref: Any) -> str:
        if "Ref" not in resource_ref:  # Fn::GetAtt [api, RootResourceId]
            return ""
        props = api_resources[resource_ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    found = {}
    for method in resources(template, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        found[(props["HttpMethod"], path_of(props["ResourceId"]) or "/")] = props
    return found


def role_policy_actions(template: Any, function_logical_id: str) -> set[str]:
    role = resources(template, "AWS::Lambda::Function")[function_logical_id]["Properties"]["Role"]
    role_id = role["Fn::GetAtt"][0]
    actions: set[str] = set()
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_routes_are_exactly_the_expected_ones(template: Any) -> None:
    assert set(routes(template)) == STREAMING | BUFFERED


def test_every_method_requires_an_api_key(template: Any) -> None:
    methods = routes(template)
    assert methods
    assert {
        route for route, props in methods.items() if props.get("ApiKeyRequired") is not True
    } == set()
    api = next(iter(resources(template, "AWS::ApiGateway::RestApi").values()))
    assert api["Properties"]["ApiKeySourceType"] == "HEADER"


def test_api_is_regional_so_streams_may_idle_for_minutes(template: Any) -> None:
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}}
    )


def test_usage_plan_is_bound_to_the_stage_with_a_key(template: Any) -> None:
    """The default plan and its generated key; tenant tiers add plans of their own."""
    (api_id,) = resources(template, "AWS::ApiGateway::RestApi")
    (stage_id,) = resources(template, "AWS::ApiGateway::Stage")
    plans = resources(template, "AWS::ApiGateway::UsagePlan")
    (plan_id,) = [name for name in plans if name.startswith("Access")]
    (key_id,) = resources(template, "AWS::ApiGateway::ApiKey")
    plan = plans[plan_id]["Properties"]
    assert plan["ApiStages"][0]["ApiId"] == {"Ref": api_id}
    assert plan["ApiStages"][0]["Stage"] == {"Ref": stage_id}
    assert plan["Throttle"] == {"RateLimit": 20, "BurstLimit": 40}
    assert plan["Quota"] == {"Limit": 10000, "Period": "DAY"}
    template.has_resource_properties(
        "AWS::ApiGateway::UsagePlanKey",
        {"KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}},
    )
    template.has_resource_properties("AWS::ApiGateway::ApiKey", {"Enabled": True})


@pytest.mark.parametrize("route", sorted(STREAMING))
def test_chat_routes_stream_from_orchestrate(template: Any, route: tuple[str, str]) -> None:
    integration = routes(template)[route]["Integration"]
    uri = flatten(integration["Uri"])
    assert integration["Type"] == "AWS_PROXY"
    assert integration["ResponseTransferMode"] == "STREAM"
    assert integration["TimeoutInMillis"] == 15 * 60 * 1000
    assert ":lambda:path/2021-11-15/functions/" in uri
    assert uri.endswith('"/response-streaming-invocations"]]}')
    assert function_id(template, "run.sh") in uri


@pytest.mark.parametrize("route", sorted(BUFFERED))
def test_other_routes_are_buffered_through_gateway(template: Any, route: tuple[str, str]) -> None:
    integration = routes(template)[route]["Integration"]
    uri = flatten(integration["Uri"])
    assert integration["Type"] == "AWS_PROXY"
    assert integration.get("ResponseTransferMode", "BUFFERED") == "BUFFERED"
    assert ":lambda:path/2015-03-31/functions/" in uri
    assert function_id(template, "handler.handler") in uri


def test_api_gateway_may_invoke_both_functions(template: Any) -> None:
    permissions = resources(template, "AWS::Lambda::Permission").values()
    assert not any("test-invoke-stage" in flatten(p["Properties"]) for p in permissions)
    for handler in ("run.sh", "handler.handler"):
        template.has_resource_properties(
            "AWS::Lambda::Permission",
            {
                "Action": "lambda:InvokeFunction",
                "Principal": "apigateway.amazonaws.com",
                "FunctionName": {"Fn::GetAtt": [function_id(template, handler), "Arn"]},
            },
        )


@pytest.mark.parametrize("handler", ["handler.handler", "run.sh"])
def test_functions_run_python312_on_x86_with_the_common_layer(template: Any, handler: str) -> None:
    fn = resources(template, "AWS::Lambda::Function")[function_id(template, handler)]["Properties"]
    layers = resources(template, "AWS::Lambda::LayerVersion")
    (common_id,) = [i for i in layers if i.startswith("Common")]
    (policy_id,) = [i for i in layers if i.startswith("Policy")]
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == ["x86_64"]
    assert {"Ref": common_id} in fn["Layers"] and {"Ref": policy_id} in fn["Layers"]
    env = fn["Environment"]["Variables"]
    assert env["LOCKGATE_DATA_DIR"].startswith("/tmp/")
    assert env["LOCKGATE_AUTH"] == "api-gateway"  # the key was checked by the usage plan
    assert fn["TracingConfig"] == {"Mode": "Active"}


def test_common_layer_targets_the_same_runtime(template: Any) -> None:
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleRuntimes": ["python3.12"], "CompatibleArchitectures": ["x86_64"]},
    )


def test_orchestrate_runs_behind_the_web_adapter_in_streaming_mode(template: Any) -> None:
    fn = resources(template, "AWS::Lambda::Function")[function_id(template, "run.sh")]
    props = fn["Properties"]
    env = props["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_PORT"] == "8080"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    assert props["Timeout"] == 900
    adapter = [flatten(layer) for layer in props["Layers"] if LWA_LAYER in flatten(layer)]
    assert len(adapter) == 1
    assert "arn:aws:lambda:" in adapter[0]
    assert '{"Ref": "AWS::Region"}' in adapter[0]
    assert f'{LWA_LAYER}30"' in adapter[0]


def test_gateway_is_a_plain_mangum_handler(template: Any) -> None:
    fn = resources(template, "AWS::Lambda::Function")[function_id(template, "handler.handler")]
    env = fn["Properties"]["Environment"]["Variables"]
    assert not any(name.startswith("AWS_LWA_") for name in env)
    assert "AWS_LAMBDA_EXEC_WRAPPER" not in env
    assert all(LWA_LAYER not in flatten(layer) for layer in fn["Properties"]["Layers"])
    assert fn["Properties"]["Timeout"] <= 29


def test_only_orchestrate_may_invoke_bedrock(template: Any) -> None:
    bedrock = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"}
    assert bedrock <= role_policy_actions(template, function_id(template, "run.sh"))
    assert not {
        action
        for action in role_policy_actions(template, function_id(template, "handler.handler"))
        if action.startswith("bedrock:")
    }
    # Invoke only: never bedrock:* or a management action.
    assert {
        action
        for action in role_policy_actions(template, function_id(template, "run.sh"))
        if action.startswith("bedrock:")
    } == bedrock


def test_outputs_give_the_url_and_the_key_id(template: Any) -> None:
    outputs = template.find_outputs("*")
    assert {"ApiUrl", "ApiKeyId"} <= set(outputs)
    (key_id,) = resources(template, "AWS::ApiGateway::ApiKey")
    assert outputs["ApiKeyId"]["Value"] == {"Ref": key_id}
    assert "execute-api" in flatten(outputs["ApiUrl"]["Value"])


def test_context_overrides_adapter_version_models_and_throttle(variant: Any) -> None:
    fn = resources(variant, "AWS::Lambda::Function")[function_id(variant, "run.sh")]
    props = fn["Properties"]
    assert any(f'{LWA_LAYER}31"' in flatten(layer) for layer in props["Layers"])
    env = props["Environment"]["Variables"]
    assert env["LOCKGATE_BEDROCK_COMPLEX_MODEL"] == "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    statements = [
        statement
        for policy_doc in resources(variant, "AWS::IAM::Policy").values()
        for statement in policy_doc["Properties"]["PolicyDocument"]["Statement"]
        if "bedrock:InvokeModel" in statement["Action"]
    ]
    granted = flatten([statement["Resource"] for statement in statements])
    assert "foundation-model/anthropic.claude-x" in granted
    assert "inference-profile/*.amazon.nova-y" in granted
    # A profile id: the profile itself, and the model it routes to in any region.
    assert "inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0" in granted
    assert ":bedrock:*::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0" in granted
    assert "foundation-model/*" not in granted
    variant.has_resource_properties(
        "AWS::ApiGateway::UsagePlan", {"Throttle": {"RateLimit": 5, "BurstLimit": 40}}
    )


@pytest.mark.parametrize("handler", ["handler.handler", "run.sh"])
def test_serving_functions_reach_every_aws_store(template: Any, handler: str) -> None:
    fn = resources(template, "AWS::Lambda::Function")[function_id(template, handler)]["Properties"]
    env = fn["Environment"]["Variables"]
    assert env["LOCKGATE_BACKEND"] == "aws"
    for name in (
        "LOCKGATE_EXACT_CACHE_TABLE",
        "LOCKGATE_TENANT_TABLE",
        "LOCKGATE_QUOTA_TABLE",
        "LOCKGATE_OPENSEARCH_URL",
        "LOCKGATE_OPENSEARCH_SERVICE",
        "LOCKGATE_PROVIDER_SECRET_ARN",
        "LOCKGATE_DOCUMENTS_TABLE",
        "LOCKGATE_CACHE_VECTOR_INDEX",
    ):
        assert name in env, name
    actions = role_policy_actions(template, function_id(template, handler))
    assert {
        "dynamodb:GetItem", "dynamodb:PutItem", "es:ESHttpPost", "secretsmanager:GetSecretValue"
    } <= actions  # fmt: skip
