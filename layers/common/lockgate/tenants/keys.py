"""API keys: random, shown once, stored and looked up only as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

KEY_PREFIX = "lg-"
KEY_ID_PREFIX = "key_"


@dataclass(frozen=True, slots=True)
class Tenant:
    """Who is calling. `key_id` says which of the tenant's keys, for per-key limits and usage;
    it does not take part in equality, so a tenant is the same whichever key it used."""

    id: str
    key_id: str | None = field(default=None, compare=False)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def generate_key_id() -> str:
    """A public handle for a key (listing, revoking, usage) that reveals nothing about it."""
    return KEY_ID_PREFIX + secrets.token_hex(8)


def hash_key(key: str) -> str:
    """A SHA-256 digest: keys are long random strings, so a fast hash is enough and lets the
    lookup be a single indexed read."""
    return hashlib.sha256(key.encode()).hexdigest()


def same_hash(stored: str, presented: str) -> bool:
    """Constant-time equality, so response timing says nothing about how much of a hash
    matched."""
    return hmac.compare_digest(stored.encode(), presented.encode())
