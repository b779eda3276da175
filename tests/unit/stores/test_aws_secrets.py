"""Provider keys from Secrets Manager, through boto3 against moto (emulated: moto stores and
returns secrets and counts nothing, so the number of reads is counted on the client)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from lockgate.bootstrap import build
from lockgate.chat import ChatRequest
from lockgate.settings import Settings
from lockgate.stores.aws.secrets import ProviderSecrets, SecretError
from moto import mock_aws

from tests.support.servers import serve

KEYS = {"OPENAI_API_KEY": "sk-test-" + "a" * 24, "ANTHROPIC_API_KEY": "sk-ant-" + "b" * 24}


@pytest.fixture
def secretsmanager() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def reads(client: Any) -> list[str]:
    seen: list[str] = []
    client.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: seen.append("read")
    )
    return seen


def test_keys_are_read_once_per_container(secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="lockgate/providers", SecretString=json.dumps(KEYS))[
        "ARN"
    ]
    seen = reads(secretsmanager)
    secrets = ProviderSecrets(arn, client=secretsmanager)
    assert seen == []  # nothing is fetched until a key is needed
    assert secrets.get("OPENAI_API_KEY") == KEYS["OPENAI_API_KEY"]
    assert secrets.get("ANTHROPIC_API_KEY") == KEYS["ANTHROPIC_API_KEY"]
    assert secrets.get("MISTRAL_API_KEY") is None
    assert seen == ["read"]


@pytest.mark.parametrize("value", ["not json", json.dumps(["a"]), json.dumps({"K": 1})])
def test_a_malformed_secret_is_a_clear_error_without_its_content(
    secretsmanager: Any, value: str
) -> None:
    arn = secretsmanager.create_secret(Name="bad", SecretString=value)["ARN"]
    with pytest.raises(SecretError) as raised:
        ProviderSecrets(arn, client=secretsmanager).get("K")
    assert arn in str(raised.value) and value not in str(raised.value)


def test_a_missing_secret_names_the_arn_and_the_reason(secretsmanager: Any) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"
    with pytest.raises(SecretError, match="ResourceNotFoundException") as raised:
        ProviderSecrets(arn, client=secretsmanager).get("K")
    assert arn in str(raised.value)


async def test_the_composition_root_gives_providers_their_keys_from_the_secret(
    secretsmanager: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A provider whose `api_key_env` is unset in the environment sends the key from the secret
    (seen by a loopback upstream); the key never reaches the gateway's or the SDKs' logs, even at
    DEBUG. (botocore itself logs whole response bodies at DEBUG, the secret's included; the
    gateway logs at INFO unless told otherwise.)"""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # moto serves the default client too
    arn = secretsmanager.create_secret(Name="lockgate/p", SecretString=json.dumps(KEYS))["ARN"]
    seen: list[str] = []

    async def completions(request: web.Request) -> web.Response:
        seen.append(request.headers.get("authorization", ""))
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "hi"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    caplog.set_level(logging.DEBUG)
    async with serve(app) as url:
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "providers:\n"
            f"  up: {{kind: openai, base_url: '{url}/v1', api_key_env: OPENAI_API_KEY}}\n"
            "models:\n"
            "  smart: {targets: [up/m]}\n"
        )
        container = build(
            Settings(config=policy, data_dir=tmp_path / "data", provider_secret_arn=arn)
        )
        try:
            request = ChatRequest.model_validate(
                {"model": "smart", "messages": [{"role": "user", "content": "hello"}]}
            )
            await container.providers["up"].complete(request, "m")
        finally:
            await container.aclose()
    assert seen == [f"Bearer {KEYS['OPENAI_API_KEY']}"]
    ours = [r for r in caplog.records if not r.name.startswith("botocore")]
    assert ours and all(KEYS["OPENAI_API_KEY"] not in r.getMessage() for r in ours)
