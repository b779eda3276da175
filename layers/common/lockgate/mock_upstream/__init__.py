"""A fast fake LLM provider speaking the OpenAI and Anthropic wire formats.

Used by tests, benchmarks and offline users. The requested model name steers it: ``name``
optionally followed by ``+directive`` parts, e.g. ``gpt-4o-mini+status=503+retry_after=1``,
``m+fail_first=2``, ``m+timeout``, ``m+stall_after=3``, ``m+cut_after=3``,
``m+malformed_after=3``, ``m+error_after=3`` or ``m+latency_ms=50+ttft_ms=20+tps=100+tokens=64``
(see `lockgate.mock_upstream.directives`).
"""

from lockgate.mock_upstream.server import MockSettings, create_app, run

__all__ = ["MockSettings", "create_app", "run"]
