"""``idgateway`` command line (SPEC §9)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idgateway.settings import Settings

DEFAULT_CONFIG = "config/gateway.toml"


def _load(path: str) -> Settings | None:
    from idgateway.settings import ConfigError, load_settings

    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"config: {len(exc.issues)} error(s)", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return None


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 1
    gw = settings.gateway
    redis = gw.redis.url or f"embedded valkey in {gw.redis.data_dir} (appendfsync {gw.redis.appendfsync})"
    print(f"config {settings.config_path}: ok")
    print(f"  server  {gw.server.host}:{gw.server.port}, max body {gw.server.max_body_bytes} B")
    print(f"  redis   {redis}")
    header = ("tenant", "keys s/p", "fields c/o", "unknown", "verify", "vendors", "profile")
    rows = [header]
    for t in settings.tenants.values():
        secret = sum(k.kind == "secret" for k in t.api_keys)
        rows.append(
            (
                t.id,
                f"{secret}/{len(t.api_keys) - secret}",
                f"{len(t.fields.contact)}/{len(t.fields.company)}",
                t.unknown_fields,
                t.identity.verification,
                ",".join(v.adapter + ("" if v.enabled else "(off)") for v in t.vendors) or "-",
                "yes" if t.profile else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 1
    import uvicorn

    from idgateway.logging import configure_logging
    from idgateway.store import DataDirInUse, EmbeddedValkey

    gw = settings.gateway
    configure_logging(gw.logging.format, gw.logging.level)
    embedded = None
    url = os.environ.get("IDGW_REDIS_URL") or gw.redis.url
    if not url:
        embedded = EmbeddedValkey(gw.redis.data_dir, gw.redis.appendfsync)
        try:
            embedded.start()
        except DataDirInUse as exc:
            print(f"serve: {exc}", file=sys.stderr)
            return 1
        url = embedded.url
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler the
    # process would die before the embedded server is stopped below.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.environ["IDGW_CONFIG"] = str(settings.config_path)
    os.environ["IDGW_REDIS_URL"] = url
    workers = args.workers or gw.server.workers
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker writes its metrics to files here; /metrics on any worker sums them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="idgw-metrics-")
    try:
        uvicorn.run(
            "idgateway.app:app_from_env",
            factory=True,
            host=args.host or gw.server.host,
            port=args.port if args.port is not None else gw.server.port,
            workers=workers,
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idgateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    config_default = os.environ.get("IDGW_CONFIG", DEFAULT_CONFIG)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--config", default=config_default)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="API worker processes")
    serve.set_defaults(func=cmd_serve)

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate config files")
    check.add_argument("--config", default=config_default)
    check.set_defaults(func=cmd_config_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
