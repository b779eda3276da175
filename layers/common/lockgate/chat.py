"""The canonical chat request and result that every route and provider translates to and from.

The canonical shape is OpenAI's chat-completions shape: it is the lingua franca of the field, so
the OpenAI route needs no translation and every other protocol maps onto it once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, with multi-part content joined and non-text parts left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(
            str(part.get("text", "")) for part in self.content if part.get("type") == "text"
        )


NATIVE_HEADERS = {"anthropic": ("anthropic-beta",)}
"""Per client protocol: request headers passed on to a target speaking the same protocol."""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class LockgateOptions(BaseModel):
    """The request's `lockgate` extension object: per-request gateway controls."""

    model_config = ConfigDict(extra="forbid")

    cache: Literal["default", "no-cache", "no-store", "off"] = "default"
    """`no-cache`: don't answer from the cache; `no-store`: don't keep this answer; `off`: both."""
    collection: str | None = Field(default=None, min_length=1)
    """Ground the answer in this document collection (RAG)."""


class ChatRequest(BaseModel):
    """An OpenAI chat-completions request; unknown fields are kept and passed through."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=None, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    lockgate: LockgateOptions | None = None
    _dialect: str = PrivateAttr(default="openai")
    _native: dict[str, Any] = PrivateAttr(default_factory=dict)
    _native_headers: dict[str, str] = PrivateAttr(default_factory=dict)

    def spoken_in(self, dialect: str, native: dict[str, Any] | None = None) -> ChatRequest:
        """Marks the protocol the client spoke, with its fields that have no canonical form.

        A target speaking the same protocol gets `native` back untouched; others never see it.
        Extensions the ingress translation put in canonical messages (`cache_control` on parts,
        `thinking_blocks` on assistant turns) are read by targets that understand them and
        removed for an OpenAI target unless the client itself spoke OpenAI's dialect."""
        self._dialect = dialect
        self._native = native or {}
        return self

    def keep_headers(self, headers: Mapping[str, str]) -> None:
        """Keeps the client's protocol headers that a same-protocol target needs too
        (`anthropic-beta`: the beta features a Messages request's fields may depend on)."""
        for name in NATIVE_HEADERS.get(self._dialect, ()):
            if value := headers.get(name):
                self._native_headers[name] = value

    @property
    def native_headers(self) -> dict[str, str]:
        return self._native_headers

    @property
    def dialect(self) -> str:
        return self._dialect

    @property
    def native(self) -> dict[str, Any]:
        return self._native

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def wants_stream_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


@dataclass(slots=True)
class Usage:
    """Tokens of one answer. `prompt_tokens` counts the whole prompt; of it,
    `cache_read_tokens` were read from and `cache_write_tokens` written to the provider's
    prompt cache, which providers bill at their own rates."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_openai(self) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cache_read_tokens or self.cache_write_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cache_read_tokens}
            if self.cache_write_tokens:
                usage["prompt_tokens_details"]["cache_write_tokens"] = self.cache_write_tokens
        return usage


@dataclass(slots=True)
class ChatChunk:
    """One streamed increment from a provider.

    `finish_reason` is set only on the provider's last content chunk; a stream that ends without
    one was cut. `usage`, when the provider reports it, rides on the last chunk too.
    """

    text: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    sources: list[dict[str, Any]] | None = None
    """On the final chunk of a grounded answer: the documents it cites."""
    thinking: str = ""
    """Reasoning text, for models that show it (Anthropic thinking, Bedrock reasoning)."""
    signature: str = ""
    """The end of a thinking block: the provider's signature, needed to send it back."""
    stop_sequence: str | None = None
    """On the final chunk, when a stop sequence ended the answer and the provider says which."""


@dataclass(slots=True)
class ChatResult:
    """A whole answer, buffered."""

    text: str
    finish_reason: str
    usage: Usage = field(default_factory=Usage)
    tool_calls: list[dict[str, Any]] | None = None
    sources: list[dict[str, Any]] | None = None
    """The documents a grounded (RAG) answer drew on; entry n is what it cites as [n]."""
    stop_sequence: str | None = None
    """The stop sequence that ended the answer, when the provider says which."""
    thinking: list[dict[str, Any]] | None = None
    """Reasoning blocks, Anthropic-shaped: `{"type": "thinking", "thinking", "signature"}` or
    `{"type": "redacted_thinking", "data"}`; a follow-up turn sends them back unchanged."""

    @property
    def reasoning_text(self) -> str:
        return "".join(str(b.get("thinking", "")) for b in self.thinking or ())
