"""Stands in for Lambda's Python runtime inside a fresh interpreter (`python -I -S`).

Started with one JSON argument: `path` (the function's code dir as /var/task, the layer's python
dir as /opt/python, the runtime's boto3 as /var/runtime; nothing else is added to the stdlib
path), `calls` (a file every AWS SDK call is appended to) and either `handler` ("module.func":
events are read as JSON lines from stdin, each answer written as one `@@result ` line) or
`module` + `argv` (run like `python -m`, for uvicorn behind the Web Adapter). On exit it writes
the file of every imported module as a `@@modules ` line (the leak check).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import runpy
import signal
import sys
import traceback
from typing import Any

RESULT, MODULES = "@@result ", "@@modules "


class Context:
    """The attributes Powertools reads from Lambda's context object."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.aws_request_id = "req-1"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def record_calls(path: str) -> None:
    """Appends each botocore API call (service, operation, the parameters naming resources)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    sink = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    def recording(self: Any, operation: str, params: dict[str, Any]) -> Any:
        model = self.meta.service_model
        entry = {
            "prefix": model.signing_name or model.endpoint_prefix,
            "operation": operation,
            "region": self.meta.region_name,
            "params": _names(params),
        }
        sink.write(json.dumps(entry) + "\n")
        return original(self, operation, params)

    BaseClient._make_api_call = recording  # type: ignore[method-assign]


def _names(params: dict[str, Any]) -> dict[str, Any]:
    keys = ("TableName", "IndexName", "Bucket", "Key", "QueueUrl", "SecretId", "Prefix")
    out: dict[str, Any] = {k: params[k] for k in keys if isinstance(params.get(k), str)}
    if "TransactItems" in params:
        out["TransactItems"] = [
            [kind, item[kind]["TableName"]] for item in params["TransactItems"] for kind in item
        ]
    if "RequestItems" in params:
        out["RequestItems"] = sorted(params["RequestItems"])
    return out


def report_modules() -> None:
    files = {
        name: getattr(module, "__file__", None)
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
    }
    sys.stdout.write(MODULES + json.dumps(files) + "\n")
    sys.stdout.flush()


def _report_and_exit(signum: int, frame: object) -> None:
    report_modules()
    os._exit(0)


def main() -> None:
    config = json.loads(sys.argv[1])
    sys.path[:0] = config["path"]
    record_calls(config["calls"])
    atexit.register(report_modules)
    if "module" in config:
        # uvicorn shuts down on SIGTERM, then raises it again for the handler it found.
        signal.signal(signal.SIGTERM, _report_and_exit)
        sys.argv = [config["module"], *config["argv"]]
        runpy.run_module(config["module"], run_name="__main__", alter_sys=True)
        return
    module_name, function = config["handler"].rsplit(".", 1)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            handler = getattr(importlib.import_module(module_name), function)
            answer = {"result": handler(request["event"], Context(config["name"]))}
        except BaseException as exc:
            # As Lambda's runtime reports it: Step Functions matches `errorType`.
            answer = {
                "error": traceback.format_exc(),
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
            }
        sys.stdout.write(RESULT + json.dumps(answer, default=str) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
