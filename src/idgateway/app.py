"""The Litestar application: ``create_app(settings, redis_url)``."""

from __future__ import annotations

import asyncio
import hashlib
import os
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, cast

from litestar import Litestar, Response, get
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.routes import HTTPRoute
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from idgateway import __version__
from idgateway.api._authn import authentication
from idgateway.api._cors import session_cors
from idgateway.api._deps import DEPENDENCIES, Gateway, Runtime
from idgateway.api._limits import spend_before
from idgateway.api._middleware import allow_header, request_context
from idgateway.api._problems import handle_exception
from idgateway.api.auth import KeyRing
from idgateway.api.compat import compat_router
from idgateway.api.deliveries import deliveries_router
from idgateway.api.health import healthz, readyz
from idgateway.api.profiles import profiles_router
from idgateway.api.records import records_router
from idgateway.api.sdk import sdk_script
from idgateway.api.sessions import sessions_router
from idgateway.config import load_config
from idgateway.delivery._collector import DeliveryCollector
from idgateway.delivery._process import run_worker as run_delivery
from idgateway.net import GuardedClient
from idgateway.profiles import ProfileService
from idgateway.store import Store
from idgateway.tenancy import build_tenants

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

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


def create_app(settings: Settings, redis_url: str, *, run_worker: bool = False) -> Litestar:
    """The gateway app for ``settings``, talking to the Redis at ``redis_url``; with
    ``run_worker`` a delivery worker runs in the app's process (``idgateway serve``)."""
    gateway = build_gateway(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = await Store.open(redis_url, cluster=settings.gateway.redis.cluster)
        http = GuardedClient(timeout=settings.gateway.delivery.timeout)
        profiles = ProfileService(store.profiles, store.records, http)
        app.state.runtime = Runtime(store=store, profiles=profiles, http=http)
        app.state.store = store
        stop = asyncio.Event()
        worker = (
            asyncio.create_task(run_delivery(settings, redis_url, stop)) if run_worker else None
        )
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await worker  # finishes or releases deliveries in flight
            await profiles.close()
            await http.aclose()
            app.state.runtime = None
            app.state.store = None
            await store.close()

    _register_collector(settings, redis_url)
    prometheus = PrometheusConfig(app_name="idgateway", prefix="idgw", group_path=True)
    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            records_router,
            sessions_router,
            compat_router,
            deliveries_router,
            profiles_router,
            sdk_script,
            MetricsController,
        ],
        dependencies=DEPENDENCIES,
        before_request=spend_before,
        middleware=[prometheus.middleware],
        exception_handlers={Exception: handle_exception},
        lifespan=[lifespan],
        request_max_body_size=settings.gateway.server.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="idgateway", version=__version__, path="/schema", use_handler_docstrings=True
        ),
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
    origins = frozenset(o for t in settings.tenants.values() for o in t.allowed_origins)
    run_worker = os.environ.get("IDGW_NO_WORKER") != "1"
    app = create_app(settings, redis_url, run_worker=run_worker)

    def store_of() -> Store | None:
        store: Store | None = app.state.store
        return store

    methods = {
        route.path_format: ", ".join(sorted(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }
    routed = allow_header(cast("ASGIApp", app), methods)
    authenticated = authentication(routed, app.state.gateway, store_of)
    return request_context(session_cors(authenticated, origins))


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
