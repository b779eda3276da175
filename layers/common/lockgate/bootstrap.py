"""The composition root: the one place that picks adapters from settings and policy.

Everything else receives its collaborators; nothing below this module decides between the
embedded and the AWS shape, or imports a provider SDK it was not configured to use.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from lockgate.cache.ports import ExactCache
from lockgate.cache.semantic import SemanticCache
from lockgate.cache.service import CacheService
from lockgate.deferred import run_pending
from lockgate.embeddings.local import MiniLMEmbedder
from lockgate.limits.limiter import Limiter
from lockgate.limits.ports import CounterStore, UsageStore
from lockgate.limits.usage import UsageLedger
from lockgate.pipeline import Gateway, TenantControls
from lockgate.policy import Policy, Timeouts, default_policy, load_policy
from lockgate.providers.base import Provider
from lockgate.providers.embeddings import EmbeddingProvider
from lockgate.rag import wiring as rag_wiring
from lockgate.rag.folders import sync_folder, watch_folder
from lockgate.routing.embeddings import EmbeddingsService
from lockgate.routing.fallback import FallbackExecutor
from lockgate.routing.remote import RemoteExecutor
from lockgate.routing.router import Router
from lockgate.safety.guard import InjectionGuard
from lockgate.safety.injection import InjectionDetector
from lockgate.settings import Settings, environment_variable
from lockgate.stores.embedded.journal import Journal
from lockgate.stores.ports import KeyStore, VectorIndex
from lockgate.stores.responses import ResponseStore
from lockgate.tenants.auth import ApiGatewayAuthenticator, Authenticator, KeyStoreAuthenticator
from lockgate.tenants.directory import TenantDirectory
from lockgate.tenants.keys import generate_key
from lockgate.tenants.ports import ApiKeyStore, GatewayKeyRegistrar, TenantStore
from lockgate.tenants.service import (
    DEFAULT_TENANT,
    FIRST_START_KEY,
    TenantService,
    install_key,
)

log = logging.getLogger("lockgate")

_PROVIDERS = {
    "openai": "lockgate.providers.openai:OpenAIProvider",
    "anthropic": "lockgate.providers.anthropic:AnthropicProvider",
    "bedrock": "lockgate.providers.bedrock:BedrockProvider",
    "local": "lockgate.providers.local:LocalProvider",
}


_BASE_URL_VARIABLES = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL"}
"""The variables the vendors' own SDKs read when a provider names no `base_url`."""


def _credentialed(config: Any, secrets: Secrets | None) -> Any:
    """The provider config with its key (the secret store first, then the environment
    variable `api_key_env` names) and its SDK-style base-URL variable filled in."""
    updates: dict[str, str] = {}
    key_name = getattr(config, "api_key_env", None)
    if key_name and not config.api_key:
        key = (secrets.get(key_name) if secrets is not None else None) or environment_variable(
            key_name
        )
        if key:
            updates["api_key"] = key
    url_name = _BASE_URL_VARIABLES.get(config.kind)
    if url_name and not config.base_url and (url := environment_variable(url_name)):
        updates["base_url"] = url
    return config.model_copy(update=updates) if updates else config


def _provider(name: str, config: Any, timeouts: Timeouts, secrets: Secrets | None) -> Provider:
    config = _credentialed(config, secrets)
    module, _, cls = _PROVIDERS[config.kind].partition(":")
    factory = getattr(importlib.import_module(module), cls)
    provider: Provider = factory(name, config, timeouts)
    return provider


class Secrets(Protocol):
    """Where provider keys come from when not from the environment (Secrets Manager in AWS)."""

    def get(self, name: str) -> str | None: ...


def _secrets(settings: Settings) -> Secrets | None:
    if not settings.provider_secret_arn:
        return None
    from lockgate.stores.aws.secrets import ProviderSecrets

    return ProviderSecrets(settings.provider_secret_arn)


def policy_for(settings: Settings) -> Policy:
    return load_policy(settings.config) if settings.config else default_policy()


def build_provider(policy: Policy, name: str, settings: Settings | None = None) -> Provider:
    """One provider of the policy, for a process that makes single calls (the Step Functions
    attempt function) rather than serving the whole gateway."""
    secrets = _secrets(settings) if settings is not None else None
    return _provider(name, policy.providers[name], policy.timeouts, secrets)


class Keys(KeyStore, ApiKeyStore, Protocol):
    """Key records: looked up by hash on every request, managed by `TenantService`."""


@dataclass
class Stores:
    """One adapter per port, all from the same shape."""

    keys: Keys
    tenants: TenantStore
    counters: CounterStore
    usage: UsageStore
    exact_cache: ExactCache
    vectors: VectorIndex
    gateway_keys: GatewayKeyRegistrar | None = None
    closers: list[Callable[[], object]] = field(default_factory=list)
    """Sync or async; the vector index writes its snapshots when closed."""


def _embedded_stores(settings: Settings, embedder: MiniLMEmbedder) -> Stores:
    from lockgate.stores.embedded.counters import SqliteCounterStore, SqliteUsageStore
    from lockgate.stores.embedded.exact_cache import SqliteExactCache
    from lockgate.stores.embedded.keys import SqliteKeyStore
    from lockgate.stores.embedded.tenants import SqliteTenantStore
    from lockgate.stores.embedded.vectors import EmbeddedVectorIndex

    db = settings.data_dir / "lockgate.db"
    keys, tenants = SqliteKeyStore(db), SqliteTenantStore(db)
    counters, usage = SqliteCounterStore(db), SqliteUsageStore(db)
    exact = SqliteExactCache(settings.data_dir / "cache.db")
    vectors = EmbeddedVectorIndex(
        settings.data_dir / f"vectors-{embedder.name}.db", dimensions=embedder.dimensions
    )
    closers: list[Callable[[], object]] = [
        keys.close,
        tenants.close,
        counters.close,
        usage.close,
        exact.close,
        vectors.close,
    ]
    return Stores(keys, tenants, counters, usage, exact, vectors, closers=closers)


def _aws_stores(settings: Settings, embedder: MiniLMEmbedder) -> Stores:
    from lockgate.stores.aws.api_keys import ApiGatewayKeys
    from lockgate.stores.aws.counters import DynamoCounterStore, DynamoUsageStore
    from lockgate.stores.aws.exact_cache import DynamoExactCache
    from lockgate.stores.aws.tenants import DynamoTenantStore
    from lockgate.stores.opensearch.client import connect
    from lockgate.stores.opensearch.vectors import OpenSearchVectorIndex

    missing = [
        name
        for name in ("tenant_table", "quota_table", "exact_cache_table", "opensearch_url")
        if not getattr(settings, name)
    ]
    if missing:
        raise ValueError(
            "the aws backend needs " + ", ".join(f"LOCKGATE_{n.upper()}" for n in missing)
        )
    assert settings.tenant_table and settings.quota_table and settings.exact_cache_table
    assert settings.opensearch_url
    tenants = DynamoTenantStore(settings.tenant_table)
    client = connect(settings.opensearch())
    plans = json.loads(settings.usage_plans) if settings.usage_plans else None
    return Stores(
        keys=tenants,
        tenants=tenants,
        counters=DynamoCounterStore(settings.quota_table),
        usage=DynamoUsageStore(settings.quota_table),
        exact_cache=DynamoExactCache(
            settings.exact_cache_table, bucket=settings.exact_cache_bucket
        ),
        vectors=OpenSearchVectorIndex(
            client, settings.cache_vector_index, dimensions=embedder.dimensions
        ),
        gateway_keys=ApiGatewayKeys(plans) if plans else None,
        closers=[client.close],
    )


@dataclass
class Container:
    settings: Settings
    policy: Policy
    providers: dict[str, Provider]
    stores: Stores
    gateway: Gateway
    tenants: TenantService
    ledger: UsageLedger
    loaders: list[Callable[[], object]] = field(default_factory=list)
    starters: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    middleware: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    """ASGI middleware the app adds (tracing, when it is on)."""
    finalizers: list[Callable[[], object]] = field(default_factory=list)
    """Run last on close: telemetry detaches after everything else has reported."""
    responses: ResponseStore | None = None
    embeddings: EmbeddingsService | None = None
    metrics_text: Callable[[], bytes] | None = None
    """Prometheus exposition, when the metrics adapter serves `/metrics` itself."""

    @property
    def keys(self) -> Keys:
        return self.stores.keys

    async def start(self) -> None:
        recovered = await self.ledger.recover()
        if recovered:
            log.warning("usage of %d requests recovered from the journal", recovered)
        for load in self.loaders:
            await asyncio.to_thread(load)
        for begin in self.starters:
            await begin()
        if self.settings.warm_local_model:
            for provider in self.providers.values():
                warm = getattr(provider, "warm", None)
                if warm is not None:
                    await warm()

    async def drain(self) -> None:
        """Finishes what answered requests left behind (their usage, their access lines): at
        shutdown, and before a Lambda environment may be frozen."""
        await self.gateway.drain()
        run_pending()

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        closers: list[Callable[[], object]] = [self.drain, self.ledger.flush]
        closers += [p.aclose for p in self.providers.values()]
        if self.gateway.rag is not None:
            closers.append(self.gateway.rag.aclose)
        for close in [*closers, *self.stores.closers, *self.finalizers]:
            try:
                done = close()
                if inspect.isawaitable(done):
                    await done
            except Exception:
                # At interpreter exit (a Lambda's atexit) the thread pool may already be gone;
                # nothing is lost: SQLite holds every record, snapshots only speed up a start.
                log.warning(
                    "closing %s failed", getattr(close, "__qualname__", close), exc_info=True
                )


def build(settings: Settings) -> Container:
    policy = policy_for(settings)
    secrets = _secrets(settings)
    providers = {
        name: _provider(name, config, policy.timeouts, secrets)
        for name, config in policy.providers.items()
    }
    embedder = MiniLMEmbedder(int8_graph=settings.local_embedding_int8)
    stores = (_aws_stores if settings.backend == "aws" else _embedded_stores)(settings, embedder)
    if settings.api_key is not None:
        retired = install_key(stores.tenants, stores.keys, settings.api_key.get_secret_value())
        if retired:
            log.warning("LOCKGATE_API_KEY changed: revoked the previous key %s", ", ".join(retired))
    auth: Authenticator = (
        ApiGatewayAuthenticator(stores.keys)
        if settings.auth == "api-gateway"
        else KeyStoreAuthenticator(stores.keys)
    )
    directory = TenantDirectory(stores.tenants, stores.keys)
    journal = Journal(settings.data_dir / "usage-journal") if settings.backend != "aws" else None
    ledger = UsageLedger(stores.usage, policy.prices, directory, journal=journal)
    gateway = Gateway(
        auth,
        Router(policy),
        FallbackExecutor(providers, policy),
        policy,
        cache=CacheService(stores.exact_cache, SemanticCache(embedder, stores.vectors)),
        controls=TenantControls(directory, Limiter(stores.counters, directory, ledger), ledger),
        guard=InjectionGuard(InjectionDetector()),
        remote=_remote_executor(settings, policy),
    )
    service = TenantService(
        stores.tenants,
        stores.keys,
        gateway_keys=stores.gateway_keys,
        on_revoke=gateway.recent.forget,
    )
    stores.closers.append(embedder.close)
    if journal is not None:
        stores.closers.append(journal.close)
    container = Container(
        settings,
        policy,
        providers,
        stores,
        gateway,
        service,
        ledger,
        loaders=[embedder.load] if _requests_embed(policy) else [],
        responses=_response_store(settings, stores),
        embeddings=EmbeddingsService(
            policy,
            _embedding_providers(policy, embedder, stores, secrets),
            gateway.controls,
        ),
    )
    if settings.backend == "aws":
        container.starters.append(lambda: _connect_aws(container, embedder))
    else:
        gateway.rag = rag_wiring.embedded(
            settings.data_dir, embedder=embedder, limits=policy.ingestion
        )
        container.starters.append(lambda: _sync_folders(container))
    _observe(container)
    return container


def _requests_embed(policy: Policy) -> bool:
    """Whether requests will need MiniLM (semantic cache, RAG; the injection guard is lexical):
    only then is it loaded at start, to keep the first such request fast. Otherwise it loads on
    first use (an upload, a folder sync) and a plain relay never holds its ~190 MB."""
    for name, alias in policy.models.items():
        cache = policy.cache_for(name)
        if (cache.enabled and cache.semantic) or alias.rag is not None:
            return True
    return False


def _remote_executor(settings: Settings, policy: Policy) -> RemoteExecutor | None:
    """The Step Functions fail-over for `executor: step_functions` aliases, when deployed;
    without it (the laptop) those aliases run in-process like the others."""
    if settings.state_machine_arn is None:
        remote = [name for name, a in policy.models.items() if a.executor == "step_functions"]
        if remote:
            log.info("no state machine configured: %s fail over in-process", ", ".join(remote))
        return None
    from lockgate.stores.aws.step_functions import StepFunctionsExecutor

    return StepFunctionsExecutor(settings.state_machine_arn)


def _embedding_providers(
    policy: Policy, embedder: MiniLMEmbedder, stores: Stores, secrets: Secrets | None
) -> dict[str, EmbeddingProvider]:
    """An embeddings adapter for each provider an embeddings alias names."""
    from lockgate.providers.embeddings import LocalEmbeddings, OpenAIEmbeddings

    used = {t.provider for alias in policy.embeddings.values() for t in alias.targets}
    adapters: dict[str, EmbeddingProvider] = {}
    for name in sorted(used):
        config = _credentialed(policy.providers[name], secrets)
        if config.kind == "openai":
            remote = OpenAIEmbeddings(config, policy.timeouts)
            stores.closers.append(remote.aclose)
            adapters[name] = remote
        elif config.kind == "bedrock":
            from lockgate.providers.bedrock.embeddings import BedrockEmbeddings

            bedrock = BedrockEmbeddings(name, config, policy.timeouts)
            stores.closers.append(bedrock.aclose)
            adapters[name] = bedrock
        else:
            adapters[name] = LocalEmbeddings(embedder)
    return adapters


def _observe(container: Container) -> None:
    """Metrics (Prometheus locally, CloudWatch EMF on AWS) and, when an OTLP endpoint is set,
    traces: both fed from each request's access-log fields."""
    from lockgate.metrics import EmfMetrics, Metrics, PrometheusMetrics
    from lockgate.observability import add_request_sink

    settings, prices = container.settings, container.policy.prices
    metrics: Metrics
    if settings.backend == "aws":
        metrics = EmfMetrics(prices)
    else:
        prometheus = PrometheusMetrics(prices, max_tenants=settings.metrics_tenants)
        container.metrics_text = prometheus.render
        metrics = prometheus
    container.finalizers.append(add_request_sink(metrics.observe))
    if settings.otlp_endpoint:
        from lockgate.tracing import enable_tracing

        container.finalizers.append(enable_tracing(container, settings.otlp_endpoint))


def _response_store(settings: Settings, stores: Stores) -> ResponseStore:
    """DynamoDB when a table is configured; otherwise SQLite in the data folder, which in
    the aws shape keeps conversations per instance only."""
    if settings.backend == "aws" and settings.response_table:
        from lockgate.stores.aws.responses import DynamoResponseStore

        return DynamoResponseStore(settings.response_table)
    from lockgate.stores.embedded.responses import SqliteResponseStore

    store = SqliteResponseStore(settings.data_dir / "responses.db")
    stores.closers.append(store.close)
    return store


async def _connect_aws(container: Container, embedder: MiniLMEmbedder) -> None:
    """Creates the semantic cache's OpenSearch index if it is new, and connects RAG."""
    ensure_index = getattr(container.stores.vectors, "ensure_index", None)
    if ensure_index is not None:
        await ensure_index()
    container.gateway.rag = await rag_wiring.aws(
        container.settings, embedder=embedder, limits=container.policy.ingestion
    )


async def _sync_folders(container: Container) -> None:
    """Indexes the sample knowledge base (idempotent: unchanged files cost a hash) and keeps
    the watched folder in step while serving."""
    settings, rag = container.settings, container.gateway.rag
    assert rag is not None
    repairs = rag_wiring.keep_repaired(rag.ingestion)
    container.tasks.append(asyncio.get_running_loop().create_task(repairs))
    if settings.sample_kb is not None and settings.sample_kb.is_dir():
        await sync_folder(
            rag.ingestion, settings.sample_kb, tenant=DEFAULT_TENANT.id, collection="support"
        )
    if settings.watch_dir is not None:
        settings.watch_dir.mkdir(parents=True, exist_ok=True)
        watcher = watch_folder(
            rag.ingestion,
            settings.watch_dir,
            tenant=DEFAULT_TENANT.id,
            collection=settings.watch_collection,
        )
        container.tasks.append(asyncio.get_running_loop().create_task(watcher))


def first_start_key(container: Container) -> str | None:
    """A new key when none exists yet, so a fresh install is never open to the world."""
    if container.keys.count():
        return None
    key = generate_key()
    install_key(container.stores.tenants, container.keys, key, name=FIRST_START_KEY)
    return key
