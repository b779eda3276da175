"""Redaction of secrets and personal data: for logs always, for prompts when an alias asks.

Each match becomes a typed placeholder (`[REDACTED:email]`), so a log line stays readable and a
model still sees that something was there. Card numbers must pass the Luhn check, so order
numbers and timestamps are left alone; phone numbers need a phone-like shape (a leading `+`,
or grouped digits with separators), not just any run of digits.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lockgate.chat import ChatMessage, ChatRequest

_SECRETS = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\b(?:sk-ant-|sk-proj-|sk-|lg-|rk_live_|sk_live_|pk_live_)[A-Za-z0-9_\-]{8,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}\b"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}\b"
    r"|\bAIza[0-9A-Za-z_\-]{35}\b"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    r"|(?i:\bbearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"
    r"|(?i:\b(?:api[_-]?key|secret|password|passwd|token|access[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"',}]{6,}"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\b(?:\d[ \-]?){12,18}\d\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,4}(?:[\s.\-]?\d{2,4}){1,4}"
    r"|\(\d{2,4}\)[\s.\-]?\d{3,4}[\s.\-]?\d{3,4}"
    r"|\b\d{3}[\s.\-]\d{3}[\s.\-]\d{4})\b"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "[REDACTED:card]"
    return match.group()


def _secret(match: re.Match[str]) -> str:
    text = match.group()
    # Keep the name in `api_key=...`, so the log still says what was there.
    name = re.match(r"(?i)(\w[\w\-]*[\"']?\s*[:=]\s*[\"']?)", text)
    if name and not text.lower().startswith("bearer"):
        prefix = name.group(1)
        if re.match(r"(?i)(api|secret|pass|token|access)", prefix):
            return prefix + "[REDACTED:secret]"
    return "[REDACTED:secret]"


_STEPS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str] | str], ...] = (
    (_SECRETS, _secret),
    (_EMAIL, "[REDACTED:email]"),
    (_CARD, _card),
    (_PHONE, "[REDACTED:phone]"),
)


def redact(text: str) -> str:
    """The text with secrets, card numbers, emails and phone numbers masked."""
    for pattern, replacement in _STEPS:
        text = pattern.sub(replacement, text)
    return text


def redact_request(request: ChatRequest) -> ChatRequest:
    """A copy of the request with every message's text redacted (multi-part text parts too);
    images, tool calls and the other fields are passed through unchanged."""
    messages = [_redact_message(m) for m in request.messages]
    return request.model_copy(update={"messages": messages})


def _redact_message(message: ChatMessage) -> ChatMessage:
    content = message.content
    if isinstance(content, str):
        return message.model_copy(update={"content": redact(content)})
    if isinstance(content, list):
        parts = [
            {**part, "text": redact(str(part["text"]))}
            if part.get("type") == "text" and "text" in part
            else part
            for part in content
        ]
        return message.model_copy(update={"content": parts})
    return message
