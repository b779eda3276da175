"""API Gateway keys for tenants: one usage plan per tier carries the request-rate limits.

The gateway's key value is the same random key `TenantService` generated (API Gateway accepts a
caller-chosen value of 20+ characters), so one key works behind API Gateway and locally, and
the API Gateway key id becomes the key's id in the tenant table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiGatewayKeys:
    """`GatewayKeyRegistrar` over API Gateway. `usage_plans` maps tier name → usage plan id
    (the CDK app outputs them)."""

    def __init__(self, usage_plans: Mapping[str, str], *, apigateway: Any | None = None) -> None:
        if apigateway is None:
            import boto3

            apigateway = boto3.client("apigateway")
        self._api = apigateway
        self._plans = dict(usage_plans)

    def register(self, key: str, *, tenant_id: str, tier: str, name: str) -> str:
        plan = self._plan(tier)
        created = self._api.create_api_key(
            name=f"{tenant_id}:{name}" if name else tenant_id,
            description=f"Lockgate key for tenant {tenant_id}",
            enabled=True,
            value=key,
            tags={"lockgate:tenant": tenant_id, "lockgate:tier": tier},
        )
        key_id = str(created["id"])
        try:
            self._api.create_usage_plan_key(usagePlanId=plan, keyId=key_id, keyType="API_KEY")
        except Exception:
            self._api.delete_api_key(apiKey=key_id)
            raise
        return key_id

    def move(self, gateway_key_id: str, *, from_tier: str, to_tier: str) -> None:
        """Leaves the old tier's plan, then joins the new one. API Gateway refuses a key in two
        plans of the same stage, so the order matters; if joining fails the key goes back to
        its old plan, so it is never left without one."""
        target = self._plan(to_tier)
        source = self._plans.get(from_tier)
        if source == target:
            return
        if source is not None:
            try:
                self._api.delete_usage_plan_key(usagePlanId=source, keyId=gateway_key_id)
            except self._api.exceptions.NotFoundException:
                source = None  # it was not in the old plan: nothing to restore on failure
        try:
            self._api.create_usage_plan_key(
                usagePlanId=target, keyId=gateway_key_id, keyType="API_KEY"
            )
        except self._api.exceptions.ConflictException:
            pass  # already in the new plan
        except Exception:
            if source is not None:
                self._api.create_usage_plan_key(
                    usagePlanId=source, keyId=gateway_key_id, keyType="API_KEY"
                )
            raise

    def disable(self, gateway_key_id: str) -> None:
        self._api.update_api_key(
            apiKey=gateway_key_id,
            patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}],
        )

    def _plan(self, tier: str) -> str:
        try:
            return self._plans[tier]
        except KeyError:
            raise ValueError(
                f"no usage plan for tier {tier!r} (configured: {', '.join(self._plans)})"
            ) from None
