"""Sentence embeddings behind one port: the bundled MiniLM locally, Bedrock Titan or OpenAI."""

from lockgate.embeddings.base import Embedder

__all__ = ["Embedder"]
