"""Cache keys and semantic scopes: what makes two requests deserve the same answer.

The exact key hashes everything that changes the answer; the semantic scope hashes everything
except the last user message, which is the only part compared by meaning. Both are derived from
the tenant id, never from the caller's API key, so no secret ever reaches a cache key, a
namespace or a log line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from lockgate.chat import ChatRequest

KEY_VERSION = 1
"""Bumped when the key material changes shape, so old entries simply stop matching."""

ANSWER_NEUTRAL_FIELDS = frozenset({"model", "stream", "stream_options", "user", "lockgate"})
"""Request fields that do not change the answer and so stay out of every key.

`model` is replaced by the resolved alias and tier; `stream`/`stream_options` only change the
framing (a cached answer is replayed in either form); `user` is an end-user tag for the
provider's abuse monitoring, not model input; `lockgate` is the gateway's own extension object
(cache control and the like). Every other field, unknown pass-through fields included, is part
of the key: a field we do not know may well change the answer.
"""


def _canonical(value: Any) -> bytes:
    """One byte string per meaning: sorted keys, no whitespace, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value)).hexdigest()


def _check_scope(tenant: str, alias: str, tier: str) -> None:
    for what, value in (("tenant", tenant), ("alias", alias), ("tier", tier)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"a cache key needs a non-empty {what}")


def _messages(request: ChatRequest) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json", exclude_none=True) for m in request.messages]


def _parameters(request: ChatRequest) -> dict[str, Any]:
    """Every answer-changing field except the messages, None and absent treated alike."""
    data = request.model_dump(mode="json", exclude_none=True, exclude={"messages"})
    return {k: v for k, v in data.items() if k not in ANSWER_NEUTRAL_FIELDS}


def exact_key(
    tenant: str, alias: str, tier: str, request: ChatRequest, *, rag_version: str | None = None
) -> str:
    """A SHA-256 hex digest over the tenant, the resolved alias and tier, the whole message
    list and every answer-changing parameter, plus the RAG collection version when RAG is on."""
    _check_scope(tenant, alias, tier)
    return _digest(
        {
            "v": KEY_VERSION,
            "tenant": tenant,
            "alias": alias,
            "tier": tier,
            "messages": _messages(request),
            "params": _parameters(request),
            "rag": rag_version,
        }
    )


@dataclass(frozen=True, slots=True)
class SemanticScope:
    namespace: str
    """`tenant/alias/<fingerprint>`, tenant and alias percent-encoded so neither can hold '/'."""
    text: str
    """The last user message: the only part of the request compared by meaning."""


def _segment(value: str) -> str:
    return quote(value, safe="")


def namespace_prefix(tenant: str, alias: str | None = None) -> str:
    """The namespace prefix covering a tenant (or one of its aliases), for purges.

    It ends with '/', so tenant "a" never covers tenant "ab"."""
    if not tenant:
        raise ValueError("a purge needs a tenant")
    prefix = f"{_segment(tenant)}/"
    return prefix if alias is None else f"{prefix}{_segment(alias)}/"


def semantic_scope(
    tenant: str,
    alias: str,
    tier: str,
    request: ChatRequest,
    *,
    rag_version: str | None = None,
    embedder: str = "",
) -> SemanticScope | None:
    """Where a request may look for a paraphrase, or None when it must not.

    The fingerprint covers the system prompt, tools, tool choice, response format, sampling
    parameters, the whole conversation before the last user message, the tier, the RAG
    collection version and the embedder (vectors of two models are not comparable). None when
    the last message is not a plain-text user message (a tool result, an assistant prefill, an
    image), since only the text would be compared and the rest would be ignored.
    """
    _check_scope(tenant, alias, tier)
    last = request.messages[-1]
    if last.role != "user":
        return None
    if isinstance(last.content, list) and any(part.get("type") != "text" for part in last.content):
        return None
    text = last.text().strip()
    if not text:
        return None
    messages = _messages(request)
    fingerprint = _digest(
        {
            "v": KEY_VERSION,
            "tier": tier,
            "embedder": embedder,
            "prefix": messages[:-1],
            "last": {k: v for k, v in messages[-1].items() if k != "content"},
            "params": _parameters(request),
            "rag": rag_version,
        }
    )[:32]
    return SemanticScope(f"{namespace_prefix(tenant, alias)}{fingerprint}", text)
