"""Provider API keys from AWS Secrets Manager, read once per container.

The secret is one JSON object of environment-variable names to keys
(`{"OPENAI_API_KEY": "sk-...", "ANTHROPIC_API_KEY": "..."}`), so a provider's `api_key_env`
names its key here exactly as it would name an environment variable locally. The secret is
fetched on first use and kept for the container's life (a Lambda container is short-lived, and a
fetch per request would add a network round trip and cost); rotating a key reaches new
containers. Keys never appear in an error message or a log line: failures name the secret's ARN
and the missing variable only.
"""

from __future__ import annotations

import json
import threading
from typing import Any


class SecretError(RuntimeError):
    """The secret could not be read or is not a JSON object of strings."""


class ProviderSecrets:
    def __init__(self, secret_arn: str, *, client: Any | None = None) -> None:
        if not secret_arn:
            raise ValueError("ProviderSecrets needs the secret's ARN")
        self._arn = secret_arn
        self._client = client
        self._values: dict[str, str] | None = None
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        """The key stored under `name`, or None when the secret has no such entry."""
        return self._load().get(name)

    def __repr__(self) -> str:
        return f"ProviderSecrets({self._arn!r})"

    def _load(self) -> dict[str, str]:
        with self._lock:
            if self._values is None:
                self._values = self._fetch()
            return self._values

    def _fetch(self) -> dict[str, str]:
        client = self._client
        if client is None:
            import boto3

            client = boto3.client("secretsmanager")
        try:
            text = client.get_secret_value(SecretId=self._arn)["SecretString"]
        except KeyError:
            raise SecretError(f"secret {self._arn} has no string value") from None
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            raise SecretError(f"cannot read secret {self._arn}: {code}") from None
        try:
            values = json.loads(text)
        except ValueError:
            raise SecretError(f"secret {self._arn} is not a JSON object") from None
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise SecretError(f"secret {self._arn} must map names to string keys")
        return values
