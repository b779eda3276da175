from __future__ import annotations

import logging

import orjson
from lockgate.observability import JsonFormatter, redact


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
