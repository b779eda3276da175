"""Secure defaults, checked on the synthesized templates (the default stack and the variant with
every option on): cdk-nag's AwsSolutions pack with nothing unsuppressed, cfn-lint, and the
settings a reviewer would look for first.

Verified by synthesis and the two linters (emulation of what CloudFormation is told); whether
AWS then enforces each setting as documented is known only by reading the AWS docs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

SERVING = ("Gateway", "Orchestrate", "Documents")


def resources(template: Any, kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template.find_resources(kind)
    return found


@pytest.mark.parametrize("which", ["default", "variant"])
def test_cdk_nag_finds_nothing_unsuppressed(
    synth_stack: Any, variant_context: dict[str, str], which: str
) -> None:
    """Errors would have failed the synth already (validation report); warnings do not, so
    both are read back from the stack's annotations."""
    from aws_cdk.assertions import Annotations, Match

    stack, _ = synth_stack(**(variant_context if which == "variant" else {}))
    annotations = Annotations.from_stack(stack)
    findings = [
        f"{message.id}: {str(message.entry.data)[:160]}"
        for message in [
            *annotations.find_error("*", Match.any_value()),
            *annotations.find_warning("*", Match.any_value()),
        ]
    ]
    assert findings == []


def test_every_suppression_says_why(template: Any) -> None:
    metadata = [
        rule
        for resource in template.to_json()["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert len(metadata) >= 10
    for rule in metadata:
        assert len(rule["reason"]) >= 40, rule
    # IAM5 is accepted finding by finding, never for a whole role.
    assert all(rule.get("applies_to") for rule in metadata if rule["id"] == "AwsSolutions-IAM5")


def test_cfn_lint_passes_on_both_templates(template: Any, variant: Any) -> None:
    """W3005 (a DependsOn also implied by a GetAtt) is how CDK orders a function after its
    role's policy; it is the only rule ignored."""
    from cfnlint.api import ManualArgs, lint

    for synthesized in (template, variant):
        matches = lint(
            json.dumps(synthesized.to_json()),
            config=ManualArgs(regions=["us-east-1"], ignore_checks=["W3005"]),
        )
        assert [f"{m.rule.id} {m.message}" for m in matches] == []


def test_buckets_are_encrypted_versioned_private_tls_only_and_logged(template: Any) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    assert len(buckets) == 3
    (logs_id,) = [i for i in buckets if i.startswith("AccessLogs")]
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
    }
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        assert all(props["PublicAccessBlockConfiguration"].values()), logical_id
        assert any(
            s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s)
            for s in policies[logical_id]
        ), logical_id
        if logical_id != logs_id:
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}
        assert bucket["DeletionPolicy"] == "Retain"


def test_tables_have_point_in_time_recovery_and_encryption(template: Any) -> None:
    tables = resources(template, "AWS::DynamoDB::Table")
    assert len(tables) == 6
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, (
            logical_id
        )


def test_queues_are_encrypted_and_tls_only(template: Any) -> None:
    queues = resources(template, "AWS::SQS::Queue")
    assert len(queues) == 2
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    for policy in resources(template, "AWS::SQS::QueuePolicy").values():
        denies = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in denies)


def test_opensearch_domain_admits_only_the_function_roles(template: Any) -> None:
    ((_, domain),) = resources(template, "AWS::OpenSearchService::Domain").items()
    props = domain["Properties"]
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert props["DomainEndpointOptions"]["TLSSecurityPolicy"] == "Policy-Min-TLS-1-2-2019-07"
    assert props["EngineVersion"].startswith("OpenSearch_2.")
    assert {"SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS", "ES_APPLICATION_LOGS"} <= set(
        props["LogPublishingOptions"]
    )
    # The log group's resource policy exists before the domain that writes to it.
    assert any(d.startswith("SearchLogsPolicy") for d in domain["DependsOn"])
    (statement,) = props["AccessPolicies"]["Statement"]
    principals = {p["Fn::GetAtt"][0] for p in statement["Principal"]["AWS"]}
    assert {p.rstrip("0123456789ABCDEF") for p in principals} == {f"{name}Role" for name in SERVING}
    assert statement["Effect"] == "Allow" and "Condition" not in statement


def test_provider_keys_come_from_secrets_manager(template: Any) -> None:
    ((secret_id, secret),) = resources(template, "AWS::SecretsManager::Secret").items()
    assert secret["Properties"]["SecretString"] == "{}"  # a placeholder, never a key
    assert secret["DeletionPolicy"] == "Retain"
    for fn in resources(template, "AWS::Lambda::Function").values():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "LOCKGATE_BACKEND" in env or "LOCKGATE_IDEMPOTENCY_TABLE" in env:
            assert env["LOCKGATE_PROVIDER_SECRET_ARN"] == {"Ref": secret_id}
            assert not any(name.endswith("_API_KEY") for name in env)
    readers = [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "secretsmanager:GetSecretValue" in statement["Action"]
    ]
    assert len(readers) == 4  # gateway, orchestrate, ingest and the fail-over's attempt
    assert all(statement["Resource"] == {"Ref": secret_id} for statement in readers)


def test_an_existing_secret_is_used_instead(variant: Any, variant_context: dict[str, str]) -> None:
    assert resources(variant, "AWS::SecretsManager::Secret") == {}
    arn = variant_context["providerSecretArn"]
    for fn in resources(variant, "AWS::Lambda::Function").values():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "LOCKGATE_BACKEND" in env:
            assert env["LOCKGATE_PROVIDER_SECRET_ARN"] == arn


def test_no_function_role_uses_a_managed_policy_or_a_stray_wildcard(template: Any) -> None:
    """Logs only to the function's own log group; `*` only for X-Ray, which has no resource."""
    roles = resources(template, "AWS::IAM::Role")
    for name in (*SERVING, "FailoverAttempt"):
        ((role_id, role),) = [(i, r) for i, r in roles.items() if i.startswith(f"{name}Role")]
        assert "ManagedPolicyArns" not in role["Properties"]
        statements = [
            s
            for p in resources(template, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        star = [s for s in statements if s["Resource"] == "*"]
        assert [s["Action"] for s in star] == [
            ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
        ]
        (logs,) = [s for s in statements if "logs:PutLogEvents" in s["Action"]]
        assert "Fn::GetAtt" in logs["Resource"]
