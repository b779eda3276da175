"""The shared HTTP client's incremental SSE decoder and Retry-After parsing (pure functions)."""

from __future__ import annotations

import pytest
from lockgate.providers.http import Event, SSEDecoder, retry_after

STREAM = (
    b'event: message_start\ndata: {"a": 1}\n\n'
    b": keep-alive comment\n\n"
    b"data: first line\ndata: second line\n\n"
    b"id: 7\nretry: 10\nevent: ping\ndata:{}\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    Event("message_start", b'{"a": 1}'),
    Event(None, b"first line\nsecond line"),
    Event("ping", b"{}"),
    Event(None, b"[DONE]"),
]


def decode_in_pieces(stream: bytes, size: int) -> list[Event]:
    decoder = SSEDecoder()
    events: list[Event] = []
    for start in range(0, len(stream), size):
        events.extend(decoder.feed(stream[start : start + size]))
    return events


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_events_are_the_same_wherever_the_chunks_split(size: int) -> None:
    assert decode_in_pieces(STREAM, size) == EXPECTED


@pytest.mark.parametrize("size", [1, 5, 10_000])
def test_crlf_and_cr_line_endings(size: int) -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert decode_in_pieces(crlf, size) == EXPECTED
    # A lone `\r` at the end may be half of a `\r\n`: the last event waits for the next line.
    cr = STREAM.replace(b"\n", b"\r")
    assert decode_in_pieces(cr + b":\r", size) == EXPECTED


def test_an_unfinished_event_is_held_back() -> None:
    decoder = SSEDecoder()
    assert list(decoder.feed(b'data: {"partial": ')) == []
    assert list(decoder.feed(b"true}\n")) == []
    assert list(decoder.feed(b"\n")) == [Event(None, b'{"partial": true}')]


def test_retry_after_prefers_milliseconds_and_ignores_dates() -> None:
    assert retry_after({"retry-after": "7"}) == 7.0
    assert retry_after({"retry-after": "7", "retry-after-ms": "250"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after({}) is None
