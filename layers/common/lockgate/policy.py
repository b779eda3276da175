"""The routing policy: providers, model aliases, tiers, retry, timeouts and cooldown.

Loaded from YAML and validated once at start; a bad file is refused with the path of the bad
field, so a typo never surfaces as a runtime error on the first request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TIERS = ("simple", "medium", "complex")
AUTO = "auto"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenAIProviderConfig(_Strict):
    kind: Literal["openai"]
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    api_key_env: str | None = None
    organization: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)


class AnthropicProviderConfig(_Strict):
    kind: Literal["anthropic"]
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    api_key_env: str | None = "ANTHROPIC_API_KEY"
    default_max_tokens: int = Field(default=1024, ge=1)


class BedrockProviderConfig(_Strict):
    kind: Literal["bedrock"]
    region: str | None = None
    endpoint_url: str | None = None


class LocalProviderConfig(_Strict):
    kind: Literal["local"]
    model_path: str | None = None
    context_tokens: int = Field(default=2048, ge=256)
    threads: int | None = Field(default=None, ge=1)
    default_max_tokens: int = Field(default=256, ge=1)


ProviderConfig = Annotated[
    OpenAIProviderConfig | AnthropicProviderConfig | BedrockProviderConfig | LocalProviderConfig,
    Field(discriminator="kind"),
]


class RetryPolicy(_Strict):
    attempts: int = Field(default=2, ge=1, le=10, description="tries per target, first included")
    backoff_initial_s: float = Field(default=0.1, ge=0)
    backoff_max_s: float = Field(default=2.0, ge=0)
    max_retry_after_s: float = Field(
        default=10.0, ge=0, description="a longer Retry-After skips to the next target"
    )


class Timeouts(_Strict):
    connect_s: float = Field(default=5.0, gt=0, description="connect, per attempt")
    first_token_s: float = Field(
        default=30.0, gt=0, description="first chunk, per streamed attempt"
    )
    between_chunks_s: float = Field(default=15.0, gt=0, description="a longer gap is a stall")
    response_s: float = Field(default=120.0, gt=0, description="whole answer, per buffered attempt")
    total_s: float = Field(default=300.0, gt=0, description="the request, all attempts together")


class Cooldown(_Strict):
    failures: int = Field(default=3, ge=1, description="consecutive failures that trip it")
    seconds: float = Field(default=30.0, ge=0)


class CachePolicy(_Strict):
    """Response caching for an alias (issue: caching)."""

    enabled: bool = True
    ttl_s: float = Field(default=3600.0, gt=0)
    semantic: bool = True
    semantic_threshold: float | None = Field(
        default=None, ge=0, le=1, description="plain cosine; None uses the calibrated default"
    )
    cache_truncated: bool = Field(default=False, description="also cache finish_reason=length")


class RagBinding(_Strict):
    """Grounds an alias's answers in a document collection (issue: RAG)."""

    collection: str = Field(min_length=1)
    top_k: int = Field(default=5, ge=1, le=50)
    min_score: float | None = Field(default=None, description="None uses the calibrated default")
    when_nothing_found: Literal["dont_know", "call_model"] = "dont_know"
    context_tokens: int = Field(
        default=1200,
        ge=100,
        le=100_000,
        description="room for sources in the prompt (estimated tokens); the best-ranked chunks "
        "that fit are sent and cited, at least one; the response reports what was used",
    )
    answer: Literal["auto", "generate", "extract"] = Field(
        default="auto",
        description="extract: quote the best-matching sentences of the best source, no model "
        "call; auto: extract for the bundled local model (too small to compose a grounded "
        "answer) and for any answer that cites nothing from its sources, else generate",
    )


class SafetyPolicy(_Strict):
    """Input limits and prompt-injection handling for an alias (issue: gateway layer)."""

    max_messages: int = Field(default=256, ge=1)
    max_prompt_tokens: int | None = Field(default=None, ge=1)
    injection_action: Literal["block", "flag", "strip", "off"] = Field(
        default="flag",
        description="flag by default: on held-out public prompts it catches 89.5 % of attacks "
        "but also flags 1.4 % of benign ones (2 % of role-play and long instructions; "
        "bench/results/safety.md), and blocking would refuse those outright; block suits "
        "aliases whose users never write instructions, with injection_threshold 0.5 for "
        "0.6 % benign flagged at 81 % caught",
    )
    injection_threshold: float | None = Field(default=None, ge=0, le=1)
    redact_prompts: bool = Field(default=False, description="mask PII before it leaves")


class IngestionPolicy(_Strict):
    """Bounds on one document and on a tenant's uploads: a small file can expand into a huge
    one (a zip bomb, a PDF of thousands of pages), so each limit is checked before the work it
    bounds, and a document over one is refused with 413 naming it."""

    max_expanded_mb: float = Field(
        default=64.0, gt=0, description="a document's size once unzipped or decoded"
    )
    max_pages: int = Field(default=2000, ge=1, description="PDF pages")
    max_paragraphs: int = Field(default=100_000, ge=1)
    max_chunks: int = Field(default=2000, ge=1, description="chunks indexed per document")
    parse_timeout_s: float = Field(default=60.0, gt=0)
    parse_memory_mb: int = Field(default=1024, ge=128, description="the parser process's cap")
    uploads_per_hour: int = Field(default=200, ge=1, description="per tenant, through the API")
    upload_mb_per_hour: float = Field(default=500.0, gt=0, description="per tenant")


class Price(_Strict):
    """USD per million tokens, for budgets and `GET /v1/usage`.

    Providers bill prompt-cache reads and writes at their own rates (Anthropic: writes 1.25
    times the input rate for the 5-minute cache, twice it for the 1-hour one, reads a tenth;
    OpenAI: reads half or less, writes free); unset, both cost the input rate."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class Target(_Strict):
    provider: str
    model: str
    weight: float = Field(default=1.0, ge=0, description="share of traffic under `weighted`")

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


def _parse_target(value: Any) -> Any:
    if isinstance(value, str):
        provider, sep, model = value.partition("/")
        if not sep or not provider or not model:
            raise ValueError(f"target {value!r} must be 'provider/model'")
        return {"provider": provider, "model": model}
    return value


class Alias(_Strict):
    targets: list[Target] = Field(min_length=1)
    strategy: Literal["fallback", "weighted", "least_latency"] = Field(
        default="fallback",
        description="try targets in order; or spread by weight; or fastest first (moving "
        "time-to-first-token estimate); failures fall back along the rest either way",
    )
    executor: Literal["in_process", "step_functions"] = Field(
        default="in_process",
        description="who runs retries and fallback for buffered calls: this process, or the "
        "Step Functions state machine compiled from this policy (AWS); streams stay in-process",
    )
    retry: RetryPolicy | None = None
    timeouts: Timeouts | None = None
    cache: CachePolicy | None = None
    rag: RagBinding | None = None
    safety: SafetyPolicy | None = None
    stream_continuation: bool = Field(
        default=False,
        description="a stream that fails after its first token is continued on the next target",
    )
    description: str = ""

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        return [_parse_target(v) for v in value] if isinstance(value, list) else value


class EmbeddingAlias(_Strict):
    """A `/v1/embeddings` model name: tried in order, the next one when a target fails.

    A target's provider decides the API: `openai` kind → any OpenAI-compatible embeddings
    endpoint; `bedrock` → Titan (`amazon.titan-embed-*`) or Cohere (`cohere.embed-*`);
    `local` → the bundled MiniLM (model `all-MiniLM-L6-v2`)."""

    targets: list[Target] = Field(min_length=1)
    description: str = ""

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        return [_parse_target(v) for v in value] if isinstance(value, list) else value


class Policy(_Strict):
    providers: dict[str, ProviderConfig] = Field(min_length=1)
    models: dict[str, Alias] = Field(min_length=1)
    embeddings: dict[str, EmbeddingAlias] = Field(default_factory=dict)
    tiers: dict[Literal["simple", "medium", "complex"], str] = Field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    timeouts: Timeouts = Timeouts()
    cooldown: Cooldown = Cooldown()
    cache: CachePolicy = CachePolicy()
    safety: SafetyPolicy = SafetyPolicy()
    ingestion: IngestionPolicy = IngestionPolicy()
    prices: dict[str, Price] = Field(
        default_factory=dict, description="by target 'provider/model'; unpriced targets cost 0"
    )
    response_ttl_s: float = Field(
        default=30 * 86400.0, gt=0, description="how long /v1/responses conversations are kept"
    )

    @model_validator(mode="after")
    def _references(self) -> Policy:
        if AUTO in self.models:
            raise ValueError(f"models.{AUTO}: '{AUTO}' is reserved for tier routing")
        for name, alias in self.models.items():
            for i, target in enumerate(alias.targets):
                if target.provider not in self.providers:
                    raise ValueError(
                        f"models.{name}.targets.{i}.provider: unknown provider "
                        f"{target.provider!r} (known: {', '.join(sorted(self.providers))})"
                    )
        for name, embedding in self.embeddings.items():
            for i, target in enumerate(embedding.targets):
                config = self.providers.get(target.provider)
                if config is None or config.kind == "anthropic":
                    raise ValueError(
                        f"embeddings.{name}.targets.{i}.provider: {target.provider!r} is not "
                        "an openai, bedrock or local provider"
                    )
        for tier, alias_name in self.tiers.items():
            if alias_name not in self.models:
                raise ValueError(f"tiers.{tier}: unknown model alias {alias_name!r}")
        return self

    def tier_alias(self, tier: str) -> str:
        """The alias serving a tier; unnamed tiers borrow the nearest named one, then the first
        alias, so `auto` always resolves."""
        if tier in self.tiers:
            return self.tiers[tier]  # type: ignore[index]
        order = TIERS.index(tier) if tier in TIERS else 0
        for distance in range(1, len(TIERS)):
            for candidate in (order - distance, order + distance):
                if 0 <= candidate < len(TIERS) and TIERS[candidate] in self.tiers:
                    return self.tiers[TIERS[candidate]]  # type: ignore[index]
        return next(iter(self.models))

    def retry_for(self, alias: str) -> RetryPolicy:
        return self.models[alias].retry or self.retry

    def timeouts_for(self, alias: str) -> Timeouts:
        return self.models[alias].timeouts or self.timeouts

    def cache_for(self, alias: str) -> CachePolicy:
        return self.models[alias].cache or self.cache

    def safety_for(self, alias: str) -> SafetyPolicy:
        return self.models[alias].safety or self.safety


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the bad field."""


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-"))
        msg = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def parse_policy(
    data: Any, source: str = "<policy>", env: Mapping[str, str] | None = None
) -> Policy:
    try:
        return Policy.model_validate(_expand_env(data, os.environ if env is None else env))
    except ValidationError as exc:
        raise PolicyError(f"invalid config {source}:\n{_describe(exc)}") from None


def load_policy(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Policy:
    """The policy in a YAML file; `${VAR}` in its strings taken from `env` (the process
    environment by default)."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read config {file}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"config {file} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"invalid config {file}: the top level must be a mapping")
    return parse_policy(data, str(file), env)


_ENV_REFERENCE = re.compile(r"\$\{(\w+)\}")


def _expand_env(data: Any, env: Mapping[str, str]) -> Any:
    """Expand ${VAR} in string values so a config can name secrets without holding them; an
    unset variable stays as written."""
    if isinstance(data, dict):
        return {k: _expand_env(v, env) for k, v in data.items()}
    if isinstance(data, list):
        return [_expand_env(v, env) for v in data]
    if isinstance(data, str) and "${" in data:
        return _ENV_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), data)
    return data


def default_policy() -> Policy:
    """The embedded default: everything answered by the bundled local model."""
    return parse_policy(
        {
            "providers": {"local": {"kind": "local"}},
            "models": {
                "local": {
                    "targets": ["local/smollm2-135m-instruct"],
                    "description": "SmolLM2-135M-Instruct on llama.cpp, in process",
                },
                "support-bot": {
                    "targets": ["local/smollm2-135m-instruct"],
                    "description": "answers from the sample support knowledge base, citing it",
                    "rag": {"collection": "support", "top_k": 3},
                    "safety": {"injection_action": "block"},
                },
            },
            "tiers": {"simple": "local", "medium": "local", "complex": "local"},
            "embeddings": {
                "minilm": {
                    "targets": ["local/all-MiniLM-L6-v2"],
                    "description": "all-MiniLM-L6-v2 (384 dimensions), in process",
                }
            },
        },
        "<embedded default>",
    )
