"""The DynamoDB tenant store where it differs from SQLite, through boto3 against moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from lockgate.stores.aws.tenants import DynamoTenantStore
from lockgate.tenants.keys import Tenant, hash_key
from moto import mock_aws

from tests.contract.test_tenant_store import create_tenant_table


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tenant_table(client, "tenants")
        yield client


def test_two_cold_starts_adding_the_same_install_key_both_start(dynamodb: Any) -> None:
    """Both containers look the hash up before either writes it; the second's conditional
    transaction is refused, and that is success, not a failed start."""
    first = DynamoTenantStore("tenants", dynamodb=dynamodb)
    second = DynamoTenantStore("tenants", dynamodb=dynamodb)
    looked_up = second.key_by_hash
    lookups: list[str] = []

    def stale_first(key_hash: str) -> Any:
        lookups.append(key_hash)
        return None if len(lookups) == 1 else looked_up(key_hash)

    second.key_by_hash = stale_first  # type: ignore[method-assign]
    key = hash_key("lg-install-key-0123456789")
    first.add(key, Tenant("default"), name="LOCKGATE_API_KEY")
    second.add(key, Tenant("default"), name="LOCKGATE_API_KEY")
    assert len(first.list_keys("default")) == 1
    assert first.tenant_for(key) == Tenant("default")
