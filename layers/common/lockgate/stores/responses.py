"""The `ResponseStore` port: Responses API conversation state, per tenant, for a while.

`previous_response_id` lets a client send only its new turn; the gateway keeps the turns
before it. A record is the whole conversation up to and including that response (so a
follow-up is one read, however long the chain), plus the response object itself for
`GET /v1/responses/{id}`. Records expire after the policy's TTL; a tenant never reads
another tenant's records, because the tenant is part of the key on every backend.
"""

from __future__ import annotations

from typing import Any, Protocol

StoredResponse = dict[str, Any]
"""`{"messages": [canonical chat messages], "response": {Responses API object}}`."""


class ResponseTooLarge(ValueError):
    """A conversation too big for the backend's record size (DynamoDB items hold 400 KB)."""


class ResponseStore(Protocol):
    async def put(
        self, tenant_id: str, response_id: str, record: StoredResponse, ttl_s: float
    ) -> None: ...

    async def get(self, tenant_id: str, response_id: str) -> StoredResponse | None:
        """The record, or None when it never existed, expired, or belongs to someone else."""
        ...

    async def delete(self, tenant_id: str, response_id: str) -> bool:
        """True when a live record was removed."""
        ...
