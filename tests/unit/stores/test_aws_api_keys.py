"""Moving an API Gateway key between tier usage plans, through boto3 against moto.

moto keeps usage-plan membership but does not enforce API Gateway's rule that a key belongs to
at most one plan per stage, so the order of the calls is checked from what the client sent, and
the membership from moto. Failures of the join are injected with a `before-call` hook.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from lockgate.stores.aws.api_keys import ApiGatewayKeys
from moto import mock_aws


@pytest.fixture
def apigateway() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("apigateway", region_name="us-east-1")


@pytest.fixture
def plans(apigateway: Any) -> dict[str, str]:
    return {
        tier: apigateway.create_usage_plan(name=f"lockgate-{tier}")["id"]
        for tier in ("free", "standard", "pro")
    }


def members(apigateway: Any, plan: str) -> set[str]:
    return {k["id"] for k in apigateway.get_usage_plan_keys(usagePlanId=plan)["items"]}


def calls(apigateway: Any) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name in ("CreateUsagePlanKey", "DeleteUsagePlanKey"):
            seen.append((model.name, params["usagePlanId"]))

    apigateway.meta.events.register("before-parameter-build.api-gateway", record)
    return seen


def test_a_key_leaves_its_old_plan_before_joining_the_new_one(
    apigateway: Any, plans: dict[str, str]
) -> None:
    keys = ApiGatewayKeys(plans, apigateway=apigateway)
    key_id = keys.register("lg-" + "x" * 40, tenant_id="acme", tier="free", name="ci")
    seen = calls(apigateway)
    keys.move(key_id, from_tier="free", to_tier="pro")
    assert seen == [("DeleteUsagePlanKey", plans["free"]), ("CreateUsagePlanKey", plans["pro"])]
    assert members(apigateway, plans["free"]) == set()
    assert members(apigateway, plans["pro"]) == {key_id}


def test_a_failed_join_puts_the_key_back_in_its_old_plan(
    apigateway: Any, plans: dict[str, str]
) -> None:
    keys = ApiGatewayKeys(plans, apigateway=apigateway)
    key_id = keys.register("lg-" + "y" * 40, tenant_id="acme", tier="standard", name="")

    def refuse_pro(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if plans["pro"] not in params["url_path"]:
            return None
        error = {"Code": "TooManyRequestsException", "Message": "slow down"}
        return AWSResponse("https://apigateway", 429, {}, None), {"Error": error}

    apigateway.meta.events.register("before-call.api-gateway.CreateUsagePlanKey", refuse_pro)
    with pytest.raises(apigateway.exceptions.TooManyRequestsException):
        keys.move(key_id, from_tier="standard", to_tier="pro")
    assert members(apigateway, plans["standard"]) == {key_id}
    assert members(apigateway, plans["pro"]) == set()


def test_moving_back_and_to_the_same_tier(apigateway: Any, plans: dict[str, str]) -> None:
    keys = ApiGatewayKeys(plans, apigateway=apigateway)
    key_id = keys.register("lg-" + "z" * 40, tenant_id="acme", tier="free", name="")
    keys.move(key_id, from_tier="free", to_tier="pro")
    keys.move(key_id, from_tier="pro", to_tier="pro")
    assert members(apigateway, plans["free"]) == set()
    assert members(apigateway, plans["pro"]) == {key_id}
    keys.move(key_id, from_tier="pro", to_tier="free")
    assert members(apigateway, plans["free"]) == {key_id}
    assert members(apigateway, plans["pro"]) == set()
