"""The fail-over state machine as the synthesized template deploys it (aws_cdk.assertions, offline,
no bundling): Express, logged without execution data, traced, its role limited to invoking the
attempt function, and the serving functions allowed to start it and told its ARN. cdk-nag's
AwsSolutions checks run on it. Verified by synthesis; how AWS then behaves is by reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from lockgate.policy import parse_policy

REPO = Path(__file__).resolve().parents[2]

POLICY = {
    "providers": {"openai": {"kind": "openai"}, "anthropic": {"kind": "anthropic"}},
    "models": {
        "durable": {
            "targets": ["openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest"],
            "executor": "step_functions",
            "timeouts": {"response_s": 50},
        },
        "chat": {"targets": ["openai/gpt-4o-mini"]},
    },
}


@pytest.fixture(scope="module")
def failover_template(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY), encoding="utf-8")
    return synth(policyFile=str(policy))


def _one(template: Any, kind: str) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(kind)
    assert len(found) == 1, sorted(found)
    ((logical_id, resource),) = found.items()
    return logical_id, resource["Properties"]


def _attempt_function(template: Any) -> tuple[str, dict[str, Any]]:
    functions = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "attempt.handler"}}
    )
    ((logical_id, resource),) = functions.items()
    return logical_id, resource["Properties"]


def _statements(template: Any, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_state_machine_is_express_logged_and_traced(failover_template: Any) -> None:
    _, machine = _one(failover_template, "AWS::StepFunctions::StateMachine")
    assert machine["StateMachineType"] == "EXPRESS"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    logging = machine["LoggingConfiguration"]
    assert (logging["Level"], logging["IncludeExecutionData"]) == ("ALL", False)
    definition = json.loads(machine["DefinitionString"])
    assert [c["StringEquals"] for c in definition["States"]["Alias"]["Choices"]] == ["durable"]
    task = definition["States"]["durable #1 openai/gpt-4o-mini"]
    assert task["Parameters"]["FunctionName"] == "${AttemptFunctionArn}"
    assert task["TimeoutSeconds"] == 50 + 10 + 10
    attempt_id, _ = _attempt_function(failover_template)
    assert machine["DefinitionSubstitutions"] == {
        "AttemptFunctionArn": {"Fn::GetAtt": [attempt_id, "Arn"]}
    }


def test_attempt_function_has_the_shared_layers_and_the_policy_timeout(
    failover_template: Any,
) -> None:
    _, attempt = _attempt_function(failover_template)
    _, gateway = next(
        (i, r["Properties"])
        for i, r in failover_template.find_resources("AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == "handler.handler" and i.startswith("Gateway")
    )
    assert attempt["Layers"] == gateway["Layers"]
    assert attempt["Environment"]["Variables"]["LOCKGATE_CONFIG"]
    assert attempt["Timeout"] == 50 + 10 + 10
    assert attempt["TracingConfig"] == {"Mode": "Active"}


def test_machine_role_may_invoke_only_the_attempt_function(failover_template: Any) -> None:
    attempt_id, _ = _attempt_function(failover_template)
    _, machine = _one(failover_template, "AWS::StepFunctions::StateMachine")
    role_id = machine["RoleArn"]["Fn::GetAtt"][0]
    lambda_statements = [
        s for s in _statements(failover_template, role_id) if "lambda" in json.dumps(s["Action"])
    ]
    assert lambda_statements == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [attempt_id, "Arn"]},
        }
    ]
    actions = json.dumps([s["Action"] for s in _statements(failover_template, role_id)])
    assert "states:" not in actions and "bedrock" not in actions


@pytest.mark.parametrize("prefix", ["Gateway", "Orchestrate"])
def test_serving_functions_may_start_runs_and_know_the_arn(
    failover_template: Any, prefix: str
) -> None:
    machine_id, _ = _one(failover_template, "AWS::StepFunctions::StateMachine")
    ((_, function),) = [
        (i, r)
        for i, r in failover_template.find_resources("AWS::Lambda::Function").items()
        if i.startswith(prefix)
    ]
    properties = function["Properties"]
    assert properties["Environment"]["Variables"]["LOCKGATE_STATE_MACHINE_ARN"] == {
        "Ref": machine_id
    }
    role_id = properties["Role"]["Fn::GetAtt"][0]
    starts = [
        s for s in _statements(failover_template, role_id) if "states:" in json.dumps(s["Action"])
    ]
    assert starts == [
        {"Action": "states:StartSyncExecution", "Effect": "Allow", "Resource": {"Ref": machine_id}}
    ]


def test_cdk_nag_finds_nothing_unsuppressed_in_the_failover(load_infra: Any) -> None:
    """AwsSolutions on a stack holding only the fail-over construct: synthesis fails on any
    unsuppressed error, and every suppression carries its reason."""
    cdk_nag = pytest.importorskip("cdk_nag")
    cdk = load_infra("aws_cdk")
    failover = load_infra("infra.components.failover")
    assertions = load_infra("aws_cdk.assertions")
    app = cdk.App()
    stack = cdk.Stack(app, "Nag")
    failover.Failover(
        stack,
        "Failover",
        policy=parse_policy(POLICY),
        code_dir=REPO / "functions" / "orchestrate",
        layers=[],
        environment={},
    )
    cdk.Aspects.of(stack).add(cdk_nag.AwsSolutionsChecks())
    annotations = assertions.Annotations.from_stack(stack)
    errors = annotations.find_error("*", assertions.Match.string_like_regexp("AwsSolutions-.*"))
    assert [(e.id, str(e.entry.data)[:100]) for e in errors] == []
    template = assertions.Template.from_stack(stack)
    suppressed = [
        rule
        for resource in template.to_json()["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert {rule["id"] for rule in suppressed} == {"AwsSolutions-IAM5", "AwsSolutions-L1"}
    assert all(len(rule["reason"]) > 20 for rule in suppressed)


def test_cfn_lint_accepts_the_failover_resources_and_their_definition(
    failover_template: Any,
) -> None:
    """cfn-lint validates the state machine definition against the ASL schema (E3601) too."""
    api = pytest.importorskip("cfnlint.api")
    matches = api.lint_all(json.dumps(failover_template.to_json()))
    mine = [
        str(m)
        for m in matches
        if m.rule.id.startswith("E") and any(str(p).startswith("Failover") for p in m.path)
    ]
    assert mine == []
