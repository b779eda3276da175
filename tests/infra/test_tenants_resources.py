"""Usage plans per tier and the tenant and quota tables, as CloudFormation will be told."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def template(load_infra: Any) -> Any:
    cdk = load_infra("aws_cdk")
    apigateway = load_infra("aws_cdk.aws_apigateway")
    lambda_ = load_infra("aws_cdk.aws_lambda")
    iam = load_infra("aws_cdk.aws_iam")
    assertions = load_infra("aws_cdk.assertions")
    tenants = load_infra("infra.components.tenants")
    app = cdk.App()
    stack = cdk.Stack(app, "TenantsTest")
    api = apigateway.RestApi(stack, "Api")
    api.root.add_method("GET")
    resources = tenants.TenantResources(stack, "Tenants", api=api)
    function = lambda_.Function(
        stack,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): return None"),
    )
    resources.attach(function)
    admin = iam.Role(stack, "Admin", assumed_by=iam.AccountRootPrincipal())
    resources.grant_key_admin(admin)
    return assertions.Template.from_stack(stack)


def test_one_usage_plan_per_tier_with_its_request_rate(template: Any) -> None:
    from lockgate.tenants.tiers import TIERS

    plans = {
        p["Properties"]["UsagePlanName"]: p["Properties"]
        for p in template.find_resources("AWS::ApiGateway::UsagePlan").values()
    }
    assert set(plans) == {f"lockgate-{name}" for name in TIERS}
    free = plans["lockgate-free"]
    rpm = TIERS["free"].key_limits.requests_per_minute
    assert free["Throttle"]["RateLimit"] == pytest.approx(rpm / 60)  # type: ignore[operator]
    assert free["Throttle"]["BurstLimit"] >= 1
    assert all(len(p["ApiStages"]) == 1 for p in plans.values())
    assert "Quota" not in free  # token quotas are the app's, not API Gateway's


def test_tables_have_pk_sk_and_the_quota_table_expires_windows(template: Any) -> None:
    tables = [t for t in template.find_resources("AWS::DynamoDB::Table").values()]
    assert len(tables) == 2
    for table in tables:
        assert table["Properties"]["KeySchema"] == [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
        assert table["DeletionPolicy"] == "Retain"
    ttl = [t["Properties"].get("TimeToLiveSpecification") for t in tables]
    assert {"AttributeName": "expires_at", "Enabled": True} in ttl
    assert None in ttl  # the tenant table never expires anything


def test_functions_get_the_tables_but_not_the_plans(template: Any) -> None:
    """Plan ids in a serving function's environment would be a dependency cycle (plan → stage
    → method → function); key administration reads them from the stack output instead."""
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert {"LOCKGATE_TENANT_TABLE", "LOCKGATE_QUOTA_TABLE"} <= set(variables)
    assert "LOCKGATE_USAGE_PLANS" not in variables
    statements = [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        a
        for s in statements
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert "dynamodb:UpdateItem" in actions and "apigateway:POST" in actions
    assert "apigateway:*" not in actions
