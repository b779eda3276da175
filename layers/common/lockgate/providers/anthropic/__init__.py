"""Anthropic's Messages API, behind the `Provider` port."""

from lockgate.providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
