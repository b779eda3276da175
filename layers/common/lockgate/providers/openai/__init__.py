"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp server, Azure-style)."""

from lockgate.providers.openai.provider import OpenAIProvider

__all__ = ["OpenAIProvider"]
