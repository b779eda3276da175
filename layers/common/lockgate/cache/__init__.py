"""Response caching: exact keys, the semantic cache with its borderline guard, and the facade
the pipeline calls."""

from lockgate.cache.ports import CacheEntry, ExactCache
from lockgate.cache.semantic import (
    DEFAULT_GUARD_BAND,
    DEFAULT_THRESHOLD,
    SemanticCache,
    SemanticHit,
)
from lockgate.cache.service import CachedAnswer, CacheService, StoreOutcome

__all__ = [
    "DEFAULT_GUARD_BAND",
    "DEFAULT_THRESHOLD",
    "CacheEntry",
    "CacheService",
    "CachedAnswer",
    "ExactCache",
    "SemanticCache",
    "SemanticHit",
    "StoreOutcome",
]
