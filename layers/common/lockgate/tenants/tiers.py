"""Tenant tiers: default limits and which model aliases a tier's tenants may call.

The same catalogue feeds the CDK app (one API Gateway usage plan per tier), so the request
rate API Gateway enforces and the one the gateway enforces locally agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from lockgate.tenants.models import RateLimits, TenantRecord

ROUTING_TIERS = ("simple", "medium", "complex")


@dataclass(frozen=True, slots=True)
class TenantTier:
    name: str
    limits: RateLimits
    key_limits: RateLimits
    max_routing_tier: str
    """The most capable routing tier `auto` may pick for this tier's tenants."""
    models: tuple[str, ...] = ()
    """Aliases its tenants may call; empty means every alias."""
    burst: int = 0
    """API Gateway burst for the usage plan; 0 means the per-second rate."""


TIERS: dict[str, TenantTier] = {
    "free": TenantTier(
        "free",
        RateLimits(requests_per_minute=20, tokens_per_minute=20_000),
        RateLimits(requests_per_minute=20, tokens_per_minute=20_000),
        max_routing_tier="simple",
    ),
    "standard": TenantTier(
        "standard",
        RateLimits(requests_per_minute=600, tokens_per_minute=400_000),
        RateLimits(requests_per_minute=300, tokens_per_minute=200_000),
        max_routing_tier="complex",
    ),
    "enterprise": TenantTier(
        "enterprise",
        RateLimits(requests_per_minute=6000, tokens_per_minute=4_000_000),
        RateLimits(requests_per_minute=3000, tokens_per_minute=2_000_000),
        max_routing_tier="complex",
    ),
}

UNLIMITED = TenantTier("unlimited", RateLimits(), RateLimits(), max_routing_tier="complex")
"""The install's own tenant (`default`, holding `LOCKGATE_API_KEY`) and callers without a
tenant record. Not in `TIERS`: it has no API Gateway usage plan."""


def tier_of(record: TenantRecord | None) -> TenantTier:
    if record is None or record.tier == UNLIMITED.name:
        return UNLIMITED
    try:
        return TIERS[record.tier]
    except KeyError:
        raise ValueError(f"unknown tier {record.tier!r} (known: {', '.join(TIERS)})") from None


def check_tier_name(name: str) -> str:
    if name not in TIERS and name != UNLIMITED.name:
        raise ValueError(f"unknown tier {name!r} (known: {', '.join(TIERS)})")
    return name


def allowed_models(record: TenantRecord | None) -> tuple[str, ...]:
    """Aliases the tenant may call; empty means all of them."""
    if record is None:
        return ()
    return record.models or tier_of(record).models


def lower_routing_tier(a: str, b: str) -> str:
    """The cheaper of two routing tiers."""
    return min(a, b, key=ROUTING_TIERS.index)
