"""The Litestar application: ``create_app(settings, redis_url)``."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import threading
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import structlog
from litestar import Litestar, Response, get
from litestar.plugins.prometheus import PrometheusController
from litestar.routes import HTTPRoute
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from idgateway.api._authn import authentication
from idgateway.api._cors import session_cors
from idgateway.api._deps import DEPENDENCIES, Gateway, Runtime
from idgateway.api._hot import hot_writes
from idgateway.api._limits import spend_before
from idgateway.api._middleware import allow_header, normal_paths, request_context
from idgateway.api._openapi import openapi_config, swagger_asset
from idgateway.api._problems import handle_exception
from idgateway.api.auth import KeyRing
from idgateway.api.compat import compat_router
from idgateway.api.deliveries import deliveries_router
from idgateway.api.health import healthz, readyz
from idgateway.api.profiles import profiles_router
from idgateway.api.records import records_router
from idgateway.api.sdk import sdk_script
from idgateway.api.segment import ingest_router, segment_router
from idgateway.api.sessions import sessions_router
from idgateway.config import load_config
from idgateway.delivery._collector import DeliveryCollector
from idgateway.delivery._process import run_worker as run_delivery
from idgateway.net import GuardedClient
from idgateway.profiles import ProfileService
from idgateway.store import ServerKindMismatch, Store, wait_for_redis, warm_up
from idgateway.tenancy import build_tenants

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from idgateway.api._asgi import ASGIApp
    from idgateway.settings import Settings


class MetricsController(PrometheusController):
    """Litestar's Prometheus endpoint, with the delivery gauges in every mode (with
    ``--workers`` it builds a multiprocess registry per scrape), rendered in a thread because
    the gauges are read from Redis."""

    path = "/metrics"
    include_in_schema = False

    @get()
    async def get(self) -> Response[bytes]:
        def render() -> bytes:
            registry = REGISTRY
            if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
                registry = CollectorRegistry()
                multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
                if "delivery" in _COLLECTORS:
                    registry.register(_COLLECTORS["delivery"])
            return generate_latest(registry)

        body = await asyncio.to_thread(render)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


_COLLECTORS: dict[str, DeliveryCollector] = {}
log = structlog.get_logger(__name__)


def _register_collector(settings: Settings, redis_url: str) -> None:
    """One delivery collector per process (the Prometheus registry is global)."""
    if "delivery" in _COLLECTORS:
        REGISTRY.unregister(_COLLECTORS.pop("delivery"))
    collector = DeliveryCollector(settings, redis_url)
    REGISTRY.register(collector)
    _COLLECTORS["delivery"] = collector


def build_gateway(settings: Settings) -> Gateway:
    tenants = build_tenants(settings)
    return Gateway(
        settings=settings,
        tenants=tenants,
        keys=KeyRing(settings),
        groove_tokens={
            hashlib.sha256(t.config.compat.groove_api_token.encode()).digest(): t
            for t in tenants.values()
            if t.config.compat.groove_api_token
        },
    )


def _stop_on_signal(stop: asyncio.Event) -> Callable[[], None]:
    """Set ``stop`` as soon as SIGTERM/SIGINT arrives, then let uvicorn's own handler run.

    uvicorn drains HTTP connections first and runs the lifespan's shutdown after; the
    in-process worker starts finishing its deliveries meanwhile, so the process ends within
    ``delivery.timeout`` + 5 s (SPEC §10). Returns a function restoring the handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach only the main thread (tests run apps elsewhere)
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: Any) -> None:
        loop.call_soon_threadsafe(stop.set)
        chained = previous[signal.Signals(sig)]
        if callable(chained):
            chained(sig, frame)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


async def _watch_redis(store: Store, settings: Settings, url: str, stop: asyncio.Event) -> None:
    """Once Redis answers (at once, usually): refuse a server of the wrong kind (every call
    answers 503 saying why; `idgateway serve` refuses to start on it when it answers at
    start), and warm a client that could not be warmed before serving."""
    try:
        if not await wait_for_redis(
            url, cluster=settings.gateway.redis.cluster, stop=stop, role="api"
        ):
            return
    except ServerKindMismatch as exc:
        store.refusal = str(exc)
        log.error("wrong kind of redis: every call answers 503", error=str(exc))
        return
    if not store.warm:
        store.warm = await warm_up(store.client, library=store.library)


async def _deliver(settings: Settings, url: str, stop: asyncio.Event) -> None:
    """The in-process worker; a Redis of the wrong kind stops it, not the API."""
    try:
        await run_delivery(settings, url, stop)
    except ServerKindMismatch as exc:
        log.error("wrong kind of redis: the delivery worker does not run", error=str(exc))


def create_app(settings: Settings, redis_url: str, *, run_worker: bool = False) -> Litestar:
    """The gateway app for ``settings``, talking to the Redis at ``redis_url``; with
    ``run_worker`` a delivery worker runs in the app's process (``idgateway serve``)."""
    gateway = build_gateway(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        redis = settings.gateway.redis
        # Warmed before the first request (a cold cluster client fails many concurrent first
        # calls); a Redis that does not answer yet does not hold the start up for long:
        # calls answer 503 meanwhile, and the watch below warms the client once it answers.
        store = await Store.open(
            redis_url, cluster=redis.cluster, wait_replicas=redis.wait_replicas
        )
        http = GuardedClient(timeout=settings.gateway.delivery.timeout)
        profiles = ProfileService(store.profiles, store.records, http)
        app.state.runtime = Runtime(store=store, profiles=profiles, http=http)
        app.state.store = store
        stop = asyncio.Event()
        watch = asyncio.create_task(_watch_redis(store, settings, redis_url, stop))
        worker = None
        restore_signals = _stop_on_signal(stop) if run_worker else (lambda: None)
        if run_worker:
            worker = asyncio.create_task(_deliver(settings, redis_url, stop))
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await worker  # finishes or releases deliveries in flight
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            restore_signals()
            await profiles.close()
            await http.aclose()
            app.state.runtime = None
            app.state.store = None
            await store.close()

    _register_collector(settings, redis_url)
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            records_router,
            sessions_router,
            compat_router,
            deliveries_router,
            profiles_router,
            segment_router,
            ingest_router,
            sdk_script,
            MetricsController,
            swagger_asset,
        ],
        dependencies=DEPENDENCIES,
        before_request=spend_before,
        exception_handlers={Exception: handle_exception},
        lifespan=[lifespan],
        request_max_body_size=settings.gateway.server.max_body_bytes,
        openapi_config=openapi_config(),
        debug=False,
        logging_config=None,
    )
    app.state.gateway = gateway
    app.state.runtime = None
    app.state.store = None
    return app


def asgi_app(settings: Settings, redis_url: str) -> ASGIApp:
    """The app wrapped in plain ASGI middleware: request context, session CORS, API keys.
    Litestar runs its own middleware per route handler, so only a wrapper sees 404/405 answers
    (request id, log line) and error answers of the session endpoints (CORS headers)."""
    run_worker = os.environ.get("IDGW_NO_WORKER") != "1"
    return wrap(create_app(settings, redis_url, run_worker=run_worker))


def wrap(app: Litestar) -> ASGIApp:
    """:func:`create_app`'s app in the gateway's own ASGI middleware (see :func:`asgi_app`)."""
    settings: Settings = app.state.gateway.settings
    origins = frozenset(o for t in settings.tenants.values() for o in t.allowed_origins)

    def store_of() -> Store | None:
        store: Store | None = app.state.store
        return store

    methods = {
        route.path_format: ", ".join(sorted(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }
    gateway = app.state.gateway
    routed = allow_header(cast("ASGIApp", app), methods)
    lean = hot_writes(routed, gateway, store_of)
    authenticated = authentication(lean, gateway, store_of)
    return normal_paths(request_context(session_cors(authenticated, origins)))


def app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory``: config from ``IDGW_CONFIG``, Redis from
    ``IDGW_REDIS_URL`` (set by ``idgateway serve``, which may have started the embedded
    server)."""
    settings = load_config(os.environ.get("IDGW_CONFIG", "config/gateway.toml"))
    from idgateway.logging import configure_logging

    configure_logging(settings.gateway.logging.format, settings.gateway.logging.level)
    url = os.environ.get("IDGW_REDIS_URL") or settings.gateway.redis.url
    if not url:
        raise RuntimeError("no Redis URL: run through `idgateway serve` or set IDGW_REDIS_URL")
    return asgi_app(settings, url)
