"""Wire formats: OpenAI and Anthropic request/response models, SSE, error envelopes."""
