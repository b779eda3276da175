"""The `lockgate` command: serve the gateway, run the mock upstream, check a config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lockgate.policy import PolicyError, load_policy


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lockgate.app import create_app
    from lockgate.bootstrap import build, first_start_key
    from lockgate.observability import configure_logging
    from lockgate.settings import Settings, load_dotenv

    load_dotenv()
    settings = Settings.from_env(
        config=args.config, host=args.host, port=args.port, otlp_endpoint=args.otlp_endpoint
    )
    configure_logging(settings.log_level)
    try:
        container = build(settings)
    except PolicyError as exc:
        print(f"lockgate: {exc}", file=sys.stderr)
        return 2
    key = first_start_key(container)
    base = f"http://{settings.host}:{settings.port}/v1"
    if key:
        print(
            f"\n  Lockgate created an API key for this install (shown once, stored hashed in "
            f"{settings.data_dir}):\n\n      {key}\n\n  Use it with base_url={base}\n",
            flush=True,
        )
    else:
        print(f"\n  Lockgate listening at {base}\n", flush=True)
    app = create_app(container=container)
    _settle_heap()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop" if _has("uvloop") else "asyncio",
        http=_http_protocol(),
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    return 0


def _http_protocol() -> Any:
    if not _has("httptools"):
        return "h11"
    from lockgate.http_server import HeadWithBodyProtocol

    return HeadWithBodyProtocol


def _settle_heap() -> None:
    """Moves what start-up built (modules, the policy, the app) out of the collector's sight,
    and collects the young generation less often: a full collection otherwise walks every
    object of the process and stalls every request in flight, the tail of the latency under
    load. Requests create short-lived objects that reference counting frees."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


GC_YOUNG_THRESHOLD = 10_000
"""Allocations between young-generation collections (CPython's default: 700)."""


def _mock_upstream(args: argparse.Namespace) -> int:
    from lockgate.mock_upstream import MockSettings, run

    run(
        host=args.host,
        port=args.port,
        settings=MockSettings(
            latency_ms=args.latency_ms,
            ttft_ms=args.ttft_ms,
            tokens_per_second=args.tokens_per_second,
            tokens=args.tokens,
        ),
    )
    return 0


def _check_config(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        print(f"lockgate: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.file}: ok ({len(policy.providers)} providers, {len(policy.models)} models, "
        f"{len(policy.embeddings)} embedding models)"
    )
    for name, alias in policy.models.items():
        targets = ", ".join(
            t.key if alias.strategy != "weighted" else f"{t.key} (weight {t.weight:g})"
            for t in alias.targets
        )
        print(f"  {name}: {alias.strategy}: {targets}")
    return 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lockgate", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, help="policy YAML (or LOCKGATE_CONFIG)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument(
        "--otlp-endpoint", help="send traces over OTLP/HTTP here (or LOCKGATE_OTLP_ENDPOINT)"
    )
    serve.set_defaults(run=_serve)

    mock = commands.add_parser("mock-upstream", help="a fake OpenAI/Anthropic upstream")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=9000)
    mock.add_argument("--latency-ms", type=float, default=0.0)
    mock.add_argument("--ttft-ms", type=float, default=0.0)
    mock.add_argument("--tokens-per-second", type=float, default=0.0)
    mock.add_argument("--tokens", type=int, default=16)
    mock.set_defaults(run=_mock_upstream)

    check = commands.add_parser("check-config", help="validate a policy file")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_check_config)

    from lockgate.rag.cli import add_commands as rag_commands
    from lockgate.tenants.cli import add_commands as tenant_commands

    tenant_commands(commands)
    rag_commands(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
