"""A delivery lane in-process, on a real Valkey, with an injected clock: what it does on time
without any test sleeping for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from idgateway.delivery import registry
from idgateway.delivery._worker import Lane, LaneConfig
from idgateway.net import GuardedClient
from idgateway.settings import TenantFile
from idgateway.settings._schema import DeliverySection
from idgateway.tenancy import Tenant
from tests.conftest import uniq

if TYPE_CHECKING:
    from idgateway.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lane(store: Store, clock: FakeClock, http: GuardedClient) -> Lane:
    tenant = Tenant.build(msgspec.convert({"id": uniq("lane")}, TenantFile))
    settings = {
        "url": "http://127.0.0.1:9/hook",
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }
    config = LaneConfig(
        tenant=tenant,
        vendor="webhook",
        adapter=registry()["webhook"].build("webhook", settings),
        fingerprint="f1",
        delivery=DeliverySection(),
        consumer="test",
        peers=("webhook",),
        vendor_check_s=2.0,
    )
    return Lane(config, store.deliveries, http, clock=clock)


async def test_a_lane_rereads_its_vendors_state_on_its_own_schedule(store: Store) -> None:
    """Another worker disables the vendor: this lane keeps its cached answer until
    ``vendor_check_s`` has passed on its clock, then sees it; a config change (another
    fingerprint) enables the vendor again."""
    clock = FakeClock()
    async with GuardedClient() as http:
        one = lane(store, clock, http)
        assert await one._is_disabled() is False
        state = {"disabled": True, "reason": "410", "at": 0, "fingerprint": "f1"}
        await store.deliveries.set_vendor_state(one.tenant_id, "webhook", state)

        clock.now += 1.9
        assert await one._is_disabled() is False  # cached: not due for a re-read yet
        clock.now += 0.2
        assert await one._is_disabled() is True

        other = {**state, "fingerprint": "f0"}  # disabled under an older config
        await store.deliveries.set_vendor_state(one.tenant_id, "webhook", other)
        clock.now += 2.0
        assert await one._is_disabled() is False
        assert await store.deliveries.vendor_state(one.tenant_id, "webhook") == {}


async def test_a_lane_that_disables_its_vendor_knows_at_once(store: Store) -> None:
    clock = FakeClock()
    async with GuardedClient() as http:
        one = lane(store, clock, http)
        assert await one._is_disabled() is False
        await one.disable("the vendor answered 410 Gone")
        assert await one._is_disabled() is True  # no clock tick needed
        state = await store.deliveries.vendor_state(one.tenant_id, "webhook")
        assert state["disabled"] is True and state["fingerprint"] == "f1"
