"""Deployment settings, read once from CDK context so every construct gets typed values.

Context comes from cdk.json, `cdk.context.json` and `cdk ... -c key=value`; values given on the
command line arrive as strings, so numbers and booleans are parsed here rather than in each
construct.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import constructs

REPO = Path(__file__).resolve().parents[1]

# The Lambda Web Adapter's x86_64 layer, published by AWS in every commercial region. 30 is
# adapter v1.0.x; override with `-c lwaLayerVersion=N`.
DEFAULT_LWA_LAYER_VERSION = 30


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(part) for part in value)


QUOTA_PERIODS = ("DAY", "WEEK", "MONTH")
SEARCH_KINDS = ("domain", "serverless")

# The Bedrock models the default AWS policy (infra/policies/aws-default.yaml) serves per tier.
# Amazon Nova needs no use-case form, so a fresh account answers after `cdk deploy`; a Claude
# model (`anthropic.…` or a `us.`/`eu.` inference profile) can take any tier from context.
DEFAULT_BEDROCK_MODELS = {
    "simple": "amazon.nova-micro-v1:0",
    "medium": "amazon.nova-lite-v1:0",
    "complex": "amazon.nova-pro-v1:0",
}


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


@dataclass(frozen=True)
class Settings:
    """Everything the stack can be told from outside; defaults make a working dev deployment."""

    repo: Path = REPO
    stack_name: str = "Lockgate"
    stage_name: str = "prod"
    lwa_layer_version: int = DEFAULT_LWA_LAYER_VERSION
    log_level: str = "INFO"
    # Value of LOCKGATE_CONFIG as the functions see it (a path in the runtime, or a reference the
    # app resolves). Unset: the app's packaged defaults.
    lockgate_config: str | None = None
    # A policy YAML on this machine, shipped in a small layer; sets LOCKGATE_CONFIG to it.
    policy_file: Path | None = None
    # The model id serving each tier in the default AWS policy (context `bedrock<Tier>Model`).
    bedrock_models: tuple[tuple[str, str], ...] = tuple(DEFAULT_BEDROCK_MODELS.items())
    # More Bedrock model ids the functions may invoke (for a policyFile of your own).
    bedrock_model_ids: tuple[str, ...] = ()
    # The OpenSearch that holds the RAG indexes and the semantic cache: a managed domain or a
    # Serverless VECTORSEARCH collection.
    search: str = "domain"
    search_instance_type: str = "t3.small.search"
    search_volume_gib: int = 10
    # Functions and the domain (or the collection's endpoint) in a VPC of their own.
    vpc: bool = False
    # An existing Secrets Manager secret with the provider keys; unset: the stack makes one.
    provider_secret_arn: str | None = None
    # Subscribed to the alarm topic when set.
    alarm_email: str | None = None
    throttle_rate_limit: float = 20
    throttle_burst_limit: int = 40
    quota_limit: int = 10_000
    quota_period: str = "DAY"
    skip_bundling: bool = False

    @property
    def invokable_models(self) -> tuple[str, ...]:
        """Every Bedrock model id the functions may invoke: the tiers' and the extra ones."""
        ids = [model for _, model in self.bedrock_models] + list(self.bedrock_model_ids)
        return tuple(dict.fromkeys(ids))

    @classmethod
    def from_node(cls, node: constructs.Node, repo: Path = REPO) -> Settings:
        """Reads the app's context; unknown keys are ignored, malformed numbers fail loudly."""

        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(key)
            return default if value is None else value

        policy = _optional_str(node.try_get_context("policyFile"))
        policy_path = None
        if policy is not None:
            policy_path = Path(policy)
            if not policy_path.is_absolute():
                policy_path = repo / policy_path
            if not policy_path.is_file():
                raise ValueError(f"policyFile {policy_path} does not exist")
        search = str(get("search", cls.search)).lower()
        if search not in SEARCH_KINDS:
            raise ValueError(f"search must be one of {SEARCH_KINDS}, not {search!r}")
        models = tuple(
            (tier, str(get(f"bedrock{tier.title()}Model", default)))
            for tier, default in DEFAULT_BEDROCK_MODELS.items()
        )
        quota_period = str(get("quotaPeriod", cls.quota_period)).upper()
        if quota_period not in QUOTA_PERIODS:
            raise ValueError(f"quotaPeriod must be one of {QUOTA_PERIODS}, not {quota_period!r}")
        return cls(
            repo=repo,
            stack_name=str(get("stackName", cls.stack_name)),
            stage_name=str(get("stageName", cls.stage_name)),
            lwa_layer_version=int(get("lwaLayerVersion", cls.lwa_layer_version)),
            log_level=str(get("logLevel", cls.log_level)).upper(),
            lockgate_config=_optional_str(node.try_get_context("lockgateConfig")),
            policy_file=policy_path,
            bedrock_models=models,
            bedrock_model_ids=_as_list(node.try_get_context("bedrockModelIds")),
            search=search,
            search_instance_type=str(get("searchInstanceType", cls.search_instance_type)),
            search_volume_gib=int(get("searchVolumeGiB", cls.search_volume_gib)),
            vpc=_as_bool(get("vpc", False)),
            provider_secret_arn=_optional_str(node.try_get_context("providerSecretArn")),
            alarm_email=_optional_str(node.try_get_context("alarmEmail")),
            throttle_rate_limit=float(get("throttleRateLimit", cls.throttle_rate_limit)),
            throttle_burst_limit=int(get("throttleBurstLimit", cls.throttle_burst_limit)),
            quota_limit=int(get("quotaLimit", cls.quota_limit)),
            quota_period=quota_period,
            skip_bundling=_as_bool(get("skipBundling", False)),
        )
