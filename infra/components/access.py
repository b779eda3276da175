"""Who may call the API and how much: a usage plan on the stage and the API keys in it.

API Gateway enforces the plan's request throttle and quota per key before any function runs;
token quotas, which need the model's answer, are the app's job (DynamoDB, a later construct).
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigateway
from constructs import Construct


class ApiAccess(Construct):
    """A usage plan bound to the API's stage, with one key to start from.

    More tenants mean more keys in this plan (`add_key`), or more plans for other tiers.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigateway.RestApi,
        rate_limit: float,
        burst_limit: int,
        quota_limit: int,
        quota_period: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.plan = apigateway.UsagePlan(
            self,
            "Plan",
            description="Lockgate default tenant plan",
            throttle=apigateway.ThrottleSettings(rate_limit=rate_limit, burst_limit=burst_limit),
            quota=apigateway.QuotaSettings(
                limit=quota_limit, period=apigateway.Period[quota_period]
            ),
            api_stages=[apigateway.UsagePlanPerApiStage(api=api, stage=api.deployment_stage)],
        )
        self.default_key = self.add_key("DefaultKey", "Lockgate default key")

    def add_key(self, construct_id: str, description: str) -> apigateway.ApiKey:
        """A new generated API key in this plan; its value is read with `aws apigateway`."""
        key = apigateway.ApiKey(self, construct_id, description=description, enabled=True)
        self.plan.add_api_key(key)
        return key
