from __future__ import annotations

import pytest
from lockgate.chat import ChatRequest
from lockgate.safety.redaction import luhn_valid, redact, redact_request


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("key sk-proj-abcdefghijklmnop1234", "secret"),
        ("lockgate key lg-Zm9vYmFyYmF6cXV4MTIzNDU2", "secret"),
        ("aws AKIAIOSFODNN7EXAMPLE", "secret"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "secret"),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl", "secret"),
        ('{"password": "hunter2hunter2"}', "secret"),
        ("write to jane.doe+work@example.co.uk", "email"),
        ("card 4111 1111 1111 1111", "card"),
        ("card 5500-0000-0000-0004", "card"),
        ("call +49 30 12345678", "phone"),
        ("call (555) 123-4567", "phone"),
        ("call 555.123.4567", "phone"),
    ],
)
def test_secrets_and_personal_data_are_masked(text: str, kind: str) -> None:
    masked = redact(text)
    assert f"[REDACTED:{kind}]" in masked
    assert not any(token in masked for token in ("1111 1111", "example.co", "hunter2", "4567"))


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 (fails Luhn)",
        "released on 2024-01-15 at 10:30",
        "version 3.11.4, 250 ms, 1,000,000 users",
        "the year 1999 and the number 12345",
    ],
)
def test_ordinary_numbers_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_prompts_are_redacted_part_by_part() -> None:
    request = ChatRequest(
        model="a",
        messages=[
            {"role": "user", "content": "my card is 4111 1111 1111 1111"},  # type: ignore[list-item]
            {  # type: ignore[list-item]
                "role": "user",
                "content": [
                    {"type": "text", "text": "mail me at bob@example.com"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
        ],
        temperature=0.2,
    )
    clean = redact_request(request)
    assert clean.messages[0].text() == "my card is [REDACTED:card]"
    assert clean.messages[1].text() == "mail me at [REDACTED:email]"
    assert clean.messages[1].content[1]["type"] == "image_url"  # type: ignore[index]
    assert clean.temperature == 0.2
    assert request.messages[0].text().endswith("1111")  # the original is untouched
