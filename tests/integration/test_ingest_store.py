"""The ``ingest`` function (SPEC §5.8), straight against the Redis server: a request's events in
one call (one round trip, counted at the client), each on its own overlay, messageIds
de-duplicated and rejections kept in the same call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from idgateway.errors import RateLimited
from idgateway.fields import FieldInput, RecordOp, Violation, build_registry, validate
from idgateway.model import now_ms
from idgateway.settings import TenantFile
from idgateway.store import EventWrite, IngestOutcome, RateLimit, SessionRef, Store, TenantKeys
from tests.conftest import uniq, uniq_email

if TYPE_CHECKING:
    import redis

TENANT = msgspec.convert({"id": "ingesttest", "default_region": "US"}, TenantFile)
CONTACTS = build_registry(TENANT, "contact")
COMPANIES = build_registry(TENANT, "company")
KEYS = TenantKeys("ingesttest")
OUT = IngestOutcome


def op(**values: Any) -> RecordOp:
    found, violations = validate(CONTACTS, [FieldInput(k, v, f"$.{k}") for k, v in values.items()])
    assert violations == []
    return RecordOp(found, CONTACTS)


def company_op(**values: Any) -> RecordOp:
    found, violations = validate(COMPANIES, [FieldInput(k, v, f"$.{k}") for k, v in values.items()])
    assert violations == []
    return RecordOp(found, COMPANIES)


def identify(mid: str | None = None, **values: Any) -> EventWrite:
    event = msgspec.json.encode({"type": "identify", "messageId": mid, "traits": values})
    return EventWrite("upsert", event, mid or None, (op(**values),))


class Counting:
    """Counts the commands a client sends (each one round trip): observation, not a fake."""

    def __init__(self, store: Store) -> None:
        self.calls: list[str] = []
        original = store.client.execute_command

        async def execute_command(*args: Any, **options: Any) -> Any:
            self.calls.append(str(args[0]))
            return await original(*args, **options)

        store.client.execute_command = execute_command  # type: ignore[method-assign]


async def apply(store: Store, events: list[EventWrite], **kw: Any) -> list[IngestOutcome]:
    return await store.ingestion.apply(
        "ingesttest", events, contacts=CONTACTS, companies=COMPANIES, **kw
    )


async def test_a_batch_of_100_events_is_one_round_trip(
    store: Store, redis_client: redis.Redis
) -> None:
    events = [identify(uniq("m"), external_id=uniq("u"), email=uniq_email()) for _ in range(100)]
    await apply(store, events[:1])  # the library is loaded
    counting = Counting(store)
    outcomes = await apply(store, events[1:])
    assert outcomes == [OUT.CREATED] * 99
    assert counting.calls == ["FCALL"]
    for event in events:
        email = msgspec.json.decode(event.event)["traits"]["email"]
        found = await store.records.find("ingesttest", CONTACTS, CONTACTS.fields["email"], email)
        assert found is not None and found.version == 1


async def test_a_message_id_seen_is_skipped_and_writes_nothing(
    store: Store, redis_client: redis.Redis
) -> None:
    user, mid = uniq("u"), uniq("m")
    assert await apply(store, [identify(mid, external_id=user, first_name="A")]) == [OUT.CREATED]
    tail = redis_client.xrevrange(KEYS.outbox, count=1)
    # the same messageId again, even with other values, and twice in one request
    again = [identify(mid, external_id=user, first_name="B")] * 2
    assert await apply(store, again) == [OUT.DUPLICATE, OUT.DUPLICATE]
    assert redis_client.xrevrange(KEYS.outbox, count=1) == tail
    found = await store.records.find("ingesttest", CONTACTS, CONTACTS.fields["external_id"], user)
    assert found is not None and found.first_name == "A" and found.version == 1
    ttl = redis_client.ttl(f"{KEYS.prefix}m:{mid}")
    assert 23 * 3600 < ttl <= 24 * 3600


async def test_each_event_applies_on_its_own_and_failures_are_kept(store: Store) -> None:
    first, second = uniq("u"), uniq("u")
    taken = uniq_email()
    created = [identify(None, external_id=first, email=taken), identify(None, external_id=second)]
    assert await apply(store, created) == [OUT.CREATED, OUT.CREATED]
    good_before = identify(uniq("m"), external_id=uniq("u"), first_name="Before")
    # the email belongs to `first`, the user id to `second`: this event would join two records
    conflict = identify(uniq("m"), external_id=second, email=taken)
    refused = EventWrite(
        "reject",
        b'{"type": "identify", "traits": {"plan": 1}}',
        uniq("m"),
        violations=(Violation("$.traits.plan", "option", "not one of the options"),),
    )
    malformed = EventWrite(
        "reject", b"[1]", uniq("m"), refusal=("malformed_event", "not an object")
    )
    good_after = identify(uniq("m"), external_id=uniq("u"), first_name="After")
    outcomes = await apply(store, [good_before, conflict, refused, malformed, good_after])
    assert outcomes == [OUT.CREATED, OUT.CONFLICT, OUT.REJECTED, OUT.REJECTED, OUT.CREATED]
    by_id = CONTACTS.fields["external_id"]
    found = await store.records.find("ingesttest", CONTACTS, by_id, second)
    assert found is not None and found.email is None
    kept, _ = await store.ingestion.rejections("ingesttest", now_ms=now_ms(), limit=3)
    assert [r.code for r in kept] == ["malformed_event", "validation_failed", "identity_conflict"]
    assert kept[0].event == b"[1]"
    assert kept[1].errors == [
        {"path": "$.traits.plan", "code": "option", "message": "not one of the options"}
    ]
    assert {e["path"] for e in kept[2].errors} == {"$.email", "$.external_id"}
    assert kept[2].event == conflict.event


async def test_rejections_are_paged_newest_first(store: Store) -> None:
    marks = [uniq("bad") for _ in range(3)]
    events = [EventWrite("reject", f'"{m}"'.encode(), None, refusal=(m, m)) for m in marks]
    await apply(store, events)
    first, cursor = await store.ingestion.rejections("ingesttest", now_ms=now_ms(), limit=2)
    assert [r.code for r in first] == [marks[2], marks[1]]
    assert cursor == first[-1].id
    rest, _ = await store.ingestion.rejections(
        "ingesttest", now_ms=now_ms(), cursor=cursor, limit=1
    )
    assert [r.code for r in rest] == [marks[0]]
    # older than 7 days: not listed (the clock moved on by 8 days)
    later = now_ms() + 8 * 24 * 3600 * 1000
    assert (await store.ingestion.rejections("ingesttest", now_ms=later, limit=5))[0] == []


async def test_anonymous_traits_wait_in_the_session_until_identify(store: Store) -> None:
    session = SessionRef(uniq("anon-session-"), 3_600_000, "named")
    user = uniq("u")
    buffered = EventWrite("set", b"{}", None, (op(first_name="Anon"),), session=session)
    assert await apply(store, [buffered]) == [OUT.BUFFERED]
    group = EventWrite("group", b"{}", None, (company_op(external_id=uniq("g")),), session=session)
    identified = EventWrite("upsert", b"{}", None, (op(external_id=user),), session=session)
    assert await apply(store, [group, identified]) == [OUT.CREATED, OUT.CREATED]
    by_id = CONTACTS.fields["external_id"]
    contact = await store.records.find("ingesttest", CONTACTS, by_id, user)
    assert contact is not None and contact.first_name == "Anon"
    assert len(contact.company_ids) == 1  # the session's company is linked on identify
    # bound now: later anonymous traits go straight to the contact
    later = EventWrite("set", b"{}", None, (op(last_name="Later"),), session=session)
    assert await apply(store, [later]) == [OUT.UPDATED]
    contact = await store.records.find("ingesttest", CONTACTS, by_id, user)
    assert contact is not None and contact.last_name == "Later"


async def test_alias_binds_a_session_and_never_merges_two_contacts(store: Store) -> None:
    by_id = CONTACTS.fields["external_id"]
    old, new = uniq("u"), uniq("u")
    session = SessionRef(uniq("anon-session-"), 3_600_000, "named")
    set_anon = EventWrite("set", b"{}", None, (op(first_name="Was anonymous"),), session=session)
    alias = EventWrite("alias", b"{}", None, (op(external_id=new),), session=session, previous=None)
    assert await apply(store, [set_anon, alias]) == [OUT.BUFFERED, OUT.CREATED]
    contact = await store.records.find("ingesttest", CONTACTS, by_id, new)
    assert contact is not None and contact.first_name == "Was anonymous"

    await apply(store, [identify(None, external_id=old)])
    onto_other = EventWrite(
        "alias", b"{}", None, (op(external_id=new),), previous=("x", old, "$.previousId")
    )
    unknown_user = EventWrite(
        "alias", b"{}", None, (op(external_id=uniq("u")),), previous=("x", old, "$.previousId")
    )
    assert await apply(store, [onto_other, unknown_user]) == [OUT.CONFLICT, OUT.MISMATCH]
    assert await store.records.find("ingesttest", CONTACTS, by_id, old) is not None
    assert await store.records.find("ingesttest", CONTACTS, by_id, new) is not None


async def test_over_the_rate_nothing_is_applied(store: Store) -> None:
    limit = [RateLimit("key", uniq("k"), 1, 60.0, 1)]
    await apply(store, [], limits=limit)
    mid = uniq("m")
    with pytest.raises(RateLimited):
        await apply(store, [identify(mid, external_id=uniq("u"))], limits=limit)
    assert await apply(store, [identify(mid, external_id=uniq("u"))]) == [OUT.CREATED]
