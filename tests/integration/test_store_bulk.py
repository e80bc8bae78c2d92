"""The store's bulk functions against the real Redis: ``scan_records`` and ``field_reset``.

``fields reset`` scans every record outside any atomic step, then lets ``field_reset`` close
the gap: a record written after the scan began (it is in the outbox after ``since``) and
holding the field refuses the reset; an outbox trimmed past ``since`` makes it ``unsure``
rather than wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import pytest

from idgateway import service
from idgateway.fields import FieldInput, RecordOp, build_registry, validate
from idgateway.settings import TenantFile
from idgateway.store import FieldHeld, Store, TenantKeys
from idgateway.tenancy import Tenant
from tests.conftest import uniq

if TYPE_CHECKING:
    import redis


@pytest.fixture
def tenant() -> Tenant:
    return Tenant.build(msgspec.convert({"id": uniq("bulk")}, TenantFile))


def op(tenant: Tenant, **values: object) -> RecordOp:
    registry = build_registry(tenant.config, "contact")
    inputs = [FieldInput(k, v, f"$.{k}") for k, v in values.items()]
    change, violations = validate(registry, inputs)
    assert violations == []
    return RecordOp(change, tenant.contacts)


async def test_pages_hold_every_record_and_holders_only_those_with_the_field(
    store: Store, tenant: Tenant
) -> None:
    ids = []
    for i in range(30):
        values: dict[str, object] = {"external_id": f"r{i}"}
        if i % 3 == 0:
            values["color"] = "red"
        (result,) = await store.records.upsert(tenant.id, [op(tenant, **values)])
        ids.append(result.record.id)
    seen: list[str] = []
    holders: list[str] = []
    cursor = "0"
    while True:
        cursor, page = await store.bulk.records(tenant.id, "contact", cursor, count=7)
        seen += [r.id for r in page]
        if cursor == "0":
            break
    while True:
        cursor, found = await store.bulk.holders(tenant.id, "contact", "p.color", cursor, count=7)
        holders += found
        if cursor == "0":
            break

    assert set(seen) == set(ids)
    assert sorted(holders) == sorted(ids[::3])


async def test_a_record_written_after_the_scan_began_refuses_the_reset(
    store: Store, tenant: Tenant
) -> None:
    await store.records.upsert(tenant.id, [op(tenant, external_id="a", color="red")])
    await store.records.upsert(tenant.id, [op(tenant, external_id="a", color=None)])
    since = await store.bulk.outbox_position(tenant.id)
    # ... the scan finds no holder; meanwhile another call writes the field:
    (late,) = await store.records.upsert(tenant.id, [op(tenant, external_id="b", color="blue")])

    outcome = await store.bulk.forget_type(tenant.id, "contact", "p.color", since)

    assert outcome == FieldHeld(late.record.id)
    assert await store.bulk.inferred_types(tenant.id, "contact") == {"p.color": "text"}


async def test_an_outbox_trimmed_past_the_scan_start_makes_the_reset_unsure(
    store: Store, tenant: Tenant, redis_client: redis.Redis
) -> None:
    await store.records.upsert(tenant.id, [op(tenant, external_id="a", color="red")])
    await store.records.upsert(tenant.id, [op(tenant, external_id="a", color=None)])
    since = await store.bulk.outbox_position(tenant.id)
    await store.records.upsert(tenant.id, [op(tenant, external_id="b", size=3)])
    redis_client.xtrim(TenantKeys(tenant.id).outbox, maxlen=0)

    outcome = await store.bulk.forget_type(tenant.id, "contact", "p.color", since)

    assert outcome == "unsure"
    assert "p.color" in await store.bulk.inferred_types(tenant.id, "contact")


async def test_a_field_no_record_holds_is_forgotten_and_typed_again_by_its_next_value(
    store: Store, tenant: Tenant
) -> None:
    await store.records.upsert(tenant.id, [op(tenant, external_id="a", color="red")])
    await store.records.upsert(tenant.id, [op(tenant, external_id="a", color=None)])

    outcome = await service.reset_field(store, tenant, "color")
    again = await service.reset_field(store, tenant, "color")
    await store.records.upsert(tenant.id, [op(tenant, external_id="a", color=7)])

    assert (outcome, again) == ("forgotten", "unknown")
    assert await store.bulk.inferred_types(tenant.id, "contact") == {"p.color": "number"}
