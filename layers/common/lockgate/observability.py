"""Structured JSON logs, one line per request, with secrets masked before they are written.

Prompt text is never logged; the redacting filter is the second line of defence for anything
that slips into a message (an upstream error quoting a key, a header in an exception).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from lockgate.safety.redaction import redact


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update({k: redact(v) if isinstance(v, str) else v for k, v in fields.items()})
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = redact(f"{record.exc_info[0].__name__}: {record.exc_info[1]}")
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpx2", "openai", "anthropic", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


access_log = logging.getLogger("lockgate.access")

RequestSink = Callable[[dict[str, Any]], None]
_sinks: list[RequestSink] = []


def add_request_sink(sink: RequestSink) -> Callable[[], None]:
    """Also hands every finished request's fields to `sink` (metrics, trace attributes);
    returns the function that removes it again."""
    _sinks.append(sink)
    return lambda: _sinks.remove(sink) if sink in _sinks else None


def log_request(fields: dict[str, Any], started: float) -> None:
    fields["ms"] = round((time.perf_counter() - started) * 1000, 2)
    for sink in _sinks:
        try:
            sink(fields)
        except Exception:
            logging.getLogger("lockgate").exception("request sink failed")
    if access_log.isEnabledFor(logging.INFO):
        access_log.info("request", extra={"fields": fields})
