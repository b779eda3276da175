"""Who is calling: API keys resolve to tenants."""

from lockgate.tenants.keys import Tenant, generate_key, hash_key

__all__ = ["Tenant", "generate_key", "hash_key"]
