"""The Lockgate stack: composes the constructs in `infra.components`.

Each concern (exact cache, tenants and quotas, documents and their indexes) is a component;
it reaches the serving functions through environment variables and grants, so the functions
themselves need not know what is deployed beside them.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from lockgate.policy import PolicyError, default_policy, load_policy

from infra.components.access import ApiAccess
from infra.components.api import GatewayApi
from infra.components.bundling import runtime_requirements
from infra.components.cache import ExactCacheStore
from infra.components.documents import Documents
from infra.components.failover import Failover
from infra.components.functions import GatewayFunction, OrchestrateFunction
from infra.components.layers import CommonLayer, PolicyLayer
from infra.components.tenants import TenantResources
from infra.settings import Settings
from infra.stepfunctions import remote_aliases

SEMANTIC_CACHE_INDEX = "lockgate-cache"


class LockgateStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        repo = settings.repo

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
        }
        if settings.policy_file is not None:
            policy = PolicyLayer(self, "Policy", policy_file=settings.policy_file)
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
        )
        self.orchestrate = OrchestrateFunction(
            self,
            "Orchestrate",
            code_dir=repo / "functions" / "orchestrate",
            layers=layers,
            environment=environment,
            lwa_layer_version=settings.lwa_layer_version,
        )
        self.orchestrate.allow_bedrock(settings.bedrock_model_ids)

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

        self.cache = ExactCacheStore(self, "Cache")
        self.tenants = TenantResources(self, "Tenants", api=self.api.rest_api)
        self.documents = Documents(
            self,
            "Documents",
            code_dir=repo / "functions" / "ingest",
            layers=layers,
            environment=environment,
        )
        serving = {
            "LOCKGATE_BACKEND": "aws",
            "LOCKGATE_CACHE_VECTOR_INDEX": SEMANTIC_CACHE_INDEX,
            **self.documents.environment(),
        }
        for function in (self.gateway.function, self.orchestrate.function):
            self.cache.attach(function)
            self.tenants.attach(function)
            self.documents.allow_retrieval(function)
            self.documents.domain.grant_index_read_write(SEMANTIC_CACHE_INDEX, function)
            for name, value in serving.items():
                function.add_environment(name, value)

        # Step Functions fail-over for the policy's `executor: step_functions` aliases.
        self.failover: Failover | None = None
        try:
            routing = (
                load_policy(settings.policy_file) if settings.policy_file else default_policy()
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
            "ApiKeyId",
            value=self.access.default_key.key_id,
            description="aws apigateway get-api-key --include-value --api-key <ApiKeyId>",
        )
