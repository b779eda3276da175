"""Tenant and key records: what a tenant may use, how fast, and how much per month."""

from __future__ import annotations

import re
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimits(_Model):
    """Per-minute limits; None means no limit at this level."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class Budget(_Model):
    """A monthly allowance. Tokens, USD (from the policy's price table) or both; the first one
    spent ends the month's normal service."""

    monthly_tokens: int | None = Field(default=None, ge=1)
    monthly_usd: float | None = Field(default=None, gt=0)
    on_exhausted: Literal["block", "step_down"] = Field(
        default="block",
        description="refuse requests, or keep serving `auto` from the cheapest tier",
    )
    step_down_at: float = Field(
        default=0.8, gt=0, le=1, description="share spent after which `auto` drops a tier"
    )

    @property
    def unlimited(self) -> bool:
        return self.monthly_tokens is None and self.monthly_usd is None


class TenantRecord(_Model):
    id: str
    name: str = ""
    tier: str = "standard"
    models: tuple[str, ...] = Field(
        default=(), description="model aliases it may call; empty means the tier's default"
    )
    limits: RateLimits | None = Field(default=None, description="None: the tier's limits")
    key_limits: RateLimits | None = Field(
        default=None, description="each key's limits; None: the tier's per-key limits"
    )
    budget: Budget = Budget()
    created_at: float = Field(default_factory=time.time)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _TENANT_ID.match(value):
            raise ValueError(
                "tenant id must be 1-64 characters of letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value


class ApiKeyRecord(_Model):
    key_id: str
    tenant_id: str
    key_hash: str = Field(repr=False)
    name: str = ""
    created_at: float = Field(default_factory=time.time)
    expires_at: float | None = None
    revoked_at: float | None = None
    limits: RateLimits | None = Field(
        default=None, description="overrides the tenant's per-key limits for this key"
    )

    def active(self, now: float) -> bool:
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def public(self) -> dict[str, object]:
        """What listings show: never the hash."""
        return self.model_dump(exclude={"key_hash"})
