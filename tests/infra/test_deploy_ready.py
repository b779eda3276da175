"""A fresh `cdk deploy` serves without extra steps: the default policy answers chat on Bedrock,
the functions may create their indexes and fill the semantic cache, uploads keep binary bodies
and reach the function that may write, buffered calls of the tier aliases run on the Step
Functions machine compiled from the default policy, `/v1/responses` conversations live in their
own table, and the Serverless and VPC options are complete.

The policy is validated by the real `lockgate check-config` and loader with the environment the
template gives the functions. The rest is verified by synthesis; that OpenSearch accepts these
IAM paths and the Serverless policies as written is known by reading the AWS docs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_POLICY = REPO / "infra" / "policies" / "aws-default.yaml"
INDEXES = ("lockgate-rag-text", "lockgate-rag-vectors", "lockgate-cache")


def resources(template: Any, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(kind)
    return found


def function_env(template: Any, prefix: str) -> dict[str, Any]:
    ((_, fn),) = [
        (i, f)
        for i, f in resources(template, "AWS::Lambda::Function").items()
        if i.startswith(f"{prefix}Function")
    ]
    env: dict[str, Any] = fn["Properties"]["Environment"]["Variables"]
    return env


def role_statements(template: Any, prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if json.dumps(policy["Properties"]["Roles"]).startswith(f'[{{"Ref": "{prefix}Role')
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def es_paths(template: Any, prefix: str, action: str) -> set[str]:
    """`action`'s resources for one role, as paths below the domain ARN."""
    paths = set()
    for statement in role_statements(template, prefix):
        actions = statement["Action"]
        if action not in ([actions] if isinstance(actions, str) else actions):
            continue
        listed = statement["Resource"]
        for resource in listed if isinstance(listed, list) else [listed]:
            joined = resource["Fn::Join"][1]
            assert joined[0] == {"Fn::GetAtt": [joined[0]["Fn::GetAtt"][0], "Arn"]}
            paths.add(joined[1])
    return paths


def test_default_policy_passes_check_config_with_the_functions_environment(
    template: Any,
) -> None:
    env = function_env(template, "Orchestrate")
    models = {k: v for k, v in env.items() if k.startswith("LOCKGATE_BEDROCK_")}
    assert models == {
        "LOCKGATE_BEDROCK_SIMPLE_MODEL": "amazon.nova-micro-v1:0",
        "LOCKGATE_BEDROCK_MEDIUM_MODEL": "amazon.nova-lite-v1:0",
        "LOCKGATE_BEDROCK_COMPLEX_MODEL": "amazon.nova-pro-v1:0",
    }
    assert env["LOCKGATE_CONFIG"] == "/opt/lockgate-config/policy.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "lockgate.cli", "check-config", str(DEFAULT_POLICY)],
        env={**os.environ, **models},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ok (1 providers" in result.stdout


def test_default_policy_routes_every_tier_to_the_context_models(
    template: Any, monkeypatch: Any
) -> None:
    from lockgate.policy import load_policy

    for name, value in function_env(template, "Orchestrate").items():
        if name.startswith("LOCKGATE_BEDROCK_"):
            monkeypatch.setenv(name, value)
    policy = load_policy(DEFAULT_POLICY)
    assert {p.kind for p in policy.providers.values()} == {"bedrock"}
    first = {
        tier: policy.models[policy.tier_alias(tier)].targets[0].key
        for tier in ("simple", "medium", "complex")
    }
    assert first == {
        "simple": "bedrock/amazon.nova-micro-v1:0",
        "medium": "bedrock/amazon.nova-lite-v1:0",
        "complex": "bedrock/amazon.nova-pro-v1:0",
    }
    used = {t.key for alias in policy.models.values() for t in alias.targets}
    assert used <= set(policy.prices), "every default model is priced for usage and budgets"


def test_functions_may_create_their_indexes_and_the_serving_ones_fill_the_cache(
    template: Any,
) -> None:
    for prefix in ("Gateway", "Orchestrate"):
        assert es_paths(template, prefix, "es:ESHttpPut") == {f"/{i}" for i in INDEXES}
        assert {f"/{i}" for i in INDEXES} <= es_paths(template, prefix, "es:ESHttpHead")
        posts = es_paths(template, prefix, "es:ESHttpPost")
        assert {"/lockgate-cache/_bulk", "/lockgate-cache/_delete_by_query"} <= posts
        assert {f"/{i}/_search" for i in INDEXES} <= posts
        assert "/_bulk" not in posts  # the domain-wide path could name any index
    # Only the writers write or purge RAG indexes; ingestion never touches the cache.
    gateway_posts = es_paths(template, "Gateway", "es:ESHttpPost")
    assert not {"/lockgate-rag-text/_bulk", "/lockgate-rag-text/_delete_by_query"} & gateway_posts
    assert {"/lockgate-rag-text/_bulk", "/lockgate-rag-vectors/_delete_by_query"} <= es_paths(
        template, "Orchestrate", "es:ESHttpPost"
    )
    assert not any("cache" in p for p in es_paths(template, "Documents", "es:ESHttpPost"))
    ((_, domain),) = resources(template, "AWS::OpenSearchService::Domain").items()
    options = domain["Properties"]["AdvancedOptions"]
    assert options["rest.action.multi.allow_explicit_index"] == "false"
    assert es_paths(template, "Documents", "es:ESHttpPut") == {
        "/lockgate-rag-text",
        "/lockgate-rag-vectors",
    }
    for prefix in ("Gateway", "Orchestrate", "Documents"):
        for action in ("es:ESHttpHead", "es:ESHttpGet", "es:ESHttpPut", "es:ESHttpPost"):
            assert not any(p.endswith("*") for p in es_paths(template, prefix, action))
        assert function_env(template, prefix)["LOCKGATE_OPENSEARCH_SERVICE"] == "es"


def test_upload_and_delete_reach_the_writer_with_binary_bodies_intact(template: Any) -> None:
    ((_, api),) = resources(template, "AWS::ApiGateway::RestApi").items()
    assert {
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/octet-stream",
    } <= set(api["Properties"]["BinaryMediaTypes"])
    assert "application/json" not in api["Properties"]["BinaryMediaTypes"]
    writer = [
        s for s in role_statements(template, "Orchestrate") if "dynamodb:PutItem" in s["Action"]
    ]
    assert any("DocumentsTable" in json.dumps(s["Resource"]) for s in writer)
    reader = [s for s in role_statements(template, "Gateway") if "dynamodb:PutItem" in s["Action"]]
    assert not any("DocumentsTable" in json.dumps(s["Resource"]) for s in reader)


def test_serverless_collection_with_its_policies(variant: Any) -> None:
    ((collection_id, collection),) = resources(
        variant, "AWS::OpenSearchServerless::Collection"
    ).items()
    name = collection["Properties"]["Name"]
    assert collection["Properties"]["Type"] == "VECTORSEARCH"
    policies = {
        p["Properties"]["Type"]: p["Properties"]
        for p in resources(variant, "AWS::OpenSearchServerless::SecurityPolicy").values()
    }
    encryption = json.loads(policies["encryption"]["Policy"])
    assert encryption["Rules"][0]["Resource"] == [f"collection/{name}"]
    assert encryption["AWSOwnedKey"] is True
    network = json.dumps(policies["network"]["Policy"])
    assert '\\"AllowFromPublic\\":false' in network and "SourceVPCEs" in network
    deps = set(
        resources(variant, "AWS::OpenSearchServerless::Collection")[collection_id]["DependsOn"]
    )
    assert len(deps) == 2  # both security policies exist before the collection
    ((_, access),) = resources(variant, "AWS::OpenSearchServerless::AccessPolicy").items()
    rules = json.dumps(access["Properties"]["Policy"])
    assert rules.count("Principal") == 3
    assert "aoss:CreateIndex" in rules and "aoss:WriteDocument" in rules
    assert f"index/{name}/lockgate-cache" in rules
    env = function_env(variant, "Gateway")
    assert env["LOCKGATE_OPENSEARCH_SERVICE"] == "aoss"
    assert env["LOCKGATE_OPENSEARCH_URL"] == {"Fn::GetAtt": [collection_id, "CollectionEndpoint"]}
    assert resources(variant, "AWS::OpenSearchService::Domain") == {}
    for prefix in ("Gateway", "Orchestrate", "Documents"):
        aoss = [s for s in role_statements(variant, prefix) if s["Action"] == "aoss:APIAccessAll"]
        assert [s["Resource"] for s in aoss] == [{"Fn::GetAtt": [collection_id, "Arn"]}]


def test_serverless_data_access_is_per_role_and_per_index(variant: Any) -> None:
    ((_, access),) = resources(variant, "AWS::OpenSearchServerless::AccessPolicy").items()
    raw = access["Properties"]["Policy"]
    text = json.dumps(raw)
    # The gateway writes only the cache index; ingestion never sees it.
    statements = text.split('\\"Principal\\"')
    assert len(statements) == 4
    gateway = next(s for s in statements[1:] if "GatewayRole" in s)
    assert gateway.count("aoss:WriteDocument") == 1


def test_vpc_places_functions_and_endpoints_in_private_subnets(variant: Any) -> None:
    functions = resources(variant, "AWS::Lambda::Function")
    for prefix in ("Gateway", "Orchestrate", "Documents"):
        (fn,) = [f for i, f in functions.items() if i.startswith(f"{prefix}Function")]
        config = fn["Properties"]["VpcConfig"]
        assert len(config["SubnetIds"]) == 2 and len(config["SecurityGroupIds"]) == 1
    endpoints = resources(variant, "AWS::EC2::VPCEndpoint")
    services = json.dumps([e["Properties"]["ServiceName"] for e in endpoints.values()])
    for service in ("dynamodb", "s3", "bedrock-runtime", "secretsmanager"):
        assert service in services, service
    ((_, vpce),) = resources(variant, "AWS::OpenSearchServerless::VpcEndpoint").items()
    assert len(vpce["Properties"]["SubnetIds"]) == 2
    variant.resource_count_is("AWS::EC2::NatGateway", 1)
    variant.resource_count_is("AWS::EC2::FlowLog", 1)


def test_buffered_calls_of_the_tier_aliases_run_on_the_compiled_state_machine(
    template: Any, monkeypatch: Any
) -> None:
    """The default stack's Express machine is the default policy compiled with the models the
    functions are given: per tier alias, one Task per Bedrock target, in policy order."""
    from lockgate.policy import load_policy

    from infra.stepfunctions import compile_policy

    env = function_env(template, "Orchestrate")
    for name, value in env.items():
        if name.startswith("LOCKGATE_BEDROCK_"):
            monkeypatch.setenv(name, value)
    policy = load_policy(DEFAULT_POLICY)
    ((machine_id, machine),) = resources(template, "AWS::StepFunctions::StateMachine").items()
    props = machine["Properties"]
    assert props["StateMachineType"] == "EXPRESS"
    definition = json.loads(props["DefinitionString"])
    assert definition == compile_policy(policy)

    tiers = ("fast", "balanced", "smart")
    assert [c["StringEquals"] for c in definition["States"]["Alias"]["Choices"]] == list(tiers)
    tasks = {n: s for n, s in definition["States"].items() if s["Type"] == "Task"}
    expected = {
        f"{alias} #{i + 1} {target.key}": {"provider": "bedrock", "model": target.model}
        for alias in tiers
        for i, target in enumerate(policy.models[alias].targets)
    }
    assert {n: t["Parameters"]["Payload"]["target"] for n, t in tasks.items()} == expected
    assert {t["model"] for t in expected.values()} == {
        env[f"LOCKGATE_BEDROCK_{tier}_MODEL"] for tier in ("SIMPLE", "MEDIUM", "COMPLEX")
    }
    assert "support-bot" not in json.dumps(definition["States"]["Alias"])  # in-process

    for prefix in ("Gateway", "Orchestrate"):
        assert function_env(template, prefix)["LOCKGATE_STATE_MACHINE_ARN"] == {"Ref": machine_id}
        starts = [s for s in role_statements(template, prefix) if "states:" in json.dumps(s)]
        assert starts == [
            {
                "Action": "states:StartSyncExecution",
                "Effect": "Allow",
                "Resource": {"Ref": machine_id},
            }
        ]


def test_the_attempt_function_may_call_the_tier_models_and_read_the_provider_keys(
    template: Any,
) -> None:
    secret_id = next(iter(resources(template, "AWS::SecretsManager::Secret")))
    statements = role_statements(template, "FailoverAttempt")
    bedrock = [s for s in statements if "bedrock:" in json.dumps(s["Action"])]
    assert len(bedrock) == 1 and "foundation-model/*" not in json.dumps(bedrock)
    reads = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Resource"] for s in reads] == [{"Ref": secret_id}]
    assert not any("dynamodb:" in json.dumps(s["Action"]) for s in statements)


def test_conversations_of_v1_responses_live_in_their_table_for_orchestrate_only(
    template: Any,
) -> None:
    """orchestrate serves every /v1/responses route; gateway never touches the table."""
    ((table_id, table),) = [
        (i, t)
        for i, t in resources(template, "AWS::DynamoDB::Table").items()
        if i.startswith("ResponsesTable")
    ]
    assert table["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert function_env(template, "Orchestrate")["LOCKGATE_RESPONSE_TABLE"] == {"Ref": table_id}
    on_table = [
        s for s in role_statements(template, "Orchestrate") if table_id in json.dumps(s["Resource"])
    ]
    assert [(sorted(s["Action"]), s["Resource"]) for s in on_table] == [
        (
            ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"],
            {"Fn::GetAtt": [table_id, "Arn"]},
        )
    ]
    assert "LOCKGATE_RESPONSE_TABLE" not in function_env(template, "Gateway")
    assert table_id not in json.dumps(role_statements(template, "Gateway"))
