"""Gateway overhead benchmark: Lockgate against the mock upstream, a pass-through and LiteLLM."""
