"""Fault-injection directives carried in the requested model name.

A test that wants a failing upstream only has to name a different model, e.g.
``gpt-4o-mini+status=503+retry_after=1`` or ``m+fail_first=2+timeout``. Routing policies, SDKs
and the gateway pass the model string through untouched, so no side channel is needed to steer
the mock from inside a test, a benchmark or a user's config.

``status=CODE``        answer with that HTTP error (400-599) in the route's error envelope
``retry_after=S``      ``Retry-After`` header on error responses (seconds, may be fractional)
``fail_first=N``       only the first N requests with this exact model string misbehave (with
                       no other fault given they fail with 500); later ones are answered
``timeout``            accept the request and never answer
``wrong_type``         answer 200 with an HTML page (``text/html``), as a misconfigured proxy does
``stall_after=N``      stream N content chunks, then nothing (non-streaming: ``timeout``)
``cut_after=N``        stream N content chunks, then close the connection mid-body
                       (non-streaming: close it without a response)
``malformed_after=N``  stream N content chunks, then a frame whose data is not JSON
                       (non-streaming: a 200 with a truncated JSON body)
``error_after=N``      stream N content chunks, then the provider's in-stream error event
                       (non-streaming: a 500)
``latency_ms=X``, ``ttft_ms=X``, ``tps=X``, ``tokens=N``  override the server's `MockSettings`

Unknown or malformed directives are refused with a 400 so a typo cannot pass for a healthy
upstream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any


class DirectiveError(ValueError):
    """The model string carries a directive the mock does not understand (answered with 400)."""


class StreamFault(Enum):
    """What goes wrong after ``n`` content chunks of an answer."""

    STALL = "stall"
    CUT = "cut"
    MALFORMED = "malformed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Fault:
    """The misbehaviour chosen for one request, after ``fail_first`` has been applied."""

    status: int | None = None
    timeout: bool = False
    stream_fault: StreamFault | None = None
    after: int = 0
    wrong_type: bool = False


NO_FAULT = Fault()


@dataclass(frozen=True, slots=True)
class Directives:
    """The parsed model string: the model name plus every ``+key=value`` part."""

    name: str
    status: int | None = None
    retry_after: float | None = None
    fail_first: int | None = None
    timeout: bool = False
    wrong_type: bool = False
    stall_after: int | None = None
    cut_after: int | None = None
    malformed_after: int | None = None
    error_after: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tps: float | None = None
    tokens: int | None = None

    def fault_for(self, request_number: int) -> Fault:
        """The fault for the ``request_number``-th request (1-based) with this model string.

        ``fail_first=N`` gates every fault, so ``m+fail_first=1+timeout`` times out once and
        then answers; with no other fault given, the first N requests fail with status 500.
        """
        if self.fail_first is not None and request_number > self.fail_first:
            return NO_FAULT
        kind, after = self._stream_fault() or (None, 0)
        status = self.status
        quiet = not self.timeout and not self.wrong_type and kind is None
        if status is None and self.fail_first is not None and quiet:
            status = 500
        return Fault(status, self.timeout, kind, after, self.wrong_type)

    def _stream_fault(self) -> tuple[StreamFault, int] | None:
        """The first of stall, cut, malformed and error that is requested (in that order)."""
        if self.stall_after is not None:
            return StreamFault.STALL, self.stall_after
        if self.cut_after is not None:
            return StreamFault.CUT, self.cut_after
        if self.malformed_after is not None:
            return StreamFault.MALFORMED, self.malformed_after
        if self.error_after is not None:
            return StreamFault.ERROR, self.error_after
        return None


_INT_KEYS = frozenset(
    {"fail_first", "stall_after", "cut_after", "malformed_after", "error_after", "tokens"}
)
_FLOAT_KEYS = frozenset({"retry_after", "latency_ms", "ttft_ms", "tps"})
_FLAG_KEYS = frozenset({"timeout", "wrong_type"})
KNOWN_KEYS = frozenset({"status"}) | _INT_KEYS | _FLOAT_KEYS | _FLAG_KEYS


@lru_cache(maxsize=4096)
def parse_model(model: str) -> Directives:
    """Split ``name+key=value+flag`` into `Directives`; cached because model strings repeat.

    Raises `DirectiveError` for unknown keys and bad values so that a typo in a test fails
    loudly instead of silently producing a healthy upstream.
    """
    name, *parts = model.split("+")
    values: dict[str, Any] = {}
    for part in parts:
        key, sep, raw = part.partition("=")
        if key not in KNOWN_KEYS:
            raise DirectiveError(f"unknown mock directive {part!r} in model {model!r}")
        if key in values:
            raise DirectiveError(f"mock directive {key!r} given twice in model {model!r}")
        values[key] = _parse_value(key, raw if sep else None)
    return Directives(name, **values)


def _parse_value(key: str, raw: str | None) -> int | float | bool:
    """Validate one directive value: flags take none, the others a non-negative number."""
    if key in _FLAG_KEYS:
        if raw is not None:
            raise DirectiveError(f"mock directive {key!r} takes no value")
        return True
    if raw is None:
        raise DirectiveError(f"mock directive {key!r} needs a value ({key}=...)")
    if key == "status":
        status = _parse_int(key, raw)
        if not 400 <= status <= 599:
            raise DirectiveError(f"mock directive status={raw} must be an HTTP error (400-599)")
        return status
    if key in _INT_KEYS:
        return _parse_int(key, raw)
    return _parse_float(key, raw)


def _parse_int(key: str, raw: str) -> int:
    if not raw.isdigit():
        raise DirectiveError(f"mock directive {key}={raw!r} must be a non-negative integer")
    return int(raw)


def _parse_float(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise DirectiveError(f"mock directive {key}={raw!r} must be a non-negative number")
    return value
