"""Deterministic answers derived from the request, shared by both wire formats.

Answers start with ``mock answer to:`` and the first words of the last user message, so a test
can tell which request (and, through the ``model`` field, which upstream) produced a reply; the
rest is filler up to the requested number of tokens, one word per token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

import orjson

_SEED_WORDS = 8
_FILLER = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")
_TOOL_TRIGGER = re.compile(r"\bweather\b", re.IGNORECASE)
_ARGUMENT_PIECE_CHARS = 8


class Finish(Enum):
    """Why the answer ended, before each wire format names it in its own words."""

    STOP = "stop"
    LENGTH = "length"
    TOOL = "tool"


@dataclass(frozen=True, slots=True)
class Tool:
    """The tool the mock calls: the first one the request offers."""

    name: str
    schema: Any


@dataclass(frozen=True, slots=True)
class Digest:
    """What the mock needs from a request, independent of its wire format."""

    seed_text: str
    prompt_tokens: int
    max_tokens: int | None
    tool: Tool | None
    stream: bool
    include_usage: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """The reply as pieces: one per streamed chunk (words, or tool-argument fragments)."""

    pieces: tuple[str, ...]
    finish: Finish
    output_tokens: int
    tool: Tool | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True, slots=True)
class Conversation:
    """Facts gathered in one pass over the messages."""

    chars: int
    last_user_text: str
    ends_with_user_text: bool


def content_text(content: Any) -> str:
    """The text of a message body: a plain string or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return " ".join(
        part["text"]
        for part in content
        if isinstance(part, dict)
        and part.get("type") == "text"
        and isinstance(part.get("text"), str)
    )


def scan_messages(messages: Any) -> Conversation:
    """Size the prompt and find the last user text in a single pass."""
    if not isinstance(messages, list):
        return Conversation(0, "", False)
    chars = 0
    last_user_text = ""
    text = ""
    is_user = False
    for message in messages:
        if not isinstance(message, dict):
            continue
        text = content_text(message.get("content"))
        chars += len(text)
        is_user = message.get("role") == "user"
        if is_user and text:
            last_user_text = text
    return Conversation(chars, last_user_text, is_user and bool(text))


def estimate_tokens(chars: int) -> int:
    """A rough token count (four characters a token), never zero for a non-empty prompt."""
    return (chars + 3) // 4


def optional_int(value: Any) -> int | None:
    """An integer request field, or None when absent or of the wrong type."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def wants_tool(conversation: Conversation, tool: Tool | None) -> Tool | None:
    """The tool to call: only when the user's own last message asks about the weather.

    Requiring the conversation to end with user text means a follow-up that carries the tool
    result gets a plain answer instead of another call, as a real model would give.
    """
    if tool is None or not conversation.ends_with_user_text:
        return None
    return tool if _TOOL_TRIGGER.search(conversation.last_user_text) else None


def compose(digest: Digest, tokens: int) -> Answer:
    """Build the answer for a request, honouring the client's token limit."""
    if digest.tool is not None:
        return _tool_answer(digest.tool)
    limit = tokens if digest.max_tokens is None else min(tokens, max(digest.max_tokens, 0))
    pieces = answer_pieces(_seed(digest.seed_text), limit)
    finish = Finish.LENGTH if limit < tokens else Finish.STOP
    return Answer(pieces, finish, len(pieces))


def _seed(text: str) -> tuple[str, ...]:
    return tuple(text.split(maxsplit=_SEED_WORDS)[:_SEED_WORDS])


@lru_cache(maxsize=4096)
def answer_pieces(seed: tuple[str, ...], tokens: int) -> tuple[str, ...]:
    """``tokens`` words, space-joined as streaming deltas; cached since prompts repeat in loads."""
    words = ["mock", "answer", "to:", *seed]
    while len(words) < tokens:
        words.extend(_FILLER)
    del words[tokens:]
    return tuple(word if index == 0 else " " + word for index, word in enumerate(words))


def _tool_answer(tool: Tool) -> Answer:
    arguments = orjson.dumps(example_arguments(tool.schema)).decode()
    step = _ARGUMENT_PIECE_CHARS
    pieces = tuple(arguments[i : i + step] for i in range(0, len(arguments), step))
    return Answer(pieces, Finish.TOOL, estimate_tokens(len(arguments)) + 1, tool)


def example_arguments(schema: Any) -> dict[str, Any]:
    """Arguments that satisfy a simple JSON schema: one example value per required property."""
    if not isinstance(schema, dict):
        return {}
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    required = schema.get("required")
    names = required if isinstance(required, list) and required else list(properties)
    return {name: _example_value(properties.get(name)) for name in names if isinstance(name, str)}


def _example_value(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "mock"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    examples: dict[str, Any] = {
        "integer": 1,
        "number": 1,
        "boolean": True,
        "array": [],
        "object": {},
        "null": None,
    }
    return examples.get(kind, "mock") if isinstance(kind, str) else "mock"
