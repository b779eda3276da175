"""Input limits per alias (`SafetyPolicy`): message count and prompt tokens, with clear errors.

The body size is refused earlier, while reading (`Settings.max_body_bytes`).
"""

from __future__ import annotations

from lockgate.chat import ChatRequest
from lockgate.errors import GatewayError
from lockgate.limits.tokens import estimate_prompt_tokens
from lockgate.policy import SafetyPolicy


def check_input_limits(request: ChatRequest, policy: SafetyPolicy) -> int:
    """Raises 400 when the request is over a limit; returns the prompt-token estimate."""
    if len(request.messages) > policy.max_messages:
        raise GatewayError(
            400,
            f"The request has {len(request.messages)} messages; this model allows at most "
            f"{policy.max_messages}.",
            param="messages",
            code="too_many_messages",
        )
    tokens = estimate_prompt_tokens(request)
    if policy.max_prompt_tokens is not None and tokens > policy.max_prompt_tokens:
        raise GatewayError(
            400,
            f"The prompt is about {tokens} tokens; this model allows at most "
            f"{policy.max_prompt_tokens}. Shorten the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    return tokens
