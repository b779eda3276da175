"""The Lockgate stack: composes the constructs in `infra.components`.

Each concern (exact cache, tenants and quotas, documents and their indexes) is a component;
it reaches the serving functions through environment variables and grants, so the functions
themselves need not know what is deployed beside them.
"""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct
from lockgate.policy import PolicyError, default_policy, load_policy

from infra.components import nag
from infra.components.access import ApiAccess
from infra.components.api import GatewayApi
from infra.components.bundling import runtime_requirements
from infra.components.cache import ExactCacheStore
from infra.components.documents import RAG_INDEXES, Documents
from infra.components.failover import Failover
from infra.components.functions import GatewayFunction, OrchestrateFunction, allow_bedrock
from infra.components.layers import CommonLayer, PolicyLayer
from infra.components.monitoring import Monitoring
from infra.components.network import Network
from infra.components.responses import ResponseStore
from infra.components.search import SearchCollection, SearchDomain, SearchStore
from infra.components.secrets import ProviderSecret
from infra.components.tenants import TenantResources
from infra.settings import Settings
from infra.stepfunctions import remote_aliases

SEMANTIC_CACHE_INDEX = "lockgate-cache"
DEFAULT_POLICY = "infra/policies/aws-default.yaml"


def model_environment(settings: Settings) -> dict[str, str]:
    """The tiers' Bedrock model ids, which the default policy reads as `${...}`."""
    return {
        f"LOCKGATE_BEDROCK_{tier.upper()}_MODEL": model for tier, model in settings.bedrock_models
    }


def role_of(function: lambda_.Function) -> iam.IRole:
    role = function.role
    assert role is not None, "every Lockgate function has its own role"
    return role


class LockgateStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        repo = settings.repo
        self.network = network = Network(self, "Network") if settings.vpc else None
        # Server access logs of the stack's buckets (90 days); itself not logged.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(90),
                    noncurrent_version_expiration=cdk.Duration.days(1),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.secret = ProviderSecret(self, "ProviderKeys", secret_arn=settings.provider_secret_arn)

        common = CommonLayer(
            self,
            "Common",
            source_dir=repo / "layers" / "common",
            package="lockgate",
            requirements=runtime_requirements(repo / "pyproject.toml"),
        )
        layers: list[lambda_.ILayerVersion] = [common.layer]
        environment = {
            # The function's own directory is read-only; /tmp is the writable one.
            "LOCKGATE_DATA_DIR": "/tmp/lockgate",
            # API Gateway has checked the key against the usage plan; the app trusts its key id.
            "LOCKGATE_AUTH": "api-gateway",
            # No local model in Lambda (llama.cpp is not in the layer).
            "LOCKGATE_WARM_LOCAL_MODEL": "false",
            "LOCKGATE_LOG_LEVEL": settings.log_level,
            "POWERTOOLS_LOG_LEVEL": settings.log_level,
            "POWERTOOLS_SERVICE_NAME": "lockgate",
            "POWERTOOLS_METRICS_NAMESPACE": "Lockgate",
            **model_environment(settings),
            **self.secret.environment,
        }
        policy_file = settings.policy_file
        if policy_file is None and settings.lockgate_config is None:
            policy_file = repo / DEFAULT_POLICY
        if policy_file is not None:
            policy = PolicyLayer(self, "Policy", policy_file=policy_file)
            layers.append(policy.layer)
            environment["LOCKGATE_CONFIG"] = policy.path
        elif settings.lockgate_config is not None:
            environment["LOCKGATE_CONFIG"] = settings.lockgate_config

        self.gateway = GatewayFunction(
            self,
            "Gateway",
            code_dir=repo / "functions" / "gateway",
            layers=layers,
            environment=environment,
            network=network,
        )
        self.orchestrate = OrchestrateFunction(
            self,
            "Orchestrate",
            code_dir=repo / "functions" / "orchestrate",
            layers=layers,
            environment=environment,
            lwa_layer_version=settings.lwa_layer_version,
            network=network,
        )
        allow_bedrock(self.orchestrate.function, settings.invokable_models)

        self.api = GatewayApi(
            self,
            "Api",
            gateway=self.gateway.function,
            orchestrate=self.orchestrate.function,
            stage_name=settings.stage_name,
        )
        self.access = ApiAccess(
            self,
            "Access",
            api=self.api.rest_api,
            rate_limit=settings.throttle_rate_limit,
            burst_limit=settings.throttle_burst_limit,
            quota_limit=settings.quota_limit,
            quota_period=settings.quota_period,
        )

        self.cache = ExactCacheStore(self, "Cache", access_logs=self.access_logs)
        self.tenants = TenantResources(self, "Tenants", api=self.api.rest_api)
        self.responses = ResponseStore(self, "Responses")
        # orchestrate serves every /v1/responses route (infra/components/api.py).
        self.responses.attach(self.orchestrate.function)
        self.documents = Documents(
            self,
            "Documents",
            code_dir=repo / "functions" / "ingest",
            layers=layers,
            environment=environment,
            access_logs=self.access_logs,
            network=network,
        )
        self.search: SearchStore
        if settings.search == "serverless":
            self.search = SearchCollection(
                self,
                "Search",
                # Room for the policies' suffixes (-enc, -net, -data, -vpce) in 32.
                name=search_name(settings.stack_name, suffix="rag", limit=27),
                vpc=network.vpc if network else None,
                security_group=network.search if network else None,
            )
        else:
            self.search = SearchDomain(
                self,
                "Search",
                name=search_name(settings.stack_name, suffix="search", limit=28),
                instance_type=settings.search_instance_type,
                volume_gib=settings.search_volume_gib,
                vpc=network.vpc if network else None,
                security_group=network.search if network else None,
            )
        serving = {
            "LOCKGATE_BACKEND": "aws",
            "LOCKGATE_CACHE_VECTOR_INDEX": SEMANTIC_CACHE_INDEX,
            **self.documents.environment(),
            **self.search.environment,
        }
        for function in (self.gateway.function, self.orchestrate.function):
            self.cache.attach(function)
            self.tenants.attach(function)
            self.documents.allow_retrieval(function)
            self.secret.grant_read(function)
            for name, value in serving.items():
                function.add_environment(name, value)
        for name, value in self.search.environment.items():
            self.documents.function.add_environment(name, value)
        self.secret.grant_read(self.documents.function)
        # orchestrate serves the upload and delete routes: it writes documents in place.
        self.documents.allow_writes(self.orchestrate.function)
        everything = [*RAG_INDEXES, SEMANTIC_CACHE_INDEX]
        self.search.grant(
            role_of(self.gateway.function), read=everything, write=[SEMANTIC_CACHE_INDEX]
        )
        self.search.grant(role_of(self.orchestrate.function), read=everything, write=everything)
        self.search.grant(role_of(self.documents.function), read=[], write=list(RAG_INDEXES))
        self.search.finalize()

        # Step Functions fail-over for the policy's `executor: step_functions` aliases.
        self.failover: Failover | None = None
        try:
            routing = (
                load_policy(policy_file, env=model_environment(settings))
                if policy_file is not None
                else default_policy()
            )
        except PolicyError as exc:
            cdk.Annotations.of(self).add_warning(f"{exc}\nno fail-over state machine compiled")
            routing = None
        if routing is not None and remote_aliases(routing):
            self.failover = Failover(
                self,
                "Failover",
                policy=routing,
                code_dir=repo / "functions" / "orchestrate",
                layers=layers,
                environment=environment,
            )
            for function in (self.gateway.function, self.orchestrate.function):
                self.failover.allow_start(function)
            allow_bedrock(self.failover.function, settings.invokable_models)
            self.secret.grant_read(self.failover.function)

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            api=self.api.rest_api,
            functions={
                "Gateway": self.gateway.function,
                "Orchestrate": self.orchestrate.function,
                "Ingest": self.documents.function,
            },
            dead_letters=self.documents.dead_letters,
            domain=self.search.domain if isinstance(self.search, SearchDomain) else None,
            volume_gib=settings.search_volume_gib,
            alarm_email=settings.alarm_email,
            failover=(
                (self.failover.state_machine, self.failover.function) if self.failover else None
            ),
        )

        cdk.CfnOutput(
            self,
            "ApiUrl",
            value=self.api.url,
            description="Base URL; OpenAI clients use <ApiUrl>v1, Anthropic clients <ApiUrl>",
        )
        cdk.CfnOutput(
            self,
            "UsagePlans",
            value=self.tenants.environment["LOCKGATE_USAGE_PLANS"],
            description="LOCKGATE_USAGE_PLANS for `lockgate keys create` against this stack",
        )
        cdk.CfnOutput(
            self,
            "TenantTable",
            value=self.tenants.tenant_table.table_name,
            description="LOCKGATE_TENANT_TABLE for `lockgate tenants|keys` against this stack",
        )
        cdk.CfnOutput(
            self,
            "ApiKeyId",
            value=self.access.default_key.key_id,
            description="aws apigateway get-api-key --include-value --api-key <ApiKeyId>",
        )
        cdk.CfnOutput(
            self,
            "DocumentsBucket",
            value=self.documents.bucket.bucket_name,
            description="Upload to s3://<DocumentsBucket>/<tenant>/<collection>/<file>",
        )
        cdk.CfnOutput(
            self,
            "ProviderSecretArn",
            value=self.secret.secret.secret_arn,
            description="JSON provider keys: OPENAI_API_KEY, ANTHROPIC_API_KEY",
        )
        cdk.CfnOutput(
            self,
            "Dashboard",
            value=self.monitoring.dashboard.dashboard_name,
            description="CloudWatch dashboard",
        )
        cdk.CfnOutput(
            self,
            "AlarmTopic",
            value=self.monitoring.topic.topic_arn,
            description="SNS topic of every alarm; subscribe to it (or deploy -c alarmEmail=...)",
        )
        nag.suppress(self)


def search_name(stack_name: str, *, suffix: str, limit: int) -> str:
    """A domain or collection name (lowercase letter first, then a-z, 0-9, -) from the stack's."""
    base = re.sub(r"[^a-z0-9-]", "-", stack_name.lower()).strip("-") or "lockgate"
    if not base[0].isalpha():
        base = f"lg-{base}"
    return f"{base[: limit - len(suffix) - 1]}-{suffix}"
