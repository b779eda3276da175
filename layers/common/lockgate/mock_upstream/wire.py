"""What the server needs from each wire format (OpenAI, Anthropic), and the shapes they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from lockgate.mock_upstream.answers import Answer, Digest


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A streamed answer as ready-encoded SSE frames, so faults can cut it at any chunk."""

    head: bytes
    """Frames before the first content chunk (role chunk, message_start, ...)."""
    chunks: tuple[bytes, ...]
    """One frame per answer piece."""
    tail: bytes
    """Frames that end the stream properly (finish reason, usage, terminator)."""


class Wire(Protocol):
    """One provider's request and response formats."""

    malformed_frame: bytes
    """An SSE frame whose data is not JSON, for ``malformed_after``."""
    error_frame: bytes
    """The in-stream error event the provider sends when it fails mid-answer."""

    def digest(self, body: dict[str, Any]) -> Digest: ...

    def render(self, answer: Answer, digest: Digest, model: str, serial: int) -> bytes: ...

    def render_stream(
        self, answer: Answer, digest: Digest, model: str, serial: int
    ) -> StreamPlan: ...

    def error_body(self, status: int, message: str) -> bytes: ...
