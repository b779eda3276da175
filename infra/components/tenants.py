"""Tenants in AWS: one API Gateway usage plan per tier, the tenant table and the quota table.

The usage plans carry the request rate per key (API Gateway enforces it before any function
runs), taken from the same tier catalogue the gateway uses (`lockgate.tenants.tiers`). The
token limits, budgets and usage need the model's answer, so the app keeps them in DynamoDB:

- tenant table (`lockgate.stores.aws.tenants.DynamoTenantStore`): `pk` + `sk`, point-in-time
  recovery, kept when the stack is deleted;
- quota table (`lockgate.stores.aws.counters`): `pk` + `sk`, rate-window counters expire by
  TTL on `expires_at`; usage totals have no `expires_at` and stay.
"""

from __future__ import annotations

import math

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from lockgate.tenants.tiers import TIERS, TenantTier

from infra.components.tables import durable_table

TENANT_TABLE_ENV = "LOCKGATE_TENANT_TABLE"
QUOTA_TABLE_ENV = "LOCKGATE_QUOTA_TABLE"
USAGE_PLANS_ENV = "LOCKGATE_USAGE_PLANS"


def plan_throttle(tier: TenantTier) -> apigateway.ThrottleSettings | None:
    """Requests per minute → API Gateway's steady rate per second and a burst of two
    seconds' worth (at least 1)."""
    rpm = tier.key_limits.requests_per_minute
    if rpm is None:
        return None
    rate = rpm / 60
    burst = tier.burst or max(1, math.ceil(rate * 2))
    return apigateway.ThrottleSettings(rate_limit=rate, burst_limit=burst)


class TenantResources(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigateway.RestApi,
        tiers: dict[str, TenantTier] | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.tenant_table = durable_table(
            self, "TenantTable", sort="sk", removal_policy=removal_policy
        )
        # Usage totals (what tenants are billed on) live here beside the counters: PITR matters.
        self.quota_table = durable_table(
            self, "QuotaTable", sort="sk", ttl="expires_at", removal_policy=removal_policy
        )
        self.plans: dict[str, apigateway.UsagePlan] = {}
        for name, tier in (tiers or TIERS).items():
            self.plans[name] = apigateway.UsagePlan(
                self,
                f"Plan{name.title()}",
                name=f"lockgate-{name}",
                description=f"Lockgate tier {name!r}: request rate per key",
                throttle=plan_throttle(tier),
                api_stages=[apigateway.UsagePlanPerApiStage(api=api, stage=api.deployment_stage)],
            )

    @property
    def usage_plan_ids(self) -> dict[str, str]:
        return {name: plan.usage_plan_id for name, plan in self.plans.items()}

    @property
    def environment(self) -> dict[str, str]:
        """What the stores and `ApiGatewayKeys` are built from."""
        plans = cdk.Stack.of(self).to_json_string(self.usage_plan_ids)
        return {
            TENANT_TABLE_ENV: self.tenant_table.table_name,
            QUOTA_TABLE_ENV: self.quota_table.table_name,
            USAGE_PLANS_ENV: plans,
        }

    def attach(self, function: lambda_.Function) -> None:
        """Read-write on both tables (counters, usage, key lookups) and their names.

        The usage plan ids stay out: the plans depend on the API's stage, which depends on the
        serving functions, so naming the plans in their environment would be a cycle. Keys are
        administered from the CLI, which reads the plans from the stack's `UsagePlans` output.
        """
        self.tenant_table.grant_read_write_data(function)
        self.quota_table.grant_read_write_data(function)
        for name, value in self.environment.items():
            if name != USAGE_PLANS_ENV:
                function.add_environment(name, value)

    def grant_key_admin(self, grantee: iam.IGrantable) -> None:
        """What `ApiGatewayKeys` calls: create, disable and delete keys, and move them between
        this construct's plans; nothing else in API Gateway."""
        region = cdk.Stack.of(self).region
        arns = [f"arn:{cdk.Aws.PARTITION}:apigateway:{region}::/apikeys"]
        arns.append(f"arn:{cdk.Aws.PARTITION}:apigateway:{region}::/apikeys/*")
        for plan in self.plans.values():
            base = f"arn:{cdk.Aws.PARTITION}:apigateway:{region}::/usageplans/{plan.usage_plan_id}"
            arns += [f"{base}/keys", f"{base}/keys/*"]
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "apigateway:POST",
                    "apigateway:PATCH",
                    "apigateway:DELETE",
                    "apigateway:GET",
                ],
                resources=arns,
            )
        )
        self.tenant_table.grant_read_write_data(grantee)
