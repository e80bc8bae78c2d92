"""``idgateway`` command line (SPEC §9)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
from typing import IO, TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Iterator

    from idgateway.settings import Settings
    from idgateway.store import Store
    from idgateway.tenancy import Tenant

T = TypeVar("T")

DEFAULT_CONFIG = "config/gateway.toml"


def _load(path: str, *, check: bool = False) -> Settings | None:
    """The configuration, or None after printing its errors. ``check`` (``config check``):
    also resolve outbound host names; warnings are then the caller's to print."""
    from idgateway.config import load_config
    from idgateway.settings import ConfigError

    try:
        settings = load_config(path, resolve_hosts=check)
    except ConfigError as exc:
        errors = sum(issue.severity == "error" for issue in exc.issues)
        print(f"config: {errors} error(s)", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return None
    if not check:
        for issue in settings.warnings:
            print(f"config {issue}", file=sys.stderr)
    return settings


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = _load(args.config, check=True)
    if settings is None:
        return 1
    gw = settings.gateway
    redis = (
        gw.redis.url
        or f"embedded valkey in {gw.redis.data_dir} (appendfsync {gw.redis.appendfsync})"
    )
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
    for issue in settings.warnings:
        print(f"  {issue}")
    for t in settings.tenants.values():
        if (
            any(k.kind == "publishable" for k in t.api_keys)
            and t.identity.verification != "required"
        ):
            print(
                f"  warning: tenant {t.id!r} has publishable keys but identity.verification is "
                f"{t.identity.verification!r}: a browser can identify as any customer and read "
                "their record"
            )
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _check_redis(url: str, cluster: bool) -> str | None:
    """Whether the server of ``url`` is the kind ``redis.cluster`` says: the refusal, or None.
    A Redis that does not answer yet is no reason to refuse: the gateway starts, answers 503
    and checks again once it answers (app.py)."""
    import structlog

    from idgateway.store import UNAVAILABLE, ServerKindMismatch, check_server_kind, describe

    try:
        check_server_kind(url, cluster=cluster)
    except ServerKindMismatch as exc:
        return str(exc)
    except UNAVAILABLE as exc:
        structlog.get_logger("idgateway.cli").error(
            "redis unreachable at start; calls answer 503 until it answers",
            seeds=describe(url),
            error=str(exc),
        )
    return None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 1
    import structlog
    import uvicorn

    from idgateway.logging import configure_logging
    from idgateway.store import DataDirInUse, EmbeddedStartFailed, EmbeddedValkey

    gw = settings.gateway
    configure_logging(gw.logging.format, gw.logging.level)
    # Until uvicorn installs its own handlers: SIGTERM during the start ends the process
    # cleanly (the `finally` below stops an embedded server). uvicorn re-raises SIGTERM after
    # its graceful shutdown; with the default handler the process would die before the
    # embedded server is stopped.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    embedded = None
    url = os.environ.get("IDGW_REDIS_URL") or gw.redis.url
    try:
        if not url:
            try:
                embedded = EmbeddedValkey(gw.redis.data_dir, gw.redis.appendfsync)
                embedded.start()
            except DataDirInUse as exc:
                print(f"serve: {exc}", file=sys.stderr)
                return 1
            except EmbeddedStartFailed as exc:
                print(
                    f"serve: cannot start the embedded Valkey in {gw.redis.data_dir}: {exc}",
                    file=sys.stderr,
                )
                return 1
            url = embedded.url
            os.environ["IDGW_EMBEDDED_STATUS"] = str(embedded.status_file)
        else:
            refused = _check_redis(url, gw.redis.cluster)
            if refused is not None:
                structlog.get_logger("idgateway.cli").error("wrong kind of redis", error=refused)
                print(f"serve: {refused}", file=sys.stderr)
                return 2
        os.environ["IDGW_CONFIG"] = str(settings.config_path)
        os.environ["IDGW_REDIS_URL"] = url
        if args.no_worker:
            os.environ["IDGW_NO_WORKER"] = "1"
        port = args.port if args.port is not None else gw.server.port
        # A config may name the gateway itself with ${IDGW_PORT} (the example profile webhook
        # is its own Groove profile source): the port this server listens on, whatever chose it.
        os.environ["IDGW_PORT"] = str(port)
        workers = args.workers or gw.server.workers
        if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            # Each worker writes its metrics to files here; /metrics on any worker sums them.
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="idgw-metrics-")
        uvicorn.run(
            "idgateway.app:app_from_env",
            factory=True,
            host=args.host or gw.server.host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            # Requests are short; the in-process worker finishes its deliveries meanwhile
            # (app.py), so SIGTERM ends the process within delivery.timeout + 5 s.
            timeout_graceful_shutdown=max(1, min(10, int(gw.delivery.timeout))),
        )
    finally:
        if embedded is not None:
            # SIGKILL after 2 s keeps the SIGTERM budget; the AOF has every acknowledged
            # write with appendfsync always (at most the last second with everysec)
            embedded.stop(timeout=2)
    return 0


def _redis_url(settings: Settings) -> str | None:
    """The Redis of a running gateway: ``IDGW_REDIS_URL``, ``redis.url``, or the socket of
    the embedded server that ``idgateway serve`` started for this config."""
    from idgateway.store import socket_path

    url = os.environ.get("IDGW_REDIS_URL") or settings.gateway.redis.url
    if url:
        return url
    socket = socket_path(settings.gateway.redis.data_dir)
    if socket.exists():
        return f"unix://{socket}"
    print(
        "no Redis: redis.url is empty and no `idgateway serve` runs the embedded server "
        f"({socket} does not exist)",
        file=sys.stderr,
    )
    return None


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 1
    from idgateway.logging import configure_logging

    gw = settings.gateway
    configure_logging(gw.logging.format, gw.logging.level)
    url = _redis_url(settings)
    if url is None:
        return 1

    if args.metrics_port is not None:
        from prometheus_client import REGISTRY, start_http_server

        from idgateway.delivery._collector import DeliveryCollector

        REGISTRY.register(DeliveryCollector(settings, url))
        start_http_server(args.metrics_port, addr=args.metrics_host)

    async def main() -> None:
        import asyncio

        from idgateway.delivery._process import run_worker

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, url, stop, only_vendor=args.vendor)

    from idgateway.store import ServerKindMismatch

    try:
        try:
            import uvloop  # the event loop `serve` gets from uvicorn: faster I/O callbacks

            uvloop.run(main())
        except ImportError:
            import asyncio

            asyncio.run(main())
    except ServerKindMismatch as exc:
        import structlog

        structlog.get_logger("idgateway.cli").error("wrong kind of redis", error=str(exc))
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    return 0


def _tenant_of(settings: Settings, given: str | None) -> str | None:
    if given:
        if given not in settings.tenants:
            print(f"no tenant {given!r}", file=sys.stderr)
            return None
        return given
    if len(settings.tenants) == 1:
        return next(iter(settings.tenants))
    print(f"several tenants: give --tenant ({', '.join(settings.tenants)})", file=sys.stderr)
    return None


def _operator_tenant(args: argparse.Namespace) -> tuple[Settings, Tenant] | None:
    """The settings and the tenant an operator command works on (the problem said if none)."""
    settings = _load(args.config)
    if settings is None:
        return None
    tenant_id = _tenant_of(settings, args.tenant)
    if tenant_id is None:
        return None
    from idgateway.tenancy import Tenant

    return settings, Tenant.build(settings.tenants[tenant_id])


@contextlib.asynccontextmanager
async def _opened_store(settings: Settings, url: str) -> AsyncIterator[Store]:
    """The store of ``url`` for one operator command, closed when it is done."""
    from idgateway.store import Store

    store = await Store.open(url, cluster=settings.gateway.redis.cluster)
    try:
        yield store
    finally:
        await store.close()


def cmd_deliveries(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 1
    tenant_id = _tenant_of(settings, args.tenant)
    url = _redis_url(settings)
    if tenant_id is None or url is None:
        return 1
    import asyncio

    from idgateway.delivery import list_deliveries
    from idgateway.tenancy import Tenant

    tenant = Tenant.build(settings.tenants[tenant_id])

    async def main() -> int:
        async with _opened_store(settings, url) as store:
            queues = store.deliveries
            if args.deliveries_command == "list":
                page = await list_deliveries(
                    queues, tenant, status=args.status, vendor=args.vendor, limit=args.limit
                )
                rows = [
                    ("id", "vendor", "record", "status", "attempts", "last status", "last error")
                ]
                for item in page.items:
                    rows.append(
                        (
                            item.id or "-",
                            item.vendor,
                            item.record_id,
                            item.status,
                            str(item.attempts),
                            str(item.last_status or "-"),
                            # a delivered item shows the adapter's return message instead
                            (item.last_error or (item.return_message or {}).get("message") or "-")[
                                :60
                            ],
                        )
                    )
                widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
                for row in rows:
                    print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
                print(f"{len(page.items)} deliveries ({args.status})")
                return 0
            if args.deliveries_command == "replay":
                ids = list(args.ids)
                if args.all_dead:
                    ids += await queues.dead_ids(tenant.id, args.vendor)
                if not ids:
                    print("nothing to replay (give IDs or --all-dead)", file=sys.stderr)
                    return 1
                missing = 0
                for delivery in ids:
                    done = await queues.replay(tenant.id, delivery)
                    if done is None:
                        missing += 1
                        print(f"{delivery}: no such dead delivery", file=sys.stderr)
                    else:
                        print(f"{delivery}: queued again for {done[0]} ({done[1]})")
                return 1 if missing else 0
            was = await queues.clear_vendor_state(tenant.id, args.vendor)
            print(f"{args.vendor}: enabled" + ("" if was else " (it was not disabled)"))
            return 0

    return asyncio.run(main())


@contextlib.contextmanager
def _operator_redis(settings: Settings) -> Iterator[str | None]:
    """The Redis of an operator command (import, export, fields): ``IDGW_REDIS_URL`` or
    ``redis.url``; with the embedded server, the one a running ``serve`` of this config owns
    (through its socket), or else one started for the command, holding the data dir's lock
    as ``serve`` does, and stopped after it. Yields None after printing why there is none."""
    from idgateway.logging import configure_logging
    from idgateway.store import DataDirInUse, EmbeddedStartFailed, EmbeddedValkey, socket_path

    gw = settings.gateway
    # on stderr, and only what needs attention: standard output may be the data (export)
    configure_logging(gw.logging.format, "warning")
    url = os.environ.get("IDGW_REDIS_URL") or gw.redis.url
    if url:
        yield url
        return
    embedded = EmbeddedValkey(gw.redis.data_dir, gw.redis.appendfsync)
    try:
        embedded.start()
    except DataDirInUse:
        socket = socket_path(gw.redis.data_dir)
        for _ in range(100):  # a gateway that is starting creates it shortly
            if socket.exists():
                break
            time.sleep(0.1)
        yield f"unix://{socket}"
        return
    except EmbeddedStartFailed as exc:
        print(f"cannot start the embedded Valkey in {gw.redis.data_dir}: {exc}", file=sys.stderr)
        yield None
        return
    try:
        yield embedded.url
    finally:
        embedded.stop()


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _import_progress(console: Any, name: str, size: int) -> Any:
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>11,} rows"),
        TextColumn("{task.fields[rate]:>9,.0f} rows/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    progress.add_task(name, total=size or None, rows=0, rate=0.0)
    return progress


def cmd_import(args: argparse.Namespace) -> int:
    chosen = _operator_tenant(args)
    if chosen is None:
        return 1
    settings, tenant = chosen
    tenant_id = tenant.id
    from pathlib import Path

    from idgateway import service
    from idgateway.store import UNAVAILABLE

    path = Path(args.file)
    if not path.is_file():
        print(f"import: no such file: {path}", file=sys.stderr)
        return 1
    console = _console()
    size = path.stat().st_size

    async def main(url: str) -> service.ImportSummary:
        bar = _import_progress(console, path.name, size)
        started = time.perf_counter()

        def progress(p: service.ImportProgress) -> None:
            rate = p.run_rows / max(time.perf_counter() - started, 1e-9)
            bar.update(bar.task_ids[0], completed=p.offset, rows=p.tally.rows, rate=rate)

        async with _opened_store(settings, url) as store:
            with bar:
                return await service.import_file(
                    store,
                    tenant,
                    path,
                    resume=args.resume,
                    fmt=args.format,
                    batch_rows=args.batch,
                    progress=progress,
                    notice=lambda text: console.print(f"import: {text}"),
                )

    with _operator_redis(settings) as url:
        if url is None:
            return 1
        try:
            summary = _run(main(url))
        except service.ImportFailed as exc:
            print(f"import: {exc}", file=sys.stderr)
            return 1
        except UNAVAILABLE as exc:
            print(f"import: Redis does not answer ({exc}); --resume continues", file=sys.stderr)
            return 1
    t = summary.tally
    if summary.already_done:
        print(f"{path}: already imported for tenant {tenant_id} (nothing to resume)")
    else:
        where = (
            f", resumed after line {summary.resumed_at_line:,}" if summary.resumed_at_line else ""
        )
        print(
            f"{path} ({summary.format}) for tenant {tenant_id}: {summary.run_rows:,} rows in "
            f"{summary.seconds:.1f} s, {summary.rows_per_second:,.0f} rows/s{where}"
        )
    print(
        f"  rows {t.rows:,}: created {t.created:,}, updated {t.updated:,}, "
        f"unchanged {t.unchanged:,}, rejected {t.rejected:,}"
    )
    if summary.rejects is not None and t.rejected:
        print(f"  rejected rows, with line and reason: {summary.rejects}")
    return 2 if t.rejected else 0


def cmd_export(args: argparse.Namespace) -> int:
    chosen = _operator_tenant(args)
    if chosen is None:
        return 1
    settings, tenant = chosen
    tenant_id = tenant.id
    from pathlib import Path

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from idgateway import service
    from idgateway.store import UNAVAILABLE

    console = _console()

    async def main(url: str, out: IO[bytes]) -> service.ExportProgress:
        bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]export {task.fields[tenant]}"),
            TextColumn("{task.fields[companies]:>9,} companies"),
            TextColumn("{task.fields[contacts]:>11,} contacts"),
            TextColumn("{task.fields[rate]:>9,.0f} records/s"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        task = bar.add_task("export", total=None, tenant=tenant_id, companies=0, contacts=0, rate=0)
        started = time.perf_counter()

        def progress(p: service.ExportProgress) -> None:
            rate = (p.contacts + p.companies) / max(time.perf_counter() - started, 1e-9)
            bar.update(task, companies=p.companies, contacts=p.contacts, rate=rate)

        async with _opened_store(settings, url) as store:
            with bar:
                return await service.export_records(store, tenant, out, progress=progress)

    with _operator_redis(settings) as url:
        if url is None:
            return 1
        target = Path(args.out) if args.out else None
        partial = target.with_name(target.name + ".partial") if target else None
        where = str(target) if target else "the standard output"
        try:
            out = partial.open("wb") if partial is not None else sys.stdout.buffer
        except OSError as exc:
            print(f"export: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        try:
            try:
                done = _run(main(url, out))  # writes fail as ExportFailed
            except service.ExportFailed as exc:
                print(f"export: {where}: {exc}", file=sys.stderr)
                return 1
            except UNAVAILABLE as exc:
                print(f"export: Redis does not answer ({exc})", file=sys.stderr)
                return 1
            try:
                if partial is not None and target is not None:
                    out.close()
                    partial.replace(target)
                else:
                    out.flush()
            except OSError as exc:
                print(f"export: cannot write {where}: {exc.strerror or exc}", file=sys.stderr)
                return 1
        finally:
            if partial is not None:
                with contextlib.suppress(OSError):  # already said why, or closed
                    out.close()
                partial.unlink(missing_ok=True)
    where = f" to {target}" if target else ""
    print(
        f"exported {done.companies:,} companies and {done.contacts:,} contacts of tenant "
        f"{tenant_id}{where}",
        file=sys.stderr,
    )
    return 0


def cmd_fields(args: argparse.Namespace) -> int:
    chosen = _operator_tenant(args)
    if chosen is None:
        return 1
    settings, tenant = chosen
    tenant_id = tenant.id
    from idgateway import service
    from idgateway.store import UNAVAILABLE, FieldHeld

    async def listing(url: str) -> list[service.InferredField]:
        async with _opened_store(settings, url) as store:
            return await service.inferred_fields(store, tenant)

    async def reset(url: str) -> service.ResetOutcome:
        async with _opened_store(settings, url) as store:
            return await service.reset_field(store, tenant, args.key)

    with _operator_redis(settings) as url:
        if url is None:
            return 1
        try:
            if args.fields_command == "list":
                fields = _run(listing(url))
            else:
                outcome = _run(reset(url))
        except UNAVAILABLE as exc:
            print(f"fields: Redis does not answer ({exc})", file=sys.stderr)
            return 1
    if args.fields_command == "list":
        if not fields:
            print(f"tenant {tenant_id}: no inferred fields")
            return 0
        rows = [("entity", "key", "type")] + [(f.entity, f.key, f.type) for f in fields]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return 0
    entity, key = service.field_name(args.key)
    if outcome == "forgotten":
        print(f"{entity} field {key!r}: type forgotten; the next value stored fixes it again")
        return 0
    if outcome == "unknown":
        print(
            f"{entity} field {key!r} has no inferred type (declared and standard fields have "
            "their own; see `fields list`)",
            file=sys.stderr,
        )
    elif isinstance(outcome, FieldHeld):
        print(
            f"{entity} field {key!r} is held by {outcome.record_id} (and maybe others): "
            "remove it from every record first",
            file=sys.stderr,
        )
    else:
        print(f"{entity} field {key!r}: records kept changing; try again", file=sys.stderr)
    return 1


def _run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coro)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idgateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    config_default = os.environ.get("IDGW_CONFIG", DEFAULT_CONFIG)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--config", default=config_default)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="API worker processes")
    serve.add_argument(
        "--no-worker", action="store_true", help="do not run a delivery worker in-process"
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a delivery worker")
    worker.add_argument("--config", default=config_default)
    worker.add_argument("--vendor", help="deliver to this vendor only (name or adapter)")
    worker.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.set_defaults(func=cmd_worker)

    # --config / --tenant go before or after the sub-command: both spellings work.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS)
    common.add_argument("--tenant", default=argparse.SUPPRESS, help="tenant id (when several)")
    deliveries = sub.add_parser("deliveries", help="inspect and replay deliveries")
    deliveries.add_argument("--config", default=config_default)
    deliveries.add_argument("--tenant", help="tenant id (needed when there are several)")
    dsub = deliveries.add_subparsers(dest="deliveries_command", required=True)
    dlist = dsub.add_parser(
        "list", help="dead letters (default), queued or in-flight jobs", parents=[common]
    )
    dlist.add_argument(
        "--status", choices=["dead", "queued", "in_flight", "delivered"], default="dead"
    )
    dlist.add_argument("--vendor")
    dlist.add_argument("--limit", type=int, default=100)
    dreplay = dsub.add_parser(
        "replay", help="put dead deliveries back in the queue", parents=[common]
    )
    dreplay.add_argument("ids", nargs="*", metavar="ID")
    dreplay.add_argument("--all-dead", action="store_true")
    dreplay.add_argument("--vendor", help="with --all-dead: only this vendor's")
    denable = dsub.add_parser(
        "enable", help="enable a vendor disabled by a 410 answer", parents=[common]
    )
    denable.add_argument("vendor")
    for p in (dlist, dreplay, denable):
        p.set_defaults(func=cmd_deliveries)

    imp = sub.add_parser(
        "import", help="bulk identify from NDJSON or CSV (a row is an identify body)"
    )
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--config", default=config_default)
    imp.add_argument("--tenant", help="tenant id (needed when there are several)")
    imp.add_argument("--resume", action="store_true", help="continue after the last committed row")
    imp.add_argument("--format", choices=["ndjson", "csv"], help="default: from the extension")
    imp.add_argument("--batch", type=_positive, default=500, help="rows per batch (default 500)")
    imp.set_defaults(func=cmd_import)

    export = sub.add_parser("export", help="every contact and company of a tenant as NDJSON")
    export.add_argument("--config", default=config_default)
    export.add_argument("--tenant", help="tenant id (needed when there are several)")
    export.add_argument("--out", metavar="FILE", help="default: standard output")
    export.set_defaults(func=cmd_export)

    fields = sub.add_parser("fields", help="inferred field types")
    fields.add_argument("--config", default=config_default)
    fields.add_argument("--tenant", help="tenant id (needed when there are several)")
    fsub = fields.add_subparsers(dest="fields_command", required=True)
    flist = fsub.add_parser("list", help="inferred fields and their types", parents=[common])
    freset = fsub.add_parser(
        "reset",
        help="forget an inferred field's type (only when no record holds it)",
        parents=[common],
    )
    freset.add_argument("key", metavar="KEY", help="a contact field, or company.KEY")
    for p in (flist, freset):
        p.set_defaults(func=cmd_fields)

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
