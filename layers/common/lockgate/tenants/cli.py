"""`lockgate tenants create|list|update` and `lockgate keys create|list|revoke`.

Works on the embedded store under `LOCKGATE_DATA_DIR` (default `.lockgate`), or, when
`LOCKGATE_TENANT_TABLE` is set, on the DynamoDB tenant table; with `LOCKGATE_USAGE_PLANS` (JSON
`{"tier": "usage-plan-id"}`) too, new keys are also created as API Gateway keys in their tier's
usage plan.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from typing import Any

from lockgate.settings import Settings
from lockgate.tenants.models import Budget, RateLimits, TenantRecord
from lockgate.tenants.ports import GatewayKeyRegistrar
from lockgate.tenants.service import TenantError, TenantService
from lockgate.tenants.tiers import TIERS

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> float:
    """`90`, `15m`, `12h`, `30d`, `2w` → seconds."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 3600, 12h or 30d")
    return float(match.group(1)) * _UNIT[match.group(2)]


def open_service() -> TenantService:
    settings = Settings.from_env()
    table = settings.tenant_table
    if table:
        from lockgate.stores.aws.tenants import DynamoTenantStore

        store = DynamoTenantStore(table)
        registrar: GatewayKeyRegistrar | None = None
        if plans := settings.usage_plans:
            from lockgate.stores.aws.api_keys import ApiGatewayKeys

            registrar = ApiGatewayKeys(json.loads(plans))
        return TenantService(store, store, gateway_keys=registrar)
    from lockgate.stores.embedded.keys import SqliteKeyStore
    from lockgate.stores.embedded.tenants import SqliteTenantStore

    db = settings.data_dir / "lockgate.db"
    return TenantService(SqliteTenantStore(db), SqliteKeyStore(db))


def _limits(rpm: int | None, tpm: int | None) -> RateLimits | None:
    if rpm is None and tpm is None:
        return None
    return RateLimits(requests_per_minute=rpm, tokens_per_minute=tpm)


def _changes(args: argparse.Namespace, current: TenantRecord | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in ("name", "tier"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.models is not None:
        changes["models"] = [m for m in args.models.split(",") if m]
    base = current.limits if current and current.limits else RateLimits()
    if args.rpm is not None or args.tpm is not None:
        changes["limits"] = _limits(
            args.rpm if args.rpm is not None else base.requests_per_minute,
            args.tpm if args.tpm is not None else base.tokens_per_minute,
        )
    key_base = current.key_limits if current and current.key_limits else RateLimits()
    if args.key_rpm is not None or args.key_tpm is not None:
        changes["key_limits"] = _limits(
            args.key_rpm if args.key_rpm is not None else key_base.requests_per_minute,
            args.key_tpm if args.key_tpm is not None else key_base.tokens_per_minute,
        )
    if args.budget_tokens is not None or args.budget_usd is not None or args.on_exhausted:
        budget = current.budget if current else Budget()
        update: dict[str, Any] = {}
        if args.budget_tokens is not None:
            update["monthly_tokens"] = args.budget_tokens or None
        if args.budget_usd is not None:
            update["monthly_usd"] = args.budget_usd or None
        if args.on_exhausted:
            update["on_exhausted"] = args.on_exhausted
        changes["budget"] = Budget.model_validate({**budget.model_dump(), **update})
    return changes


def _show_tenant(record: TenantRecord) -> None:
    print(json.dumps(record.model_dump(mode="json"), indent=2))


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _run(args: argparse.Namespace) -> int:
    try:
        service = open_service()
        return int(args.action(service, args))
    except TenantError as exc:
        print(f"lockgate: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"lockgate: {exc}", file=sys.stderr)
        return 2


def _tenants_create(service: TenantService, args: argparse.Namespace) -> int:
    changes = _changes(args, None)
    _show_tenant(service.create_tenant(args.tenant_id, **changes))
    return 0


def _tenants_update(service: TenantService, args: argparse.Namespace) -> int:
    current = service.get_tenant(args.tenant_id)
    changes = _changes(args, current)
    if not changes:
        print("lockgate: nothing to change", file=sys.stderr)
        return 2
    _show_tenant(service.update_tenant(args.tenant_id, **changes))
    return 0


def _tenants_list(service: TenantService, args: argparse.Namespace) -> int:
    tenants = service.list_tenants()
    if args.json:
        print(json.dumps([t.model_dump(mode="json") for t in tenants], indent=2))
        return 0
    print(f"{'TENANT':<24} {'TIER':<11} {'MODELS':<24} BUDGET")
    for t in tenants:
        budget = []
        if t.budget.monthly_tokens:
            budget.append(f"{t.budget.monthly_tokens} tokens")
        if t.budget.monthly_usd:
            budget.append(f"${t.budget.monthly_usd}")
        models = ",".join(t.models) or "(tier default)"
        print(f"{t.id:<24} {t.tier:<11} {models:<24} {' / '.join(budget) or '-'}")
    return 0


def _keys_create(service: TenantService, args: argparse.Namespace) -> int:
    issued = service.create_key(
        args.tenant_id,
        name=args.name or "",
        expires_in_s=args.expires_in,
        limits=_limits(args.rpm, args.tpm),
    )
    print(f"key id:  {issued.record.key_id}")
    print(f"expires: {_when(issued.record.expires_at)}")
    print("\nThe key is shown only this once; it is stored hashed:\n")
    print(f"    {issued.key}\n")
    return 0


def _keys_list(service: TenantService, args: argparse.Namespace) -> int:
    keys = service.list_keys(args.tenant_id)
    if args.json:
        print(json.dumps([k.public() for k in keys], indent=2))
        return 0
    print(f"{'KEY ID':<28} {'NAME':<16} {'CREATED':<21} {'EXPIRES':<21} STATUS")
    now = datetime.now(UTC).timestamp()
    for k in keys:
        status = "active" if k.active(now) else ("revoked" if k.revoked_at else "expired")
        print(
            f"{k.key_id:<28} {k.name:<16} {_when(k.created_at):<21} "
            f"{_when(k.expires_at):<21} {status}"
        )
    return 0


def _keys_revoke(service: TenantService, args: argparse.Namespace) -> int:
    record = service.revoke_key(args.key_id)
    print(f"revoked {record.key_id} of tenant {record.tenant_id}")
    return 0


def _tenant_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name")
    parser.add_argument("--tier", choices=sorted(TIERS))
    parser.add_argument("--models", help="comma-separated aliases it may call (empty: all)")
    parser.add_argument("--rpm", type=int, help="tenant requests per minute")
    parser.add_argument("--tpm", type=int, help="tenant tokens per minute")
    parser.add_argument("--key-rpm", type=int, help="requests per minute for each key")
    parser.add_argument("--key-tpm", type=int, help="tokens per minute for each key")
    parser.add_argument("--budget-tokens", type=int, help="monthly tokens (0: none)")
    parser.add_argument("--budget-usd", type=float, help="monthly USD (0: none)")
    parser.add_argument("--on-exhausted", choices=["block", "step_down"])


def add_commands(subparsers: Any) -> None:
    """Adds `tenants` and `keys` to the `lockgate` command's subparsers."""
    tenants = subparsers.add_parser("tenants", help="create, list and update tenants")
    tcmd = tenants.add_subparsers(dest="tenants_command", required=True)
    create = tcmd.add_parser("create", help="a new tenant")
    create.add_argument("tenant_id")
    _tenant_options(create)
    create.set_defaults(run=_run, action=_tenants_create)
    update = tcmd.add_parser("update", help="change a tenant")
    update.add_argument("tenant_id")
    _tenant_options(update)
    update.set_defaults(run=_run, action=_tenants_update)
    listing = tcmd.add_parser("list", help="all tenants")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_run, action=_tenants_list)

    keys = subparsers.add_parser("keys", help="create, list and revoke API keys")
    kcmd = keys.add_subparsers(dest="keys_command", required=True)
    kcreate = kcmd.add_parser("create", help="a new key, shown once")
    kcreate.add_argument("tenant_id")
    kcreate.add_argument("--name")
    kcreate.add_argument("--expires-in", type=duration, help="e.g. 3600, 12h, 30d")
    kcreate.add_argument("--rpm", type=int, help="requests per minute for this key")
    kcreate.add_argument("--tpm", type=int, help="tokens per minute for this key")
    kcreate.set_defaults(run=_run, action=_keys_create)
    klist = kcmd.add_parser("list", help="a tenant's keys (never the keys themselves)")
    klist.add_argument("tenant_id")
    klist.add_argument("--json", action="store_true")
    klist.set_defaults(run=_run, action=_keys_list)
    revoke = kcmd.add_parser("revoke", help="stop a key working")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_run, action=_keys_revoke)
