"""A gateway whose tenant delivers to local vendor emulators.

    with delivery_gateway(tmp_path, redis_url, ["webhook", "smooch"]) as dg:
        dg.api.post("/v1/identify", json=...)
        dg.emulators["webhook"].wait_for(1)

Each gateway gets a tenant of its own (``dl`` + random suffix), so its outbox, queues and
dead letters never mix with another test's on the shared Redis. Delivery settings are fast
(short retry schedule, timeout and coalescing window) unless overridden.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from tests.conftest import (
    free_port,
    redis_toml,
    start_gateway,
    stop_process,
    sync_redis,
    wait_ready,
)
from tests.emulators import (
    GIST_TOKEN,
    GROOVE_TOKEN,
    PIPEDRIVE_TOKEN,
    SMOOCH,
    SUNSHINE,
    WEBHOOK_SECRET,
    VendorEmulator,
)
from tests.emulators import (
    emulator as new_emulator,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import redis

SECRET = "sk_test_delivery_0123456789abcdef"

# Each adapter's settings against its emulator (the emulator accepts exactly these credentials).
SETTINGS: dict[str, Callable[[VendorEmulator], dict[str, Any]]] = {
    "smooch": lambda e: {"base_url": e.url, **SMOOCH},
    "sunshine": lambda e: {"base_url": e.url, **SUNSHINE},
    "gist": lambda e: {"base_url": e.url, "token": GIST_TOKEN},
    "groove": lambda e: {"base_url": e.url, "token": GROOVE_TOKEN},
    "pipedrive": lambda e: {"base_url": e.url, "token": PIPEDRIVE_TOKEN, "contact_type": "person"},
    "webhook": lambda e: {"url": f"{e.url}/hooks/idgw", "secret": WEBHOOK_SECRET},
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class DeliveryGateway:
    url: str
    tenant: str
    config: Path
    log: Path
    port: int
    emulators: dict[str, VendorEmulator]
    redis: redis.Redis
    process: Any = None
    extra_args: tuple[str, ...] = ()
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=10
        )

    @property
    def prefix(self) -> str:
        return f"idgw:{{{self.tenant}}}:"

    def start(self, *extra: str) -> None:
        self.process = start_gateway(self.config, self.port, self.log, *(extra or self.extra_args))
        wait_ready(self.url, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def identify(self, **body: Any) -> dict[str, Any]:
        response = self.api.post("/v1/identify", json=body)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result


def write_delivery_config(
    folder: Path,
    redis_url: str,
    port: int,
    tenant: str,
    vendors: dict[str, tuple[str, dict[str, Any], bool]],
    delivery: dict[str, Any],
) -> Path:
    tenants = folder / "tenants"
    tenants.mkdir(parents=True, exist_ok=True)
    lines = [
        f'id = "{tenant}"',
        "allow_private_networks = true",
        'default_region = "US"',
        "[[api_keys]]",
        'name = "backend"',
        'kind = "secret"',
        f'key = "{SECRET}"',
    ]
    for name, (adapter, settings, enabled) in vendors.items():
        lines += ["[[vendors]]", f'adapter = "{adapter}"', f'name = "{name}"']
        if not enabled:
            lines.append("enabled = false")
        lines.append("[vendors.settings]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in settings.items()]
    (tenants / f"{tenant}.toml").write_text("\n".join(lines) + "\n")
    section = "\n".join(f"{k} = {_toml_value(v)}" for k, v in delivery.items())
    config = folder / "gateway.toml"
    config.write_text(
        f"[server]\nport = {port}\n{redis_toml(redis_url)}"
        f'[logging]\nformat = "json"\n[delivery]\n{section}\n[tenants]\ndir = "tenants"\n'
    )
    return config


@contextlib.contextmanager
def delivery_gateway(
    folder: Path,
    redis_url: str,
    adapters: list[str],
    *,
    delivery: dict[str, Any] | None = None,
    start: bool = True,
    extra_args: tuple[str, ...] = (),
) -> Iterator[DeliveryGateway]:
    """Emulators for ``adapters`` (vendor name = adapter name) and a gateway delivering to
    them. ``extra_args`` go to ``idgateway serve`` (e.g. ``--no-worker``)."""
    emulators = {name: new_emulator(name).start() for name in adapters}
    tenant = "dl" + uuid.uuid4().hex[:10]
    port = free_port()
    settings = {
        "retry_schedule": ["200ms", "400ms", "600ms"],
        "timeout": "1s",
        "concurrency": 16,
        "coalesce_window": "100ms",
        **(delivery or {}),
    }
    vendors = {name: (name, SETTINGS[name](emulators[name]), True) for name in adapters}
    config = write_delivery_config(folder, redis_url, port, tenant, vendors, settings)
    dg = DeliveryGateway(
        url=f"http://127.0.0.1:{port}",
        tenant=tenant,
        config=config,
        log=folder / "gateway.log",
        port=port,
        emulators=emulators,
        redis=sync_redis(redis_url),
        extra_args=extra_args,
    )
    try:
        if start:
            dg.start()
        yield dg
        for name, emu in emulators.items():
            assert emu.violations == [], f"{name}: requests the real API refuses"
    finally:
        dg.stop()
        dg.api.close()
        dg.redis.close()
        for emulator in emulators.values():
            emulator.stop()
