"""Process settings, from the environment (and `.env` when present): where things live and
which adapters to use. What to route where is the policy file's job, not this one's."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr

if TYPE_CHECKING:
    from lockgate.stores.opensearch.client import OpenSearchConfig

_ENV_PREFIX = "LOCKGATE_"


class Settings(BaseModel):
    config: Path | None = Field(
        default=None, description="routing policy YAML; embedded default if unset"
    )
    api_key: SecretStr | None = Field(default=None, description="a key to accept, for scripts")
    auth: Literal["keys", "api-gateway"] = Field(
        default="keys", description="check keys here, or trust API Gateway's key check"
    )
    admin_key: SecretStr | None = Field(default=None, description="guards /admin routes")
    backend: Literal["embedded", "aws"] = Field(
        default="embedded", description="SQLite and in-process indexes, or DynamoDB/OpenSearch"
    )
    data_dir: Path = Path(".lockgate")
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    log_level: str = "INFO"
    warm_local_model: bool = True
    local_embedding_int8: bool = Field(
        default=True,
        description="run the bundled MiniLM on its int8 rewrite (needs the onnx package);"
        " off: the shipped fp32 graph, slower, vectors within cosine 0.995",
    )
    sample_kb: Path | None = Field(
        default=None,
        description="a folder synced into the default tenant's 'support' collection at start",
    )
    watch_dir: Path | None = Field(default=None, description="a folder kept indexed while serving")
    watch_collection: str = "support"
    # The AWS shape's resources (set by the CDK stack on the functions).
    tenant_table: str | None = None
    quota_table: str | None = None
    usage_plans: str | None = Field(default=None, description="JSON: tenant tier → plan id")
    exact_cache_table: str | None = None
    exact_cache_bucket: str | None = None
    opensearch_url: str | None = None
    opensearch_auth: Literal["sigv4", "none"] = "sigv4"
    opensearch_service: Literal["es", "aoss"] = Field(
        default="es", description="a managed domain (es) or a Serverless collection (aoss)"
    )
    opensearch_replicas: str = Field(
        default="0-1", description="replicas per index: a count, or an auto-expand range"
    )
    provider_secret_arn: str | None = Field(
        default=None, description="Secrets Manager secret (JSON) holding providers' API keys"
    )
    cache_vector_index: str = "lockgate-cache"
    documents_table: str | None = Field(default=None, description="RAG documents (aws backend)")
    rag_text_index: str = "lockgate-rag-text"
    rag_vector_index: str = "lockgate-rag-vectors"
    state_machine_arn: str | None = Field(
        default=None, description="fail-over state machine for `executor: step_functions` aliases"
    )
    response_table: str | None = Field(
        default=None, description="DynamoDB table of /v1/responses conversations (aws backend)"
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (e.g. http://localhost:4318); off if unset",
    )
    metrics_tenants: int = Field(
        default=20, ge=0, description="tenants with a metrics label of their own; others: 'other'"
    )

    def opensearch(self) -> OpenSearchConfig:
        """The one OpenSearch client configuration, for the semantic cache and RAG alike."""
        from lockgate.stores.opensearch.client import OpenSearchConfig

        if not self.opensearch_url:
            raise ValueError("the aws backend needs LOCKGATE_OPENSEARCH_URL")
        return OpenSearchConfig(
            url=self.opensearch_url,
            auth=self.opensearch_auth,
            service=self.opensearch_service,
            replicas=self.opensearch_replicas,
        )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(_ENV_PREFIX + name.upper())
            if raw not in (None, ""):
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def load_dotenv(path: Path = Path(".env")) -> None:
    """Set variables from a `.env` file without overriding the real environment."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip().strip("'\""))


def environment_variable(name: str) -> str | None:
    """A variable the policy names (a provider's `api_key_env`, an SDK's base-URL variable):
    this module is the one place that reads the process environment."""
    return os.environ.get(name) or None
