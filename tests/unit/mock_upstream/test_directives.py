"""Directive parsing and fault selection: the model-name language that steers the mock."""

from __future__ import annotations

import pytest
from lockgate.mock_upstream.directives import DirectiveError, Fault, StreamFault, parse_model


def test_parse_model_reads_every_directive() -> None:
    directives = parse_model(
        "gpt-4o+status=503+retry_after=1.5+fail_first=2+latency_ms=5+ttft_ms=6+tps=7+tokens=8"
    )
    assert directives.name == "gpt-4o"
    assert (directives.status, directives.retry_after, directives.fail_first) == (503, 1.5, 2)
    assert (directives.latency_ms, directives.ttft_ms, directives.tps, directives.tokens) == (
        5,
        6,
        7,
        8,
    )
    assert parse_model("plain") == parse_model("plain")
    assert parse_model("m+timeout").timeout


@pytest.mark.parametrize(
    "model",
    ["m+nope", "m+status=200", "m+status", "m+timeout=1", "m+tps=-1", "m+tokens=1.5", "m+tps=nan"],
)
def test_parse_model_rejects(model: str) -> None:
    with pytest.raises(DirectiveError):
        parse_model(model)


def test_fault_selection() -> None:
    assert parse_model("m").fault_for(1) == Fault()
    assert parse_model("m+fail_first=1").fault_for(1) == Fault(status=500)
    assert parse_model("m+fail_first=1+status=429").fault_for(2) == Fault()
    assert parse_model("m+fail_first=1+cut_after=2").fault_for(1) == Fault(
        stream_fault=StreamFault.CUT, after=2
    )
    assert parse_model("m+stall_after=1+cut_after=2").fault_for(9).stream_fault is StreamFault.STALL
    assert parse_model("m+error_after=0").fault_for(1) == Fault(stream_fault=StreamFault.ERROR)
