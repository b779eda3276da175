"""Structured JSON logs, one line per request, with secrets masked before they are written.

Prompt text is never logged; the redacting filter is the second line of defence for anything
that slips into a message (an upstream error quoting a key, a header in an exception).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from lockgate.deferred import defer
from lockgate.safety.redaction import redact

_CLEAN_MAX = 4096
_clean: dict[str, str] = {}


def _redacted(value: str) -> str:
    """`redact`, remembered per distinct value, for the access log only: its line is mostly the
    same few strings the gateway itself set (path, alias, model, outcome), and matching every
    pattern on each costs more than the rest of the line. Other messages, which may quote
    anything, are not kept. Bounded; the memory starts over when full."""
    done = _clean.get(value)
    if done is None:
        done = redact(value)
        if len(_clean) >= _CLEAN_MAX:
            _clean.clear()
        _clean[value] = done
    return done


_OWN_ID = re.compile(r"[0-9a-f]{32}")


def _id_redacted(request_id: str) -> str:
    """A request id is new each time, so not remembered; one the gateway made (32 hex digits,
    which no secret or personal-data pattern can match) is written as it is."""
    return request_id if _OWN_ID.fullmatch(request_id) else redact(request_id)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if fields and record.name != access_log.name:
            entry.update({k: redact(v) if isinstance(v, str) else v for k, v in fields.items()})
        elif fields:
            request_id = fields.get("request_id")
            entry.update(
                {
                    k: (_id_redacted(v) if v is request_id else _redacted(v))
                    if isinstance(v, str)
                    else v
                    for k, v in fields.items()
                }
            )
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = redact(f"{record.exc_info[0].__name__}: {record.exc_info[1]}")
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The JSON lines carry none of these; gathering them costs every record (one per request).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
    """Hands the request's fields to the sinks now (a trace needs its span still current) and
    writes its access line a little later (`deferred`): formatting and writing it cost more
    than the rest of finishing a request."""
    fields["ms"] = round((time.perf_counter() - started) * 1000, 2)
    for sink in _sinks:
        try:
            sink(fields)
        except Exception:
            logging.getLogger("lockgate").exception("request sink failed")
    if access_log.isEnabledFor(logging.INFO):
        created = time.time()
        defer(lambda: _write_access_line(fields, created))


def _write_access_line(fields: dict[str, Any], created: float) -> None:
    # `makeRecord` + `handle` is `info` without the walk up the stack for the caller's file and
    # line, which the JSON line does not carry; the time is when the request ended.
    record = access_log.makeRecord(
        access_log.name, logging.INFO, __file__, 0, "request", (), None, extra={"fields": fields}
    )
    record.created = created
    record.msecs = (created - int(created)) * 1000
    access_log.handle(record)
