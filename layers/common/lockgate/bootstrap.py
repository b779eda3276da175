"""The composition root: the one place that picks adapters from settings and policy.

Everything else receives its collaborators; nothing below this module decides between the
embedded and the AWS shape, or imports a provider SDK it was not configured to use.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lockgate.cache.semantic import SemanticCache
from lockgate.cache.service import CacheService
from lockgate.embeddings.local import MiniLMEmbedder
from lockgate.pipeline import Gateway
from lockgate.policy import Policy, Timeouts, default_policy, load_policy
from lockgate.providers.base import Provider
from lockgate.routing.fallback import FallbackExecutor
from lockgate.routing.router import Router
from lockgate.settings import Settings
from lockgate.stores.embedded.exact_cache import SqliteExactCache
from lockgate.stores.embedded.keys import SqliteKeyStore
from lockgate.stores.embedded.vectors import EmbeddedVectorIndex
from lockgate.tenants.auth import ApiGatewayAuthenticator, Authenticator, KeyStoreAuthenticator
from lockgate.tenants.keys import Tenant, generate_key, hash_key

log = logging.getLogger("lockgate")

DEFAULT_TENANT = Tenant("default")

_PROVIDERS = {
    "openai": "lockgate.providers.openai:OpenAIProvider",
    "anthropic": "lockgate.providers.anthropic:AnthropicProvider",
    "bedrock": "lockgate.providers.bedrock:BedrockProvider",
    "local": "lockgate.providers.local:LocalProvider",
}


def _provider(name: str, config: Any, timeouts: Timeouts) -> Provider:
    module, _, cls = _PROVIDERS[config.kind].partition(":")
    factory = getattr(importlib.import_module(module), cls)
    provider: Provider = factory(name, config, timeouts)
    return provider


@dataclass
class Container:
    settings: Settings
    policy: Policy
    providers: dict[str, Provider]
    keys: SqliteKeyStore
    gateway: Gateway
    closers: list[Callable[[], object]] = field(default_factory=list)
    loaders: list[Callable[[], object]] = field(default_factory=list)

    async def start(self) -> None:
        for load in self.loaders:
            await asyncio.to_thread(load)
        if self.settings.warm_local_model:
            for provider in self.providers.values():
                warm = getattr(provider, "warm", None)
                if warm is not None:
                    await warm()

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
        for close in self.closers:
            close()
        self.keys.close()


def build(settings: Settings) -> Container:
    policy = load_policy(settings.config) if settings.config else default_policy()
    providers = {
        name: _provider(name, config, policy.timeouts) for name, config in policy.providers.items()
    }
    keys = SqliteKeyStore(settings.data_dir / "lockgate.db")
    if settings.api_key is not None:
        keys.add(hash_key(settings.api_key.get_secret_value()), DEFAULT_TENANT)
    auth: Authenticator = (
        ApiGatewayAuthenticator() if settings.auth == "api-gateway" else KeyStoreAuthenticator(keys)
    )
    embedder = MiniLMEmbedder()
    cache, closers = _cache(settings, embedder)
    gateway = Gateway(
        auth, Router(policy), FallbackExecutor(providers, policy), policy, cache=cache
    )
    return Container(settings, policy, providers, keys, gateway, closers, [embedder.load])


def _cache(
    settings: Settings, embedder: MiniLMEmbedder
) -> tuple[CacheService, list[Callable[[], object]]]:
    """Exact answers in SQLite; questions by meaning in the embedded vector index."""
    exact = SqliteExactCache(settings.data_dir / "cache.db")
    index = EmbeddedVectorIndex(settings.data_dir / "vectors.db", dimensions=embedder.dimensions)
    service = CacheService(exact, SemanticCache(embedder, index))
    return service, [exact.close, index.close, embedder.close]


def first_start_key(container: Container) -> str | None:
    """A new key when none exists yet, so a fresh install is never open to the world."""
    if container.keys.count():
        return None
    key = generate_key()
    container.keys.add(hash_key(key), DEFAULT_TENANT)
    return key
