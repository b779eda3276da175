"""API keys: random, shown once, stored and looked up only as a hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "lg-"


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """A SHA-256 digest: keys are long random strings, so a fast hash is enough and lets the
    lookup be a single indexed read."""
    return hashlib.sha256(key.encode()).hexdigest()
