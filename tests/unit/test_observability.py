from __future__ import annotations

import asyncio
import logging
import time

import orjson
import pytest
from lockgate.deferred import run_pending
from lockgate.observability import JsonFormatter, add_request_sink, log_request, redact


def test_redact_masks_common_secret_shapes() -> None:
    text = (
        "key sk-abcdefghijklmnop and lg-QWERTYUIOPASDFGH, Bearer abc.def.ghijkl, "
        "AKIAABCDEFGHIJKLMNOP, api_key=hunter2hunter2"
    )
    masked = redact(text)
    for secret in (
        "sk-abcdefghijklmnop",
        "lg-QWERTYUIOPASDFGH",
        "abc.def.ghijkl",
        "AKIAABCDEFGHIJKLMNOP",
        "hunter2hunter2",
    ):
        assert secret not in masked
    assert redact("an ordinary sentence") == "an ordinary sentence"


def test_json_lines_carry_fields_and_mask_them() -> None:
    record = logging.LogRecord(
        "lockgate", logging.INFO, __file__, 1, "upstream said %s", ("sk-aaaaaaaaaaaaaaaa",), None
    )
    record.fields = {"request_id": "r1", "detail": "Bearer zzzzzzzzzzzz"}
    line = orjson.loads(JsonFormatter().format(record))
    assert line["request_id"] == "r1"
    assert "sk-aaaaaaaaaaaaaaaa" not in line["msg"] and "zzzzzzzzzzzz" not in line["detail"]


def access_line(fields: dict[str, object]) -> dict[str, object]:
    record = logging.LogRecord("lockgate.access", logging.INFO, __file__, 1, "request", (), None)
    record.fields = fields
    line: dict[str, object] = orjson.loads(JsonFormatter().format(record))
    return line


def test_access_lines_mask_secrets_every_time_they_appear() -> None:
    for _ in range(3):  # the same value again: still masked
        line = access_line({"request_id": "0" * 32, "outcome": "sk-abcdefghijklmnop"})
        assert "sk-abcdefghijklmnop" not in str(line["outcome"])
        assert line["request_id"] == "0" * 32


def test_a_caller_request_id_that_looks_like_a_key_is_masked() -> None:
    line = access_line({"request_id": "sk-proj-abcdefghijklmnop", "path": "/v1/chat/completions"})
    assert "abcdefghijklmnop" not in str(line["request_id"])
    assert line["path"] == "/v1/chat/completions"


async def test_the_access_line_is_written_off_the_request_path_with_its_end_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Sinks (metrics, the trace's span) see the request at once; its line follows when the
    gateway next waits, stamped with when the request ended."""
    seen: list[object] = []
    remove = add_request_sink(lambda fields: seen.append(fields["path"]))
    try:
        with caplog.at_level(logging.INFO, logger="lockgate.access"):
            ended = time.time()
            log_request({"request_id": "0" * 32, "path": "/v1/chat/completions"}, 0.0)
            assert seen == ["/v1/chat/completions"]
            assert not [r for r in caplog.records if r.name == "lockgate.access"]
            await asyncio.sleep(0.02)
            run_pending()
    finally:
        remove()
    (line,) = [r for r in caplog.records if r.name == "lockgate.access"]
    assert line.fields["path"] == "/v1/chat/completions"  # type: ignore[attr-defined]
    assert ended <= line.created < ended + 0.015
