from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from lockgate.app import create_app
from lockgate.bootstrap import build
from lockgate.settings import Settings
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.tenants import Tenant, generate_key, hash_key
from lockgate.tenants.auth import ApiGatewayAuthenticator, KeyStoreAuthenticator

POLICY = (
    "providers: {m: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
    "models: {a: {targets: [m/x]}}\n"
)


def test_keys_are_random_and_stored_only_hashed(tmp_path: Path) -> None:
    store = SqliteKeyStore(tmp_path / "k.db")
    key = generate_key()
    assert key != generate_key() and len(key) > 40
    store.add(hash_key(key), Tenant("acme"))
    auth = KeyStoreAuthenticator(store)
    assert auth.tenant_for(key, None) == Tenant("acme")
    assert auth.tenant_for(key + "x", None) is None
    assert auth.tenant_for(None, "id-from-a-forged-header") is None
    assert key.encode() not in (tmp_path / "k.db").read_bytes()


def test_api_gateway_trusts_only_the_key_id() -> None:
    auth = ApiGatewayAuthenticator()
    assert auth.tenant_for("anything", "abc123") == Tenant("apikey:abc123")
    assert auth.tenant_for("anything", None) is None


@pytest.fixture
def behind_api_gateway(tmp_path: Path) -> httpx.AsyncClient:
    config = tmp_path / "p.yaml"
    config.write_text(POLICY)
    app = create_app(
        container=build(Settings(config=config, data_dir=tmp_path, auth="api-gateway"))
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_lambda_web_adapter_context_authenticates(
    behind_api_gateway: httpx.AsyncClient,
) -> None:
    context = {"identity": {"apiKeyId": "k-123"}, "requestId": "r"}
    ok = await behind_api_gateway.get(
        "/v1/models", headers={"x-amzn-request-context": orjson.dumps(context).decode()}
    )
    assert ok.status_code == 200
    refused = await behind_api_gateway.get("/v1/models", headers={"x-api-key": "whatever"})
    assert refused.status_code == 401
